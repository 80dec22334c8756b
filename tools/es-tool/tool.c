/* Helpers shared by es-tool's commands (estool.h). */
#include "estool.h"
#include "idtext.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int tool_help(const tool_command *cmd)
{
    printf("%s\n%s", cmd->help, es_cli_conn_help);
    return ES_EXIT_OK;
}

/* ---- filters ----------------------------------------------------------------- */

void tool_filter_init(tool_filter *f)
{
    memset(f, 0, sizeof *f);
    es_filter_init(&f->filter);
}

int tool_filter_set(tool_filter *f, int id, const char *value)
{
    switch (id) {
    case OPT_TYPE: f->filter.entity_type = value; return 1;
    case OPT_ID: f->filter.entity_id = value; return 1;
    case OPT_EVENT: f->filter.event_type = value; return 1;
    case OPT_TENANT: f->filter.tenant = value; return 1;
    case OPT_AFTER:
        return es_cli_parse_u64(value, "--after", &f->bounds.after_seq) ? 1 : ES_CLI_ERROR;
    case OPT_TO: return es_cli_parse_u64(value, "--up-to", &f->bounds.up_to_seq) ? 1 : ES_CLI_ERROR;
    case OPT_RAW_ID: f->raw_id = true; return 1;
    default: return 0;
    }
}

static bool name_ok(const char *value, const char *what, bool entity_type)
{
    if (value == NULL || (entity_type ? es_valid_entity_type(value) : es_valid_name(value)))
        return true;
    es_cli_usage("invalid %s '%.64s': use [A-Za-z0-9_-], at most %d characters", what, value,
                 entity_type ? ES_ENTITY_TYPE_MAX : ES_NAME_MAX);
    return false;
}

bool tool_filter_valid(const tool_filter *f)
{
    if (!name_ok(f->filter.entity_type, "entity type", true) ||
        !name_ok(f->filter.event_type, "event type", false) ||
        !name_ok(f->filter.tenant, "tenant", false))
        return false;
    const char *id = f->filter.entity_id;
    if (id != NULL && (*id == '\0' || strlen(id) > ES_ID_MAX)) {
        es_cli_usage("an entity id is 1 to %d bytes", ES_ID_MAX);
        return false;
    }
    tool_id_check(id, "--id", f->raw_id, false); /* a read: a warning only */
    if (f->bounds.up_to_seq != 0 && f->bounds.up_to_seq <= f->bounds.after_seq) {
        es_cli_usage("--up-to %" PRIu64 " must be above --after %" PRIu64, f->bounds.up_to_seq,
                     f->bounds.after_seq);
        return false;
    }
    return true;
}

static const char *master_key_file;

int tool_next_option(es_cli_parser *p, es_cli_conn *conn, tool_filter *f)
{
    for (;;) {
        int id = es_cli_next(p);
        if (id == ES_CLI_END && es_cli_conn_resolve(conn) != ES_OK) {
            es_cli_fail(ES_ERR_INVALID, NULL); /* the command line and environment, complete */
            return ES_CLI_ERROR;
        }
        if (id == ES_CLI_END || id == ES_CLI_ERROR || id == ES_CLI_ARG)
            return id;
        if (id == OPT_MASTER_KEY) {
            master_key_file = p->value;
            continue;
        }
        int done = es_cli_conn_set(conn, id, p->value);
        if (done == 0 && f != NULL)
            done = tool_filter_set(f, id, p->value);
        if (done == ES_CLI_ERROR)
            return ES_CLI_ERROR;
        if (done == 0)
            return id;
    }
}

int tool_flag_option(int id, const char *value, void *ctx)
{
    (void)id;
    (void)value;
    *(bool *)ctx = true;
    return ES_EXIT_OK;
}

int tool_parse_store_args(const tool_command *cmd, int argc, char **argv,
                          const es_cli_option *options, bool with_filter, const char *usage,
                          tool_own_option own, void *ctx, tool_args *a)
{
    memset(a, 0, sizeof *a);
    snprintf(a->name, sizeof a->name, "es-tool %s", cmd->name);
    es_cli_conn_init(&a->conn, a->name);
    tool_filter_init(&a->filter);
    es_cli_parser p;
    es_cli_parser_init(&p, argc, argv, options);
    for (int id;
         (id = tool_next_option(&p, &a->conn, with_filter ? &a->filter : NULL)) != ES_CLI_END;) {
        int rc;
        switch (id) {
        case ES_CLI_ERROR: return ES_EXIT_USAGE;
        case OPT_HELP: return tool_help(cmd);
        case ES_CLI_ARG:
            if (a->store != NULL)
                return es_cli_usage("unexpected argument '%.40s'", p.value);
            a->store = p.value;
            break;
        default:
            rc = own ? own(id, p.value, ctx) : es_cli_usage("unexpected option");
            if (rc != ES_EXIT_OK)
                return rc;
        }
    }
    if (a->store == NULL)
        return es_cli_usage("which store? %s", usage);
    if (!tool_store_name_valid(a->store) || (with_filter && !tool_filter_valid(&a->filter)))
        return ES_EXIT_USAGE;
    return TOOL_PROCEED;
}

bool tool_store_name_valid(const char *name)
{
    if (es_valid_store_name(name))
        return true;
    es_cli_usage("invalid store name '%.64s': use [A-Za-z0-9_-], 1 to %d characters", name,
                 ES_STORE_NAME_MAX);
    return false;
}

/* ---- connection -------------------------------------------------------------- */

int tool_connect(const es_cli_conn *conn, natsConnection **nc)
{
    es_status s = es_cli_connect(conn, nc);
    if (s != ES_OK) {
        es_cli_fail(s, NULL);
        es_cli_disconnect(NULL);
        return es_cli_exit_code(s);
    }
    return ES_EXIT_OK;
}

void tool_store_options(const es_cli_conn *conn, es_store_options *opts)
{
    es_cli_store_options(conn, opts);
    opts->master_key_file = master_key_file ? master_key_file : getenv("ES_MASTER_KEY_FILE");
    if (opts->master_key_file != NULL && *opts->master_key_file == '\0')
        opts->master_key_file = NULL;
}

int tool_open(const es_cli_conn *conn, const char *store, natsConnection **nc, es_store **st)
{
    *st = NULL;
    int rc = tool_connect(conn, nc);
    if (rc != ES_EXIT_OK)
        return rc;
    es_store_options opts;
    tool_store_options(conn, &opts);
    es_status s = es_store_open(*nc, store, &opts, st);
    if (s != ES_OK) {
        rc = es_cli_fail(s, NULL);
        tool_close(*nc, NULL);
        *nc = NULL;
        return rc;
    }
    return ES_EXIT_OK;
}

void tool_close(natsConnection *nc, es_store *st)
{
    es_store_destroy(st);
    es_cli_disconnect(nc);
}

int tool_finish(es_status s, int rc, natsConnection *nc, es_store *st)
{
    if (s != ES_OK)
        rc = es_cli_fail(s, NULL);
    tool_close(nc, st);
    return rc;
}

/* ---- output ------------------------------------------------------------------ */

static bool out_closed;

void tool_output_init(void)
{
    /* A reader that goes away (`es-tool replay | head`) must end the command
     * quietly and promptly: see EPIPE on write instead of dying mid-write. */
    signal(SIGPIPE, SIG_IGN);
}

bool tool_output_closed(void)
{
    return out_closed;
}

bool tool_write(const void *data, size_t len)
{
    if (out_closed)
        return false;
    if (len > 0 && fwrite(data, 1, len, stdout) != len)
        out_closed = true;
    return !out_closed;
}

bool tool_flush(void)
{
    if (!out_closed && fflush(stdout) != 0)
        out_closed = true;
    return !out_closed;
}

void tool_exit_now(int code)
{
    tool_flush();
    fflush(stderr);
    _exit(code);
}

es_status tool_print_json(json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    bool ok = text && tool_write(text, strlen(text)) && tool_write("\n", 1) && tool_flush();
    free(text);
    if (text == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    return ok || tool_output_closed() ? ES_OK : ES_ERR_IO;
}

bool tool_stdout_colour(void)
{
    const char *term = getenv("TERM");
    return isatty(STDOUT_FILENO) && getenv("NO_COLOR") == NULL && term != NULL &&
           strcmp(term, "dumb") != 0;
}

/* ---- helpers ----------------------------------------------------------------- */

es_status tool_error_chain(es_status s, const char *fmt, ...)
{
    char before[512], text[512];
    snprintf(before, sizeof before, "%s", es_last_error());
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (before[0] == '\0')
        return es_error(s, "%s", text);
    return es_error(s, "%s: %s", text, before);
}

void tool_time_text(int64_t ns, char out[64])
{
    if (ns == 0) {
        snprintf(out, 64, "-");
        return;
    }
    char t[ES_TIME_MAX];
    es_time_format(ns, t);
    snprintf(out, 64, "%s", t);
}

void tool_size_text(uint64_t bytes, char out[32])
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(out, 32, "%" PRIu64 " B", bytes);
    else
        snprintf(out, 32, "%.1f %s", v, units[u]);
}

void tool_duration_text(int64_t ns, char out[32])
{
    if (ns <= 0) {
        snprintf(out, 32, "unlimited");
        return;
    }
    int64_t s = ns / 1000000000LL;
    if (s * 1000000000LL != ns)
        snprintf(out, 32, "%.3fs", (double)ns / 1e9);
    else if (s % 86400 == 0)
        snprintf(out, 32, "%" PRId64 "d", s / 86400);
    else if (s % 3600 == 0)
        snprintf(out, 32, "%" PRId64 "h", s / 3600);
    else if (s % 60 == 0)
        snprintf(out, 32, "%" PRId64 "m", s / 60);
    else
        snprintf(out, 32, "%" PRId64 "s", s);
}
