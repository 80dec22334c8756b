/* es-tool export: a lossless backup of a store's events (backup.h), streamed
 * to stdout event by event. */
#include <string.h>
#include <unistd.h>

#include "backup.h"
#include "estool.h"
#include "progress.h"

static const es_cli_option options[] = {
    TOOL_OPT_HELP,
    TOOL_OPT_FILTER,
    {"quiet", 'q', false, OPT_QUIET},
    {NULL, 0, false, 0},
};

typedef struct exporter {
    uint64_t up_to;
    es_arena *arena;
    es_buf line;
    uint64_t count, first_pos;
    es_progress progress;
} exporter;

static es_status on_event(const es_event *ev, void *closure)
{
    exporter *x = closure;
    es_raw_event raw;
    es_status s = es_event_raw(ev, &raw);
    if (s != ES_OK)
        return s;
    es_arena_reset(x->arena);
    es_buf_clear(&x->line);
    s = backup_write_event(x->arena, &raw, &x->line);
    if (s != ES_OK)
        return s;
    if (!tool_write(x->line.data, x->line.len)) {
        es_progress_finish(&x->progress);
        tool_exit_now(ES_EXIT_OK); /* the reader left: its choice (see tool_exit_now) */
    }
    x->count++;
    uint64_t seq = es_event_seq(ev);
    es_progress_update(&x->progress, x->count, seq > x->first_pos ? seq - x->first_pos : 0);
    if (x->up_to != 0 && seq >= x->up_to) { /* the last one: close the file and end here */
        es_progress_finish(&x->progress);
        es_buf_clear(&x->line);
        s = backup_write_end(&x->line, x->count);
        if (s != ES_OK || !tool_write(x->line.data, x->line.len) || !tool_flush())
            return s != ES_OK ? s : ES_ERR_IO;
        tool_exit_now(ES_EXIT_OK);
    }
    return ES_OK;
}

static es_status export_all(es_store *st, const tool_filter *f, exporter *x)
{
    es_buf_clear(&x->line);
    es_store_info info;
    es_status s = es_store_info_get(st, &info);
    if (s == ES_OK)
        s = backup_write_start(&x->line, &info.config);
    if (s == ES_OK && !tool_write(x->line.data, x->line.len))
        s = ES_ERR_IO;
    if (s == ES_OK)
        s = es_evolve(st, &f->filter, &f->bounds, on_event, x, NULL);
    es_progress_finish(&x->progress);
    /* The closing line only after every event: a cut-off export shows it. */
    es_buf_clear(&x->line);
    if (s == ES_OK)
        s = backup_write_end(&x->line, x->count);
    if (s == ES_OK && (!tool_write(x->line.data, x->line.len) || !tool_flush()))
        s = ES_ERR_IO;
    return s;
}

static int run(int argc, char **argv)
{
    tool_args a;
    bool quiet = false;
    int rc =
        tool_parse_store_args(&tool_cmd_export, argc, argv, options, true,
                              "es-tool export STORE > backup.jsonl", tool_flag_option, &quiet, &a);
    if (rc != TOOL_PROCEED)
        return rc;
    const es_cli_conn conn = a.conn;
    const tool_filter f = a.filter;
    const char *store = a.store;
    natsConnection *nc = NULL;
    es_store *st = NULL;
    rc = tool_open(&conn, store, &nc, &st);
    if (rc != ES_EXIT_OK)
        return rc;
    exporter x;
    memset(&x, 0, sizeof x);
    x.up_to = f.bounds.up_to_seq;
    es_store_info info;
    uint64_t total = 0;
    if (!quiet && isatty(STDERR_FILENO) && es_store_info_get(st, &info) == ES_OK) {
        x.first_pos = f.bounds.after_seq > info.first_seq
                          ? f.bounds.after_seq
                          : (info.first_seq ? info.first_seq - 1 : 0);
        uint64_t end = f.bounds.up_to_seq ? f.bounds.up_to_seq : info.last_seq;
        total = end > x.first_pos ? end - x.first_pos : 0;
    }
    es_progress_start(&x.progress, "export", total, !quiet);
    es_status s = es_arena_create(0, &x.arena);
    if (s == ES_OK)
        s = export_all(st, &f, &x);
    if (s == ES_ERR_IO && tool_output_closed()) /* the reader left: its choice */
        s = ES_OK;
    if (s != ES_OK)
        rc = es_cli_fail(s, "export incomplete");
    es_arena_destroy(x.arena);
    es_buf_free(&x.line);
    tool_close(nc, st);
    return rc;
}

const tool_command tool_cmd_export = {
    "export",
    "write a lossless backup of a store's events to stdout",
    run,
    "Usage: es-tool export STORE [filters] > backup.jsonl\n"
    "\n"
    "Writes every event matching the filters, in order, with all its headers\n"
    "and its payload exactly as stored (compressed or encrypted payloads stay\n"
    "so), one JSON object a line, between an opening line (with the store's\n"
    "configuration, for import --create) and a closing line that counts the\n"
    "events: a file cut short is refused by import. The format\n"
    "is described in docs/es-tool.md. Stream sequences are not kept: they are\n"
    "the target store's to assign.\n"
    "\n"
    "Options:\n"
    "  -t, --type TYPE      entity type\n"
    "  -i, --id ID          entity id\n"
    "      --raw-id         take an --id that looks escaped (%XX) as it is: no warning\n"
    "  -e, --event EVENT    event type\n"
    "      --tenant TENANT  tenant (stores with tenancy)\n"
    "      --after SEQ      only events after stream sequence SEQ\n"
    "      --up-to SEQ      only events up to stream sequence SEQ\n"
    "  -q, --quiet          no progress line on stderr\n"
    "  -h, --help           this help\n"
    "\n"
    "Examples:\n"
    "  es-tool export bank > bank.jsonl\n"
    "  es-tool export bank --type account | zstd > accounts.jsonl.zst\n"
    "  es-tool export bank | es-tool import bank-copy\n",
};
