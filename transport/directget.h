/* Batched direct gets (private): ADR-31's <api prefix>.DIRECT.GET.<stream> with
 * next_by_subj + batch, read until the 204 EOB status. One round trip per
 * batch and no consumer: the fast path to load one entity. */
#ifndef ES_DIRECTGET_H
#define ES_DIRECTGET_H

#include <stdint.h>

#include <nats/nats.h>

#include <es/status.h>

#include "transport/js.h"

typedef struct esi_dg_request {
    const char *filter;    /* subject filter (wildcards allowed) */
    uint64_t start_seq;    /* first sequence to consider (>= 1), or 0 with start_time_ns */
    int64_t start_time_ns; /* instead of start_seq: first message at or after this time */
    uint64_t up_to_seq;    /* 0: no upper bound */
    int batch;             /* messages per round trip */
    uint64_t max_msgs;     /* stop after this many in all (0: no limit) */
} esi_dg_request;

/* `subject`, `seq` and `stored_ns` come from the response headers. Return
 * non-OK to stop (that status is returned). */
typedef es_status (*esi_dg_cb)(natsMsg *msg, const char *subject, uint64_t seq, int64_t stored_ns,
                               void *closure);

/* Calls cb for every matching message in order; *last_seq (may be NULL) gets
 * the sequence of the last message delivered (0 if none). */
/* One direct get whose subject is in the API subject `api`
 * (<prefix>.DIRECT.GET.<stream>.<subject>), answered into *reply (the
 * caller's; a Status header for none). "No responders", which a stream's
 * replicas answer until they are current (right after its creation on a
 * cluster), is asked again within the request's timeout, as every direct
 * get here does. */
es_status esi_direct_get_one(const esi_js *js, const char *api, natsMsg **reply);

es_status esi_direct_get(const esi_js *js, const char *stream, const esi_dg_request *req,
                         esi_dg_cb cb, void *closure, uint64_t *last_seq);

/* The most subjects one multi_last request asks for (the server's bound). */
#define ESI_DG_MULTI_LAST_MAX 1024

/* The sequence of the last message of each of `n` exact subjects of
 * `stream`, by batched direct gets ("multi_last"), in as few requests as
 * the server's bounds allow: seqs[i] for subjects[i], 0 for a subject
 * without messages. */
es_status esi_direct_last_seqs(const esi_js *js, const char *stream, const char *const *subjects,
                               size_t n, uint64_t *seqs);

/* The sequence of the last message matching `filter` (wildcards allowed:
 * what JetStream compares Nats-Expected-Last-Subject-Sequence to, with
 * -Subject set to the filter), by one direct get "last_by_subj"; 0 when
 * nothing matches. */
es_status esi_direct_last_seq(const esi_js *js, const char *stream, const char *filter,
                              uint64_t *seq);

#endif
