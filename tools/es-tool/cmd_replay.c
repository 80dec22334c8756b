/* es-tool replay: the events matching a filter, in order, then (--follow)
 * the new ones as they are appended, until interrupted. Output is streamed
 * event by event: nothing is buffered beyond stdio's own buffer. */
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "estool.h"
#include "progress.h"
#include "render.h"

enum { OPT_FOLLOW = 100, OPT_FORMAT, OPT_LIMIT };

static const es_cli_option options[] = {
    TOOL_OPT_HELP,
    TOOL_OPT_FILTER,
    {"follow", 'f', false, OPT_FOLLOW},
    {"format", 0, true, OPT_FORMAT},
    {"limit", 'n', true, OPT_LIMIT},
    {"quiet", 'q', false, OPT_QUIET},
    TOOL_OPT_MASTER_KEY,
    {NULL, 0, false, 0},
};

typedef struct replay {
    tool_renderer *renderer;
    uint64_t limit, up_to, count, first_pos;
    bool follow;
    es_progress progress;
    atomic_bool done;         /* follow: the watch has ended (limit, --up-to, error) */
    _Atomic es_status status; /* why it ended, ES_OK for a normal end */
} replay;

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void finish(replay *r, es_status s)
{
    atomic_store(&r->status, s);
    atomic_store(&r->done, true);
}

/* The replay has all it wants: end here (see tool_exit_now). */
static _Noreturn void done_early(replay *r)
{
    es_progress_finish(&r->progress);
    tool_exit_now(ES_EXIT_OK);
}

/* Each event, on the calling thread (evolve) or the watch's thread (follow). */
static es_status on_event(const es_event *ev, void *closure)
{
    replay *r = closure;
    uint64_t seq = es_event_seq(ev);
    if (r->up_to != 0 && seq > r->up_to) /* only a watch goes past --up-to */
        done_early(r);
    es_status s = tool_render(r->renderer, ev);
    if (s == ES_OK && r->follow && !tool_flush())
        s = ES_ERR_IO;
    if (s != ES_OK) {
        /* A closed stdout is the reader's way to say "enough": a normal end. */
        if (tool_output_closed())
            done_early(r);
        finish(r, s);
        return ES_ERR_ABORTED;
    }
    r->count++;
    es_progress_update(&r->progress, r->count, seq > r->first_pos ? seq - r->first_pos : 0);
    if ((r->limit != 0 && r->count >= r->limit) || (r->up_to != 0 && seq >= r->up_to))
        done_early(r);
    if (interrupted) {
        finish(r, ES_OK);
        return ES_ERR_ABORTED;
    }
    return ES_OK;
}

static void on_watch_error(es_status status, const char *text, bool final, void *closure)
{
    replay *r = closure;
    if (final) {
        if (!atomic_load(&r->done))
            finish(r, status);
        return;
    }
    es_cli_error("%s (retrying)", text && *text ? text : es_status_text(status));
}

static int follow(es_store *st, const tool_filter *f, replay *r)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    es_watch_options wo;
    es_watch_options_init(&wo);
    wo.filter = f->filter;
    wo.after_seq = f->bounds.after_seq;
    wo.no_wait = true;
    wo.on_event = on_event;
    wo.on_error = on_watch_error;
    wo.closure = r;
    es_watch *w = NULL;
    es_status s = es_watch_start(st, &wo, &w);
    if (s != ES_OK)
        return es_cli_fail(s, "starting the watch");
    while (!interrupted && !atomic_load(&r->done))
        es_cli_sleep_ms(50);
    s = atomic_load(&r->status);
    if (s == ES_OK) /* interrupted, or the watch has all it wants */
        done_early(r);
    es_watch_destroy(w); /* it ended by itself: nothing is streaming any more */
    return es_cli_fail(s, "watch");
}

/* The sequence range the progress line measures against. */
static void progress_start(es_store *st, const tool_filter *f, replay *r, bool quiet)
{
    es_store_info info;
    uint64_t total = 0;
    if (!quiet && isatty(STDERR_FILENO) && es_store_info_get(st, &info) == ES_OK) {
        uint64_t end = f->bounds.up_to_seq ? f->bounds.up_to_seq : info.last_seq;
        r->first_pos = f->bounds.after_seq > info.first_seq
                           ? f->bounds.after_seq
                           : (info.first_seq ? info.first_seq - 1 : 0);
        total = end > r->first_pos ? end - r->first_pos : 0;
    }
    es_progress_start(&r->progress, "replay", total, !quiet);
}

static int replay_history(es_store *st, const tool_filter *f, replay *r)
{
    es_status s;
    /* One entity: the direct-get fast path, no consumer. */
    bool one_entity =
        f->filter.entity_type && f->filter.entity_id && (!es_store_tenancy(st) || f->filter.tenant);
    if (one_entity)
        s = es_load(st, &f->filter, &f->bounds, on_event, r, NULL);
    else
        s = es_evolve(st, &f->filter, &f->bounds, on_event, r, NULL);
    es_progress_finish(&r->progress);
    if (s == ES_ERR_ABORTED)
        s = atomic_load(&r->status);
    if (s == ES_OK && !tool_flush() && !tool_output_closed())
        s = ES_ERR_IO;
    return s == ES_OK ? ES_EXIT_OK : es_cli_fail(s, NULL);
}

typedef struct replay_opts {
    replay *r;
    const char *format_name;
    bool quiet;
} replay_opts;

static int replay_option(int id, const char *value, void *ctx)
{
    replay_opts *o = ctx;
    switch (id) {
    case OPT_FOLLOW: o->r->follow = true; break;
    case OPT_FORMAT: o->format_name = value; break;
    case OPT_QUIET: o->quiet = true; break;
    case OPT_LIMIT:
        if (!es_cli_parse_u64(value, "--limit", &o->r->limit))
            return ES_EXIT_USAGE;
        break;
    }
    return ES_EXIT_OK;
}

static int run(int argc, char **argv)
{
    replay r;
    memset(&r, 0, sizeof r);
    replay_opts o = {&r, NULL, false};
    tool_args a;
    int rc = tool_parse_store_args(&tool_cmd_replay, argc, argv, options, true,
                                   "es-tool replay STORE", replay_option, &o, &a);
    if (rc != TOOL_PROCEED)
        return rc;
    es_cli_conn conn = a.conn;
    const tool_filter f = a.filter;
    const char *store = a.store, *format_name = o.format_name;
    const bool quiet = o.quiet;
    tool_format format = isatty(STDOUT_FILENO) ? FORMAT_PRETTY : FORMAT_JSONL;
    if (format_name != NULL && !tool_format_parse(format_name, &format))
        return es_cli_usage("--format is jsonl, pretty or raw, not '%.40s'", format_name);
    r.up_to = f.bounds.up_to_seq;
    if (r.follow) {
        conn.max_reconnect = -1;    /* a watch rides out any outage, */
        conn.report_outages = true; /* and says so on stderr */
    }

    natsConnection *nc = NULL;
    es_store *st = NULL;
    rc = tool_open(&conn, store, &nc, &st);
    if (rc != ES_EXIT_OK)
        return rc;
    if (tool_renderer_create(format, tool_stdout_colour(), &r.renderer) != ES_OK) {
        tool_close(nc, st);
        return es_cli_fail(ES_ERR_NOMEM, NULL);
    }
    if (r.follow) {
        rc = follow(st, &f, &r);
    } else {
        progress_start(st, &f, &r, quiet);
        rc = replay_history(st, &f, &r);
    }
    tool_renderer_destroy(r.renderer);
    tool_close(nc, st);
    return rc;
}

const tool_command tool_cmd_replay = {
    "replay",
    "print the events of a store, in order (--follow: and the new ones)",
    run,
    "Usage: es-tool replay STORE [options]\n"
    "\n"
    "Prints every event matching the filter in stream order; with --follow it\n"
    "keeps printing new events as they are appended, until interrupted.\n"
    "\n"
    "Options:\n"
    "  -t, --type TYPE      entity type\n"
    "  -i, --id ID          entity id (as it is: no escaping needed)\n"
    "      --raw-id         take an --id that looks escaped (%XX) as it is: no warning\n"
    "  -e, --event EVENT    event type\n"
    "      --tenant TENANT  tenant (stores with tenancy)\n"
    "      --after SEQ      only events after stream sequence SEQ\n"
    "      --up-to SEQ      only events up to stream sequence SEQ (inclusive)\n"
    "  -f, --follow         keep going: print new events as they are appended\n"
    "  -n, --limit N        stop after N events\n"
    "      --format FORMAT  jsonl (default when stdout is not a terminal): one JSON\n"
    "                       object a line; pretty (default on a terminal); raw: the\n"
    "                       payload bytes only\n"
    "  -q, --quiet          no progress line on stderr\n" TOOL_MASTER_KEY_HELP
    "  -h, --help           this help\n"
    "\n"
    "JSON fields: seq, subject, tenant (with tenancy), type, id, event, event_id,\n"
    "time, codec, meta, and data decoded by its codec (dag-cbor and cbor in the\n"
    "atproto JSON form with $link/$bytes; binary as {\"$bytes\": base64}); when the\n"
    "data cannot be read, data_status and data_error say why instead (\"data\n"
    "shredded\", \"no master key\", \"malformed data\"...), never garbage.\n"
    "\n"
    "Examples:\n"
    "  es-tool replay bank\n"
    "  es-tool replay bank --type account --id acc-42 --format jsonl | jq .data\n"
    "  es-tool replay bank --event Deposited --after 1000 --limit 10\n"
    "  es-tool replay bank --follow | grep Withdrawn\n"
    "  es-tool replay files --id report-7 --format raw > report.pdf\n",
};
