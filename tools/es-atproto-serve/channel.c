/* GET /channel's target (channel.h). Events live in one table, bounded by
 * the dispatcher's max_in_flight: each is waiting (no holder) or held by the
 * client it was written to, since sent_ms. Clients take the oldest waiting
 * event when their connection is writable; the timer thread hands events
 * held past the ack timeout back to the waiting ones. */
#define _POSIX_C_SOURCE 200809L
#include "channel.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "clock.h"
#include "metrics.h"

#define TICK_MAX_MS 250 /* the timer looks at least this often */

typedef struct entry {
    uint64_t id;
    uint64_t order; /* when it became waiting: the oldest goes first */
    channel_client *holder;
    int64_t sent_ms;
    size_t len;
    unsigned char *json;
} entry;

struct channel_client {
    channel *ch;
    channel_client *next;
    size_t holding;
};

struct channel {
    channel_config cfg;
    tap_done_fn done;
    void *done_arg;
    pthread_mutex_t lock;
    pthread_cond_t tick; /* the timer's sleep; closing */
    size_t headroom; /* before each message (channel_set_loop) */
    void (*wake)(void *arg);
    void *wake_arg;
    entry *entries;
    size_t n, cap;
    uint64_t next_order;
    channel_client *clients;
    size_t nclients;
    uint64_t written, redelivered, acks, stale_acks;
    bool closing;
    pthread_t timer;
    bool timer_running;
};

void channel_config_init(channel_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->ack_timeout_ms = 60000;
    cfg->max_in_flight = 32;
}

/* Under the lock. */
static void wake_locked(channel *c)
{
    if (c->wake != NULL)
        c->wake(c->wake_arg);
}

/* Under the lock: entry i waits again (no holder), behind the others. */
static void requeue(channel *c, entry *e)
{
    if (e->holder != NULL)
        e->holder->holding--;
    e->holder = NULL;
    e->order = c->next_order++;
    c->redelivered++;
}

/* Under the lock: removes entry i (its JSON freed). */
static void remove_entry(channel *c, size_t i)
{
    if (c->entries[i].holder != NULL)
        c->entries[i].holder->holding--;
    free(c->entries[i].json);
    c->entries[i] = c->entries[--c->n];
}

static long find(const channel *c, uint64_t id)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->entries[i].id == id)
            return (long)i;
    return -1;
}

/* ---- the target ------------------------------------------------------------ */

static es_status channel_send(void *self, const tap_event *ev)
{
    channel *c = self;
    unsigned char *json = malloc(ev->len ? ev->len : 1);
    if (json == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory for an event of /channel");
    memcpy(json, ev->json, ev->len);
    pthread_mutex_lock(&c->lock);
    es_status s = ES_OK;
    if (c->closing) {
        s = es_error(ES_ERR_STOPPED, "/channel is closing");
    } else if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        entry *grown = realloc(c->entries, cap * sizeof *grown);
        if (grown == NULL)
            s = es_error(ES_ERR_NOMEM, "out of memory for /channel's events");
        else
            c->entries = grown, c->cap = cap;
    }
    if (s == ES_OK) {
        c->entries[c->n++] = (entry){.id = ev->id, .order = c->next_order++, .len = ev->len, .json = json};
        json = NULL;
        wake_locked(c);
    }
    pthread_mutex_unlock(&c->lock);
    free(json);
    return s;
}

tap_target channel_target(channel *c)
{
    return (tap_target){.send = channel_send, .self = c};
}

/* ---- the timer ------------------------------------------------------------- */

/* Under the lock: events held past the ack timeout wait again. */
static void expire(channel *c)
{
    int64_t now = es_cli_monotonic_ms();
    bool any = false;
    for (size_t i = 0; i < c->n; i++) {
        entry *e = &c->entries[i];
        if (e->holder != NULL && now - e->sent_ms >= c->cfg.ack_timeout_ms) {
            requeue(c, e);
            any = true;
        }
    }
    if (any)
        wake_locked(c);
}

static void *timer(void *arg)
{
    channel *c = arg;
    int64_t every = c->cfg.ack_timeout_ms / 4;
    if (every > TICK_MAX_MS)
        every = TICK_MAX_MS;
    if (every < 1)
        every = 1;
    pthread_mutex_lock(&c->lock);
    while (!c->closing) {
        struct timespec until = es_cli_deadline(every);
        pthread_cond_timedwait(&c->tick, &c->lock, &until);
        if (!c->cfg.fire_and_forget)
            expire(c);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

es_status channel_create(const channel_config *cfg, tap_done_fn done, void *done_arg,
                         channel **out)
{
    *out = NULL;
    if (cfg->ack_timeout_ms < 1 || cfg->max_in_flight < 1 || done == NULL)
        return es_error(ES_ERR_INVALID, "channel: an ack timeout, max_in_flight and done");
    channel *c = calloc(1, sizeof *c);
    if (c == NULL)
        return ES_ERR_NOMEM;
    c->cfg = *cfg;
    c->done = done;
    c->done_arg = done_arg;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->tick, NULL); /* the realtime clock, es_cli_deadline's */
    if (pthread_create(&c->timer, NULL, timer, c) != 0) {
        channel_destroy(c);
        return es_error(ES_ERR_NOMEM, "cannot start /channel's timer");
    }
    c->timer_running = true;
    *out = c;
    return ES_OK;
}

void channel_set_loop(channel *c, size_t headroom, void (*wake)(void *arg), void *arg)
{
    pthread_mutex_lock(&c->lock);
    c->headroom = headroom;
    c->wake = wake;
    c->wake_arg = arg;
    pthread_mutex_unlock(&c->lock);
}

/* ---- clients --------------------------------------------------------------- */

es_status channel_attach(channel *c, channel_client **out)
{
    channel_client *cl = calloc(1, sizeof *cl);
    if (cl == NULL)
        return ES_ERR_NOMEM;
    cl->ch = c;
    pthread_mutex_lock(&c->lock);
    cl->next = c->clients;
    c->clients = cl;
    c->nclients++;
    pthread_mutex_unlock(&c->lock);
    *out = cl;
    return ES_OK;
}

/* Ends event `id`: the first ack wins. */
static void ack(channel *c, uint64_t id)
{
    pthread_mutex_lock(&c->lock);
    long i = find(c, id);
    if (i >= 0) {
        remove_entry(c, (size_t)i);
        c->acks++;
        wake_locked(c); /* a client's share has room again */
    } else {
        c->stale_acks++;
    }
    pthread_mutex_unlock(&c->lock);
    if (i >= 0)
        c->done(c->done_arg, id, TAP_ACKED, NULL);
}

es_status channel_client_message(channel_client *cl, const char *text, size_t len)
{
    json_t *msg = json_loadb(text, len, 0, NULL);
    json_t *type = json_object_get(msg, "type"), *id = json_object_get(msg, "id");
    es_status s = ES_OK;
    if (!json_is_string(type))
        s = es_error(ES_ERR_INVALID, "a /channel message is a JSON object with a \"type\"");
    else if (strcmp(json_string_value(type), "ack") != 0 || cl->ch->cfg.fire_and_forget)
        s = ES_OK; /* other types are ignored, as Tap does; so are acks without acks */
    else if (!json_is_integer(id) || json_integer_value(id) <= 0)
        s = es_error(ES_ERR_INVALID, "an ack needs the event's \"id\"");
    else
        ack(cl->ch, (uint64_t)json_integer_value(id));
    json_decref(msg);
    return s;
}

/* Under the lock: how many events one client may hold. */
static size_t share(const channel *c)
{
    size_t n = c->nclients ? c->nclients : 1;
    size_t s = ((size_t)c->cfg.max_in_flight + n - 1) / n;
    return s ? s : 1;
}

channel_msg *channel_client_next(channel_client *cl)
{
    channel *c = cl->ch;
    channel_msg *m = NULL;
    pthread_mutex_lock(&c->lock);
    entry *oldest = NULL;
    if (c->cfg.fire_and_forget || cl->holding < share(c))
        for (size_t i = 0; i < c->n; i++)
            if (c->entries[i].holder == NULL && (!oldest || c->entries[i].order < oldest->order))
                oldest = &c->entries[i];
    if (oldest != NULL && (m = malloc(sizeof *m + c->headroom + oldest->len)) != NULL) {
        m->id = oldest->id;
        m->len = oldest->len;
        memcpy(m->data + c->headroom, oldest->json, oldest->len);
        oldest->holder = cl;
        oldest->sent_ms = es_cli_monotonic_ms();
        cl->holding++;
        c->written++;
    }
    pthread_mutex_unlock(&c->lock);
    return m;
}

void channel_client_written(channel_client *cl, uint64_t id)
{
    if (cl->ch->cfg.fire_and_forget)
        ack(cl->ch, id);
}

void channel_detach(channel_client *cl)
{
    if (cl == NULL)
        return;
    channel *c = cl->ch;
    pthread_mutex_lock(&c->lock);
    bool any = false;
    for (size_t i = 0; i < c->n; i++)
        if (c->entries[i].holder == cl) {
            requeue(c, &c->entries[i]);
            any = true;
        }
    for (channel_client **p = &c->clients; *p != NULL; p = &(*p)->next)
        if (*p == cl) {
            *p = cl->next;
            break;
        }
    c->nclients--;
    if (any)
        wake_locked(c);
    pthread_mutex_unlock(&c->lock);
    free(cl);
}

/* ---- counters and the end ----------------------------------------------------- */

void channel_stats_get(channel *c, channel_stats *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&c->lock);
    out->clients = c->nclients;
    for (size_t i = 0; i < c->n; i++) {
        if (c->entries[i].holder)
            out->held++;
        else
            out->waiting++;
    }
    out->written = c->written;
    out->redelivered = c->redelivered;
    out->acks = c->acks;
    out->stale_acks = c->stale_acks;
    pthread_mutex_unlock(&c->lock);
}

void channel_metrics(channel *c, es_buf *b)
{
    channel_stats s;
    channel_stats_get(c, &s);
    es_prom_one(b, "es_serve_channel_clients", "gauge", "/channel clients connected now.",
                (double)s.clients);
    es_prom_family(b, "es_serve_channel_events", "gauge",
                   "/channel events now, by state (waiting for a client, held by one).");
    es_prom_sample(b, "es_serve_channel_events", "state", "waiting", (double)s.waiting);
    es_prom_sample(b, "es_serve_channel_events", "state", "held", (double)s.held);
    es_prom_one(b, "es_serve_channel_written_total", "counter",
                "/channel messages written to clients.", (double)s.written);
    es_prom_one(b, "es_serve_channel_redelivered_total", "counter",
                "/channel events sent again (ack timeout, a client gone).", (double)s.redelivered);
    es_prom_family(b, "es_serve_channel_acks_total", "counter",
                   "/channel acks, by whether they ended an event.");
    es_prom_sample(b, "es_serve_channel_acks_total", "kind", "ended", (double)s.acks);
    es_prom_sample(b, "es_serve_channel_acks_total", "kind", "stale", (double)s.stale_acks);
}

void channel_destroy(channel *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->lock);
    c->closing = true;
    c->wake = NULL;
    pthread_cond_broadcast(&c->tick);
    pthread_mutex_unlock(&c->lock);
    if (c->timer_running)
        pthread_join(c->timer, NULL);
    while (c->n > 0)
        remove_entry(c, c->n - 1);
    free(c->entries);
    pthread_cond_destroy(&c->tick);
    pthread_mutex_destroy(&c->lock);
    free(c);
}
