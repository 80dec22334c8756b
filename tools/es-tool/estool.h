/* es-tool's own shared parts: the commands, the options most of them take,
 * and the stdout writer that notices a closed pipe. */
#ifndef ESTOOL_H
#define ESTOOL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include <es/es.h>

#include "cli.h"

/* ---- commands ---------------------------------------------------------------- */

typedef struct tool_command {
    const char *name;
    const char *summary;               /* one line for the command list */
    int (*run)(int argc, char **argv); /* argv[0] is the first argument after the name */
    const char *help;                  /* full --help text, examples included */
} tool_command;

extern const tool_command tool_cmd_replay, tool_cmd_info, tool_cmd_entities, tool_cmd_append,
    tool_cmd_stores, tool_cmd_create, tool_cmd_delete, tool_cmd_export, tool_cmd_import,
    tool_cmd_shred, tool_cmd_bench, tool_cmd_edit;
extern const tool_command tool_cmd_projections, tool_cmd_checkpoints, tool_cmd_completion;
/* Every command, in the order of the command list (main.c). */
extern const tool_command *const tool_commands[];
extern const size_t tool_command_count;

/* Option ids shared by several commands (commands number their own from 100). */
enum {
    OPT_HELP = 1,
    OPT_TYPE,
    OPT_ID,
    OPT_EVENT,
    OPT_TENANT,
    OPT_AFTER,
    OPT_TO,
    OPT_JSON,
    OPT_QUIET,
    OPT_MASTER_KEY,
    OPT_RAW_ID,
};

#define TOOL_OPT_HELP                                                                              \
    {                                                                                              \
        "help", 'h', false, OPT_HELP                                                               \
    }
#define TOOL_OPT_FILTER                                                                            \
    {"type", 't', true, OPT_TYPE}, {"id", 'i', true, OPT_ID}, {"event", 'e', true, OPT_EVENT},     \
        {"tenant", 0, true, OPT_TENANT}, {"after", 0, true, OPT_AFTER}, {"up-to", 0, true, OPT_TO},\
        {"to", 0, true, OPT_TO}, /* --up-to's older, shorter name */         \
    {                                                                                              \
        "raw-id", 0, false, OPT_RAW_ID                                                             \
    }

/* For commands that read or write data of encrypting stores; the file may
 * also come from $ES_MASTER_KEY_FILE. tool_next_option keeps it for tool_open. */
#define TOOL_OPT_MASTER_KEY                                                                        \
    {                                                                                              \
        "master-key-file", 0, true, OPT_MASTER_KEY                                                 \
    }
#define TOOL_MASTER_KEY_HELP                                                                       \
    "      --master-key-file F  the master key of an encrypting store (32 raw bytes or\n"          \
    "                       64 hex digits; env ES_MASTER_KEY_FILE)\n"

/* Prints a command's help to stdout, with the connection options. */
int tool_help(const tool_command *cmd);

/* A filter and sequence bounds, from --type/--id/--event/--tenant/--after/--to. */
typedef struct tool_filter {
    es_filter filter;
    es_read_options bounds;
    bool raw_id; /* --raw-id: the id is taken as it is even when it looks escaped */
} tool_filter;

void tool_filter_init(tool_filter *f);
/* 1: the option was a filter option and is applied; 0: not one; ES_CLI_ERROR:
 * a bad value (reported). */
int tool_filter_set(tool_filter *f, int id, const char *value);
/* Checks the names given against the rules of the wire format; reports and
 * returns false when one is invalid. Warns about an id that looks escaped
 * (idtext.h). */
bool tool_filter_valid(const tool_filter *f);

/* The next option the command itself handles (or ES_CLI_ARG, ES_CLI_END,
 * ES_CLI_ERROR): connection options go to `conn`, filter options to `f`
 * (may be NULL when the command has none). At the end, `conn` is completed
 * from the environment and the nats CLI context (es_cli_conn_resolve), so
 * that es_cli_store_options(conn) gives the store options. */
int tool_next_option(es_cli_parser *p, es_cli_conn *conn, tool_filter *f);

/* Connects and opens `store` (reporting failures), with the master key given
 * by --master-key-file or $ES_MASTER_KEY_FILE: ES_EXIT_OK or an exit code. On success the caller
 * owns *nc and *st (tool_close). */
int tool_open(const es_cli_conn *conn, const char *store, natsConnection **nc, es_store **st);
/* The store options tool_open uses: the timeout, where the JetStream API is
 * (es_cli_store_options), the master key. */
void tool_store_options(const es_cli_conn *conn, es_store_options *opts);
/* Connects only. */
int tool_connect(const es_cli_conn *conn, natsConnection **nc);
void tool_close(natsConnection *nc, es_store *st);
/* The usual end of a command: a failure `s` (not ES_OK) is reported and
 * becomes the exit code, then tool_close. Returns the exit code (`rc` when
 * s is ES_OK). */
int tool_finish(es_status s, int rc, natsConnection *nc, es_store *st);

/* ---- the command line of a command on one store ------------------------------ */

/* What such a command gets from its command line. */
typedef struct tool_args {
    es_cli_conn conn;
    tool_filter filter; /* set by --type/--id/... when the command takes them */
    const char *store;
    char name[64]; /* "es-tool <command>", the connection's name */
} tool_args;

/* A command's own options: called with each option id the shared parser does
 * not handle and its value; returns ES_EXIT_OK to go on, or an exit code. */
typedef int (*tool_own_option)(int id, const char *value, void *ctx);

/* A tool_own_option for commands whose one own option is a flag: sets the
 * bool `ctx` points to. */
int tool_flag_option(int id, const char *value, void *ctx);

/* Returned by tool_parse_store_args when the command should go on. */
#define TOOL_PROCEED (-1)

/* Parses `argv` against `options`: connection options, filter options (when
 * with_filter), --help, the command's own options (through `own`, may be
 * NULL) and exactly one STORE argument, whose name (and filter) it checks.
 * Returns TOOL_PROCEED, or the exit code the command returns now (ES_EXIT_OK
 * after --help). `usage` is the command's synopsis for a missing store
 * ("es-tool info STORE"). */
int tool_parse_store_args(const tool_command *cmd, int argc, char **argv,
                          const es_cli_option *options, bool with_filter, const char *usage,
                          tool_own_option own, void *ctx, tool_args *a);

/* Checks a store name given on the command line (reports and returns false). */
bool tool_store_name_valid(const char *name);

/* ---- output -------------------------------------------------------------------- */

/* Ignores SIGPIPE so that a closed stdout shows up as EPIPE on write. */
void tool_output_init(void);
/* True once stdout failed (reader gone: `| head`); the failure is sticky. */
bool tool_output_closed(void);
/* Writes, and reports whether stdout is still open. */
bool tool_write(const void *data, size_t len);
bool tool_flush(void);

/* Ends the process at once with `code`, after flushing stdout and stderr:
 * for a read that stops early (--limit, --to, a reader that left) with
 * nothing left to do, so that `es-tool replay | head` ends promptly instead
 * of tearing down a consumer the server is still feeding (the ephemeral
 * consumer expires on the server by itself). */
_Noreturn void tool_exit_now(int code);

/* Writes one JSON object and its newline to stdout, flushed, and frees it (a
 * NULL `j`, a failed json_pack, is ES_ERR_NOMEM). ES_OK when the reader left
 * (tool_output_closed tells). */
es_status tool_print_json(json_t *j);

/* True when stdout is a terminal that takes colours (and NO_COLOR is unset). */
bool tool_stdout_colour(void);

/* ---- helpers ------------------------------------------------------------------- */

/* Sets the thread's last error to "<text>: <the last error so far>" and
 * returns `s`: context for an error a library call reported. */
es_status tool_error_chain(es_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Formats Unix nanoseconds as RFC 3339 UTC ("2026-01-02T03:04:05.123456789Z"). */
void tool_time_text(int64_t ns, char out[64]);
/* "1.5 MiB" */
void tool_size_text(uint64_t bytes, char out[32]);
/* "2h0m0s"-style, or "unlimited" for 0. */
void tool_duration_text(int64_t ns, char out[32]);

#endif
