#include "headers.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/internal.h"
#include "jsapi.h"
#include "store_impl.h"
#include "base/timefmt.h"

static natsStatus set_expectation(const es_event_spec *e, const es_subject *subj, natsMsg *m)
{
    if (e->expect == ES_EXPECT_ANY)
        return NATS_OK;
    char seq[24];
    *es_put_u64(seq, e->expect == ES_EXPECT_NEW ? 0 : e->expect_seq) = '\0';
    natsStatus ns = natsMsgHeader_Set(m, ES_HDR_EXPECTED_SUBJECT_SEQ, seq);
    if (ns == NATS_OK) /* the entity, across all its event types */
        ns = natsMsgHeader_Set(m, ES_HDR_EXPECTED_SUBJECT_SEQ_SUBJECT, subj->entity);
    return ns;
}

static natsStatus set_meta(const es_event_spec *e, natsMsg *m)
{
    natsStatus ns = NATS_OK;
    for (size_t i = 0; i < e->meta_count && ns == NATS_OK; i++) {
        char key[sizeof ES_HDR_META_PREFIX + ES_NAME_MAX];
        snprintf(key, sizeof key, ES_HDR_META_PREFIX "%s", e->meta[i].key);
        ns = natsMsgHeader_Set(m, key, e->meta[i].value);
    }
    return ns;
}

static natsStatus set_extensions(const es_event_spec *e, const es_sealed *sealed, natsMsg *m)
{
    natsStatus ns = NATS_OK;
    if (sealed == NULL) { /* no envelope: the schema version is the only extension */
        if (e->schema > 0) {
            char v[16];
            snprintf(v, sizeof v, "%u", (unsigned)e->schema);
            ns = natsMsgHeader_Set(m, ES_HDR_SCHEMA, v);
        }
        return ns;
    }
    for (size_t i = 0; i < sealed->n_headers && ns == NATS_OK; i++)
        ns = natsMsgHeader_Set(m, sealed->headers[i].name, sealed->headers[i].value);
    return ns;
}

es_status es_headers_set(const es_store *st, const es_event_spec *e, const char *event_id,
                         const es_subject *subj, const es_sealed *sealed, natsMsg *m)
{
    char when[ES_TIME_MAX];
    char entity[ES_SUBJECT_MAX];
    es_time_format(e->time_ns ? e->time_ns : es_now_ns(), when);
    memcpy(entity, subj->type_and_id, subj->type_and_id_len);
    entity[subj->type_and_id_len] = '\0';

    natsStatus ns = natsMsgHeader_Set(m, ES_HDR_MSG_ID, event_id);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(m, ES_HDR_EXPECTED_STREAM, st->stream);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(m, ES_HDR_ENTITY, entity);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(m, ES_HDR_TYPE, e->event_type);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(m, ES_HDR_TIME, when);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(m, ES_HDR_CODEC, e->codec ? e->codec : "binary");
    if (ns == NATS_OK)
        ns = set_meta(e, m);
    if (ns == NATS_OK)
        ns = set_expectation(e, subj, m);
    if (ns == NATS_OK)
        ns = set_extensions(e, sealed, m);
    return es_nats_status(ns, "setting event headers");
}
