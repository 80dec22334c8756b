#define _POSIX_C_SOURCE 200809L
#include "ingest.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "chain.h"
#include "clock.h"
#include "cursor.h"
#include "identity.h"
#include "log.h"
#include "pipeline.h"
#include "resyncs.h"
#include "tracked.h"
#include "ingest_metrics.h"
#include "metrics.h"
#include "source.h"

#define FRAME_ARENA_LIMIT ((size_t)32 << 20)
#define WAIT_SLICE_MS     100
#define LIST_AHEAD        10000 /* repositories queued before more listed ones are */
#define METRICS_INTERVAL_MS 1000 /* how often the metrics text is rendered */
/* Frames the sink takes past the bounds ingester_room honours: a source that
 * cannot stop at once (a WebSocket message already read when room ran out)
 * hands over a few more. */
#define ROOM_SLACK 16

struct ingester {
    const ingest_config *cfg;
    es_atp_options opts;
    es_atp_identity *identity; /* NULL with --no-verify */
    ingest_workers *workers;   /* decoding, in order (workers.h) */
    size_t room_slots;         /* W: ingester_room is false with this many frames decoding */
    bool head_again;           /* the oldest decoded frame found the sink full: offer it again */
    ingest_take_result outcome; /* an error frame or a failure met while offering */
    bool denied;                /* the server refused the user an append: stop, exit 7 */
    es_atp_stats dec_stats;     /* the decoders' counters over the frames offered */
    natsConnection *nc;
    es_store *store;
    es_sink *sink; /* order, retries, the watermark */
    es_entity_types *types; /* the store's entity-type index: each type before its first event */
    ingest_cursor *cursor;
    ingest_cursor_start start;
    chain *chain;                       /* per-repository chain state (chain.h) */
    resyncs *rs;          /* live resyncs and backfills (resyncs.h); NULL: none */
    listing *list;        /* --backfill-all, --collection-signal (listing.h); NULL: none */
    tracked *tracked;     /* the tracked set, followed (tracked.h); NULL: not watched */
    bool tracked_started; /* its first poll (the set at start) was handled */
    uint64_t skipped_untracked; /* --tracked-only: frames of repositories not tracked */
    es_cli_metrics *metrics;    /* --metrics-listen; NULL: none */
    int64_t last_metrics_ms;
    es_arena *release_arena; /* a held frame decoded again when released */
    volatile sig_atomic_t *stop;
    uint64_t crash_after, stored_units; /* tests: ES_INGEST_TEST_EXIT_AFTER_ACKS */
    uint64_t skipped_by_cursor;
    bool has_last_seq;
    uint64_t last_seq; /* the newest frame taken */
    char error_name[64];
    /* the stats line */
    int64_t started_ms, last_stats_ms;
    es_atp_stats last_dec;
    es_sink_stats last_sink;
};

void ingest_config_init(ingest_config *c)
{
    memset(c, 0, sizeof *c);
    c->store = "atproto";
    c->name = "atproto-ingest";
    c->stats_interval_ms = 10000;
    c->cursor_interval_ms = 1000;
    c->drain_timeout_ms = 30000;
    c->reconnect_min_ms = 1000;
    c->reconnect_max_ms = 60000;
    c->nats_wait_ms = 30000;
    c->duplicate_window_ns = 2LL * 60 * 1000000000LL;
    c->max_frames = 4096;
    c->max_inflight = 256;
    c->max_batches = 32;
    c->max_held = (size_t)8 << 20;
    c->max_repos_cached = 100000;
    c->backfill_parallelism = 4;
    c->repo_fetch_timeout_ms = 5 * 60 * 1000;
    c->backfill_retry_min_ms = 60 * 1000;
    c->backfill_retry_max_ms = 60 * 60 * 1000;
    c->verify_threads = ingest_workers_default_threads();
    es_cli_conn_init(&c->conn, "es-atproto-ingest");
    c->conn.max_reconnect = -1; /* a service: keep trying, appends retry meanwhile */
}

void ingest_decoding_options(const ingest_config *c, es_atp_identity *identity,
                             ingest_workers_options *o)
{
    ingest_workers_options_init(o);
    o->decode.filter = c->filter;
    o->decode.verify_all_blocks = c->verify_all;
    o->decode.identity = identity;
    o->threads = c->verify_threads;
    o->slots = c->verify_threads > 0 ? c->verify_threads * INGEST_SLOTS_PER_THREAD : 1;
    o->arena_limit = FRAME_ARENA_LIMIT;
}

/* ---- what the sink reports ------------------------------------------------ */

static void on_outcome(const es_sink_outcome *o, void *ctx)
{
    ingester *g = ctx;
    /* a repository's state moves only once its frame is stored */
    bool settled = o->kind == ES_SINK_STORED || o->kind == ES_SINK_DROPPED;
    if (g->chain != NULL && settled)
        chain_settled(g->chain, o->key, o->key_len, o->position, o->kind == ES_SINK_STORED,
                      o->last_seq);
    if (g->rs != NULL && settled)
        resyncs_settled(g->rs, o->key, o->key_len, o->position);
    /* The crash tests' kill -9 at a chosen point: after N units are stored,
     * before any state or cursor write that follows them. */
    if (o->kind == ES_SINK_STORED && g->crash_after && ++g->stored_units >= g->crash_after)
        _exit(99);
    if (o->kind == ES_SINK_STORED && !o->duplicate)
        return;
    if (o->status == ES_ERR_PERMISSION) {
        /* no retry changes the user's permissions: stop now, the cursor
         * before the refused frame (it never settled); told once */
        if (!g->denied)
            ingest_log_msg(LOG_ERROR, "append not permitted: stopping", o->error);
        g->denied = true;
        g->outcome = INGEST_FAILED;
        return;
    }
    ingest_log_line l;
    if (o->kind == ES_SINK_STORED)
        ingest_log_begin(&l, LOG_DEBUG, "stored before");
    else if (o->kind == ES_SINK_RETRYING)
        ingest_log_begin(&l, LOG_WARN, "append failed, retrying");
    else
        ingest_log_begin(&l, LOG_ERROR, "append refused for good, frame dropped");
    ingest_log_u64(&l, "seq", o->position);
    ingest_log_strn(&l, "did", o->key, o->key_len);
    if (o->status != ES_OK)
        ingest_log_str(&l, "status", es_status_text(o->status));
    if (o->error[0])
        ingest_log_str(&l, "error", o->error);
    if (o->kind == ES_SINK_RETRYING) {
        ingest_log_u64(&l, "attempt", o->attempts);
        ingest_log_i64(&l, "retry_in_ms", o->retry_in_ms);
    }
    ingest_log_end(&l);
}

/* ---- opening --------------------------------------------------------------- */

static bool worth_retrying(es_status s)
{
    return s == ES_ERR_CONNECTION || s == ES_ERR_TIMEOUT;
}

/* Sleeps `ms` in short slices, ending early when a stop is requested. */
static void wait_unless_stopped(int64_t ms, volatile sig_atomic_t *stop)
{
    int64_t until = es_cli_monotonic_ms() + ms;
    for (int64_t left = ms; left > 0 && !*stop; left = until - es_cli_monotonic_ms())
        es_cli_sleep_ms(left < WAIT_SLICE_MS ? left : WAIT_SLICE_MS);
}

typedef es_status (*startup_step)(ingester *g);

/* A service started with (or before) its server, or while its cluster
 * elects a leader: a step that finds NATS unreachable or gets no answer
 * from JetStream is tried again, with the relay's backoff, until --nats-wait
 * has passed. Each failed attempt is logged as `retrying`, a success after
 * failures as `done`. */
static es_status retry_startup(ingester *g, volatile sig_atomic_t *stop, startup_step step,
                               const char *retrying, const char *done)
{
    const ingest_config *c = g->cfg;
    int64_t give_up = es_cli_monotonic_ms() + c->nats_wait_ms;
    uint64_t rng = es_cli_backoff_seed();
    for (unsigned attempt = 1;; attempt++) {
        es_status s = step(g);
        int64_t left = give_up - es_cli_monotonic_ms();
        if (s == ES_OK && attempt > 1) {
            ingest_log_line l;
            ingest_log_begin(&l, LOG_INFO, done);
            ingest_log_u64(&l, "attempts", attempt);
            ingest_log_end(&l);
        }
        if (!worth_retrying(s) || left <= 0 || *stop)
            return s;
        int64_t delay =
            es_cli_backoff_ms(c->reconnect_min_ms, c->reconnect_max_ms, attempt - 1, &rng);
        if (delay > left)
            delay = left;
        ingest_log_line l;
        ingest_log_begin(&l, LOG_WARN, retrying);
        ingest_log_str(&l, "server", c->conn.server ? c->conn.server : ES_CONNECT_DEFAULT_URL);
        ingest_log_str(&l, "error", es_last_error());
        ingest_log_u64(&l, "attempt", attempt);
        ingest_log_i64(&l, "retry_in_ms", delay);
        ingest_log_i64(&l, "wait_left_ms", left);
        ingest_log_end(&l);
        wait_unless_stopped(delay, stop);
    }
}

static es_status connect_once(ingester *g)
{
    return es_cli_connect(&g->cfg->conn, &g->nc);
}

/* The flags --max-age, --max-bytes, --replicas and --compression given,
 * against the store
 * that exists. An ingester changes no existing store: lowering a limit
 * would drop events, and two ingesters started with different flags would
 * undo each other. A difference stops the run, naming the store's values
 * and the command that changes them. */
static es_status check_retention(const ingest_config *c, es_store *st)
{
    es_store_info info;
    es_status s = es_store_info_get(st, &info);
    if (s != ES_OK)
        return s;
    const es_store_config *have = &info.config;
    es_buf diff = ES_BUF_INIT, fix = ES_BUF_INIT; /* "" when they agree */
    if (c->max_age_arg != NULL && have->max_age_ns != c->max_age_ns) {
        es_cli_buf_printf(&diff, "%s max age %.3fs%s where --max-age says %s",
                          diff.len ? "," : "", (double)have->max_age_ns / 1e9,
                          have->max_age_ns ? "" : " (forever)", c->max_age_arg);
        es_cli_buf_printf(&fix, " --max-age %s", c->max_age_arg);
    }
    if (c->max_bytes_arg != NULL && have->max_bytes != c->max_bytes) {
        es_cli_buf_printf(&diff, "%s max bytes %lld%s where --max-bytes says %s",
                          diff.len ? "," : "", (long long)have->max_bytes,
                          have->max_bytes ? "" : " (unlimited)", c->max_bytes_arg);
        es_cli_buf_printf(&fix, " --max-bytes %s", c->max_bytes_arg);
    }
    if (c->replicas > 0 && have->replicas != c->replicas) {
        es_cli_buf_printf(&diff, "%s %d replica%s where --replicas says %d", diff.len ? "," : "",
                          have->replicas, have->replicas == 1 ? "" : "s", c->replicas);
        es_cli_buf_printf(&fix, " --replicas %d", c->replicas);
    }
    /* S2 is set at creation only: no edit command fixes it */
    bool recreate = c->compression_arg != NULL && have->storage_compression != c->compression;
    if (recreate)
        es_cli_buf_printf(
            &diff, "%s %s storage compression where --compression says %s", diff.len ? "," : "",
            es_storage_compression_name(have->storage_compression), c->compression_arg);
    if (recreate && fix.len == 0)
        s = es_error(ES_ERR_CONFLICT,
                     "store '%s' exists with%.*s; storage compression is set when a store is "
                     "created: use another store (--store), or leave --compression out",
                     c->store, (int)diff.len, (const char *)diff.data);
    else if (diff.len > 0)
        s = es_error(ES_ERR_CONFLICT,
                     "store '%s' exists with%.*s; es-atproto-ingest changes no existing store: "
                     "run `es-tool edit %s%.*s` (lowering a limit drops the events beyond it), "
                     "or leave the flags out%s",
                     c->store, (int)diff.len, (const char *)diff.data, c->store, (int)fix.len,
                     (const char *)fix.data,
                     recreate ? " (storage compression is set at creation only)" : "");
    es_buf_free(&diff);
    es_buf_free(&fix);
    return s;
}

static es_status open_store(ingester *g)
{
    const ingest_config *c = g->cfg;
    es_store_options o;
    es_cli_store_options(&c->conn, &o); /* timeout, JetStream domain or API prefix */
    /* The frame decoder decoded every record exactly as DAG-CBOR before it
     * became an event (atproto/src/frame.c): decoding it again at append
     * would be work for nothing, about 200 ns an event. */
    o.skip_payload_validation = true;
    /* A little more room than the sink uses: the library's window is a ring
     * in send order, so one slow append holds back the place of the next. */
    o.max_inflight = (int)c->max_inflight + 64;
    o.max_batches_inflight = (int)c->max_batches + 4;
    es_status s = es_store_open(g->nc, c->store, &o, &g->store);
    if (s == ES_OK)
        s = check_retention(c, g->store);
    if (s != ES_ERR_NOT_FOUND)
        return s;
    es_store_config cfg;
    es_store_config_init(&cfg);
    cfg.duplicate_window_ns = c->duplicate_window_ns;
    if (c->max_age_arg != NULL)
        cfg.max_age_ns = c->max_age_ns;
    if (c->max_bytes_arg != NULL)
        cfg.max_bytes = c->max_bytes;
    if (c->replicas > 0)
        cfg.replicas = c->replicas;
    cfg.storage_compression = c->compression;
    s = es_store_create(g->nc, c->store, &cfg, &o, &g->store);
    if (s == ES_OK) {
        ingest_log_line l;
        ingest_log_begin(&l, LOG_INFO, "store created");
        ingest_log_str(&l, "store", c->store);
        ingest_log_end(&l);
    }
    return s;
}

/* A restart replays the frames between the saved cursor and the crash. The
 * store's duplicate window recognises their ids only for a while; beyond
 * it, the per-repository chain state (chain.h, rebuilt from the stream's
 * tail at start) skips what is stored, however old the cursor. Say where
 * the run resumes and how far back that is. */
static void check_replay_distance(ingester *g)
{
    if (!g->start.found)
        return;
    es_store_info info;
    if (es_store_info_get(g->store, &info) != ES_OK)
        return;
    int64_t age = es_cli_now_ns() - g->start.saved_ns;
    ingest_log_line l;
    ingest_log_begin(&l, LOG_INFO, "resuming");
    ingest_log_str(&l, "name", g->cfg->name);
    ingest_log_u64(&l, "cursor", g->start.position);
    ingest_log_f64(&l, "cursor_age_s", (double)age / 1e9, 1);
    ingest_log_f64(&l, "duplicate_window_s", (double)info.config.duplicate_window_ns / 1e9, 0);
    if (g->start.source[0])
        ingest_log_str(&l, "saved_for", g->start.source);
    ingest_log_end(&l);
}

static es_status open_sink(ingester *g)
{
    const ingest_config *c = g->cfg;
    es_sink_options o;
    es_sink_options_init(&o);
    /* Room for a few frames past the bounds the sources honour (ingester_room):
     * a source that cannot stop at once may hand over one more. */
    o.max_units = c->max_frames + ROOM_SLACK;
    o.max_bytes = c->max_held + ROOM_SLACK * g->opts.limits.max_frame_bytes;
    o.max_inflight = c->max_inflight;
    o.max_batches = c->max_batches;
    o.on_outcome = on_outcome;
    o.closure = g;
    return es_sink_create(g->store, &o, &g->sink);
}

static es_status queue_given(void *ctx, const char *did, size_t len)
{
    return resyncs_queue(ctx, did, len, false);
}

/* A change of the tracked set: a DID added is backfilled (then live) —
 * at start only those the store knows nothing of, afterwards each one
 * added (the PDS's state is diffed against what is stored: a DID tracked
 * again after a while gets what it missed). A DID removed: with
 * --tracked-only its frames are no longer stored (its events stay). */
static void on_tracked(void *ctx, const char *did, size_t len, bool added)
{
    ingester *g = ctx;
    if (!added || g->rs == NULL || !es_atp_valid_did(did, len))
        return;
    if (!g->tracked_started && !chain_unknown(g->chain, did, len))
        return;
    if (resyncs_queue(g->rs, did, len, false) != ES_OK) {
        ingest_log_line l;
        ingest_log_begin(&l, LOG_WARN, "tracked repository not queued for a backfill");
        ingest_log_strn(&l, "did", did, len);
        ingest_log_str(&l, "error", es_last_error());
        ingest_log_end(&l);
    }
}

static es_status open_metrics(ingester *g)
{
    int port = 0;
    es_status s = es_cli_metrics_start(g->cfg->metrics_listen, &g->metrics, &port);
    if (s == ES_OK) {
        ingest_log_line l;
        ingest_log_begin(&l, LOG_INFO, "metrics");
        ingest_log_str(&l, "listen", g->cfg->metrics_listen);
        ingest_log_i64(&l, "port", port);
        ingest_log_end(&l);
    }
    return s;
}

static es_status open_tracked(ingester *g)
{
    es_status s = tracked_open(g->store, g->cfg->max_tracked, &g->tracked);
    if (s == ES_OK) /* the set at start, before the first frame */
        s = tracked_poll(g->tracked, on_tracked, g);
    g->tracked_started = true;
    if (s == ES_OK && g->cfg->tracked_only) {
        ingest_log_line l;
        ingest_log_begin(&l, LOG_INFO, "storing tracked repositories only");
        ingest_log_u64(&l, "tracked", tracked_count(g->tracked));
        ingest_log_end(&l);
    }
    return s;
}

/* With a live source, resyncs run unless --no-resync (or --no-verify: a
 * snapshot is verified); a backfill run always has them. The repositories
 * queued first: those marked desynchronized (with a live source, or
 * --resync-desynced), then --backfill and --backfill-file. */
static es_status open_resyncs(ingester *g)
{
    const ingest_config *c = g->cfg;
    bool live = ingest_config_live(c);
    if (c->dry_run || c->no_resync || (live && g->identity == NULL))
        return ES_OK;
    es_status s = resyncs_open(c, g->store, g->identity, g->chain, &g->rs);
    if (s == ES_OK)
        s = es_arena_create(FRAME_ARENA_LIMIT, &g->release_arena);
    if (s == ES_OK && (live || c->resync_desynced))
        s = resyncs_queue_desynced(g->rs, g->store);
    if (s == ES_OK && c->backfill != NULL)
        s = es_atp_dids_each(c->backfill, false, queue_given, g->rs);
    if (s == ES_OK && c->backfill_file != NULL)
        s = es_atp_dids_each(c->backfill_file, true, queue_given, g->rs);
    if (s == ES_OK && (c->backfill_all || c->collection_signal != NULL))
        s = listing_open(c, &g->list);
    return s;
}

static es_status open_chain(ingester *g)
{
    chain_options o = {.max_cached = g->cfg->max_repos_cached,
                       .interval_ms = g->cfg->cursor_interval_ms,
                       .name = g->cfg->name};
    return chain_open(g->store, &o, &g->chain);
}

int ingester_open(const ingest_config *cfg, const char *source_name, volatile sig_atomic_t *stop,
                  ingester **out)
{
    ingester *g = calloc(1, sizeof *g);
    if (g == NULL)
        return es_cli_fail(ES_ERR_NOMEM, "starting");
    g->cfg = cfg;
    g->stop = stop;
    const char *crash = getenv("ES_INGEST_TEST_EXIT_AFTER_ACKS");
    g->crash_after = crash ? strtoull(crash, NULL, 10) : 0;
    g->outcome = INGEST_TAKEN;
    int code = ES_EXIT_OK;
    es_status s = ingest_identity_open(cfg, &g->identity);
    ingest_workers_options wo;
    ingest_decoding_options(cfg, g->identity, &wo);
    g->opts = wo.decode;
    g->room_slots = wo.slots;
    wo.slots += ROOM_SLACK; /* like the sink: a source that cannot stop at once */
    if (s == ES_OK)
        s = ingest_workers_create(&wo, &g->workers);
    if (s != ES_OK)
        code = es_cli_fail(s, "starting");
    if (code == ES_EXIT_OK && (s = retry_startup(g, stop, connect_once, "NATS unreachable, retrying",
                                                 "connected to NATS")) != ES_OK)
        code = es_cli_fail(s, "connecting");
    if (code == ES_EXIT_OK &&
        (s = retry_startup(g, stop, open_store, "JetStream not answering, retrying",
                           "store opened")) != ES_OK)
        code = es_cli_fail(s, "opening the store");
    if (code == ES_EXIT_OK && g->identity != NULL && /* DID documents kept in KV */
        (s = es_atp_identity_attach_store(g->identity, g->store)) != ES_OK)
        code = es_cli_fail(s, "opening the DID document cache");
    if (code == ES_EXIT_OK && (s = es_entity_types_open(g->store, &g->types)) != ES_OK)
        code = es_cli_fail(s, "opening the entity-type index");
    if (code == ES_EXIT_OK && (s = open_sink(g)) != ES_OK)
        code = es_cli_fail(s, "starting");
    if (code == ES_EXIT_OK &&
        (s = ingest_cursor_open(g->store, cfg->name, source_name, cfg->cursor_interval_ms,
                                &g->start, &g->cursor)) != ES_OK)
        code = es_cli_fail(s, "reading the cursor");
    if (code == ES_EXIT_OK &&
        (s = retry_startup(g, stop, open_chain, "repository states not answering, retrying",
                           "repository states read")) != ES_OK)
        code = es_cli_fail(s, "reading the repository states");
    if (code == ES_EXIT_OK && (s = open_resyncs(g)) != ES_OK)
        code = es_cli_fail(s, "starting the resyncs");
    if (code == ES_EXIT_OK && cfg->metrics_listen != NULL && (s = open_metrics(g)) != ES_OK)
        code = es_cli_fail(s, "serving the metrics");
    /* the tracked set, with a live source: to backfill what is added, and
     * for --tracked-only */
    if (code == ES_EXIT_OK && ingest_config_live(cfg) && !cfg->dry_run && (g->rs != NULL || cfg->tracked_only) &&
        (s = open_tracked(g)) != ES_OK)
        code = es_cli_fail(s, "following the tracked repositories");
    if (code != ES_EXIT_OK) {
        ingester_close(g);
        return code;
    }
    if (cfg->from_start)
        g->start.found = false;
    check_replay_distance(g);
    g->started_ms = g->last_stats_ms = es_cli_monotonic_ms();
    *out = g;
    return ES_EXIT_OK;
}

void ingester_close(ingester *g)
{
    if (g == NULL)
        return;
    /* First the decoding threads: a frame being decoded may read the DID
     * documents kept in the store's KV (es_atp_identity_attach_store). */
    ingest_workers_destroy(g->workers);
    ingest_cursor_close(g->cursor);
    es_cli_metrics_stop(g->metrics);
    listing_close(g->list);
    tracked_close(g->tracked);
    resyncs_close(g->rs); /* before the chain: it stops the workers */
    es_arena_destroy(g->release_arena);
    chain_close(g->chain, g->sink != NULL && es_sink_idle(g->sink));
    /* The sink waits for its appends in flight (each bounded by the store's
     * request timeout) before the store goes. */
    es_sink_destroy(g->sink);
    es_entity_types_destroy(g->types);
    es_store_destroy(g->store);
    es_cli_disconnect(g->nc);
    es_atp_identity_destroy(g->identity);
    free(g);
}

es_store *ingester_store(ingester *g)
{
    return g->store;
}

es_atp_identity *ingester_identity(ingester *g)
{
    return g->identity;
}

struct chain *ingester_chain(ingester *g)
{
    return g->chain;
}

struct resyncs *ingester_resyncs(ingester *g)
{
    return g->rs;
}

struct listing *ingester_listing(ingester *g)
{
    return g->list;
}

bool ingester_resume_cursor(const ingester *g, uint64_t *cursor)
{
    *cursor = g->start.position;
    return g->start.found;
}

/* ---- frames ----------------------------------------------------------------- */

bool ingester_room(const ingester *g)
{
    es_sink_stats st;
    es_sink_get_stats(g->sink, &st);
    size_t decoding = ingest_workers_held(g->workers);
    return decoding < g->room_slots && st.held + decoding < g->cfg->max_frames &&
           st.bytes_held + ingest_workers_bytes(g->workers) < g->cfg->max_held;
}

/* The batch's entity types into the store's index before the batch goes to
 * the sink, so that the index never lags the stream (readers widen their
 * watches from it). A type already written costs nothing (the handle
 * remembers it): only a collection's first event asks the server. Not
 * ES_OK when it could not be written: the frame is offered again later,
 * unless the user may not write it (ES_ERR_PERMISSION: stop, as for an
 * append). */
static es_status index_types(ingester *g, const es_atp_batch *b)
{
    for (size_t i = 0; i < b->count; i++) {
        es_status s = es_entity_types_add(g->types, NULL, b->events[i].entity_type);
        if (s == ES_OK)
            continue;
        bool denied = s == ES_ERR_PERMISSION;
        ingest_log_line l;
        ingest_log_begin(&l, denied ? LOG_ERROR : LOG_WARN,
                         denied ? "entity type index not permitted: stopping"
                                : "entity type not indexed, retrying");
        ingest_log_str(&l, "entity_type", b->events[i].entity_type);
        ingest_log_str(&l, "error", es_last_error());
        ingest_log_end(&l);
        return s;
    }
    return ES_OK;
}

/* A frame decoded (`valid`: without a fault) after the cursor's checks:
 * the chain state decides, then the sink gets its unit. `released`: a frame
 * held during its repository's resync, now let go (resyncs.h); *stored
 * says whether its unit carries events. */
static ingest_take_result offer_checked(ingester *g, const es_atp_batch *b, bool valid,
                                        const uint8_t *frame, size_t frame_len, bool released,
                                        bool *stored)
{
    *stored = false;
    /* The repository's chain: a commit stored before, out of order or of an
     * inactive account is skipped (chain.h). */
    chain_verdict verdict = CHAIN_STORE;
    const char *why = "";
    if (valid)
        verdict = chain_take(g->chain, b, b->count > 0, &why);
    /* A live commit that breaks the chain has its repository resynced (the
     * chain state queued it): kept for after the snapshot, it is stored
     * then if newer. A released one that breaks it again is not kept: the
     * next snapshot covers it. */
    if (verdict == CHAIN_REFUSE_BREAK && g->rs != NULL && !released &&
        resyncs_divert(g->rs, b, frame, frame_len))
        return INGEST_TAKEN;
    /* A frame refused, skipped, an #info or a frame filtered out stores
     * nothing, but still counts for the cursor: a unit without events. */
    bool events = valid && b->count > 0 && verdict == CHAIN_STORE;
    es_status indexed = events ? index_types(g, b) : ES_OK;
    if (indexed != ES_OK) {
        chain_untake(g->chain, b); /* it comes again, as for a full sink */
        g->denied = indexed == ES_ERR_PERMISSION;
        return g->denied ? INGEST_FAILED : INGEST_FULL;
    }
    es_sink_unit u = {.key = b->did,
                      .key_len = b->did ? b->did_len : 0,
                      .position = b->has_seq ? b->seq : 0,
                      .time_ns = b->time_ns,
                      .events = events ? b->events : NULL,
                      .count = events ? b->count : 0};
    es_status s = es_sink_offer(g->sink, &u);
    if (s != ES_OK && valid && verdict == CHAIN_STORE)
        chain_untake(g->chain, b); /* it comes again */
    if (s == ES_ERR_AGAIN)
        return INGEST_FULL;
    if (s != ES_OK) {
        es_cli_fail(s, "keeping a frame");
        return INGEST_FAILED;
    }
    *stored = events;
    return INGEST_TAKEN;
}

/* A refused commit is a hole in its repository's chain: until a resync,
 * the repository is desynchronized (its later commits are skipped, or held
 * while the resync runs). */
static void refused_desyncs(ingester *g, const es_atp_batch *b)
{
    if ((b->kind == ES_ATP_KIND_COMMIT || b->kind == ES_ATP_KIND_SYNC) && b->did != NULL &&
        es_atp_valid_did(b->did, b->did_len))
        chain_mark_desynced(g->chain, b->did, b->did_len, b->has_seq ? b->seq : 0,
                            es_atp_error_name(b->error));
}

static bool untracked(ingester *g, const es_atp_batch *b)
{
    return g->cfg->tracked_only && g->tracked != NULL && b->did != NULL && b->did_len > 0 &&
           !tracked_contains(g->tracked, b->did, b->did_len);
}

/* --require-backfill: a repository the store knows nothing of is queued
 * for a backfill (and held from now on) when one of its frames comes. */
static bool backfill_first(ingester *g, const es_atp_batch *b)
{
    if (b->did == NULL || !es_atp_valid_did(b->did, b->did_len) ||
        !chain_unknown(g->chain, b->did, b->did_len))
        return false;
    es_status s = resyncs_queue(g->rs, b->did, b->did_len, false);
    if (s != ES_OK) {
        ingest_log_line l;
        ingest_log_begin(&l, LOG_WARN, "backfill not queued: the frame is stored without it");
        ingest_log_strn(&l, "did", b->did, b->did_len);
        ingest_log_str(&l, "error", es_last_error());
        ingest_log_end(&l);
    }
    return s == ES_OK;
}

/* One decoded frame, in source order: logged, skipped by the cursor, held
 * for a resync, or handed to offer_checked. `again`: the same frame after
 * the sink was full — its logs, seq and refusal were handled the first
 * time. */
static ingest_take_result offer_decoded(ingester *g, const ingest_decoded *d, bool again)
{
    es_status s = d->status;
    const es_atp_batch *b = &d->batch;
    if (s == ES_ERR_NOMEM) { /* not the frame's fault: never skip it (the cursor stays before it) */
        es_error(s, "%s", d->error);
        es_cli_fail(s, "decoding a frame");
        return INGEST_FAILED;
    }
    if (!again) {
        if (s != ES_OK)
            ingest_log_refused(b, d->error);
        else
            ingest_log_notice(b);
        if (s == ES_OK && b->kind == ES_ATP_KIND_ERROR) {
            snprintf(g->error_name, sizeof g->error_name, "%s", b->name ? b->name : "");
            return INGEST_ERROR_FRAME;
        }
        if (b->has_seq && (!g->has_last_seq || b->seq > g->last_seq)) {
            g->last_seq = b->seq;
            g->has_last_seq = true;
        }
        /* A file replayed after a restart: what the cursor covers is stored. */
        if (s == ES_OK && g->start.found && b->has_seq && b->seq <= g->start.position) {
            g->skipped_by_cursor++;
            return INGEST_TAKEN;
        }
        if (s != ES_OK)
            refused_desyncs(g, b);
    }
    /* --tracked-only: a repository not tracked stores nothing (a unit
     * without events: the cursor passes it). */
    bool stored;
    if (s == ES_OK && untracked(g, b)) {
        g->skipped_untracked++;
        es_atp_batch none = *b;
        none.count = 0;
        return offer_checked(g, &none, false, d->frame, d->frame_len, false, &stored);
    }
    /* A repository being resynced: its live frames wait for the snapshot. */
    if (s == ES_OK && g->rs != NULL && resyncs_divert(g->rs, b, d->frame, d->frame_len))
        return INGEST_TAKEN;
    if (s == ES_OK && g->cfg->require_backfill && g->rs != NULL && backfill_first(g, b) &&
        resyncs_divert(g->rs, b, d->frame, d->frame_len))
        return INGEST_TAKEN;
    return offer_checked(g, b, s == ES_OK, d->frame, d->frame_len, false, &stored);
}

/* A frame held during its repository's resync, let go after the snapshot:
 * decoded (and verified) again, then decided about as any frame. */
static resyncs_released release_frame(void *ctx, const uint8_t *frame, size_t len)
{
    ingester *g = ctx;
    es_arena_reset(g->release_arena);
    es_atp_batch b;
    es_status s = ingest_workers_decode_here(g->workers, frame, len, g->release_arena, &b);
    if (s != ES_OK) {
        ingest_log_refused(&b, es_last_error());
        if (s != ES_ERR_NOMEM)
            refused_desyncs(g, &b);
        return RESYNCS_DONE;
    }
    bool stored;
    ingest_take_result r = offer_checked(g, &b, true, frame, len, true, &stored);
    if (r == INGEST_FULL)
        return RESYNCS_FULL;
    return stored ? RESYNCS_OFFERED : RESYNCS_DONE;
}

/* Frees every slot without offering its frame: the cursor stays before them. */
static size_t drop_decoding(ingester *g)
{
    size_t n = ingest_workers_held(g->workers);
    for (size_t i = 0; i < n; i++)
        ingest_workers_release(g->workers);
    g->head_again = false;
    return n;
}

/* Offers the decoded frames in source order, waiting up to wait_ms for
 * each; stops at the first still being decoded, a full sink (the frame
 * stays first, offered again later), an error frame (the frames behind it
 * are dropped: the stream ends there) or a failure. */
static void offer_ready(ingester *g, int64_t wait_ms)
{
    while (g->outcome == INGEST_TAKEN) {
        const ingest_decoded *d = ingest_workers_head(g->workers, wait_ms);
        if (d == NULL)
            return;
        ingest_take_result r = offer_decoded(g, d, g->head_again);
        g->head_again = r == INGEST_FULL;
        if (r == INGEST_FULL)
            return;
        ingest_stats_add(&g->dec_stats, &d->delta);
        ingest_workers_release(g->workers);
        if (r != INGEST_TAKEN) {
            g->outcome = r;
            if (r == INGEST_ERROR_FRAME)
                drop_decoding(g);
        }
    }
}

bool ingester_denied(const ingester *g)
{
    return g->denied;
}

ingest_take_result ingester_outcome(ingester *g)
{
    ingest_take_result r = g->outcome;
    if (r == INGEST_ERROR_FRAME)
        g->outcome = INGEST_TAKEN; /* reported once: a relay reconnects */
    return r;
}

size_t ingester_decoding(const ingester *g)
{
    return ingest_workers_held(g->workers);
}

ingest_take_result ingester_take(ingester *g, const uint8_t *frame, size_t len)
{
    offer_ready(g, 0);
    ingest_take_result r = ingester_outcome(g);
    if (r != INGEST_TAKEN)
        return r;
    es_status s = ingest_workers_submit(g->workers, frame, len);
    if (s == ES_ERR_AGAIN)
        return INGEST_FULL;
    if (s != ES_OK) {
        es_cli_fail(s, "keeping a frame");
        g->outcome = INGEST_FAILED;
        return INGEST_FAILED;
    }
    offer_ready(g, 0); /* with no decoding threads: decoded already, offered now */
    return ingester_outcome(g);
}

bool ingester_last_seq(const ingester *g, uint64_t *seq)
{
    *seq = g->last_seq;
    return g->has_last_seq;
}

const char *ingester_error_name(const ingester *g)
{
    return g->error_name;
}

void ingester_on_wake(ingester *g, void (*fn)(void *ctx), void *ctx)
{
    es_sink_on_wake(g->sink, fn, ctx);
    ingest_workers_on_ready(g->workers, fn, ctx);
}

void ingester_wait(ingester *g, int64_t timeout_ms)
{
    /* The oldest frame still decoding holds the others: wait for it — for
     * half of the ring when it is full (one wake-up for many frames). Once
     * decoded, only the sink's room (an acknowledgement) lets things move. */
    size_t held = ingest_workers_held(g->workers);
    if (held > 0 && !g->head_again && g->outcome == INGEST_TAKEN) {
        ingest_workers_wait(g->workers, held >= g->room_slots ? (held + 1) / 2 : 1, timeout_ms);
        return;
    }
    es_sink_wait(g->sink, timeout_ms); /* a timeout is no news, not a failure */
}

/* ---- the stats line ----------------------------------------------------------- */

static void append_count(char *buf, size_t size, const char *name, uint64_t n)
{
    size_t used = strlen(buf);
    if (n > 0 && used < size)
        snprintf(buf + used, size - used, "%s%s:%" PRIu64, used ? "," : "", name, n);
}

static void log_chain_stats(ingester *g, ingest_log_line *l)
{
    chain_stats c;
    chain_get_stats(g->chain, &c);
    ingest_log_u64(l, "skipped_old_rev", c.old_rev);
    ingest_log_u64(l, "skipped_inactive", c.inactive);
    ingest_log_u64(l, "skipped_desynced", c.desynced);
    ingest_log_u64(l, "chain_break", c.chain_break);
    ingest_log_u64(l, "repos_desynced", c.repos_desynced);
    ingest_log_u64(l, "repos_cached", c.repos_cached);
    if (g->rs == NULL)
        return;
    resyncs_stats r;
    resyncs_get_stats(g->rs, &r);
    ingest_log_u64(l, "resyncs_queued", r.queued_total);
    ingest_log_u64(l, "resyncs_applied", r.backfill.applied);
    ingest_log_u64(l, "resyncs_failed", r.backfill.failed);
    ingest_log_u64(l, "resyncs_running", r.backfill.running);
    ingest_log_u64(l, "resyncs_waiting_retry", r.backfill.waiting);
    ingest_log_u64(l, "held_frames", r.hold.frames);
    ingest_log_u64(l, "held_total", r.hold.held);
    ingest_log_u64(l, "held_released", r.hold.released);
    ingest_log_u64(l, "held_dropped", r.hold.dropped);
}

/* Refused frames by reason and failed appends by status: "signature:2,hash:1". */
static void error_counts(const es_atp_stats *d, const es_sink_stats *w, char *buf, size_t size)
{
    buf[0] = '\0';
    for (int k = 1; k < ES_ATP_ERR_COUNT; k++)
        append_count(buf, size, es_atp_error_name((es_atp_error)k), d->errors[k]);
    for (int k = 1; k < ES_SINK_STATUS_SLOTS; k++)
        append_count(buf, size, es_status_text((es_status)k), w->failures[k]);
}

static void stats_line(ingester *g, int64_t now)
{
    const es_atp_stats *d = &g->dec_stats;
    es_sink_stats w;
    es_sink_get_stats(g->sink, &w);
    double secs = (double)(now - g->last_stats_ms) / 1000.0;
    if (secs <= 0)
        secs = 1e-3;
    char errors[512];
    error_counts(d, &w, errors, sizeof errors);
    ingest_log_line l;
    ingest_log_begin(&l, LOG_INFO, "stats");
    ingest_log_f64(&l, "frames_per_s", (double)(d->frames - g->last_dec.frames) / secs, 0);
    ingest_log_f64(&l, "ops_per_s", (double)(w.events - g->last_sink.events) / secs, 0);
    ingest_log_f64(&l, "bytes_per_s", (double)(d->bytes - g->last_dec.bytes) / secs, 0);
    if (w.last_time_ns > 0)
        ingest_log_f64(&l, "lag_s", (double)(es_cli_now_ns() - w.last_time_ns) / 1e9, 1);
    ingest_log_u64(&l, "frames", d->frames);
    ingest_log_u64(&l, "events", w.events);
    ingest_log_u64(&l, "in_flight", w.inflight);
    ingest_log_u64(&l, "held", w.held);
    ingest_log_u64(&l, "retries", w.retries);
    if (w.has_watermark)
        ingest_log_u64(&l, "cursor", w.watermark);
    ingest_log_str(&l, "errors", errors[0] ? errors : "none");
    log_chain_stats(g, &l);
    ingest_log_end(&l);
    g->last_dec = *d;
    g->last_sink = w;
    g->last_stats_ms = now;
}

/* Listed repositories go to the resyncs while fewer than LIST_AHEAD wait
 * for a worker: memory stays bounded however many the host lists. */
static void drain_listing(ingester *g)
{
    resyncs_stats st;
    resyncs_get_stats(g->rs, &st);
    if (st.backfill.queued < LIST_AHEAD)
        listing_drain(g->list, LIST_AHEAD - st.backfill.queued, resyncs_listed, g->rs);
}

/* The metrics text, rendered here (the counters are this thread's) and
 * handed to the server's thread. */
static void publish_metrics(ingester *g, int64_t now)
{
    es_sink_stats w;
    es_sink_get_stats(g->sink, &w);
    chain_stats c;
    chain_get_stats(g->chain, &c);
    resyncs_stats r;
    if (g->rs != NULL)
        resyncs_get_stats(g->rs, &r);
    ingest_metrics_in in = {.dec = &g->dec_stats,
                            .sink = &w,
                            .chain = &c,
                            .rs = g->rs != NULL ? &r : NULL,
                            .skipped_by_cursor = g->skipped_by_cursor,
                            .skipped_untracked = g->skipped_untracked,
                            .tracked = g->tracked ? (int64_t)tracked_count(g->tracked) : -1,
                            .now_ns = es_cli_now_ns()};
    es_buf b = ES_BUF_INIT;
    ingest_metrics_render(&b, &in);
    if (es_cli_metrics_publish(g->metrics, (const char *)b.data, b.len) != ES_OK)
        ingest_log_msg(LOG_WARN, "metrics not published", es_last_error());
    es_buf_free(&b);
    g->last_metrics_ms = now;
}

void ingester_tick(ingester *g)
{
    offer_ready(g, 0);
    es_sink_poll(g->sink);
    ingest_log_summarize(false); /* the lines of frames not logged, once a while */
    if (g->rs != NULL)
        resyncs_tick(g->rs, release_frame, g);
    if (g->list != NULL)
        drain_listing(g);
    if (g->tracked != NULL && tracked_poll(g->tracked, on_tracked, g) != ES_OK)
        ingest_log_msg(LOG_WARN, "following the tracked repositories", es_last_error());
    uint64_t watermark, limit;
    /* the cursor never passes a frame held for a resync, or released and
     * not yet stored: a crash replays it */
    if (es_sink_watermark(g->sink, &watermark)) {
        if (g->rs != NULL && resyncs_cursor_limit(g->rs, &limit) && limit < watermark)
            watermark = limit;
        ingest_cursor_offer(g->cursor, watermark);
    }
    es_sink_stats st;
    es_sink_get_stats(g->sink, &st);
    chain_tick(g->chain, st.offered, st.settled);
    int64_t now = es_cli_monotonic_ms();
    if (g->cfg->stats_interval_ms > 0 && now - g->last_stats_ms >= g->cfg->stats_interval_ms)
        stats_line(g, now);
    if (g->metrics != NULL && now - g->last_metrics_ms >= METRICS_INTERVAL_MS)
        publish_metrics(g, now);
}

static void final_report(ingester *g)
{
    const es_atp_stats *d = &g->dec_stats;
    es_sink_stats w;
    es_sink_get_stats(g->sink, &w);
    double secs = (double)(es_cli_monotonic_ms() - g->started_ms) / 1000.0;
    ingest_log_summarize(true);
    uint64_t refused = 0;
    for (int k = 0; k < ES_ATP_ERR_COUNT; k++)
        refused += d->errors[k];
    ingest_log_line l;
    ingest_log_begin(&l, LOG_INFO, "done");
    ingest_log_u64(&l, "frames", d->frames);
    ingest_log_u64(&l, "commits", d->by_kind[ES_ATP_KIND_COMMIT]);
    ingest_log_u64(&l, "refused", refused);
    char errors[512];
    error_counts(d, &w, errors, sizeof errors);
    ingest_log_str(&l, "errors", errors[0] ? errors : "none");
    ingest_log_u64(&l, "appends", w.appends);
    ingest_log_u64(&l, "events", w.events);
    ingest_log_u64(&l, "duplicates", w.duplicates);
    ingest_log_u64(&l, "retries", w.retries);
    ingest_log_u64(&l, "dropped", w.dropped);
    ingest_log_u64(&l, "skipped_by_cursor", g->skipped_by_cursor);
    if (g->cfg->tracked_only)
        ingest_log_u64(&l, "skipped_untracked", g->skipped_untracked);
    log_chain_stats(g, &l);
    ingest_log_f64(&l, "seconds", secs, 3);
    ingest_log_f64(&l, "commits_per_s",
                   secs > 0 ? (double)d->by_kind[ES_ATP_KIND_COMMIT] / secs : 0, 0);
    ingest_log_f64(&l, "events_per_s", secs > 0 ? (double)w.events / secs : 0, 0);
    if (w.has_watermark)
        ingest_log_u64(&l, "cursor", w.watermark);
    ingest_log_end(&l);
}

/* The frames still decoding are finished and offered (within the drain
 * timeout); any left — the sink stayed full, a failure — are dropped before
 * the cursor. Returns how many. */
static size_t finish_decoding(ingester *g, int64_t give_up)
{
    ingester_tick(g);
    while (ingest_workers_held(g->workers) > 0 && g->outcome == INGEST_TAKEN &&
           es_cli_monotonic_ms() < give_up) {
        ingester_wait(g, WAIT_SLICE_MS);
        ingester_tick(g);
    }
    size_t dropped = drop_decoding(g);
    if (dropped > 0) {
        ingest_log_line l;
        ingest_log_begin(&l, LOG_ERROR, "frames not offered: the next run reads them again");
        ingest_log_u64(&l, "frames", dropped);
        ingest_log_end(&l);
    }
    return dropped;
}

/* At the end of a source: the resyncs queued or running finish, and their
 * held frames are released (a signal stops the wait; retries waiting for
 * their time are left to the next run). */
static bool resyncing(ingester *g)
{
    return g->rs != NULL && (resyncs_busy(g->rs) || (g->list != NULL && !listing_done(g->list)));
}

static void finish_resyncs(ingester *g)
{
    if (!resyncing(g))
        return;
    ingest_log_msg(LOG_INFO, "waiting for the resyncs in progress", NULL);
    while (resyncing(g) && !*g->stop && g->outcome == INGEST_TAKEN) {
        ingester_wait(g, WAIT_SLICE_MS);
        ingester_tick(g);
    }
}

int ingester_finish(ingester *g)
{
    int64_t give_up = es_cli_monotonic_ms() + g->cfg->drain_timeout_ms;
    size_t dropped = finish_decoding(g, give_up);
    finish_resyncs(g);
    give_up = es_cli_monotonic_ms() + g->cfg->drain_timeout_ms;
    while (!g->denied && !es_sink_idle(g->sink) && es_cli_monotonic_ms() < give_up) {
        es_sink_wait(g->sink, WAIT_SLICE_MS);
        ingester_tick(g); /* the cursor and the stats go on while draining */
    }
    int code = ES_EXIT_OK;
    if (!g->denied && !es_sink_idle(g->sink)) {
        es_sink_stats w;
        es_sink_get_stats(g->sink, &w);
        ingest_log_line l;
        ingest_log_begin(&l, LOG_ERROR, "frames still unacknowledged: the next run sends them");
        ingest_log_u64(&l, "held", w.held);
        ingest_log_i64(&l, "drain_timeout_ms", g->cfg->drain_timeout_ms);
        ingest_log_end(&l);
        code = ES_EXIT_SERVER;
    }
    ingest_take_result r = ingester_outcome(g);
    if (r == INGEST_ERROR_FRAME)
        code = INGEST_EXIT_ERROR_FRAME;
    else if (g->denied)
        code = ES_EXIT_PERMISSION;
    else if (r == INGEST_FAILED || (dropped > 0 && code == ES_EXIT_OK))
        code = ES_EXIT_SERVER;
    final_report(g);
    return code;
}

/* ---- the file source ----------------------------------------------------------- */

/* Whether a capture's first frame is a firehose frame: a file that is not a
 * capture at all is refused before a store is created for it. Only a frame
 * whose CBOR or header does not decode says so; a later fault of the frame
 * (a bad block, a missing record) is the ingester's to log and skip. */
static es_status check_first_frame(const ingest_config *cfg, const uint8_t *frame, size_t len)
{
    es_atp_options o = {.filter = NULL};
    es_atp_limits_defaults(&o.limits);
    es_atp_decoder *dec = NULL;
    es_arena *arena = NULL;
    es_status s = es_atp_decoder_create(&o, &dec);
    if (s == ES_OK)
        s = es_arena_create(FRAME_ARENA_LIMIT, &arena);
    es_atp_batch b = {0};
    if (s == ES_OK && (s = es_atp_decode(dec, frame, len, arena, &b)) != ES_OK &&
        s != ES_ERR_NOMEM) {
        if (b.error == ES_ATP_ERR_CBOR || b.error == ES_ATP_ERR_HEADER)
            s = es_error(ES_ERR_DECODE,
                         "%s is not a firehose capture: its first frame is not a firehose frame "
                         "(%s: %s)",
                         cfg->file, es_atp_error_name(b.error), es_last_error());
        else
            s = ES_OK;
    }
    es_arena_destroy(arena);
    es_atp_decoder_destroy(dec);
    return s;
}

int ingest_file(const ingest_config *cfg, volatile sig_atomic_t *stop)
{
    ingest_source *src = NULL;
    es_atp_limits lim = {0};
    es_atp_limits_defaults(&lim);
    es_status s = ingest_source_file(cfg->file, lim.max_frame_bytes, &src);
    if (s != ES_OK)
        return es_cli_fail(s, "opening the capture");
    /* The first frame is read and checked before anything is created. */
    const uint8_t *frame = NULL;
    size_t len = 0;
    s = ingest_source_next(src, &frame, &len);
    if (s == ES_OK)
        s = check_first_frame(cfg, frame, len);
    if (s != ES_OK && s != ES_ERR_NOT_FOUND) {
        ingest_source_close(src);
        return es_cli_fail(s, "reading the capture");
    }
    bool have_frame = s == ES_OK, at_end = s == ES_ERR_NOT_FOUND;
    ingester *g = NULL;
    int code = ingester_open(cfg, cfg->file, stop, &g);
    if (code != ES_EXIT_OK) {
        ingest_source_close(src);
        return code;
    }
    while (!*stop && !at_end) {
        ingester_tick(g);
        if (!ingester_room(g)) { /* backpressure: the file waits */
            ingester_wait(g, WAIT_SLICE_MS);
            continue;
        }
        s = have_frame ? ES_OK : ingest_source_next(src, &frame, &len);
        have_frame = false;
        if (s == ES_ERR_NOT_FOUND) {
            s = ES_OK;
            break;
        }
        if (s != ES_OK) {
            code = es_cli_fail(s, "reading the capture");
            break;
        }
        ingest_take_result r = ingester_take(g, frame, len);
        if (r == INGEST_ERROR_FRAME) {
            code = INGEST_EXIT_ERROR_FRAME;
            break;
        }
        if (r == INGEST_FAILED || r == INGEST_FULL) { /* full: cannot be, room was checked */
            code = ES_EXIT_SERVER;
            break;
        }
    }
    int drained = ingester_finish(g);
    if (code == ES_EXIT_OK || drained == ES_EXIT_PERMISSION)
        code = drained;
    if (code == ES_EXIT_OK && !cfg->exit_at_end && !*stop) {
        ingest_log_msg(LOG_INFO, "end of the capture; waiting for SIGINT or SIGTERM", NULL);
        while (!*stop) {
            ingester_wait(g, 500);
            ingester_tick(g); /* resyncs still run */
        }
    }
    ingester_close(g);
    ingest_source_close(src);
    return code;
}
