/* What every es command-line tool shares: exit codes, one-line error
 * messages, an option parser, and the connection options of the NATS CLI
 * (--server/NATS_URL, --user/--password, --token, --creds/NATS_CREDS,
 * --nkey, --tlscert/--tlskey/--tlsca, --timeout/NATS_TIMEOUT,
 * --context/NATS_CONTEXT, --js-domain, --js-api-prefix) turned into a
 * connected natsConnection. Not installed; tools link the `es_cli` static
 * library.
 *
 * A tool's main() typically reads:
 *
 *     es_cli_set_prog("es-tool replay");
 *     es_cli_conn conn;
 *     es_cli_conn_init(&conn, "es-tool");
 *     es_cli_parser p;
 *     es_cli_parser_init(&p, argc, argv, my_options);
 *     for (int id; (id = es_cli_next(&p)) != ES_CLI_END;) {
 *         if (id == ES_CLI_ERROR) return ES_EXIT_USAGE;
 *         int r = es_cli_conn_set(&conn, id, p.value);
 *         if (r == ES_CLI_ERROR) return ES_EXIT_USAGE;
 *         if (r == 1) continue;
 *         ...
 *     }
 *     natsConnection *nc;
 *     es_status s = es_cli_connect(&conn, &nc);
 *     if (s != ES_OK) return es_cli_fail(s, "connecting");
 */
#ifndef ES_CLI_H
#define ES_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

#include <es/buf.h>
#include <es/status.h>
#include <es/store.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- exit codes (docs/es-tool.md) ----------------------------------------- */

enum {
    ES_EXIT_OK = 0,
    ES_EXIT_USAGE = 1,     /* bad arguments or bad input (names, JSON, files) */
    ES_EXIT_NOT_FOUND = 2, /* the store, entity or data does not exist */
    ES_EXIT_CONFLICT = 3,  /* exists already / optimistic concurrency conflict / shredded */
    ES_EXIT_SERVER = 4,    /* the server refused, is unreachable or misbehaved */
    /* 5 and 6 are es-atproto-ingest's own */
    ES_EXIT_PERMISSION = 7, /* the server refused the user: a permissions violation */
};

/* The exit code for a status. */
int es_cli_exit_code(es_status s);

/* ---- messages -------------------------------------------------------------- */

#define ES_CLI_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* The name messages start with ("es-tool replay"); copied. */
void es_cli_set_prog(const char *prog);
const char *es_cli_prog(void);

/* "<prog>: <text>" and a newline on stderr: the one line users see. */
void es_cli_error(const char *fmt, ...) ES_CLI_PRINTF(1, 2);

/* A tool with a log format of its own (es-atproto-ingest --log-format json)
 * takes over where es_cli_error, es_cli_fail and es_cli_usage write: each
 * message is handed to `writer` as one line of text, without the program's
 * name and without a newline. NULL: back to stderr. Set it before any
 * message can be written (it is not synchronised). */
typedef void (*es_cli_error_writer)(const char *text);
void es_cli_set_error_writer(es_cli_error_writer writer);

/* Reports a failed call: "<prog>: <what>: <es_last_error() or the status
 * text>", and returns the exit code for `s`. */
int es_cli_fail(es_status s, const char *what);

/* Reports a usage error ("<prog>: <text> (see <prog> --help)") and returns
 * ES_EXIT_USAGE. */
int es_cli_usage(const char *fmt, ...) ES_CLI_PRINTF(1, 2);

/* ---- option parser ---------------------------------------------------------
 * GNU-style long options (--name value, --name=value), one-letter aliases
 * (-n value), options and positional arguments in any order, and "--" to end
 * the options. */

typedef struct es_cli_option {
    const char *name; /* long name without the dashes; NULL ends a table */
    char letter;      /* one-letter alias, or 0 */
    bool has_value;
    int id; /* > 0, what es_cli_next returns */
} es_cli_option;

enum {
    ES_CLI_END = 0,    /* no more arguments */
    ES_CLI_ARG = -1,   /* a positional argument, in p->value */
    ES_CLI_ERROR = -2, /* a usage error, already reported */
};

typedef struct es_cli_parser {
    const char *value; /* the option's value or the positional argument */
    const char *name;  /* the option as written ("--limit"), for messages */
    /* private */
    int argc_, index_;
    char **argv_;
    const es_cli_option *tables_[2];
    bool args_only_;
    char flag_[64];
} es_cli_parser;

/* Parses argv[0..argc) (pass argv + 1 to skip the program name) against
 * `options`; the connection options (es_cli_conn_options) are always
 * recognised too. */
void es_cli_parser_init(es_cli_parser *p, int argc, char **argv, const es_cli_option *options);

/* The next option's id, ES_CLI_ARG, ES_CLI_END or ES_CLI_ERROR. */
int es_cli_next(es_cli_parser *p);

/* Strict number parsing for option values: the whole text must be a number
 * in range. A false return has already reported the usage error, naming
 * `what`. */
bool es_cli_parse_u64(const char *text, const char *what, uint64_t *out);
/* A duration: a number with a unit (ns, us, ms, s, m, h, d), possibly
 * several ("1h30m"), with a fraction as Go writes it ("1.5s"), or a plain
 * number of seconds. */
bool es_cli_parse_duration(const char *text, const char *what, int64_t *ns);
/* The same, reporting nothing: false when `text` is not a duration. */
bool es_cli_duration_value(const char *text, int64_t *ns);
/* A byte size: an integer with an optional K, M or G (powers of 1024). */
bool es_cli_parse_size(const char *text, const char *what, int64_t *bytes);

/* Appends printf-formatted text to b (short pieces: at most 1023 bytes a
 * call, the rest cut). */
void es_cli_buf_printf(es_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Options from the environment (as Jetstream and Tap take theirs): each
 * entry names the variable that stands for an option. es_cli_env_apply calls
 * `set` with the id and value of every variable that is set and not empty,
 * in table order (the table ends with a NULL name); a tool applies it before
 * parsing argv, so the command line wins. `set` returns ES_CLI_ERROR (already
 * reported) to stop; es_cli_env_apply then returns ES_CLI_ERROR, else 0. */
typedef struct es_cli_env {
    const char *name; /* "ES_STORE" */
    int id;           /* the option's id, as es_cli_next returns it */
} es_cli_env;

typedef int (*es_cli_env_set)(int id, const char *value, void *closure);
int es_cli_env_apply(const es_cli_env *table, es_cli_env_set set, void *closure);

/* The same for every option of `opts` (but help and version), each standing
 * as "ES_" and its name in upper case with '-' as '_' (--max-held:
 * ES_MAX_HELD). An option without a value is set by 1, true or yes, left
 * alone by 0, false or no; anything else is a usage error. */
int es_cli_env_apply_options(const es_cli_option *opts, es_cli_env_set set, void *closure);

/* ---- connection ------------------------------------------------------------ */

/* Ids of the connection options, in the range es_cli_conn_set handles. */
enum {
    ES_CLI_OPT_SERVER = 1000,
    ES_CLI_OPT_USER,
    ES_CLI_OPT_PASSWORD,
    ES_CLI_OPT_TOKEN,
    ES_CLI_OPT_CREDS,
    ES_CLI_OPT_NKEY,
    ES_CLI_OPT_TLSCERT,
    ES_CLI_OPT_TLSKEY,
    ES_CLI_OPT_TLSCA,
    ES_CLI_OPT_TIMEOUT,
    ES_CLI_OPT_CONTEXT,
    ES_CLI_OPT_JS_DOMAIN,
    ES_CLI_OPT_JS_API_PREFIX,
    ES_CLI_OPT_CONFINED,
};

extern const es_cli_option es_cli_conn_options[];

/* The help text of the connection options, for a tool's --help. */
extern const char es_cli_conn_help[];

typedef struct es_cli_conn {
    const char
        *server; /* URL or comma-separated URLs; default $NATS_URL, else nats://127.0.0.1:4222 */
    const char *user, *password;          /* default $NATS_USER, $NATS_PASSWORD */
    const char *token;                    /* default $NATS_TOKEN */
    const char *creds;                    /* user credentials file; default $NATS_CREDS */
    const char *nkey;                     /* user NKey seed file; default $NATS_NKEY */
    const char *tlscert, *tlskey, *tlsca; /* default $NATS_CERT, $NATS_KEY, $NATS_CA */
    int64_t timeout_ms;                   /* connect and request timeout (default
                                             $NATS_TIMEOUT, else 5000) */
    int max_reconnect; /* reconnect attempts after a loss (default 60, half a second
                          apart; -1: forever, for long-running watches) */
    const char *name;  /* the connection name the server shows */
    /* The nats CLI context whose settings fill what neither an option nor
     * the environment gave (default $NATS_CONTEXT, else the one selected in
     * context.txt; context.h). */
    const char *context;
    /* Where the JetStream API is: a domain or a whole API prefix (at most
     * one); from the options, else the context. */
    const char *js_domain, *js_api_prefix;
    /* --confined: the user's permissions confine it to some subjects (a
     * tenant's user): es_store_options.confined. */
    bool confined;
    /* Report losing and regaining the server on stderr (long-running
     * commands: replay --follow). */
    bool report_outages;
    /* private */
    const char *timeout_env_; /* $NATS_TIMEOUT, checked by es_cli_conn_resolve */
    bool timeout_set_;        /* --timeout given: the environment does not count */
    bool resolved_;
} es_cli_conn;

/* Defaults, taking what the environment sets. The strings are borrowed. */
void es_cli_conn_init(es_cli_conn *c, const char *name);

/* Applies a connection option: 1 when done, 0 when `id` is not one,
 * ES_CLI_ERROR for a bad value (already reported). */
int es_cli_conn_set(es_cli_conn *c, int id, const char *value);

/* Completes the options once the command line is read, as the nats CLI
 * does: options > environment > context > defaults. Checks $NATS_TIMEOUT
 * and reads the context (context.h); its strings stay valid until the
 * process ends. ES_ERR_INVALID (with the reason in es_last_error()) for a
 * malformed $NATS_TIMEOUT, an unknown context, or a context with settings
 * es cannot honour. Idempotent; es_cli_connect calls it on a copy when the
 * caller did not. */
es_status es_cli_conn_resolve(es_cli_conn *c);

/* Store options for the connection: defaults, its timeout and where the
 * JetStream API is (resolving a copy when `c` is not resolved yet). */
void es_cli_store_options(const es_cli_conn *c, es_store_options *o);

/* Connects. ES_ERR_CONNECTION (with a one-line reason in es_last_error())
 * when no server answers or authentication fails; ES_ERR_INVALID for
 * unusable options (unreadable files, malformed NKey seed, see also
 * es_cli_conn_resolve). The caller owns *out: es_cli_disconnect it. */
es_status es_cli_connect(const es_cli_conn *c, natsConnection **out);

/* Closes and frees the connection (accepts NULL) and releases nats.c's
 * global resources: call once, at exit. */
void es_cli_disconnect(natsConnection *nc);

#ifdef __cplusplus
}
#endif
#endif
