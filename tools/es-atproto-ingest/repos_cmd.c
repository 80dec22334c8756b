/* `es-atproto-ingest repos list|status`: what the per-repository chain state
 * (es/atproto_repos.h, bucket ES_<store>_repos) says about the repositories
 * an ingester stored — for an operator asking "is this account in sync, at
 * which rev, and if not, why". Read-only. */
#define _POSIX_C_SOURCE 200809L
#include "repos_cmd.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include <es/atproto.h>
#include <es/atproto_repos.h>
#include <es/cid.h>
#include <es/es.h>
#include <es/time.h>

#include "cli.h"

enum { OPT_STORE = 1, OPT_JSON, OPT_DESYNCED, OPT_HELP };

static const es_cli_option options[] = {
    {"store", 0, true, OPT_STORE},   {"json", 0, false, OPT_JSON},
    {"desynced", 0, false, OPT_DESYNCED}, {"help", 'h', false, OPT_HELP},
    {NULL, 0, false, 0},
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: es-atproto-ingest repos list [--desynced] [options]\n"
            "       es-atproto-ingest repos status DID... [options]\n"
            "\n"
            "The per-repository chain state an ingester keeps in ES_<store>_repos:\n"
            "the rev and MST root (data) of the last stored commit, the account status,\n"
            "and whether the repository is desynchronized (its commits are not stored\n"
            "until a resync), why, and at which relay seq. See docs/atproto.md.\n"
            "\n"
            "  list                 every repository with a state, then a summary line\n"
            "  status DID...        these repositories; exit 2 when one has no state\n"
            "  --desynced           list: the desynchronized ones only\n"
            "  --store NAME         the event store (default atproto)\n"
            "  --json               one JSON object per repository (and per summary) a line\n"
            "  -h, --help           this text\n"
            "\n"
            "%s",
            es_cli_conn_help);
}

typedef struct repos_cmd {
    es_cli_conn conn;
    const char *store_name;
    bool json, desynced_only, list;
    const char *dids[256];
    size_t ndids;
    /* list's summary */
    uint64_t total, desynced, inactive, shown;
} repos_cmd;

/* ---- printing ------------------------------------------------------------------- */

static void data_text(const es_atp_repo_state *st, char out[ES_CID_STRING_MAX])
{
    if (st->data_len == 0 || es_cid_to_string(st->data, st->data_len, out, ES_CID_STRING_MAX) != ES_OK)
        out[0] = '\0';
}

static void print_json_state(const char *did, size_t did_len, const es_atp_repo_state *st)
{
    char data[ES_CID_STRING_MAX], updated[ES_TIME_MAX];
    data_text(st, data);
    es_time_format(st->updated_ns, updated);
    json_t *o = json_object();
    json_object_set_new(o, "did", json_stringn(did, did_len));
    json_object_set_new(o, "status", json_string(st->status));
    json_object_set_new(o, "rev", json_string(st->rev));
    json_object_set_new(o, "data", json_string(data));
    json_object_set_new(o, "desynced", json_boolean(st->desynced));
    if (st->desynced) {
        json_object_set_new(o, "reason", json_string(st->reason));
        json_object_set_new(o, "desync_seq", json_integer((json_int_t)st->desync_seq));
    }
    json_object_set_new(o, "seq", json_integer((json_int_t)st->seq));
    json_object_set_new(o, "position", json_integer((json_int_t)st->position));
    json_object_set_new(o, "updated", json_string(updated));
    char *text = json_dumps(o, JSON_COMPACT);
    if (text != NULL)
        puts(text);
    free(text);
    json_decref(o);
}

/* "did  status  rev  data  [desynced: reason at seq N]  updated" */
static void print_text_state(const char *did, size_t did_len, const es_atp_repo_state *st)
{
    char data[ES_CID_STRING_MAX], updated[ES_TIME_MAX];
    data_text(st, data);
    es_time_format(st->updated_ns, updated);
    printf("%.*s  %s  rev %s  data %s", (int)did_len, did, st->status, st->rev[0] ? st->rev : "-",
           data[0] ? data : "-");
    if (st->desynced)
        printf("  DESYNCED: %s at seq %" PRIu64, st->reason, st->desync_seq);
    printf("  updated %s\n", updated);
}

static void print_state(const repos_cmd *c, const char *did, size_t did_len,
                        const es_atp_repo_state *st)
{
    if (c->json)
        print_json_state(did, did_len, st);
    else
        print_text_state(did, did_len, st);
}

/* ---- the commands ---------------------------------------------------------------- */

static es_status on_repo(const char *did, size_t did_len, const es_atp_repo_state *st,
                         void *closure)
{
    repos_cmd *c = closure;
    c->total++;
    c->desynced += st->desynced;
    c->inactive += !es_atp_repo_active(st);
    if (c->desynced_only && !st->desynced)
        return ES_OK;
    c->shown++;
    print_state(c, did, did_len, st);
    return ES_OK;
}

static int list(repos_cmd *c, es_atp_repos *repos)
{
    size_t skipped = 0;
    es_status s = es_atp_repos_list(repos, on_repo, c, &skipped);
    if (s != ES_OK)
        return es_cli_fail(s, "listing the repositories");
    if (c->json)
        printf("{\"repositories\":%" PRIu64 ",\"desynced\":%" PRIu64 ",\"inactive\":%" PRIu64
               ",\"unreadable\":%zu}\n",
               c->total, c->desynced, c->inactive, skipped);
    else if (skipped == 0)
        printf("%" PRIu64 " repositories, %" PRIu64 " desynchronized, %" PRIu64 " not active\n",
               c->total, c->desynced, c->inactive);
    else
        printf("%" PRIu64 " repositories, %" PRIu64 " desynchronized, %" PRIu64
               " not active, %zu unreadable\n",
               c->total, c->desynced, c->inactive, skipped);
    return ES_EXIT_OK;
}

static int status(repos_cmd *c, es_atp_repos *repos)
{
    int code = ES_EXIT_OK;
    for (size_t i = 0; i < c->ndids; i++) {
        es_atp_repo_state st;
        es_status s = es_atp_repos_get(repos, c->dids[i], strlen(c->dids[i]), &st);
        if (s == ES_ERR_NOT_FOUND) {
            es_cli_error("%s: no state: nothing of this repository was stored", c->dids[i]);
            code = ES_EXIT_NOT_FOUND;
            continue;
        }
        if (s != ES_OK)
            return es_cli_fail(s, c->dids[i]);
        print_state(c, c->dids[i], strlen(c->dids[i]), &st);
    }
    return code;
}

/* ---- arguments ------------------------------------------------------------------- */

static int positional(repos_cmd *c, const char *arg, bool *have_verb)
{
    if (!*have_verb) {
        *have_verb = true;
        if (strcmp(arg, "list") == 0 || strcmp(arg, "status") == 0) {
            c->list = strcmp(arg, "list") == 0;
            return ES_EXIT_OK;
        }
        return es_cli_usage("repos: unknown command '%s' (list or status)", arg);
    }
    if (c->list)
        return es_cli_usage("repos list takes no DID (repos status DID...)");
    if (!es_atp_valid_did(arg, strlen(arg)))
        return es_cli_usage("'%s' is not a DID", arg);
    if (c->ndids == sizeof c->dids / sizeof c->dids[0])
        return es_cli_usage("at most %zu DIDs at once", sizeof c->dids / sizeof c->dids[0]);
    c->dids[c->ndids++] = arg;
    return ES_EXIT_OK;
}

/* ES_EXIT_OK, ES_EXIT_USAGE, or -1 after --help. */
static int parse(repos_cmd *c, int argc, char **argv)
{
    es_cli_parser p;
    es_cli_parser_init(&p, argc, argv, options);
    bool have_verb = false;
    for (int id; (id = es_cli_next(&p)) != ES_CLI_END;) {
        int r = ES_EXIT_OK;
        if (id == ES_CLI_ERROR)
            return ES_EXIT_USAGE;
        if (id == OPT_HELP) {
            usage(stdout);
            return -1;
        }
        if (id == ES_CLI_ARG)
            r = positional(c, p.value, &have_verb);
        else if (id == OPT_STORE)
            c->store_name = p.value;
        else if (id == OPT_JSON)
            c->json = true;
        else if (id == OPT_DESYNCED)
            c->desynced_only = true;
        else if (es_cli_conn_set(&c->conn, id, p.value) == ES_CLI_ERROR)
            r = ES_EXIT_USAGE;
        if (r != ES_EXIT_OK)
            return r;
    }
    if (!have_verb)
        return es_cli_usage("repos: give a command: list, or status DID...");
    if (!c->list && c->ndids == 0)
        return es_cli_usage("repos status: give at least one DID");
    if (!c->list && c->desynced_only)
        return es_cli_usage("--desynced is for repos list");
    return ES_EXIT_OK;
}

int ingest_repos_main(int argc, char **argv)
{
    repos_cmd c = {.store_name = "atproto"};
    es_cli_conn_init(&c.conn, "es-atproto-ingest repos");
    int code = parse(&c, argc, argv);
    if (code != ES_EXIT_OK)
        return code < 0 ? ES_EXIT_OK : code;
    natsConnection *nc = NULL;
    es_store *store = NULL;
    es_atp_repos *repos = NULL;
    es_store_options o;
    es_cli_store_options(&c.conn, &o);
    es_status s = es_cli_connect(&c.conn, &nc);
    if (s != ES_OK)
        code = es_cli_fail(s, "connecting");
    else if ((s = es_store_open(nc, c.store_name, &o, &store)) != ES_OK)
        code = es_cli_fail(s, c.store_name);
    else if ((s = es_atp_repos_open(store, &repos)) != ES_OK)
        code = es_cli_fail(s, "opening the repository states");
    else
        code = c.list ? list(&c, repos) : status(&c, repos);
    es_atp_repos_destroy(repos);
    es_store_destroy(store);
    es_cli_disconnect(nc);
    return code;
}
