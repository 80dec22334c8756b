/* `es-atproto-ingest repos list|status|add|remove`: what the per-repository
 * chain state (es/atproto_repos.h, bucket ES_<store>_repos) says about the
 * repositories an ingester stored — for an operator asking "is this account
 * in sync, at which rev, and if not, why" — and the tracked set
 * (es/atproto_tracked.h, bucket ES_<store>_tracked) a running ingester
 * follows: add and remove edit it, the rest only read. */
#define _POSIX_C_SOURCE 200809L
#include "repos_cmd.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include <es/atproto.h>
#include <es/atproto_repos.h>
#include <es/atproto_tracked.h>
#include <es/cid.h>
#include <es/es.h>
#include <es/time.h>

#include "cli.h"

enum { OPT_STORE = 1, OPT_JSON, OPT_DESYNCED, OPT_TRACKED, OPT_HELP };

static const es_cli_option options[] = {
    {"store", 0, true, OPT_STORE},        {"json", 0, false, OPT_JSON},
    {"desynced", 0, false, OPT_DESYNCED}, {"tracked", 0, false, OPT_TRACKED},
    {"help", 'h', false, OPT_HELP},       {NULL, 0, false, 0},
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: es-atproto-ingest repos list [--desynced | --tracked] [options]\n"
            "       es-atproto-ingest repos status DID... [options]\n"
            "       es-atproto-ingest repos add|remove DID... [options]\n"
            "\n"
            "The per-repository chain state an ingester keeps in ES_<store>_repos:\n"
            "the rev and MST root (data) of the last stored commit, the account status,\n"
            "and whether the repository is desynchronized (its commits are not stored\n"
            "until a resync), why, and at which relay seq; and the tracked set in\n"
            "ES_<store>_tracked, which a running ingester follows (--tracked-only).\n"
            "See docs/atproto.md.\n"
            "\n"
            "  list                 every repository with a state, then a summary line\n"
            "  status DID...        these repositories, and whether each is tracked;\n"
            "                       exit 2 when one has no state\n"
            "  add DID...           track these repositories (adding one tracked already\n"
            "                       changes nothing)\n"
            "  remove DID...        stop tracking these (their stored events stay); exit 2\n"
            "                       when one was not tracked\n"
            "  --desynced           list: the desynchronized ones only\n"
            "  --tracked            list: the tracked set, each with its state when it has one\n"
            "  --store NAME         the event store (default atproto)\n"
            "  --json               one JSON object per repository (and per summary) a line\n"
            "  -h, --help           this text\n"
            "\n"
            "%s",
            es_cli_conn_help);
}

typedef enum repos_verb { VERB_LIST, VERB_STATUS, VERB_ADD, VERB_REMOVE } repos_verb;

static const char *const verbs[] = {"list", "status", "add", "remove"};

typedef struct repos_cmd {
    es_cli_conn conn;
    const char *store_name;
    bool json, desynced_only, tracked_only;
    repos_verb verb;
    const char *dids[256];
    size_t ndids;
    es_atp_repos *repos;
    es_atp_tracked *tracked;
    /* list's summary */
    uint64_t total, desynced, inactive, shown, with_state;
} repos_cmd;

/* Whether a repository is tracked, when known. */
typedef struct track_info {
    bool known, tracked;
    int64_t added_ns;
} track_info;

/* ---- printing ------------------------------------------------------------------- */

static void data_text(const es_atp_repo_state *st, char out[ES_CID_STRING_MAX])
{
    if (st->data_len == 0 || es_cid_to_string(st->data, st->data_len, out, ES_CID_STRING_MAX) != ES_OK)
        out[0] = '\0';
}

static void json_tracked(json_t *o, const track_info *tr)
{
    char since[ES_TIME_MAX];
    if (!tr->known)
        return;
    json_object_set_new(o, "tracked", json_boolean(tr->tracked));
    if (tr->tracked) {
        es_time_format(tr->added_ns, since);
        json_object_set_new(o, "tracked_since", json_string(since));
    }
}

static void json_print(json_t *o)
{
    char *text = json_dumps(o, JSON_COMPACT);
    if (text != NULL)
        puts(text);
    free(text);
    json_decref(o);
}

/* st NULL: a tracked repository with no state yet. */
static void print_json_state(const char *did, size_t did_len, const es_atp_repo_state *st,
                             const track_info *tr)
{
    json_t *o = json_object();
    json_object_set_new(o, "did", json_stringn(did, did_len));
    if (st == NULL) {
        json_tracked(o, tr);
        json_print(o);
        return;
    }
    char data[ES_CID_STRING_MAX], updated[ES_TIME_MAX];
    data_text(st, data);
    es_time_format(st->updated_ns, updated);
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
    json_tracked(o, tr);
    json_print(o);
}

/* "did  status  rev  data  [desynced: reason at seq N]  updated  [tracked since T]",
 * or "did  no state  tracked since T" for a tracked one with no state. */
static void print_text_state(const char *did, size_t did_len, const es_atp_repo_state *st,
                             const track_info *tr)
{
    char data[ES_CID_STRING_MAX], updated[ES_TIME_MAX], since[ES_TIME_MAX];
    printf("%.*s", (int)did_len, did);
    if (st == NULL)
        printf("  no state");
    if (st != NULL) {
        data_text(st, data);
        es_time_format(st->updated_ns, updated);
        printf("  %s  rev %s  data %s", st->status, st->rev[0] ? st->rev : "-",
               data[0] ? data : "-");
        if (st->desynced)
            printf("  DESYNCED: %s at seq %" PRIu64, st->reason, st->desync_seq);
        printf("  updated %s", updated);
    }
    if (tr->known && tr->tracked) {
        es_time_format(tr->added_ns, since);
        printf("  tracked since %s", since);
    } else if (tr->known) {
        printf("  not tracked");
    }
    putchar('\n');
}

static void print_state(const repos_cmd *c, const char *did, size_t did_len,
                        const es_atp_repo_state *st, const track_info *tr)
{
    if (c->json)
        print_json_state(did, did_len, st, tr);
    else
        print_text_state(did, did_len, st, tr);
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
    print_state(c, did, did_len, st, &(track_info){.known = false});
    return ES_OK;
}

/* list --tracked: a tracked DID, with its chain state when it has one. */
static es_status on_tracked(const char *did, size_t len, int64_t added_ns, void *closure)
{
    repos_cmd *c = closure;
    es_atp_repo_state st;
    es_status s = es_atp_repos_get(c->repos, did, len, &st);
    if (s != ES_OK && s != ES_ERR_NOT_FOUND)
        return s;
    c->total++;
    c->with_state += s == ES_OK;
    print_state(c, did, len, s == ES_OK ? &st : NULL,
                &(track_info){.known = true, .tracked = true, .added_ns = added_ns});
    return ES_OK;
}

static int list_tracked(repos_cmd *c)
{
    size_t skipped = 0;
    es_status s = es_atp_tracked_list(c->tracked, on_tracked, c, &skipped);
    if (s != ES_OK)
        return es_cli_fail(s, "listing the tracked repositories");
    if (c->json)
        printf("{\"tracked\":%" PRIu64 ",\"with_state\":%" PRIu64 ",\"unreadable\":%zu}\n",
               c->total, c->with_state, skipped);
    else
        printf("%" PRIu64 " tracked repositories, %" PRIu64 " with a state%s\n", c->total,
               c->with_state, skipped ? ", some entries unreadable" : "");
    return ES_EXIT_OK;
}

static int list(repos_cmd *c)
{
    if (c->tracked_only)
        return list_tracked(c);
    size_t skipped = 0;
    es_status s = es_atp_repos_list(c->repos, on_repo, c, &skipped);
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

static int status(repos_cmd *c)
{
    int code = ES_EXIT_OK;
    for (size_t i = 0; i < c->ndids; i++) {
        const char *did = c->dids[i];
        track_info tr = {.known = true};
        es_status s = es_atp_tracked_contains(c->tracked, did, strlen(did), &tr.tracked,
                                              &tr.added_ns);
        if (s != ES_OK)
            return es_cli_fail(s, did);
        es_atp_repo_state st;
        s = es_atp_repos_get(c->repos, did, strlen(did), &st);
        if (s == ES_ERR_NOT_FOUND) {
            es_cli_error("%s: no state: nothing of this repository was stored%s", did,
                         tr.tracked ? " yet (it is tracked)" : " (not tracked)");
            code = ES_EXIT_NOT_FOUND;
            continue;
        }
        if (s != ES_OK)
            return es_cli_fail(s, did);
        print_state(c, did, strlen(did), &st, &tr);
    }
    return code;
}

/* add and remove: one line per DID, "did  tracked" / "did  removed" (or
 * what it was already). */
static void print_edit(const repos_cmd *c, const char *did, const char *what)
{
    if (c->json) {
        json_t *o = json_pack("{s:s,s:s}", "did", did, "result", what);
        json_print(o);
    } else {
        printf("%s  %s\n", did, what);
    }
}

static int edit(repos_cmd *c)
{
    int code = ES_EXIT_OK;
    for (size_t i = 0; i < c->ndids; i++) {
        const char *did = c->dids[i];
        size_t len = strlen(did);
        bool was = false;
        es_status s = es_atp_tracked_contains(c->tracked, did, len, &was, NULL);
        if (s == ES_OK && c->verb == VERB_ADD)
            s = es_atp_tracked_add(c->tracked, did, len);
        else if (s == ES_OK && was)
            s = es_atp_tracked_remove(c->tracked, did, len);
        if (s == ES_ERR_NOT_FOUND || (s == ES_OK && c->verb == VERB_REMOVE && !was)) {
            es_cli_error("%s: not tracked", did);
            code = ES_EXIT_NOT_FOUND;
            continue;
        }
        if (s != ES_OK)
            return es_cli_fail(s, did);
        print_edit(c, did,
                   c->verb == VERB_ADD ? (was ? "already tracked" : "tracked") : "removed");
    }
    return code;
}

/* ---- arguments ------------------------------------------------------------------- */

static int positional(repos_cmd *c, const char *arg, bool *have_verb)
{
    if (!*have_verb) {
        *have_verb = true;
        for (size_t v = 0; v < sizeof verbs / sizeof verbs[0]; v++)
            if (strcmp(arg, verbs[v]) == 0) {
                c->verb = (repos_verb)v;
                return ES_EXIT_OK;
            }
        return es_cli_usage("repos: unknown command '%s' (list, status, add or remove)", arg);
    }
    if (c->verb == VERB_LIST)
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
        else if (id == OPT_TRACKED)
            c->tracked_only = true;
        else if (es_cli_conn_set(&c->conn, id, p.value) == ES_CLI_ERROR)
            r = ES_EXIT_USAGE;
        if (r != ES_EXIT_OK)
            return r;
    }
    if (!have_verb)
        return es_cli_usage("repos: give a command: list, status DID..., add DID... or "
                            "remove DID...");
    if (c->verb != VERB_LIST && c->ndids == 0)
        return es_cli_usage("repos %s: give at least one DID", verbs[c->verb]);
    if (c->verb != VERB_LIST && (c->desynced_only || c->tracked_only))
        return es_cli_usage("--desynced and --tracked are for repos list");
    if (c->desynced_only && c->tracked_only)
        return es_cli_usage("repos list: --desynced or --tracked, not both");
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
    es_store_options o;
    es_cli_store_options(&c.conn, &o);
    es_status s = es_cli_connect(&c.conn, &nc);
    if (s != ES_OK)
        code = es_cli_fail(s, "connecting");
    else if ((s = es_store_open(nc, c.store_name, &o, &store)) != ES_OK)
        code = es_cli_fail(s, c.store_name);
    else if ((s = es_atp_repos_open(store, &c.repos)) != ES_OK)
        code = es_cli_fail(s, "opening the repository states");
    else if ((s = es_atp_tracked_open(store, &c.tracked)) != ES_OK)
        code = es_cli_fail(s, "opening the tracked repositories");
    else
        code = c.verb == VERB_LIST     ? list(&c)
               : c.verb == VERB_STATUS ? status(&c)
                                       : edit(&c);
    es_atp_tracked_destroy(c.tracked);
    es_atp_repos_destroy(c.repos);
    es_store_destroy(store);
    es_cli_disconnect(nc);
    return code;
}
