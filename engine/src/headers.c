/* The headers of one event on the wire (docs/wire-format.md). */
#include "headers.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <es/read.h>

#include "base/internal.h"
#include "base/clock.h"
#include "store_impl.h"
#include "transport/msg.h"

bool esi_header_is_control(const char *name)
{
    return strncasecmp(name, "Nats-", 5) == 0 && strcasecmp(name, ES_HDR_MSG_ID) != 0;
}

es_status esi_expect_subject(const es_store *st, const es_event_spec *e, const esi_subject *subj,
                             char out[ES_SUBJECT_MAX])
{
    if (e->expect_filter != NULL)
        return es_filter_subject(st, e->expect_filter, out, ES_SUBJECT_MAX);
    snprintf(out, ES_SUBJECT_MAX, "%s", subj->entity); /* across all its event types */
    return ES_OK;
}

/* The expectation as JetStream checks it. ES_EXPECT_EXISTS was turned into
 * ES_EXPECT_SEQ before (append.c): the server has no "not 0". */
static es_status set_expectation(const es_store *st, const es_event_spec *e,
                                 const esi_subject *subj, natsMsg *m)
{
    if (e->expect == ES_EXPECT_ANY)
        return ES_OK;
    char seq[24], subject[ES_SUBJECT_MAX];
    *esi_put_u64(seq, e->expect == ES_EXPECT_NEW ? 0 : e->expect_seq) = '\0';
    es_status s = esi_expect_subject(st, e, subj, subject);
    if (s == ES_OK)
        s = esi_msg_header_set(m, ES_HDR_EXPECTED_SUBJECT_SEQ, seq);
    if (s == ES_OK)
        s = esi_msg_header_set(m, ES_HDR_EXPECTED_SUBJECT_SEQ_SUBJECT, subject);
    return s;
}

static es_status set_meta(const es_event_spec *e, natsMsg *m)
{
    es_status s = ES_OK;
    for (size_t i = 0; i < e->meta_count && s == ES_OK; i++) {
        char key[sizeof ES_HDR_META_PREFIX + ES_NAME_MAX];
        snprintf(key, sizeof key, ES_HDR_META_PREFIX "%s", e->meta[i].key);
        s = esi_msg_header_set(m, key, e->meta[i].value);
    }
    return s;
}

static es_status set_extensions(const es_event_spec *e, const es_sealed *sealed, natsMsg *m)
{
    es_status s = ES_OK;
    if (sealed == NULL) { /* no envelope: the schema version is the only extension */
        if (e->schema > 0) {
            char v[16];
            snprintf(v, sizeof v, "%u", (unsigned)e->schema);
            s = esi_msg_header_set(m, ES_HDR_SCHEMA, v);
        }
        return s;
    }
    for (size_t i = 0; i < sealed->n_headers && s == ES_OK; i++)
        s = esi_msg_header_set(m, sealed->headers[i].name, sealed->headers[i].value);
    return s;
}

es_status esi_headers_set(const es_store *st, const es_event_spec *e, const char *event_id,
                          const esi_subject *subj, const es_sealed *sealed, natsMsg *m)
{
    char when[ES_TIME_MAX];
    char entity[ES_SUBJECT_MAX];
    es_time_format(e->time_ns ? e->time_ns : esi_now_ns(), when);
    memcpy(entity, subj->type_and_id, subj->type_and_id_len);
    entity[subj->type_and_id_len] = '\0';

    es_status s = esi_msg_header_set(m, ES_HDR_MSG_ID, event_id);
    if (s == ES_OK)
        s = esi_msg_header_set(m, ES_HDR_EXPECTED_STREAM, st->stream);
    if (s == ES_OK)
        s = esi_msg_header_set(m, ES_HDR_ENTITY, entity);
    if (s == ES_OK)
        s = esi_msg_header_set(m, ES_HDR_TYPE, e->event_type);
    if (s == ES_OK)
        s = esi_msg_header_set(m, ES_HDR_TIME, when);
    if (s == ES_OK)
        s = esi_msg_header_set(m, ES_HDR_CODEC, e->codec ? e->codec : "binary");
    if (s == ES_OK)
        s = set_meta(e, m);
    if (s == ES_OK)
        s = set_expectation(st, e, subj, m);
    if (s == ES_OK)
        s = set_extensions(e, sealed, m);
    return s;
}
