/* es-tool import: appends the events of an export to a store, with their
 * original ids, headers and payloads. Two passes: the whole input is read
 * and checked first (kept in a temporary file when it is a pipe), so a
 * malformed or cut-off file stores nothing; then the events are published,
 * pipelined, and JetStream's duplicate detection on their ids makes a
 * re-run within the store's duplicate window skip what is there already. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup.h"
#include "estool.h"
#include "progress.h"

#define HEADER_ROOM (1 << 20) /* beyond the payload's base64, for headers and JSON */

enum { OPT_INPUT = 100, OPT_CREATE };

static const es_cli_option options[] = {
    TOOL_OPT_HELP,
    {"input", 0, true, OPT_INPUT},
    {"create", 0, false, OPT_CREATE},
    {"quiet", 'q', false, OPT_QUIET},
    {NULL, 0, false, 0},
};

typedef struct importer {
    FILE *in;
    size_t line_max;
    es_buf line;
    es_arena *arena;
    bool tenancy;
    bool creating;          /* --create and no such store: tenancy and config from the file */
    es_store_config config; /* creating: what the store is created with */
    uint64_t events;
    size_t max_payload, largest;
    /* outcome, written by the library's acknowledgement thread */
    pthread_mutex_t mu;
    uint64_t stored, duplicates, failed;
    es_status first_status;
    char first_error[256];
} importer;

/* Reads one line (without its newline) of at most line_max bytes: ES_OK,
 * ES_ERR_NOT_FOUND at the end of the input, ES_ERR_LIMIT for a longer line. */
static es_status read_line(importer *im, uint64_t number)
{
    es_buf_clear(&im->line);
    int c;
    while ((c = getc(im->in)) != EOF && c != '\n') {
        if (im->line.len >= im->line_max)
            return es_error(ES_ERR_LIMIT, "line %" PRIu64 " is longer than %zu bytes", number,
                            im->line_max);
        if (es_buf_append_byte(&im->line, (uint8_t)c) != ES_OK)
            return es_error(ES_ERR_NOMEM, "out of memory");
    }
    if (ferror(im->in))
        return es_error(ES_ERR_IO, "reading the input: %s", strerror(errno));
    return c == EOF && im->line.len == 0 ? ES_ERR_NOT_FOUND : ES_OK;
}

/* Parses line `number` into *out; errors name the line. */
static es_status next_line(importer *im, uint64_t number, backup_line *out)
{
    es_status s = read_line(im, number);
    if (s != ES_OK)
        return s;
    es_arena_reset(im->arena);
    s = backup_parse_line((const char *)im->line.data, im->line.len, im->tenancy, im->arena, out);
    if (s != ES_OK)
        return tool_error_chain(s, "line %" PRIu64, number);
    if (out->kind == BACKUP_EVENT && out->event.payload_len > im->max_payload)
        return es_error(ES_ERR_TOO_LARGE,
                        "line %" PRIu64 ": %zu bytes of data; the store takes %zu", number,
                        out->event.payload_len, im->max_payload);
    if (out->kind == BACKUP_EVENT && out->event.payload_len > im->largest)
        im->largest = out->event.payload_len;
    return ES_OK;
}

/* Creating: the store to make is the one the opening line describes (a
 * version 1 file gives its tenancy only: the defaults otherwise). */
static void take_config(importer *im, const backup_line *ln)
{
    if (ln->has_config) {
        im->config = ln->config;
    } else {
        es_store_config_init(&im->config);
        im->config.tenancy = ln->tenancy;
    }
    im->tenancy = ln->tenancy;
}

/* Pass 1: the whole input is a valid export for this store. A pipe is
 * copied to a temporary file on the way, for pass 2. */
static es_status check_input(importer *im, const char *store)
{
    backup_line *ln = malloc(sizeof *ln);
    if (ln == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    struct stat sb;
    FILE *spool = NULL;
    if (fstat(fileno(im->in), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        spool = tmpfile();
        if (spool == NULL) {
            free(ln);
            return es_error(ES_ERR_IO, "cannot make a temporary file: %s", strerror(errno));
        }
    }
    es_status s = ES_OK;
    uint64_t number = 0;
    bool started = false, ended = false;
    while (s == ES_OK) {
        s = next_line(im, ++number, ln);
        if (s == ES_ERR_NOT_FOUND) {
            s = ES_OK;
            break;
        }
        if (s == ES_OK && spool != NULL &&
            (fwrite(im->line.data, 1, im->line.len, spool) != im->line.len ||
             putc('\n', spool) == EOF))
            s = es_error(ES_ERR_IO, "writing the temporary file: %s", strerror(errno));
        if (s != ES_OK)
            break;
        if (ended)
            s = es_error(ES_ERR_DECODE, "line %" PRIu64 ": something after the closing line",
                         number);
        else if (!started && ln->kind != BACKUP_START)
            s = es_error(ES_ERR_DECODE, "line 1: not an es-tool export (no opening line)");
        else if (started && ln->kind == BACKUP_START)
            s = es_error(ES_ERR_DECODE, "line %" PRIu64 ": a second opening line", number);
        else if (ln->kind == BACKUP_START && im->creating)
            take_config(im, ln);
        else if (ln->kind == BACKUP_START && ln->tenancy != im->tenancy)
            s = es_error(ES_ERR_INVALID, "the export is from a store %s tenancy, store %s is %s",
                         ln->tenancy ? "with" : "without", store, im->tenancy ? "with" : "without");
        else if (ln->kind == BACKUP_END && ln->events != im->events)
            s = es_error(ES_ERR_DECODE,
                         "the closing line counts %" PRIu64 " events, the file has %" PRIu64,
                         ln->events, im->events);
        started = true;
        ended = ended || ln->kind == BACKUP_END;
        im->events += ln->kind == BACKUP_EVENT;
    }
    if (s == ES_OK && !ended)
        s = es_error(ES_ERR_DECODE, "the input ends without its closing line: cut short?");
    free(ln);
    if (s != ES_OK) {
        if (spool)
            fclose(spool);
        return s;
    }
    if (spool != NULL) {
        if (fflush(spool) != 0) {
            fclose(spool);
            return es_error(ES_ERR_IO, "writing the temporary file: %s", strerror(errno));
        }
        im->in = spool; /* the caller's input is done with; this one is ours */
    }
    rewind(im->in);
    return ES_OK;
}

/* ---- pass 2 -------------------------------------------------------------------- */

static void on_import(const es_import_result *r, void *closure)
{
    importer *im = closure;
    pthread_mutex_lock(&im->mu);
    if (r->status == ES_OK && r->duplicate) {
        im->duplicates++;
    } else if (r->status == ES_OK) {
        im->stored++;
    } else {
        im->failed++;
        if (im->first_status == ES_OK) {
            im->first_status = r->status;
            snprintf(im->first_error, sizeof im->first_error, "%s", r->error);
        }
    }
    pthread_mutex_unlock(&im->mu);
}

static es_status publish_all(importer *im, es_store *st, int64_t timeout_ms, bool quiet)
{
    backup_line *ln = malloc(sizeof *ln);
    es_status s = ln ? ES_OK : es_error(ES_ERR_NOMEM, "out of memory");
    es_progress progress;
    es_progress_start(&progress, "import", im->events, !quiet);
    uint64_t sent = 0;
    for (uint64_t number = 1; s == ES_OK; number++) {
        s = next_line(im, number, ln);
        if (s != ES_OK || ln->kind != BACKUP_EVENT)
            continue;
        s = es_import_async(st, &ln->event, on_import, im);
        if (s != ES_OK)
            s = tool_error_chain(s, "importing line %" PRIu64, number);
        sent++;
        es_progress_update(&progress, sent, sent);
    }
    if (s == ES_ERR_NOT_FOUND) /* the end of the input */
        s = ES_OK;
    /* Every import in flight is answered or expires within the timeout. */
    es_status f = es_append_flush(st, 2 * timeout_ms + 1000);
    if (s == ES_OK && f != ES_OK)
        s = es_error(ES_ERR_TIMEOUT, "not every event was acknowledged in time: run import again");
    es_progress_finish(&progress);
    free(ln);
    return s;
}

/* `created`: NULL without --create, else whether the store was made. */
static int report(importer *im, es_status s, const bool *created)
{
    if (s == ES_OK && im->failed > 0)
        s = es_error(im->first_status, "%" PRIu64 " events refused, the first: %s", im->failed,
                     im->first_error);
    printf("{\"events\":%" PRIu64 ",\"stored\":%" PRIu64 ",\"duplicates\":%" PRIu64 "%s%s}\n",
           im->events, im->stored, im->duplicates, created ? ",\"created\":" : "",
           created ? (*created ? "true" : "false") : "");
    return s == ES_OK ? ES_EXIT_OK : es_cli_fail(s, "import");
}

/* Creates the store the checked input describes. Its events must fit: a
 * target server with a smaller max payload than the source's refuses them,
 * and then the store, still empty, is deleted again. */
static es_status create_store(natsConnection *nc, const char *store, const es_store_options *so,
                              const importer *im, es_store **st)
{
    es_status s = es_store_create(nc, store, &im->config, so, st);
    if (s != ES_OK)
        return tool_error_chain(s, "creating store %s", store);
    size_t max = es_store_max_payload(*st);
    if (im->largest <= max)
        return ES_OK;
    es_store_destroy(*st);
    *st = NULL;
    es_store_delete(nc, store, so);
    return es_error(ES_ERR_TOO_LARGE,
                    "an event has %zu bytes of data; store %s takes %zu (it was created for "
                    "the import, and deleted again)",
                    im->largest, store, max);
}

typedef struct import_opts {
    const char *input;
    bool quiet, create;
} import_opts;

static int import_option(int id, const char *value, void *ctx)
{
    import_opts *o = ctx;
    if (id == OPT_INPUT)
        o->input = value;
    else if (id == OPT_QUIET)
        o->quiet = true;
    else if (id == OPT_CREATE)
        o->create = true;
    return ES_EXIT_OK;
}

/* Opens the store, or with --create prepares to create it when there is
 * none (im->creating). ES_OK or the failure. */
static es_status open_target(natsConnection *nc, const char *store, const es_store_options *so,
                             bool create, importer *im, es_store **st)
{
    es_status s = es_store_open(nc, store, so, st);
    if (s == ES_ERR_NOT_FOUND && create) {
        im->creating = true;
        im->max_payload = (size_t)64 << 20; /* checked against the store once it is made */
        return ES_OK;
    }
    if (s == ES_OK) {
        im->tenancy = es_store_tenancy(*st);
        im->max_payload = es_store_max_payload(*st);
    }
    return s;
}

static int run(int argc, char **argv)
{
    tool_args a;
    import_opts o = {NULL, false, false};
    int rc = tool_parse_store_args(&tool_cmd_import, argc, argv, options, false,
                                   "es-tool import STORE < backup.jsonl", import_option, &o, &a);
    if (rc != TOOL_PROCEED)
        return rc;
    const es_cli_conn conn = a.conn;
    const char *store = a.store, *input = o.input;
    FILE *in = input && strcmp(input, "-") != 0 ? fopen(input, "rb") : stdin;
    if (in == NULL) {
        es_cli_error("cannot open '%.200s': %s", input, strerror(errno));
        return ES_EXIT_USAGE;
    }
    natsConnection *nc = NULL;
    es_store *st = NULL;
    rc = tool_connect(&conn, &nc);
    if (rc != ES_EXIT_OK) {
        if (in != stdin)
            fclose(in);
        return rc;
    }
    es_store_options so;
    tool_store_options(&conn, &so);
    importer im;
    memset(&im, 0, sizeof im);
    pthread_mutex_init(&im.mu, NULL);
    im.in = in;
    es_status s = open_target(nc, store, &so, o.create, &im, &st);
    const bool opened = s == ES_OK, created = im.creating;
    size_t payload_max = im.max_payload < (size_t)64 << 20 ? im.max_payload : (size_t)64 << 20;
    im.line_max = payload_max / 3 * 4 + HEADER_ROOM;
    if (s == ES_OK)
        s = es_arena_create(2 * im.line_max, &im.arena);
    if (s == ES_OK)
        s = check_input(&im, store);
    if (s == ES_OK && im.creating)
        s = create_store(nc, store, &so, &im, &st);
    if (s == ES_OK) {
        s = publish_all(&im, st, conn.timeout_ms, o.quiet);
        rc = report(&im, s, o.create ? &created : NULL);
    } else {
        rc = es_cli_fail(s, opened ? "nothing imported" : NULL);
    }
    if (im.in != stdin)
        fclose(im.in);
    if (in != stdin && in != im.in)
        fclose(in);
    es_arena_destroy(im.arena);
    es_buf_free(&im.line);
    pthread_mutex_destroy(&im.mu);
    tool_close(nc, st);
    return rc;
}

const tool_command tool_cmd_import = {
    "import",
    "append the events of an export to a store",
    run,
    "Usage: es-tool import STORE [--input FILE] [--create] < backup.jsonl\n"
    "\n"
    "Appends every event of an export (es-tool export) to STORE, which must\n"
    "exist and have the same tenancy (or, with --create, is created with the\n"
    "configuration the export records), in the order of the file, with their\n"
    "original event ids, headers and payloads. The whole input is checked\n"
    "first: a malformed or cut-off file stores nothing. Events get new stream\n"
    "sequences; an event whose id the store has seen within its duplicate window\n"
    "is skipped, so an interrupted import can simply be run again (soon). Prints\n"
    "{\"events\":N,\"stored\":S,\"duplicates\":D}.\n"
    "\n"
    "Options:\n"
    "      --input FILE     read FILE instead of standard input\n"
    "      --create         create STORE when it does not exist, with the source\n"
    "                       store's configuration from the export's opening line\n"
    "                       (a version 1 export records its tenancy only: the\n"
    "                       defaults otherwise), once the whole input is checked;\n"
    "                       the output gets \"created\":true|false\n"
    "  -q, --quiet          no progress line on stderr\n"
    "  -h, --help           this help\n"
    "\n"
    "Examples:\n"
    "  es-tool create bank-restored && es-tool import bank-restored < bank.jsonl\n"
    "  es-tool import bank-copy --create --input bank.jsonl\n"
    "  es-tool export bank --server nats://old:4222 | es-tool import bank --server "
    "nats://new:4222\n",
};
