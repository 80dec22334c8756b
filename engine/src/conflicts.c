/* Conflicting appends: every expectation that fails, not only the first.
 * JetStream checks a batch's expectations message by message and refuses
 * the batch at the first that fails, naming that one's actual sequence
 * only (nats-server's jetstream_batching.go). So for a batch the library
 * asks, per subject its events expect, where the last event matching it
 * is now (one direct get each) and lists every expectation that does not
 * hold. A single event needs no look-up: the server named its sequence. */
#include "conflicts.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <es/arena.h>

#include "base/alloc.h"
#include "base/internal.h"
#include "headers.h"
#include "store_impl.h"
#include "transport/scan.h"
#include "transport/msg.h"
#include "wire.h"

struct esi_conflicts {
    es_arena *arena; /* the items and their strings */
    es_append_conflict *items;
    size_t n;
};

void esi_conflicts_free(esi_conflicts *c)
{
    if (c == NULL)
        return;
    es_arena_destroy(c->arena);
    esi_free(c);
}

/* ---- the calling thread's last conflicts ------------------------------- */

static pthread_key_t last_key;
static pthread_once_t last_once = PTHREAD_ONCE_INIT;

static void free_last(void *c)
{
    esi_conflicts_free(c);
}

static void make_last_key(void)
{
    (void)pthread_key_create(&last_key, free_last);
}

void esi_conflicts_keep(esi_conflicts *c)
{
    pthread_once(&last_once, make_last_key);
    esi_conflicts *before = pthread_getspecific(last_key);
    if (before == c)
        return;
    esi_conflicts_free(before);
    if (pthread_setspecific(last_key, c) != 0)
        esi_conflicts_free(c); /* cannot be kept: the result shows none */
}

void esi_conflicts_to_result(const esi_conflicts *c, es_append_result *result)
{
    result->conflicts = c && c->n ? c->items : NULL;
    result->conflict_count = c ? c->n : 0;
}

void esi_conflicts_describe(const esi_conflicts *c, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; c != NULL && i < c->n && used + 1 < size; i++) {
        const es_append_conflict *k = &c->items[i];
        int w = snprintf(out + used, size - used, "%s%s/%.*s expected %" PRIu64 ", found %" PRIu64,
                         i ? "; " : "", k->entity_type, (int)k->entity_id_len, k->entity_id,
                         k->expected_seq, k->actual_seq);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

/* ---- finding them ------------------------------------------------------ */

/* The expectation message i carries, if any. */
static bool expectation_of(natsMsg *m, const char **subject, uint64_t *expected)
{
    const char *seq = esi_msg_header(m, ES_HDR_EXPECTED_SUBJECT_SEQ);
    *subject = esi_msg_header(m, ES_HDR_EXPECTED_SUBJECT_SEQ_SUBJECT);
    if (seq == NULL || *subject == NULL)
        return false;
    *expected = strtoull(seq, NULL, 10);
    return true;
}

/* The actual sequence of `subject`: looked up once per subject of the unit
 * (an earlier message expecting the same subject has it already). */
static es_status actual_of(const es_store *st, natsMsg *const *msgs, size_t i,
                           const uint64_t *actuals, uint64_t *actual)
{
    const char *subject, *other;
    uint64_t unused;
    expectation_of(msgs[i], &subject, &unused);
    for (size_t j = 0; j < i; j++)
        if (expectation_of(msgs[j], &other, &unused) && strcmp(other, subject) == 0) {
            *actual = actuals[j];
            return ES_OK;
        }
    return esi_subject_last_seq(st->js, st->stream, subject, st->opts.confined, actual);
}

static const char *copy_str(es_arena *a, const char *s)
{
    return s ? es_arena_strndup(a, s, strlen(s)) : NULL;
}

es_status esi_conflicts_add(esi_conflicts *c, const es_append_conflict *k)
{
    es_append_conflict *to = &c->items[c->n];
    *to = *k;
    to->tenant = copy_str(c->arena, k->tenant);
    to->entity_type = copy_str(c->arena, k->entity_type);
    to->entity_id = es_arena_strndup(c->arena, k->entity_id, k->entity_id_len);
    to->subject = copy_str(c->arena, k->subject);
    if ((k->tenant && !to->tenant) || !to->entity_type || !to->entity_id || !to->subject)
        return es_arena_error(c->arena, "conflicts");
    c->n++;
    return ES_OK;
}

/* The conflict of message m, the unit's index-th: its entity from its
 * subject's parts. */
static es_status add_msg(const es_store *st, natsMsg *m, size_t index, uint64_t expected,
                         uint64_t actual, esi_conflicts *c)
{
    const char *subject = esi_msg_subject(m);
    char *copy = es_arena_strndup(c->arena, subject, strlen(subject));
    char *id = es_arena_alloc(c->arena, ES_ID_MAX + 1);
    if (copy == NULL || id == NULL)
        return es_arena_error(c->arena, "conflicts");
    esi_subject_parts p;
    es_append_conflict k = {.index = index, .expected_seq = expected, .actual_seq = actual};
    k.subject = esi_msg_header(m, ES_HDR_EXPECTED_SUBJECT_SEQ_SUBJECT);
    es_status s = esi_subject_split(copy, st->name, st->config.tenancy, &p);
    if (s == ES_OK)
        s = es_id_unescape(p.id_token, strlen(p.id_token), id, ES_ID_MAX + 1, &k.entity_id_len);
    k.tenant = p.tenant;
    k.entity_type = p.type;
    k.entity_id = id;
    return s == ES_OK ? esi_conflicts_add(c, &k) : s;
}

static es_status find_all(const es_store *st, natsMsg *const *msgs, size_t n,
                          uint64_t server_actual, uint64_t *actuals, esi_conflicts *c)
{
    for (size_t i = 0; i < n; i++) {
        const char *subject;
        uint64_t expected;
        if (!expectation_of(msgs[i], &subject, &expected))
            continue;
        es_status s = ES_OK;
        if (n == 1)
            actuals[i] = server_actual;
        else
            s = actual_of(st, msgs, i, actuals, &actuals[i]);
        if (s == ES_OK && actuals[i] != expected)
            s = add_msg(st, msgs[i], i, expected, actuals[i], c);
        if (s != ES_OK)
            return s;
    }
    return ES_OK;
}

es_status esi_conflicts_new(size_t n, esi_conflicts **out)
{
    *out = NULL;
    esi_conflicts *c = esi_calloc(1, sizeof *c);
    if (c == NULL || es_arena_create(0, &c->arena) != ES_OK) {
        esi_free(c);
        return es_error(ES_ERR_NOMEM, "out of memory");
    }
    c->items = es_arena_calloc(c->arena, n, sizeof *c->items);
    if (c->items == NULL) {
        esi_conflicts_free(c);
        return es_error(ES_ERR_NOMEM, "out of memory");
    }
    *out = c;
    return ES_OK;
}

es_status esi_conflicts_find(const es_store *st, natsMsg *const *msgs, size_t n,
                             uint64_t server_actual, esi_conflicts **out)
{
    *out = NULL;
    uint64_t *actuals = esi_calloc(n, sizeof *actuals);
    es_status s = actuals ? esi_conflicts_new(n, out) : es_error(ES_ERR_NOMEM, "out of memory");
    if (s == ES_OK)
        s = find_all(st, msgs, n, server_actual, actuals, *out);
    esi_free(actuals);
    if (s != ES_OK) {
        esi_conflicts_free(*out);
        *out = NULL;
    }
    return s;
}
