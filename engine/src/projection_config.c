/* Projections as the server keeps them: one durable pull consumer per
 * partition on the store's stream, marked with es_* metadata. */
#include <es/projection.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <es/subject.h>

#include "base/alloc.h"
#include "base/internal.h"
#include "transport/directget.h"
#include "transport/js.h"
#include "filters.h"
#include "projection_impl.h"
#include "store_impl.h"
#include "wire.h"

#define NS_PER_MS      1000000LL
#define LIST_PAGES_MAX 1000 /* 256 consumers a page: far beyond any real stream */

void es_projection_config_init(es_projection_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->ack_wait_ms = 30000;
    cfg->max_deliver = 10;
    cfg->max_ack_pending = 1000;
    cfg->partitions = 1;
    cfg->pin_timeout_ms = 0; /* ack_wait_ms + 5000 */
}

es_status esi_projection_check_name(const char *name)
{
    if (!es_valid_name(name) || strlen(name) > ES_PROJECTION_NAME_MAX)
        return es_error(ES_ERR_INVALID, "invalid projection name '%.64s': use [A-Za-z0-9_-]{1,%d}",
                        name ? name : "(null)", ES_PROJECTION_NAME_MAX);
    return ES_OK;
}

void esi_projection_consumer_name(const char *name, int partitions, int i,
                                 char out[ES_PROJECTION_CONSUMER_MAX])
{
    if (partitions <= 1)
        snprintf(out, ES_PROJECTION_CONSUMER_MAX, "%s", name);
    else
        snprintf(out, ES_PROJECTION_CONSUMER_MAX, "%s_p%d", name, i);
}

int esi_projection_partition_count(const es_projection_config *cfg)
{
    return cfg->ordered ? cfg->partitions : 1;
}

es_status esi_projection_config_resolve(const es_projection_config *cfg, es_projection_config *out)
{
    if (cfg == NULL)
        return es_error(ES_ERR_INVALID, "projection: a configuration is required");
    *out = *cfg;
    if (cfg->filter_count > ES_PROJECTION_MAX_FILTERS || (cfg->filter_count && !cfg->filters))
        return es_error(ES_ERR_INVALID, "projection: 0..%d filters", ES_PROJECTION_MAX_FILTERS);
    if (cfg->ack_wait_ms < 100 || cfg->max_ack_pending < 1 || cfg->max_deliver == 0 ||
        cfg->max_deliver < -1)
        return es_error(ES_ERR_INVALID, "projection: ack_wait_ms >= 100, max_ack_pending >= 1 "
                                        "and max_deliver >= 1 (or -1) are required");
    if (cfg->pin_timeout_ms == 0)
        out->pin_timeout_ms = cfg->ack_wait_ms + 5000;
    if (cfg->ordered && (cfg->partitions < 1 || cfg->partitions > ES_PROJECTION_MAX_PARTITIONS ||
                         out->pin_timeout_ms <= cfg->ack_wait_ms))
        return es_error(ES_ERR_INVALID,
                        "projection: 1..%d partitions and a pin timeout above ack_wait when "
                        "ordered (a crashed instance's events must come back before its "
                        "partition moves on)",
                        ES_PROJECTION_MAX_PARTITIONS);
    if (cfg->start > ES_PROJECTION_NEW_ONLY)
        return es_error(ES_ERR_INVALID, "projection: unknown start position %d", (int)cfg->start);
    if (!cfg->ordered)
        out->partitions = 1;
    return ES_OK;
}

static const char *deliver_policy(es_projection_start_at start)
{
    switch (start) {
    case ES_PROJECTION_AFTER_SEQ: return "by_start_sequence";
    case ES_PROJECTION_NEW_ONLY: return "new";
    default: return "all";
    }
}

static json_t *metadata(const char *name, const es_projection_config *cfg, int partition)
{
    char parts[16], part[16];
    snprintf(parts, sizeof parts, "%d", esi_projection_partition_count(cfg));
    snprintf(part, sizeof part, "%d", partition);
    return json_pack("{s:s, s:s, s:s, s:s}", ES_META_PROJECTION, name, ES_META_ORDERED,
                     cfg->ordered ? "true" : "false", ES_META_PARTITIONS, parts, ES_META_PARTITION,
                     part);
}

json_t *esi_projection_consumer_request(const char *stream, const char *name,
                                       const es_projection_config *cfg, const char *const *subjects,
                                       size_t nsubjects, int partition, bool update)
{
    char cname[ES_PROJECTION_CONSUMER_MAX];
    esi_projection_consumer_name(name, esi_projection_partition_count(cfg), partition, cname);
    json_t *c =
        json_pack("{s:s, s:s, s:s, s:s, s:I, s:i, s:i, s:s, s:i, s:o}", "durable_name", cname,
                  "name", cname, "deliver_policy", deliver_policy(cfg->start), "ack_policy",
                  "explicit", "ack_wait", (json_int_t)(cfg->ack_wait_ms * NS_PER_MS), "max_deliver",
                  cfg->max_deliver, "max_ack_pending", cfg->max_ack_pending, "replay_policy",
                  "instant", "max_waiting", 512, "metadata", metadata(name, cfg, partition));
    if (c == NULL)
        return NULL;
    if (cfg->start == ES_PROJECTION_AFTER_SEQ)
        json_object_set_new(c, "opt_start_seq", json_integer((json_int_t)(cfg->after_seq + 1)));
    if (cfg->description != NULL)
        json_object_set_new(c, "description", json_string(cfg->description));
    if (nsubjects == 1) {
        json_object_set_new(c, "filter_subject", json_string(subjects[0]));
    } else if (nsubjects > 1) {
        json_t *a = json_array();
        for (size_t i = 0; i < nsubjects; i++)
            json_array_append_new(a, json_string(subjects[i]));
        json_object_set_new(c, "filter_subjects", a);
    }
    if (cfg->ordered) {
        json_object_set_new(c, "priority_groups", json_pack("[s]", ES_PROJECTION_GROUP));
        json_object_set_new(c, "priority_policy", json_string("pinned_client"));
        json_object_set_new(c, "priority_timeout",
                            json_integer((json_int_t)(cfg->pin_timeout_ms * NS_PER_MS)));
    }
    return json_pack("{s:s, s:s, s:o}", "stream_name", stream, "action",
                     update ? "update" : "create", "config", c);
}

/* ---- reading consumer infos ---------------------------------------------- */

static uint64_t u64_at(json_t *obj, const char *key)
{
    json_int_t v = json_integer_value(json_object_get(obj, key));
    return v > 0 ? (uint64_t)v : 0;
}

static const char *meta_of(json_t *consumer_info, const char *key)
{
    json_t *md =
        json_object_get(json_object_get(json_object_get(consumer_info, "config"), "metadata"), key);
    return json_string_value(md);
}

static bool pinned(json_t *ci)
{
    json_t *groups = json_object_get(ci, "priority_groups");
    for (size_t i = 0; i < json_array_size(groups); i++) {
        const char *id = json_string_value(json_object_get(json_array_get(groups, i), "pinned_id"));
        if (id != NULL && id[0] != '\0')
            return true;
    }
    return false;
}

static void settings_from(es_projection_info *info, json_t *cfg)
{
    const char *dp = json_string_value(json_object_get(cfg, "deliver_policy"));
    info->start = dp && strcmp(dp, "by_start_sequence") == 0 ? ES_PROJECTION_AFTER_SEQ
                  : dp && strcmp(dp, "new") == 0             ? ES_PROJECTION_NEW_ONLY
                                                             : ES_PROJECTION_FROM_START;
    uint64_t opt = u64_at(cfg, "opt_start_seq");
    info->after_seq = info->start == ES_PROJECTION_AFTER_SEQ && opt > 0 ? opt - 1 : 0;
    info->ack_wait_ms = (int64_t)(u64_at(cfg, "ack_wait") / NS_PER_MS);
    info->max_deliver = (int)json_integer_value(json_object_get(cfg, "max_deliver"));
    info->max_ack_pending = (int)json_integer_value(json_object_get(cfg, "max_ack_pending"));
    info->pin_timeout_ms = (int64_t)(u64_at(cfg, "priority_timeout") / NS_PER_MS);
    json_t *many = json_object_get(cfg, "filter_subjects");
    info->filter_count = json_array_size(many) ? json_array_size(many)
                         : json_string_value(json_object_get(cfg, "filter_subject")) ? 1
                                                                                     : 0;
}

void esi_projection_info_add(es_projection_info *info, json_t *ci, int partition)
{
    if (partition < 0 || partition >= ES_PROJECTION_MAX_PARTITIONS)
        return;
    json_t *cfg = json_object_get(ci, "config");
    if (partition == 0) {
        const char *name = meta_of(ci, ES_META_PROJECTION), *ordered = meta_of(ci, ES_META_ORDERED);
        const char *parts = meta_of(ci, ES_META_PARTITIONS);
        snprintf(info->name, sizeof info->name, "%s", name ? name : "");
        info->ordered = ordered && strcmp(ordered, "true") == 0;
        info->partitions = parts ? atoi(parts) : 1;
        if (info->partitions < 1 || info->partitions > ES_PROJECTION_MAX_PARTITIONS)
            info->partitions = 1;
        settings_from(info, cfg);
    }
    es_projection_partition *p = &info->partition[partition];
    p->pending = u64_at(ci, "num_pending");
    p->ack_pending = u64_at(ci, "num_ack_pending");
    p->redelivered = u64_at(ci, "num_redelivered");
    p->delivered_seq = u64_at(json_object_get(ci, "delivered"), "stream_seq");
    p->ack_floor_seq = u64_at(json_object_get(ci, "ack_floor"), "stream_seq");
    p->waiting = (int)json_integer_value(json_object_get(ci, "num_waiting"));
    p->pinned = pinned(ci);
    if (p->pending > info->pending)
        info->pending = p->pending;
    info->ack_pending += p->ack_pending;
    if (partition == 0 || p->ack_floor_seq < info->ack_floor_seq)
        info->ack_floor_seq = p->ack_floor_seq;
}

/* ---- server requests ----------------------------------------------------- */

static es_status consumer_info(es_store *st, const char *consumer, json_t **reply)
{
    return esi_store_api(st, NULL, reply, "CONSUMER.INFO.%s.%s", st->stream, consumer);
}

es_status esi_consumer_state_get(es_store *st, const char *consumer, esi_consumer_state *out)
{
    memset(out, 0, sizeof *out);
    es_status s = consumer_info(st, consumer, &out->info);
    if (s != ES_OK)
        return s;
    json_t *floor = json_object_get(out->info, "ack_floor");
    out->floor_seq = u64_at(floor, "stream_seq");
    out->floor_delivery = u64_at(floor, "consumer_seq");
    out->ack_pending = u64_at(out->info, "num_ack_pending");
    return ES_OK;
}

void esi_consumer_state_free(esi_consumer_state *cs)
{
    json_decref(cs->info);
    cs->info = NULL;
}

static es_status found_one(natsMsg *m, const char *subject, uint64_t seq, int64_t stored_ns,
                           void *closure)
{
    (void)m;
    (void)subject;
    (void)seq;
    (void)stored_ns;
    *(bool *)closure = true;
    return ES_ERR_ABORTED;
}

static es_status has_between(es_store *st, const char *filter, uint64_t after, uint64_t before,
                             bool *found)
{
    esi_dg_request req = {.filter = filter,
                          .start_seq = after + 1,
                          .up_to_seq = before - 1,
                          .batch = 1,
                          .max_msgs = 1};
    es_status s = esi_direct_get(st->js, st->stream, &req, found_one, found, NULL);
    return s == ES_ERR_ABORTED || s == ES_ERR_NOT_FOUND ? ES_OK : s;
}

es_status esi_consumer_has_between(es_store *st, const esi_consumer_state *cs, uint64_t after,
                                   uint64_t before, bool *found)
{
    *found = false;
    if (before <= after + 1)
        return ES_OK;
    json_t *cfg = json_object_get(cs->info, "config");
    json_t *many = json_object_get(cfg, "filter_subjects");
    const char *one = json_string_value(json_object_get(cfg, "filter_subject"));
    es_status s = ES_OK;
    if (json_array_size(many) > 0) {
        for (size_t i = 0; s == ES_OK && !*found && i < json_array_size(many); i++)
            s = has_between(st, json_string_value(json_array_get(many, i)), after, before, found);
    } else {
        s = has_between(st, one && one[0] ? one : ">", after, before, found);
    }
    return s;
}

/* Partition 0's consumer: "<name>" or "<name>_p0", whichever is a part of
 * the projection called `name`. */
static es_status first_partition(es_store *st, const char *name, json_t **reply)
{
    char cname[ES_PROJECTION_CONSUMER_MAX];
    for (int form = 0; form < 2; form++) {
        esi_projection_consumer_name(name, form == 0 ? 1 : 2, 0, cname);
        es_status s = consumer_info(st, cname, reply);
        if (s == ES_OK) {
            const char *owner = meta_of(*reply, ES_META_PROJECTION);
            const char *part = meta_of(*reply, ES_META_PARTITION);
            if (owner && strcmp(owner, name) == 0 && part && strcmp(part, "0") == 0)
                return ES_OK;
            json_decref(*reply);
            *reply = NULL;
        } else if (s != ES_ERR_NOT_FOUND) {
            return s;
        }
    }
    return es_error(ES_ERR_NOT_FOUND, "store '%s' has no projection '%s'", st->name, name);
}

es_status es_projection_info_get(es_store *st, const char *name, es_projection_info *info)
{
    if (st == NULL || info == NULL)
        return es_error(ES_ERR_INVALID, "es_projection_info_get: store and info are required");
    memset(info, 0, sizeof *info);
    es_status s = esi_projection_check_name(name);
    json_t *ci = NULL;
    if (s == ES_OK)
        s = first_partition(st, name, &ci);
    if (s != ES_OK)
        return s;
    esi_projection_info_add(info, ci, 0);
    json_decref(ci);
    for (int i = 1; s == ES_OK && i < info->partitions; i++) {
        char cname[ES_PROJECTION_CONSUMER_MAX];
        esi_projection_consumer_name(name, info->partitions, i, cname);
        s = consumer_info(st, cname, &ci);
        if (s == ES_OK)
            esi_projection_info_add(info, ci, i);
        json_decref(ci);
        ci = NULL;
    }
    if (s == ES_OK)
        es_error_clear();
    return s;
}

/* Creates or updates every partition's consumer. */
static es_status put_consumers(es_store *st, const char *name, const es_projection_config *cfg,
                               bool update)
{
    esi_filter_set *fs = NULL;
    es_status s = esi_filter_set_make(st, cfg->filters, cfg->filter_count, &fs);
    /* No filter is the whole store: sent as no filter subject at all. */
    size_t nsubjects = s == ES_OK && cfg->filter_count ? fs->n : 0;
    int n = esi_projection_partition_count(cfg);
    for (int i = 0; s == ES_OK && i < n; i++) {
        char cname[ES_PROJECTION_CONSUMER_MAX];
        esi_projection_consumer_name(name, n, i, cname);
        json_t *req = esi_projection_consumer_request(st->stream, name, cfg, fs->subjects,
                                                     nsubjects, i, update);
        json_t *reply = NULL;
        if (req != NULL)
            s = esi_store_api(st, req, &reply, "CONSUMER.CREATE.%s.%s", st->stream, cname);
        else
            s = es_error(ES_ERR_NOMEM, "out of memory");
        json_decref(req);
        json_decref(reply);
        if (s != ES_OK && es_last_error_code() == 10148)
            s = es_error_code(ES_ERR_EXISTS, 10148,
                              "projection '%s' exists with a different configuration "
                              "(use es_projection_update)",
                              name);
        else if (s != ES_OK && es_last_error_code() == 10149)
            s = es_error_code(ES_ERR_NOT_FOUND, 10149, "store '%s' has no projection '%s'",
                              st->name, name);
    }
    esi_filter_set_free(fs);
    return s;
}

es_status es_projection_create(es_store *st, const char *name, const es_projection_config *cfg)
{
    es_projection_config c;
    es_status s = st ? esi_projection_check_name(name)
                     : es_error(ES_ERR_INVALID, "es_projection_create: store is required");
    if (s == ES_OK)
        s = esi_projection_config_resolve(cfg, &c);
    if (s == ES_OK)
        s = put_consumers(st, name, &c, false);
    if (s == ES_OK)
        es_error_clear();
    return s;
}

es_status es_projection_update(es_store *st, const char *name, const es_projection_config *cfg)
{
    es_projection_config c;
    es_projection_info now;
    es_status s = st ? esi_projection_check_name(name)
                     : es_error(ES_ERR_INVALID, "es_projection_update: store is required");
    if (s == ES_OK)
        s = esi_projection_config_resolve(cfg, &c);
    if (s == ES_OK)
        s = es_projection_info_get(st, name, &now);
    if (s == ES_OK && (now.ordered != c.ordered || now.partitions != c.partitions))
        s = es_error(ES_ERR_INVALID,
                     "projection '%s': ordering and partitions cannot change "
                     "(delete and create it again)",
                     name);
    if (s != ES_OK)
        return s;
    c.start = now.start; /* where it started is history: keep it */
    c.after_seq = now.after_seq;
    s = put_consumers(st, name, &c, true);
    if (s == ES_OK)
        es_error_clear();
    return s;
}

static es_status delete_consumer(es_store *st, const char *consumer)
{
    json_t *reply = NULL;
    es_status s = esi_store_api(st, NULL, &reply, "CONSUMER.DELETE.%s.%s", st->stream, consumer);
    json_decref(reply);
    return s;
}

es_status es_projection_delete(es_store *st, const char *name)
{
    es_projection_info info = {.partitions = 0};
    es_status s = st ? es_projection_info_get(st, name, &info)
                     : es_error(ES_ERR_INVALID, "es_projection_delete: store is required");
    /* Partition 0 last: while it exists the projection can still be found. */
    for (int i = info.partitions - 1; s == ES_OK && i >= 0; i--) {
        char cname[ES_PROJECTION_CONSUMER_MAX];
        esi_projection_consumer_name(name, info.partitions, i, cname);
        s = delete_consumer(st, cname);
        if (s == ES_ERR_NOT_FOUND)
            s = ES_OK; /* deleted by someone else meanwhile */
    }
    if (s == ES_OK)
        es_error_clear();
    return s;
}

/* ---- listing -------------------------------------------------------------- */

/* Projection name -> array of consumer infos, from every page of the list. */
static es_status collect(es_store *st, json_t *by_name)
{
    size_t offset = 0;
    for (int page = 0; page < LIST_PAGES_MAX; page++) {
        json_t *req = json_pack("{s:I}", "offset", (json_int_t)offset), *reply = NULL;
        es_status s = esi_store_api(st, req, &reply, "CONSUMER.LIST.%s", st->stream);
        json_decref(req);
        if (s != ES_OK)
            return s;
        json_t *list = json_object_get(reply, "consumers");
        size_t n = json_array_size(list), total = (size_t)u64_at(reply, "total");
        for (size_t i = 0; i < n; i++) {
            json_t *ci = json_array_get(list, i);
            const char *owner = meta_of(ci, ES_META_PROJECTION);
            if (owner == NULL || esi_projection_check_name(owner) != ES_OK)
                continue; /* not a projection's consumer */
            json_t *arr = json_object_get(by_name, owner);
            if (arr == NULL) {
                arr = json_array();
                json_object_set_new(by_name, owner, arr);
            }
            json_array_append(arr, ci);
        }
        json_decref(reply);
        offset += n;
        if (n == 0 || offset >= total)
            return ES_OK;
    }
    return es_error(ES_ERR_LIMIT, "projection list: more than %d pages of consumers",
                    LIST_PAGES_MAX);
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void info_of(const char *name, json_t *consumers, es_projection_info *info)
{
    memset(info, 0, sizeof *info);
    for (int pass = 0; pass < 2; pass++) /* partition 0 first: it sets the settings */
        for (size_t i = 0; i < json_array_size(consumers); i++) {
            json_t *ci = json_array_get(consumers, i);
            const char *part = meta_of(ci, ES_META_PARTITION);
            int p = part ? atoi(part) : 0;
            if ((pass == 0) == (p == 0))
                esi_projection_info_add(info, ci, p);
        }
    snprintf(info->name, sizeof info->name, "%s", name);
}

es_status es_projection_list(es_store *st, es_projection_list_cb cb, void *closure)
{
    if (st == NULL || cb == NULL)
        return es_error(ES_ERR_INVALID, "es_projection_list: store and callback are required");
    json_t *by_name = json_object();
    es_status s = by_name ? collect(st, by_name) : es_error(ES_ERR_NOMEM, "out of memory");
    size_t n = json_object_size(by_name), k = 0;
    const char **names = s == ES_OK && n ? esi_calloc(n, sizeof *names) : NULL;
    const char *key;
    json_t *value;
    if (names != NULL)
        json_object_foreach(by_name, key, value) names[k++] = key;
    if (k > 1)
        qsort(names, k, sizeof *names, compare_names);
    es_projection_info *info = k ? esi_malloc(sizeof *info) : NULL;
    if (k && info == NULL)
        s = es_error(ES_ERR_NOMEM, "out of memory");
    for (size_t i = 0; s == ES_OK && i < k; i++) {
        info_of(names[i], json_object_get(by_name, names[i]), info);
        s = cb(info, closure);
    }
    esi_free(info);
    esi_free(names);
    json_decref(by_name);
    if (s == ES_OK)
        es_error_clear();
    return s;
}
