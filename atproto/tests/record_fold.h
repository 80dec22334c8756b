/* The record set a store holds for one DID, folded by the tests themselves
 * (not by the library under test): "<collection>/<rkey>" -> CID text, from
 * the DID's record events in stream order (`repo` events skipped). A delete
 * must remove a record held, a create add a new one, an update change one
 * held. Counts the record events and those marked live=false. Include after
 * cmocka.h; the struct is large: make it static. */
#ifndef ES_ATP_TEST_RECORD_FOLD_H
#define ES_ATP_TEST_RECORD_FOLD_H

#include <stdio.h>
#include <string.h>

#include <es/cid.h>
#include <es/es.h>

#define RECORD_FOLD_MAX     4096
#define RECORD_FOLD_KEY_MAX 160

typedef struct record_fold {
    char keys[RECORD_FOLD_MAX][RECORD_FOLD_KEY_MAX];
    char cids[RECORD_FOLD_MAX][ES_CID_STRING_MAX];
    size_t count;           /* records held */
    size_t events, not_live; /* record events read; of them, live=false */
    char rev[32];           /* the last event's metadata rev */
} record_fold;

static inline es_status record_fold_event(const es_event *ev, void *closure)
{
    record_fold *rf = closure;
    const char *type = es_event_entity_type(ev), *action = es_event_event_type(ev);
    if (strcmp(type, "repo") == 0)
        return ES_OK;
    const char *rkey = es_event_meta(ev, "rkey"), *cid = es_event_meta(ev, "cid");
    const char *live = es_event_meta(ev, "live"), *rev = es_event_meta(ev, "rev");
    assert_non_null(rkey);
    rf->events++;
    rf->not_live += live != NULL && strcmp(live, "false") == 0;
    if (rev != NULL)
        snprintf(rf->rev, sizeof rf->rev, "%s", rev);
    char key[RECORD_FOLD_KEY_MAX];
    snprintf(key, sizeof key, "%s/%s", type, rkey);
    for (char *c = key; *c != '/'; c++) /* the entity type back to the collection */
        if (*c == '_')
            *c = '.';
    size_t i = 0;
    while (i < rf->count && strcmp(rf->keys[i], key) != 0)
        i++;
    if (strcmp(action, "delete") == 0) {
        assert_true(i < rf->count); /* a delete of a record the store held */
        rf->count--;
        memmove(rf->keys[i], rf->keys[i + 1], (rf->count - i) * sizeof rf->keys[0]);
        memmove(rf->cids[i], rf->cids[i + 1], (rf->count - i) * sizeof rf->cids[0]);
        return ES_OK;
    }
    assert_non_null(cid);
    assert_true(strcmp(action, "create") == 0 ? i == rf->count : i < rf->count);
    if (i == rf->count) {
        assert_true(rf->count < RECORD_FOLD_MAX);
        snprintf(rf->keys[rf->count++], sizeof rf->keys[0], "%s", key);
    }
    snprintf(rf->cids[i], sizeof rf->cids[0], "%s", cid);
    return ES_OK;
}

/* Folds every event of `did` in `store` into *rf (emptied first). */
static inline void record_fold_read(es_store *store, const char *did, record_fold *rf)
{
    memset(rf, 0, sizeof *rf);
    es_filter flt;
    es_filter_init(&flt);
    flt.entity_id = did;
    assert_int_equal(es_evolve(store, &flt, NULL, record_fold_event, rf, NULL), ES_OK);
}

/* The folded set equals `tsv` ("collection/rkey<TAB>cid" lines, as
 * car_expected_records.tsv), line for line, in any order. */
static inline void record_fold_assert_tsv(const record_fold *rf, const char *tsv)
{
    size_t lines = 0;
    for (const char *line = tsv; *line;) {
        size_t n = strcspn(line, "\n");
        if (n > 0) {
            const char *tab = memchr(line, '\t', n);
            assert_non_null(tab);
            size_t klen = (size_t)(tab - line), i = 0;
            while (i < rf->count &&
                   !(strlen(rf->keys[i]) == klen && memcmp(rf->keys[i], line, klen) == 0))
                i++;
            if (i == rf->count)
                fail_msg("record %.*s is not stored", (int)klen, line);
            assert_int_equal(strlen(rf->cids[i]), n - klen - 1);
            assert_memory_equal(rf->cids[i], tab + 1, n - klen - 1);
            lines++;
        }
        line += n + (line[n] == '\n');
    }
    assert_int_equal(lines, rf->count);
}

#endif
