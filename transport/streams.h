/* Paged listings of the JetStream API (private to the library): the streams
 * of a server and the per-subject message counts of a stream. Each asks for
 * pages until the server's announced total is reached or a page comes back
 * empty, and stops at ESI_PAGES_MAX pages whatever the server says. */
#ifndef ES_TRANSPORT_STREAMS_H
#define ES_TRANSPORT_STREAMS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <es/status.h>

#include "transport/js.h"

#define ESI_PAGES_MAX 1000000

/* Called with the info (config, state, created) of one stream; borrowed for
 * the call. Non-OK stops the listing and is returned. */
typedef es_status (*esi_stream_cb)(json_t *info, void *closure);

/* Every stream that holds subjects matching `subject` (<prefix>.STREAM.LIST),
 * in the server's order. */
es_status esi_stream_list(const esi_js *js, const char *subject, esi_stream_cb cb, void *closure);

/* One page of a stream's subjects matching a filter, sorted bytewise, with
 * their message counts. The strings are valid during the call. */
typedef es_status (*esi_subjects_cb)(const char *const *subjects, const uint64_t *counts, size_t n,
                                     void *closure);

/* Every subject of `stream` matching `filter` with its message count
 * (<prefix>.STREAM.INFO with subjects_filter and offset), without reading a
 * message. The server sorts subjects across pages; each page is sorted
 * again here rather than trust the order of a JSON object. */
es_status esi_stream_subjects(const esi_js *js, const char *stream, const char *filter,
                              esi_subjects_cb cb, void *closure);

/* The sequence of the last message of `stream` matching `filter` (wildcards
 * allowed), 0 when none does, as the stream's LEADER has it
 * (<prefix>.STREAM.MSG.GET with last_by_subj). A direct get, which any
 * replica may answer (allow_direct), can come from a replica that has not
 * applied the latest writes yet; this cannot. */
es_status esi_stream_last_seq(const esi_js *js, const char *stream, const char *filter,
                              uint64_t *seq);

/* The same, asked again through an election (esi_js_retry: transient
 * answers only, within ESI_JS_ELECTION_BUDGET_MS). */
es_status esi_stream_last_seq_retried(const esi_js *js, const char *stream, const char *filter,
                                      uint64_t *seq);

#endif
