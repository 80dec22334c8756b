/* A subject's messages in stream order, by whichever API a user's NATS
 * permissions allow (private). Batched direct gets (directget.h) are the
 * fast path, but their subject filter travels in the request's body, where
 * no permission can confine it: a user confined to some subjects (a
 * tenant's, docs/api.md) is not granted them. For such a user the same
 * read goes through an ordered consumer created on the API subject that
 * carries its filter (consumer.h), which a permission can confine. */
#ifndef ES_SCAN_H
#define ES_SCAN_H

#include <stdbool.h>

#include "transport/directget.h"

/* esi_direct_get's contract (the request, the callback, *last_seq), by a
 * consumer when `confined`. A consumer starts from a sequence: a request
 * by start_time_ns is ES_ERR_UNSUPPORTED then. */
es_status esi_subject_scan(const esi_js *js, const char *stream, const esi_dg_request *req,
                           bool confined, esi_dg_cb cb, void *closure, uint64_t *last_seq);

/* esi_direct_last_seq; when `confined`, by a consumer reading the
 * filter's messages through (the subject form of a direct get,
 * <prefix>.DIRECT.GET.<stream>.<subject>, takes no wildcard). */
es_status esi_subject_last_seq(const esi_js *js, const char *stream, const char *filter,
                               bool confined, uint64_t *seq);

#endif
