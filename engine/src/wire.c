/* The wire layout of a store: see wire.h. */
#include "wire.h"

#include <stdio.h>
#include <string.h>

#include "base/internal.h"
#include "store_impl.h"

#define SUBJECT_ROOT  "$ES"
#define STREAM_PREFIX "ES_"

void esi_wire_stream_name(const char *store, char out[ES_STREAM_NAME_MAX])
{
    snprintf(out, ES_STREAM_NAME_MAX, STREAM_PREFIX "%s", store);
}

void esi_wire_store_subjects(const char *store, char out[ES_STORE_SUBJECTS_MAX])
{
    snprintf(out, ES_STORE_SUBJECTS_MAX, SUBJECT_ROOT ".%s.>", store);
}

char *esi_wire_put_store_prefix(char *p, const char *store)
{
    p = esi_put(p, SUBJECT_ROOT ".");
    return esi_put(p, store);
}

const char *esi_wire_all_stores_subjects(void)
{
    return SUBJECT_ROOT ".>";
}

bool esi_wire_store_of_stream(const char *stream, char out[ES_STORE_NAME_MAX + 1])
{
    size_t n = sizeof STREAM_PREFIX - 1;
    if (stream == NULL || strncmp(stream, STREAM_PREFIX, n) != 0 ||
        !es_valid_store_name(stream + n))
        return false;
    snprintf(out, ES_STORE_NAME_MAX + 1, "%s", stream + n);
    return true;
}

static const char *const bucket_suffixes[ES_BUCKET_KINDS] = {
    [ES_BUCKET_KEYS] = "keys",
    [ES_BUCKET_DICTS] = "dicts",
    [ES_BUCKET_CHECKPOINTS] = "checkpoints",
    [ES_BUCKET_SNAPSHOTS] = "snapshots",
    [ES_BUCKET_REPOS] = "repos",
    [ES_BUCKET_IDENTITY] = "identity",
    [ES_BUCKET_TRACKED] = "tracked",
    [ES_BUCKET_TYPES] = "types",
    [ES_BUCKET_DEAD_LETTERS] = "dead_letters",
};

const char *esi_bucket_kind_name(esi_bucket_kind kind)
{
    return (int)kind >= 0 && kind < ES_BUCKET_KINDS ? bucket_suffixes[kind] : "";
}

es_status esi_bucket_name(const char *store, esi_bucket_kind kind, char out[ESI_KV_BUCKET_MAX])
{
    if (!es_valid_store_name(store))
        return es_error(ES_ERR_INVALID, "store name '%.40s' is not [A-Za-z0-9_-]{1,32}",
                        store ? store : "(null)");
    if ((int)kind < 0 || kind >= ES_BUCKET_KINDS)
        return es_error(ES_ERR_INVALID, "no such bucket kind %d", (int)kind);
    snprintf(out, ESI_KV_BUCKET_MAX, "ES_%s_%s", store, bucket_suffixes[kind]);
    return ES_OK;
}

es_status esi_subject_for(const es_store *st, const es_event_spec *e, esi_subject *out)
{
    size_t id_len = e->entity_id_len ? e->entity_id_len : strlen(e->entity_id);
    char token[ES_ID_TOKEN_MAX];
    es_status s = es_id_escape(e->entity_id, id_len, token, sizeof token, NULL);
    if (s != ES_OK)
        return s;
    char *p = esi_wire_put_store_prefix(out->full, st->name);
    *p++ = '.';
    if (st->config.tenancy) {
        const char *tenant;
        s = esi_store_tenant_of(st, e->tenant, &tenant);
        if (s != ES_OK)
            return s;
        p = esi_put(p, tenant);
        *p++ = '.';
    }
    size_t head = (size_t)(p - out->full);
    p = esi_put(p, e->entity_type);
    *p++ = '.';
    p = esi_put(p, token);
    size_t entity_end = (size_t)(p - out->full);
    *p++ = '.';
    p = esi_put(p, e->event_type);
    *p = '\0';
    memcpy(out->entity, out->full, entity_end);
    memcpy(out->entity + entity_end, ".*", 3);
    out->type_and_id = out->full + head;
    out->type_and_id_len = entity_end - head;
    out->env = (es_envelope_event){.subject = out->full,
                                   .entity = out->full,
                                   .entity_len = entity_end,
                                   .entity_type = out->full + head,
                                   .entity_type_len = strlen(e->entity_type),
                                   .event_type = out->full + entity_end + 1,
                                   .event_type_len = strlen(e->event_type)};
    return ES_OK;
}

size_t esi_wire_store_prefix_len(const char *store)
{
    return sizeof SUBJECT_ROOT + strlen(store) + 1; /* "$ES" "." store "." */
}

es_status esi_subject_split(char *copy, const char *store, bool tenancy, esi_subject_parts *out)
{
    size_t root = sizeof SUBJECT_ROOT - 1, name = strlen(store);
    if (strncmp(copy, SUBJECT_ROOT ".", root + 1) != 0 ||
        strncmp(copy + root + 1, store, name) != 0 || copy[root + 1 + name] != '.')
        return es_error(ES_ERR_PROTOCOL, "subject is not one of store '%s'", store);
    return esi_subject_split_local(copy + root + name + 2, tenancy, out);
}

es_status esi_subject_split_local(char *copy, bool tenancy, esi_subject_parts *out)
{
    const char *tokens[4] = {NULL};
    int want = tenancy ? 4 : 3;
    char *p = copy;
    for (int got = 0; got < want; got++) {
        tokens[got] = p;
        char *dot = strchr(p, '.');
        bool last = got + 1 == want;
        if ((dot == NULL) != last || dot == p || *p == '\0')
            return es_error(ES_ERR_PROTOCOL, "subject does not have the event shape %s",
                            tenancy ? "<tenant>.<type>.<id>.<event>" : "<type>.<id>.<event>");
        if (!last) {
            *dot = '\0';
            p = dot + 1;
        }
    }
    int i = 0;
    out->tenant = tenancy ? tokens[i++] : NULL;
    out->type = tokens[i++];
    out->id_token = tokens[i++];
    out->event = tokens[i];
    return ES_OK;
}

es_status esi_subject_parts_check(const esi_subject_parts *p, char *id, size_t *id_len)
{
    char scratch[ES_ID_MAX + 1];
    if (p->tenant != NULL && !es_valid_name(p->tenant))
        return es_error(ES_ERR_INVALID, "invalid tenant '%.64s'", p->tenant);
    if (!es_valid_entity_type(p->type))
        return es_error(ES_ERR_INVALID, "invalid entity type '%.64s'", p->type);
    if (!es_valid_name(p->event))
        return es_error(ES_ERR_INVALID, "invalid event type '%.64s'", p->event);
    if (es_id_unescape(p->id_token, strlen(p->id_token), id ? id : scratch, ES_ID_MAX + 1,
                       id_len) != ES_OK)
        return es_error(ES_ERR_INVALID, "invalid escaped entity id '%.64s'", p->id_token);
    return ES_OK;
}

void esi_subject_envelope_event(const char *subject, const char *copy, const esi_subject_parts *p,
                                es_envelope_event *out)
{
    size_t event_at = (size_t)(p->event - copy);
    *out = (es_envelope_event){.subject = subject,
                               .entity = subject,
                               .entity_len = event_at - 1,
                               .entity_type = subject + (p->type - copy),
                               .entity_type_len = strlen(p->type),
                               .event_type = subject + event_at,
                               .event_type_len = strlen(p->event)};
}
