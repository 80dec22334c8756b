#include "transport/consumer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "base/alloc.h"
#include "base/backoff.h"
#include "base/internal.h"
#include "base/newid.h"
#include "base/clock.h"
#include "transport/msg.h"

#define MISSED_HEARTBEATS 3
/* Idle heartbeats in a row, with no gap and messages still counted, after
 * which the count is distrusted (see control). */
#define IDLE_WITH_PENDING 2

struct esi_oc {
    const esi_js *js;
    const esi_conn *conn;
    char stream[ESI_STREAM_NAME_MAX + 1];
    char **filters; /* none: the whole stream */
    size_t nfilters;
    int64_t hb_ms;
    esi_sub *sub;
    char inbox[64];
    char name[128];           /* the server's name for the consumer */
    char config_name[32];     /* the name asked for ("es_<id>"), or "": the server's choice */
    uint64_t next_sseq;       /* where a reset restarts: last delivered + 1 */
    uint64_t last_cseq;       /* consumer sequence of the last delivery */
    uint64_t pending;         /* matching messages still to come, as the server counted */
    unsigned idle_beats;      /* idle heartbeats since the last delivery */
    int64_t last_activity_ms; /* refreshed lazily, see check_heartbeats */
    bool active;              /* something arrived since the clock was last read */
    bool need_reset;
    uint64_t resets;
    int64_t failing_since_ms; /* first failed reset of the current run of them, or 0 */
    unsigned failed_resets;   /* in that run: the backoff's attempt number */
    esi_backoff backoff;
};

/* One filter goes as filter_subject (any server), several as
 * filter_subjects (nats-server >= 2.10). */
static json_t *filters_json(const esi_oc *oc, json_t *config)
{
    if (config == NULL || oc->nfilters == 0)
        return config;
    if (oc->nfilters == 1) {
        json_object_set_new(config, "filter_subject", json_string(oc->filters[0]));
        return config;
    }
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < oc->nfilters; i++)
        json_array_append_new(a, json_string(oc->filters[i]));
    if (a == NULL || json_object_set_new(config, "filter_subjects", a) != 0) {
        json_decref(config);
        return NULL;
    }
    return config;
}

static json_t *consumer_config(const esi_oc *oc)
{
    int64_t hb_ns = oc->hb_ms * 1000000;
    int64_t inactive_ns = hb_ns * 10 > 5000000000LL ? hb_ns * 10 : 5000000000LL;
    json_t *config = json_pack(
        "{s:s, s:s, s:I, s:s, s:i, s:s, s:b, s:I, s:b, s:i, s:I}", "deliver_subject", oc->inbox,
        "deliver_policy", "by_start_sequence", "opt_start_seq", (json_int_t)oc->next_sseq,
        "ack_policy", "none", "max_deliver", 1, "replay_policy", "instant", "flow_control", 1,
        "idle_heartbeat", (json_int_t)hb_ns, "mem_storage", 1, "num_replicas", 1,
        "inactive_threshold", (json_int_t)inactive_ns);
    config = filters_json(oc, config);
    if (config != NULL && oc->config_name[0] != '\0')
        json_object_set_new(config, "name", json_string(oc->config_name));
    return config ? json_pack("{s:s, s:o}", "stream_name", oc->stream, "config", config) : NULL;
}

/* Deletes the consumer first, so the server stops sending, then closes the
 * inbox safely (esi_js_sub_close). */
static void drop_consumer(esi_oc *oc)
{
    if (oc->name[0] != '\0') {
        char subject[512];
        json_t *reply = NULL;
        if (esi_js_api_subject(oc->js, subject, sizeof subject, "CONSUMER.DELETE.%s.%s",
                               oc->stream, oc->name) == ES_OK) /* best effort: it expires anyway */
            esi_js_request(oc->js, subject, NULL, 1000, &reply);
        json_decref(reply);
        oc->name[0] = '\0';
    }
    esi_js_sub_close(oc->js, oc->sub);
    oc->sub = NULL;
}

/* One filter goes in the API subject as well (<prefix>.CONSUMER.CREATE.
 * <stream>.<name>.<filter>, where the server checks it against the
 * config's): a user's permissions can then confine the consumers it
 * creates to its subjects. Several need the plain form, which no
 * permission can confine by filter. */
static es_status create_subject(esi_oc *oc, const char *id, char *out, size_t size)
{
    if (oc->nfilters != 1) {
        oc->config_name[0] = '\0';
        return esi_js_api_subject(oc->js, out, size, "CONSUMER.CREATE.%s", oc->stream);
    }
    snprintf(oc->config_name, sizeof oc->config_name, "es_%s", id);
    return esi_js_api_subject(oc->js, out, size, "CONSUMER.CREATE.%s.%s.%s", oc->stream,
                              oc->config_name, oc->filters[0]);
}

/* (Re)creates the consumer from oc->next_sseq on a fresh inbox, so nothing
 * from an earlier incarnation can be mistaken for a delivery. */
static es_status start(esi_oc *oc, uint64_t *pending)
{
    drop_consumer(oc);
    char id[ES_NEW_ID_LEN + 1];
    esi_new_id(id);
    snprintf(oc->inbox, sizeof oc->inbox, "_INBOX.%s", id);
    /* Flow control bounds what the server sends ahead; these limits only
     * keep nats.c from dropping a burst as a slow consumer. */
    es_status s = oc->conn->ops->subscribe_sync(oc->conn->ctx, oc->inbox, 1 << 20, 1 << 30, &oc->sub);
    if (s != ES_OK)
        return s;
    char subject[4096]; /* a filter may be a few KiB (an entity id escapes to 3 KiB) */
    s = create_subject(oc, id, subject, sizeof subject);
    json_t *req = consumer_config(oc), *reply = NULL;
    if (s == ES_OK && req == NULL)
        s = es_error(ES_ERR_NOMEM, "out of memory");
    if (s == ES_OK)
        s = esi_js_request(oc->js, subject, req, 0, &reply);
    json_decref(req);
    if (s != ES_OK) {
        esi_js_sub_close(oc->js, oc->sub);
        oc->sub = NULL;
        return s;
    }
    snprintf(oc->name, sizeof oc->name, "%s",
             esi_json_string_or(json_object_get(reply, "name"), ""));
    /* A new consumer counts afresh from the stream's state. */
    oc->pending = (uint64_t)json_integer_value(json_object_get(reply, "num_pending"));
    if (pending)
        *pending = oc->pending;
    json_decref(reply);
    oc->last_cseq = 0;
    oc->idle_beats = 0;
    oc->last_activity_ms = esi_monotonic_ms();
    oc->active = false;
    oc->need_reset = false;
    return ES_OK;
}

/* Copies the filters: a reset recreates the consumer long after the
 * caller's strings are gone. */
static es_status copy_filters(esi_oc *oc, const char *const *filters, size_t n)
{
    if (n == 0)
        return ES_OK;
    oc->filters = esi_calloc(n, sizeof *oc->filters);
    if (oc->filters == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    for (; oc->nfilters < n; oc->nfilters++)
        if ((oc->filters[oc->nfilters] = esi_strdup(filters[oc->nfilters])) == NULL)
            return es_error(ES_ERR_NOMEM, "out of memory");
    return ES_OK;
}

struct first_start {
    esi_oc *oc;
    uint64_t *pending;
};

static es_status start_first(void *closure)
{
    struct first_start *fs = closure;
    return start(fs->oc, fs->pending);
}

es_status esi_oc_create(const esi_js *js, const char *stream, const char *const *filters,
                       size_t nfilters, uint64_t start_seq, int64_t heartbeat_ms, esi_oc **out,
                       uint64_t *pending)
{
    if (strlen(stream) > ESI_STREAM_NAME_MAX)
        return es_error(ES_ERR_INVALID, "stream name '%.40s...' is too long", stream);
    if (nfilters > ESI_OC_FILTERS_MAX)
        return es_error(ES_ERR_INVALID, "an ordered consumer takes at most %d filters, not %zu",
                        ESI_OC_FILTERS_MAX, nfilters);
    esi_oc *oc = esi_calloc(1, sizeof *oc);
    if (oc == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    es_status cs = copy_filters(oc, filters, nfilters);
    if (cs != ES_OK) {
        esi_oc_destroy(oc);
        return cs;
    }
    oc->js = js;
    oc->conn = esi_js_conn(js);
    snprintf(oc->stream, sizeof oc->stream, "%s", stream);
    oc->hb_ms = heartbeat_ms > 0 ? heartbeat_ms : 5000;
    oc->next_sseq = start_seq ? start_seq : 1;
    esi_backoff_init(&oc->backoff, ESI_JS_RETRY_FIRST_MS, ESI_JS_RETRY_MAX_MS);
    struct first_start fs = {oc, pending};
    es_status s = esi_js_retry(start_first, &fs);
    if (s != ES_OK) {
        esi_oc_destroy(oc);
        return s;
    }
    *out = oc;
    return ES_OK;
}

static void respond_empty(const esi_conn *conn, const char *subject)
{
    if (subject != NULL && subject[0] != '\0')
        conn->ops->publish_data(conn->ctx, subject, NULL, NULL, 0);
}

/* An idle heartbeat that names our last delivery says the server has sent
 * everything it means to; if the count of messages to come is still above
 * zero, the count is wrong. nats-server keeps it as a running tally that
 * races with the stream's appends: seen on an R3 store whose replicas lag
 * (the consumer on a follower), a delivery said 2 pending when it was the
 * stream's last message, and consumer info, which recounts, said 0. A reader
 * waiting for the count to reach zero would wait forever; a reset recreates
 * the consumer after the last delivery, and its creation counts afresh. */
static void idle_heartbeat(esi_oc *oc, natsMsg *m)
{
    if (esi_msg_header(m, "Nats-Consumer-Stalled") != NULL) /* flow control holds it back */
        return;
    if (oc->pending > 0 && ++oc->idle_beats >= IDLE_WITH_PENDING)
        oc->need_reset = true;
}

/* Flow-control requests and heartbeats. A heartbeat names the last consumer
 * sequence the server sent: if it is not ours, something was lost. */
static void control(esi_oc *oc, natsMsg *m, const char *status)
{
    if (strcmp(status, "100") != 0) { /* 409 consumer deleted, leadership change... */
        oc->need_reset = true;
        return;
    }
    const char *reply = esi_msg_reply(m);
    respond_empty(oc->conn, reply); /* flow control request */
    const char *v = esi_msg_header(m, "Nats-Consumer-Stalled");
    if (v != NULL)
        respond_empty(oc->conn, v);
    v = esi_msg_header(m, "Nats-Last-Consumer");
    if (v != NULL && strtoull(v, NULL, 10) != oc->last_cseq)
        oc->need_reset = true;
    else if (v != NULL && (reply == NULL || reply[0] == '\0'))
        idle_heartbeat(oc, m);
}

/* One attempt; a failure waits its backoff delay (within wait_ms) so that
 * callers retrying at once do not hammer a cluster that is electing. */
static es_status reset(esi_oc *oc, int64_t wait_ms)
{
    es_status s = start(oc, NULL);
    if (s == ES_OK) {
        oc->resets++;
        oc->failing_since_ms = 0;
        oc->failed_resets = 0;
        return ES_OK;
    }
    oc->need_reset = true;
    int64_t now = esi_monotonic_ms();
    if (oc->failing_since_ms == 0)
        oc->failing_since_ms = now;
    int64_t pause = esi_backoff_next(&oc->backoff, ++oc->failed_resets);
    esi_sleep_ms(wait_ms < pause ? wait_ms : pause);
    return es_error(ES_ERR_CONNECTION,
                    "consumer reset from sequence %" PRIu64 " failing for %" PRId64 " ms: %s",
                    oc->next_sseq, now - oc->failing_since_ms, es_last_error());
}

/* Called when a wait slice ended with nothing: the only moment the clock is
 * read, so a busy replay pays no clock_gettime per message. */
static void check_heartbeats(esi_oc *oc)
{
    int64_t now = esi_monotonic_ms();
    if (oc->active) {
        oc->last_activity_ms = now;
        oc->active = false;
    } else if (now - oc->last_activity_ms > MISSED_HEARTBEATS * oc->hb_ms) {
        oc->need_reset = true;
    }
}

es_status esi_oc_next(esi_oc *oc, int64_t wait_ms, esi_oc_msg *out)
{
    for (;;) {
        if (oc->need_reset) {
            uint64_t counted = oc->pending;
            es_status s = reset(oc, wait_ms);
            if (s != ES_OK)
                return s;
            if (counted > 0 && oc->pending == 0)
                return ES_ERR_TIMEOUT; /* recounted: nothing to come (esi_oc_pending) */
        }
        if (wait_ms <= 0)
            return ES_ERR_TIMEOUT;
        int64_t slice = wait_ms < oc->hb_ms ? wait_ms : oc->hb_ms;
        natsMsg *m = NULL;
        es_status r = oc->conn->ops->next_msg(oc->sub, slice, &m);
        if (r == ES_ERR_TIMEOUT) {
            wait_ms -= slice;
            check_heartbeats(oc);
            continue;
        }
        if (r != ES_OK) { /* e.g. the subscription was closed by a disconnect */
            wait_ms -= slice;
            oc->need_reset = true;
            continue;
        }
        oc->active = true;
        /* Deliveries carry a $JS.ACK reply; anything else is a status message.
         * Deciding by the reply keeps nats.c from parsing every delivery's
         * headers (a dozen allocations) just to look for a Status. */
        esi_js_delivery d;
        if (!esi_js_delivery_parse(esi_msg_reply(m), &d)) {
            const char *status = esi_msg_header(m, "Status");
            if (status != NULL)
                control(oc, m, status);
            else
                oc->need_reset = true; /* neither a delivery nor a status: start afresh */
            esi_msg_destroy(m);
            continue;
        }
        if (d.consumer_seq != oc->last_cseq + 1) {
            esi_msg_destroy(m); /* a gap: start again after the last good one */
            oc->need_reset = true;
            continue;
        }
        oc->last_cseq = d.consumer_seq;
        oc->next_sseq = d.stream_seq + 1;
        oc->pending = d.pending;
        oc->idle_beats = 0;
        out->msg = m;
        out->seq = d.stream_seq;
        out->pending = d.pending;
        out->stored_ns = d.stored_ns;
        return ES_OK;
    }
}

int64_t esi_oc_failing_ms(const esi_oc *oc)
{
    if (oc == NULL || oc->failing_since_ms == 0)
        return 0;
    int64_t d = esi_monotonic_ms() - oc->failing_since_ms;
    return d > 0 ? d : 1; /* failing, even within the first millisecond */
}

uint64_t esi_oc_pending(const esi_oc *oc)
{
    return oc ? oc->pending : 0;
}

uint64_t esi_oc_resets(const esi_oc *oc)
{
    return oc ? oc->resets : 0;
}

void esi_oc_destroy(esi_oc *oc)
{
    if (oc == NULL)
        return;
    drop_consumer(oc);
    for (size_t i = 0; i < oc->nfilters; i++)
        esi_free(oc->filters[i]);
    esi_free(oc->filters);
    esi_free(oc);
}
