/* Events for the Tap-style delivery tests: record ops stored as the
 * ingester stores them, live (from the firehose) or historical (a backfill
 * or resync: metadata live=false), for a few repositories. */
#ifndef SERVE_TEST_TAP_EVENTS_H
#define SERVE_TEST_TAP_EVENTS_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <es/cbor.h>
#include <es/es.h>
#include <es/json.h>

static const char *const tap_dids[] = {"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa",
                                       "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb",
                                       "did:plc:cccccccccccccccccccccccc"};
#define TAP_REPOS 3

/* The repository index of a DID of tap_dids, or -1. */
static inline int tap_repo_of(const char *did)
{
    for (int i = 0; i < TAP_REPOS; i++)
        if (strcmp(did, tap_dids[i]) == 0)
            return i;
    return -1;
}

#define TAP_BATCH_MAX 64

/* `n` posts created in `did` (record keys from `from`), one atomic batch:
 * ES_OK or the append's status. */
static inline es_status tap_append_ops(es_store *st, const char *did, int from, int n, bool live)
{
    static const char record[] = "{\"$type\":\"app.bsky.feed.post\",\"text\":\"hello\"}";
    if (n < 1 || n > TAP_BATCH_MAX)
        return ES_ERR_INVALID;
    es_arena *a = NULL;
    es_value *v;
    es_buf cbor = ES_BUF_INIT;
    es_status s = es_arena_create(0, &a);
    if (s == ES_OK)
        s = es_json_decode(record, strlen(record), NULL, a, &v);
    if (s == ES_OK)
        s = es_cbor_encode(v, NULL, &cbor);
    char rkeys[TAP_BATCH_MAX][32];
    es_meta meta[TAP_BATCH_MAX][4];
    es_event_spec e[TAP_BATCH_MAX];
    for (int i = 0; i < n; i++) {
        snprintf(rkeys[i], sizeof rkeys[i], "3k%06d", from + i);
        es_meta m[] = {{"rkey", rkeys[i]}, {"rev", "3mptbypluud2a"}, {"cid", "bafyreib"},
                       {"live", "false"}};
        memcpy(meta[i], m, sizeof m);
        es_event_spec_init(&e[i]);
        e[i].entity_type = "app_bsky_feed_post";
        e[i].entity_id = did;
        e[i].event_type = "create";
        e[i].data = cbor.data;
        e[i].data_len = cbor.len;
        e[i].codec = "dag-cbor";
        e[i].meta = meta[i];
        e[i].meta_count = live ? 3 : 4;
    }
    if (s == ES_OK)
        s = es_append_batch(st, e, (size_t)n, NULL);
    es_buf_free(&cbor);
    es_arena_destroy(a);
    return s;
}

/* One post created in `did`. */
static inline es_status tap_append_op(es_store *st, const char *did, int n, bool live)
{
    return tap_append_ops(st, did, n, 1, live);
}

/* Tap's example for repo 0 (H1 H2 L1 H3 H4 L2 H5), repo 1 live only, repo
 * 2 historical only, interleaved; `rounds` times. The events appended
 * (21 a round), or 0 on a failure. */
static inline size_t tap_append_mix(es_store *st, int rounds)
{
    static const char pattern[] = "HHLHHLH";
    size_t n = 0;
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < 7; k++) {
            if (tap_append_op(st, tap_dids[0], (int)n, pattern[k] == 'L') != ES_OK ||
                tap_append_op(st, tap_dids[1], (int)n + 1, true) != ES_OK ||
                tap_append_op(st, tap_dids[2], (int)n + 2, false) != ES_OK)
                return 0;
            n += 3;
        }
    return n;
}

#endif
