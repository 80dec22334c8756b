/* What es-tool asks JetStream directly, beyond the library's calls: the list
 * of stores, a stream's per-subject counts (paged), the store's KV buckets
 * and the last sequence of many subjects at once. Every loop is bounded by
 * what the server announced, and stops on an empty page. */
#ifndef ESTOOL_JSINFO_H
#define ESTOOL_JSINFO_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <nats/nats.h>

#include <es/status.h>

/* Calls cb with the stream info (JSON: config, state, created) of every
 * event store on the server, in the server's order. */
typedef es_status (*tool_stream_cb)(json_t *info, void *closure);
es_status tool_list_stores(natsConnection *nc, int64_t timeout_ms, tool_stream_cb cb,
                           void *closure);

/* Calls cb with the info of every KV bucket of `store` (streams
 * KV_ES_<store>_<suffix>, the suffix without '_'). */
es_status tool_list_buckets(natsConnection *nc, const char *store, int64_t timeout_ms,
                            tool_stream_cb cb, void *closure);

/* One page of subjects and their message counts, sorted by subject
 * (bytewise), so all subjects of one entity are adjacent. */
typedef struct tool_subject_count {
    const char *subject; /* valid during the callback */
    uint64_t count;
} tool_subject_count;

typedef es_status (*tool_subjects_cb)(const tool_subject_count *page, size_t n, void *closure);

/* Walks the per-subject message counts of `stream` for `filter` page by page
 * ($JS.API.STREAM.INFO with subjects_filter and offset), without reading any
 * message. The server sorts subjects across pages. */
es_status tool_subjects_walk(natsConnection *nc, const char *stream, const char *filter,
                             int64_t timeout_ms, tool_subjects_cb cb, void *closure);

/* The last sequence of each of `n` subjects (exact subjects, at most
 * TOOL_MULTI_LAST_MAX), with one batched direct get (multi_last). seqs[i]
 * gets 0 for a subject without messages. */
#define TOOL_MULTI_LAST_MAX 1024
es_status tool_last_seqs(natsConnection *nc, const char *stream, const char *const *subjects,
                         size_t n, int64_t timeout_ms, uint64_t *seqs);

#endif
