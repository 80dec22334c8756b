/* Live frames held while their repository is resynced (hold.h). A map DID
 * -> entry; each entry keeps its frames in a FIFO (arrival order is relay
 * order) and the seqs of its released frames the sink has not settled. */
#define _POSIX_C_SOURCE 200809L
#include "hold.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"

#define MAX_REPOS_DEFAULT  ((size_t)10000)
#define MAX_FRAMES_DEFAULT ((size_t)1000)
#define MAX_BYTES_DEFAULT  ((size_t)32 << 20)
#define BUCKETS            4096

typedef struct kept {
    struct kept *next;
    uint64_t seq;
    size_t len;
    uint8_t frame[];
} kept;

typedef struct seqs {
    struct seqs *next;
    uint64_t seq;
} seqs;

typedef struct entry {
    struct entry *hnext;              /* in its bucket */
    struct entry *prev, *next;        /* every entry, for hold_min_seq */
    struct entry *rnext;              /* in the release round robin */
    bool in_release;
    hold_state state;
    kept *head, *tail; /* frames kept, oldest first */
    size_t nframes, bytes;
    seqs *unsettled, *unsettled_tail; /* released frames the sink has, oldest first */
    uint64_t hash;
    size_t len;
    char did[]; /* len bytes + NUL */
} entry;

struct hold {
    hold_options o;
    entry *buckets[BUCKETS];
    entry *all;
    entry *rhead, *rtail; /* entries with frames to release */
    entry *peeked;        /* the entry of hold_peek's frame, for hold_pop */
    size_t nrepos;
    hold_stats st;
};

void hold_options_init(hold_options *o)
{
    o->max_repos = MAX_REPOS_DEFAULT;
    o->max_frames = MAX_FRAMES_DEFAULT;
    o->max_bytes = MAX_BYTES_DEFAULT;
}

es_status hold_create(const hold_options *o, hold **out)
{
    *out = NULL;
    hold *h = calloc(1, sizeof *h);
    if (h == NULL)
        return es_error(ES_ERR_NOMEM, "holding live frames: out of memory");
    hold_options_init(&h->o);
    if (o != NULL) {
        h->o.max_repos = o->max_repos ? o->max_repos : h->o.max_repos;
        h->o.max_frames = o->max_frames ? o->max_frames : h->o.max_frames;
        h->o.max_bytes = o->max_bytes ? o->max_bytes : h->o.max_bytes;
    }
    *out = h;
    return ES_OK;
}

static void drop_frames(hold *h, entry *e)
{
    for (kept *k = e->head; k != NULL;) {
        kept *next = k->next;
        h->st.frames--;
        h->st.bytes -= k->len;
        free(k);
        k = next;
    }
    e->head = e->tail = NULL;
    e->nframes = e->bytes = 0;
}

static void free_entry(hold *h, entry *e)
{
    drop_frames(h, e);
    for (seqs *s = e->unsettled; s != NULL;) {
        seqs *next = s->next;
        h->st.unsettled--;
        free(s);
        s = next;
    }
    free(e);
}

void hold_destroy(hold *h)
{
    if (h == NULL)
        return;
    for (entry *e = h->all; e != NULL;) {
        entry *next = e->next;
        free_entry(h, e);
        e = next;
    }
    free(h);
}

static entry **slot_of(hold *h, const char *did, size_t len, uint64_t hash)
{
    entry **p = &h->buckets[hash % BUCKETS];
    while (*p != NULL && ((*p)->hash != hash || (*p)->len != len || memcmp((*p)->did, did, len)))
        p = &(*p)->hnext;
    return p;
}

static entry *find(hold *h, const char *did, size_t len)
{
    return *slot_of(h, did, len, es_cli_fnv1a(did, len));
}

/* Forgets an entry with nothing left to keep, release or settle. */
static void retire_if_done(hold *h, entry *e)
{
    if (e->state == HOLD_HOLDING || e->state == HOLD_OVERFLOWED || e->head != NULL ||
        e->unsettled != NULL || e->in_release)
        return;
    entry **p = slot_of(h, e->did, e->len, e->hash);
    *p = e->hnext;
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        h->all = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    h->nrepos--;
    h->st.repos--;
    if (h->peeked == e)
        h->peeked = NULL;
    free_entry(h, e);
}

hold_state hold_get(hold *h, const char *did, size_t len)
{
    entry *e = find(h, did, len);
    if (e == NULL || (e->state == HOLD_RELEASING && e->head == NULL))
        return HOLD_NONE; /* only settling: new frames may go to the sink behind them */
    return e->state;
}

es_status hold_begin(hold *h, const char *did, size_t len)
{
    uint64_t hash = es_cli_fnv1a(did, len);
    entry **p = slot_of(h, did, len, hash);
    entry *e = *p;
    if (e != NULL) {
        if (e->state == HOLD_RELEASING || e->state == HOLD_NONE)
            e->state = HOLD_HOLDING;
        return ES_OK;
    }
    if (h->nrepos >= h->o.max_repos)
        return es_error(ES_ERR_LIMIT, "more than %zu repositories held", h->o.max_repos);
    if ((e = calloc(1, sizeof *e + len + 1)) == NULL)
        return es_error(ES_ERR_NOMEM, "holding live frames: out of memory");
    memcpy(e->did, did, len);
    e->len = len;
    e->hash = hash;
    e->state = HOLD_HOLDING;
    *p = e;
    e->next = h->all;
    if (h->all != NULL)
        h->all->prev = e;
    h->all = e;
    h->nrepos++;
    h->st.repos++;
    return ES_OK;
}

static void overflow(hold *h, entry *e)
{
    h->st.dropped += e->nframes;
    h->st.overflows++;
    drop_frames(h, e);
    e->state = HOLD_OVERFLOWED;
}

es_status hold_push(hold *h, const char *did, size_t len, uint64_t seq, const uint8_t *frame,
                    size_t frame_len)
{
    entry *e = find(h, did, len);
    if (e == NULL || e->state == HOLD_NONE)
        return es_error(ES_ERR_INVALID, "%.*s is not held", (int)len, did);
    if (e->state == HOLD_OVERFLOWED) {
        h->st.dropped++;
        return ES_ERR_LIMIT;
    }
    kept *k = NULL;
    if (e->nframes >= h->o.max_frames || h->st.bytes + frame_len > h->o.max_bytes ||
        (k = malloc(sizeof *k + frame_len)) == NULL) {
        overflow(h, e);
        h->st.dropped++;
        return ES_ERR_LIMIT;
    }
    k->next = NULL;
    k->seq = seq;
    k->len = frame_len;
    memcpy(k->frame, frame, frame_len);
    if (e->tail != NULL)
        e->tail->next = k;
    else
        e->head = k;
    e->tail = k;
    e->nframes++;
    e->bytes += frame_len;
    h->st.frames++;
    h->st.bytes += frame_len;
    h->st.held++;
    return ES_OK;
}

void hold_drop(hold *h, const char *did, size_t len)
{
    entry *e = find(h, did, len);
    if (e != NULL && e->state != HOLD_NONE)
        overflow(h, e);
}

/* At the end of the release round robin. */
static void release_enqueue(hold *h, entry *e)
{
    e->in_release = true;
    e->rnext = NULL;
    if (h->rtail != NULL)
        h->rtail->rnext = e;
    else
        h->rhead = e;
    h->rtail = e;
}

bool hold_release(hold *h, const char *did, size_t len)
{
    entry *e = find(h, did, len);
    if (e == NULL)
        return true;
    if (e->state == HOLD_OVERFLOWED) {
        e->state = HOLD_NONE;
        retire_if_done(h, e);
        return false;
    }
    e->state = HOLD_RELEASING;
    if (e->head != NULL && !e->in_release)
        release_enqueue(h, e);
    retire_if_done(h, e);
    return true;
}

/* The first entry of the round robin with a frame to release now; entries
 * that went back to holding leave it (hold_release puts them back). */
static entry *release_head(hold *h)
{
    while (h->rhead != NULL) {
        entry *e = h->rhead;
        if (e->state == HOLD_RELEASING && e->head != NULL)
            return e;
        h->rhead = e->rnext;
        if (h->rhead == NULL)
            h->rtail = NULL;
        e->in_release = false;
        retire_if_done(h, e);
    }
    return NULL;
}

bool hold_peek(hold *h, const char **did, size_t *did_len, uint64_t *seq, const uint8_t **frame,
               size_t *frame_len)
{
    entry *e = release_head(h);
    if (e == NULL)
        return false;
    h->peeked = e;
    *did = e->did;
    *did_len = e->len;
    *seq = e->head->seq;
    *frame = e->head->frame;
    *frame_len = e->head->len;
    return true;
}

void hold_pop(hold *h, bool unsettled)
{
    entry *e = h->peeked;
    if (e == NULL || e != h->rhead || e->head == NULL)
        return;
    h->peeked = NULL;
    kept *k = e->head;
    seqs *s = unsettled ? malloc(sizeof *s) : NULL;
    if (s != NULL) { /* out of memory: the cursor may pass it (the ids keep it once) */
        s->next = NULL;
        s->seq = k->seq;
        if (e->unsettled_tail != NULL)
            e->unsettled_tail->next = s;
        else
            e->unsettled = s;
        e->unsettled_tail = s;
        h->st.unsettled++;
    }
    if ((e->head = k->next) == NULL)
        e->tail = NULL;
    e->nframes--;
    e->bytes -= k->len;
    h->st.frames--;
    h->st.bytes -= k->len;
    h->st.released++;
    free(k);
    /* round robin: the next repository's turn. The repository may have gone
     * back to holding meanwhile (its released frame broke the chain again):
     * hold_release puts it back then. */
    h->rhead = e->rnext;
    if (h->rhead == NULL)
        h->rtail = NULL;
    e->in_release = false;
    if (e->head != NULL && e->state == HOLD_RELEASING)
        release_enqueue(h, e);
    retire_if_done(h, e);
}

void hold_settled(hold *h, const char *did, size_t len, uint64_t seq)
{
    entry *e = find(h, did, len);
    if (e == NULL)
        return;
    /* the sink settles a repository's units in the order offered */
    for (seqs **p = &e->unsettled; *p != NULL; p = &(*p)->next) {
        if ((*p)->seq != seq)
            continue;
        seqs *s = *p;
        *p = s->next;
        if (e->unsettled_tail == s) {
            e->unsettled_tail = NULL;
            for (seqs *t = e->unsettled; t != NULL; t = t->next)
                e->unsettled_tail = t;
        }
        free(s);
        h->st.unsettled--;
        break;
    }
    retire_if_done(h, e);
}

bool hold_min_seq(hold *h, uint64_t *seq)
{
    bool found = false;
    uint64_t min = UINT64_MAX;
    for (entry *e = h->all; e != NULL; e = e->next) {
        /* a repository's frames arrive in seq order: its first is its lowest */
        if (e->head != NULL && e->head->seq != 0 && e->head->seq < min)
            min = e->head->seq, found = true;
        if (e->unsettled != NULL && e->unsettled->seq != 0 && e->unsettled->seq < min)
            min = e->unsettled->seq, found = true;
    }
    *seq = min;
    return found;
}

void hold_get_stats(hold *h, hold_stats *out)
{
    *out = h->st;
}
