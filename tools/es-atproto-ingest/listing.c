/* The host's listing on a thread of its own (listing.h). */
#define _POSIX_C_SOURCE 200809L
#include "listing.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <es/atproto_xrpc.h>

#include "clock.h"
#include "identity.h"
#include "log.h"

/* The next page is read once fewer than this many repositories wait to be
 * drained: the queue holds at most this plus one page. */
#define QUEUE_ROOM   1000
#define FAILURES_MAX 60 /* seconds waited after so many failures in a row, at most */
#define SLICE_MS     100

typedef struct item {
    struct item *next;
    size_t did_len;
    bool active;
    char rev[ES_ATP_REPO_REV_MAX + 1];
    char status[ES_ATP_REPO_STATUS_MAX + 1];
    bool has_status;
    char did[]; /* did_len bytes + NUL */
} item;

struct listing {
    const ingest_config *cfg;
    es_atp_xrpc *xrpc;
    char cursor[ES_ATP_XRPC_CURSOR_MAX + 1];
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    item *head, *tail; /* under mu */
    size_t queued;     /* under mu */
    bool stop, over;   /* under mu */
    listing_stats st;  /* under mu */
};

static es_status push(listing *l, const char *did, size_t len, const char *rev, bool active,
                      const char *status)
{
    item *it = calloc(1, sizeof *it + len + 1);
    if (it == NULL)
        return es_error(ES_ERR_NOMEM, "listing: out of memory");
    memcpy(it->did, did, len);
    it->did_len = len;
    it->active = active;
    snprintf(it->rev, sizeof it->rev, "%s", rev ? rev : "");
    it->has_status = status != NULL;
    snprintf(it->status, sizeof it->status, "%s", status ? status : "");
    pthread_mutex_lock(&l->mu);
    if (l->tail != NULL)
        l->tail->next = it;
    else
        l->head = it;
    l->tail = it;
    l->queued++;
    l->st.listed++;
    pthread_mutex_unlock(&l->mu);
    return ES_OK;
}

static es_status on_repo(void *ctx, const es_atp_xrpc_repo *r)
{
    return push(ctx, r->did, r->did_len, r->rev, r->active, r->status);
}

static es_status on_did(void *ctx, const char *did, size_t len)
{
    return push(ctx, did, len, "", true, NULL);
}

/* Waits until the queue has room or `until_ms` passes (0: no time limit)
 * or a stop; whether to go on. */
static bool wait_turn(listing *l, int64_t until_ms)
{
    pthread_mutex_lock(&l->mu);
    while (!l->stop && (l->queued >= QUEUE_ROOM || (until_ms && es_cli_monotonic_ms() < until_ms))) {
        struct timespec ts = es_cli_deadline(SLICE_MS);
        pthread_cond_timedwait(&l->cond, &l->mu, &ts);
    }
    bool go = !l->stop;
    pthread_mutex_unlock(&l->mu);
    return go;
}

/* One page; false when the listing is over. *wait_ms: before the next. */
static bool read_page(listing *l, unsigned *failures, int64_t *wait_ms)
{
    const ingest_config *c = l->cfg;
    es_atp_xrpc_result res;
    es_status s = c->collection_signal != NULL
                      ? es_atp_xrpc_list_repos_by_collection(l->xrpc, c->backfill_host,
                                                             c->collection_signal, l->cursor,
                                                             on_did, l, &res)
                      : es_atp_xrpc_list_repos(l->xrpc, c->backfill_host, l->cursor, on_repo, l,
                                               &res);
    pthread_mutex_lock(&l->mu);
    l->st.pages += res.pages;
    pthread_mutex_unlock(&l->mu);
    memcpy(l->cursor, res.cursor, sizeof l->cursor);
    *wait_ms = 0;
    if (s == ES_OK) {
        *failures = 0;
        return res.cursor[0] != '\0';
    }
    if (s == ES_ERR_AGAIN || s == ES_ERR_SERVER || s == ES_ERR_TIMEOUT || s == ES_ERR_CONNECTION) {
        ++*failures;
        *wait_ms = res.retry_after_ms > 0 ? res.retry_after_ms
                                          : 1000 * (int64_t)(*failures < FAILURES_MAX
                                                                 ? *failures
                                                                 : FAILURES_MAX);
        return true; /* the next turn goes on from the cursor */
    }
    ingest_log_line line;
    ingest_log_begin(&line, LOG_ERROR, "listing the repositories failed; the backfill goes on "
                                       "with what was listed");
    ingest_log_str(&line, "host", c->backfill_host);
    ingest_log_str(&line, "error", es_last_error());
    ingest_log_end(&line);
    return false;
}

static void *run(void *arg)
{
    listing *l = arg;
    unsigned failures = 0;
    int64_t wait_ms = 0;
    while (wait_turn(l, wait_ms ? es_cli_monotonic_ms() + wait_ms : 0) &&
           read_page(l, &failures, &wait_ms))
        ;
    pthread_mutex_lock(&l->mu);
    l->over = true;
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

es_status listing_open(const ingest_config *cfg, listing **out)
{
    *out = NULL;
    listing *l = calloc(1, sizeof *l);
    if (l == NULL)
        return es_error(ES_ERR_NOMEM, "listing: out of memory");
    l->cfg = cfg;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cond, NULL);
    es_atp_xrpc_options xo;
    ingest_xrpc_options(cfg, &xo);
    xo.max_pages = 1; /* a page per turn: the queue stays short */
    es_status s = es_atp_xrpc_create(&xo, &l->xrpc);
    if (s == ES_OK && pthread_create(&l->thread, NULL, run, l) != 0)
        s = es_error(ES_ERR_NOMEM, "listing: cannot start its thread");
    l->started = s == ES_OK;
    if (s != ES_OK) {
        listing_close(l);
        return s;
    }
    *out = l;
    return ES_OK;
}

void listing_close(listing *l)
{
    if (l == NULL)
        return;
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->mu);
    if (l->started)
        pthread_join(l->thread, NULL);
    for (item *it = l->head; it != NULL;) {
        item *next = it->next;
        free(it);
        it = next;
    }
    es_atp_xrpc_destroy(l->xrpc);
    pthread_cond_destroy(&l->cond);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

void listing_drain(listing *l, size_t max, es_status (*fn)(void *ctx, const listing_repo *r),
                   void *ctx)
{
    for (size_t n = 0; n < max; n++) {
        pthread_mutex_lock(&l->mu);
        item *it = l->head;
        pthread_mutex_unlock(&l->mu);
        if (it == NULL)
            return;
        listing_repo r = {.did = it->did, .did_len = it->did_len, .rev = it->rev,
                          .active = it->active, .status = it->has_status ? it->status : NULL};
        if (fn(ctx, &r) != ES_OK)
            return;
        pthread_mutex_lock(&l->mu); /* only this thread takes items: `it` is still first */
        if ((l->head = it->next) == NULL)
            l->tail = NULL;
        l->queued--;
        pthread_cond_signal(&l->cond);
        pthread_mutex_unlock(&l->mu);
        free(it);
    }
}

bool listing_done(listing *l)
{
    pthread_mutex_lock(&l->mu);
    bool done = l->over && l->head == NULL;
    pthread_mutex_unlock(&l->mu);
    return done;
}

void listing_get_stats(listing *l, listing_stats *out)
{
    pthread_mutex_lock(&l->mu);
    *out = l->st;
    pthread_mutex_unlock(&l->mu);
}
