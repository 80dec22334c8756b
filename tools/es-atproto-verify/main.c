/* es-atproto-verify: re-verifies the ATProto history kept in a store, offline,
 * against DID documents (docs/es-atproto-verify.md). The store's events are
 * read in stream order through the public read API and handed to the audit
 * (es/atproto_audit.h) one at a time; it holds one commit group and a small
 * state per repository. Prints each failed commit, each repository's tally
 * and a summary, or one JSON document; exits non-zero when a commit fails. */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <es/atproto_audit.h>
#include <es/connect.h>
#include <es/es.h>
#include <es/version.h>

#include "cli.h"
#include "progress.h"

/* A commit failed verification (docs/es-atproto-verify.md, exit codes). */
#define EXIT_FAILED_COMMITS 5

enum {
    OPT_HELP = 1,
    OPT_VERSION,
    OPT_STORE,
    OPT_DID_DOCS,
    OPT_DID,
    OPT_ENTITY_TYPE,
    OPT_NO_CHAIN,
    OPT_AFTER,
    OPT_UP_TO,
    OPT_MAX_DIDS,
    OPT_JSON,
    OPT_QUIET,
};

static const es_cli_option options[] = {
    {"help", 'h', false, OPT_HELP},
    {"version", 0, false, OPT_VERSION},
    {"store", 0, true, OPT_STORE},
    {"did-docs", 0, true, OPT_DID_DOCS},
    {"did", 0, true, OPT_DID},
    {"entity-type", 't', true, OPT_ENTITY_TYPE},
    {"no-chain", 0, false, OPT_NO_CHAIN},
    {"after", 0, true, OPT_AFTER},
    {"up-to", 0, true, OPT_UP_TO},
    {"max-dids", 0, true, OPT_MAX_DIDS},
    {"json", 0, false, OPT_JSON},
    {"quiet", 'q', false, OPT_QUIET},
    {NULL, 0, false, 0},
};

static void usage(void)
{
    printf("usage: es-atproto-verify --did-docs FILE [--store NAME] [options]\n"
           "\n"
           "Re-verifies the ATProto history es-atproto-ingest stored, offline: for each\n"
           "commit, the signed commit block is rebuilt from its op events' audit\n"
           "metadata, its signature checked with the repository's key from the DID\n"
           "documents, its CID compared with the stored `commit`; each repository's\n"
           "commits must follow each other (rev increasing, since = the previous rev,\n"
           "prevdata = the previous data). Proves who signed each rev and MST root, not\n"
           "that a record is in that tree. See docs/es-atproto-verify.md.\n"
           "\n"
           "  --did-docs FILE      the DID documents: a JSON object {did: document}, plain\n"
           "                       or zstd-compressed (required)\n"
           "  --store NAME         the store (default atproto)\n"
           "  --did DID            this repository only\n"
           "  -t, --entity-type T  this collection only (app_bsky_feed_post); the chain\n"
           "                       checks are then off: the previous commit of a repository\n"
           "                       may have touched another collection\n"
           "  --no-chain           signatures and CIDs only (a store kept with a collection\n"
           "                       filter holds a partial history)\n"
           "  --after SEQ          events stored after this stream sequence\n"
           "  --up-to SEQ          ... and up to this one\n"
           "  --max-dids N         repositories followed at once (default 1000000; about\n"
           "                       200 bytes each)\n"
           "  --json               one JSON document: failures, repositories, summary\n"
           "  -q, --quiet          the failures and the summary only, no line per repository\n"
           "  --version            the program's, the library's and nats.c's versions\n"
           "  -h, --help\n"
           "\n"
           "Exit status: 0 every commit verified; 5 a commit failed; 1 usage or unreadable\n"
           "DID documents; 2 no such store; 4 the server failed.\n"
           "\n"
           "Example:\n"
           "  es-atproto-verify --store atproto --did-docs did_docs.json.zst\n"
           "\n%s",
           es_cli_conn_help);
}

typedef struct run {
    bool json, quiet;
    es_atp_audit *audit;
    es_progress progress;
    uint64_t seen;
    size_t failures_printed;
    es_status failed; /* an audit error that stopped the read */
} run;

/* ---- output ------------------------------------------------------------------ */

static void print_json(json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENSURE_ASCII);
    fputs(text != NULL ? text : "null", stdout);
    free(text);
    json_decref(v);
}

static void on_result(run *r, const es_atp_audit_result *res)
{
    if (res->reason == ES_ATP_AUDIT_OK)
        return;
    const char *reason = es_atp_audit_reason_name(res->reason);
    if (!r->json) {
        printf("FAIL %s rev %s commit %s seq %" PRIu64 "-%" PRIu64 ": %s\n",
               res->did ? res->did : "(no DID)", res->rev ? res->rev : "(none)",
               res->commit ? res->commit : "(none)", res->first_seq, res->last_seq, reason);
        return;
    }
    printf("%s", r->failures_printed++ == 0 ? "" : ",");
    print_json(json_pack("{s:s?,s:s?,s:s?,s:I,s:I,s:I,s:s}", "did", res->did, "rev", res->rev,
                         "commit", res->commit, "first_seq", (json_int_t)res->first_seq, "last_seq",
                         (json_int_t)res->last_seq, "events", (json_int_t)res->events, "reason",
                         reason));
}

static json_t *reasons_json(const uint64_t *by_reason)
{
    json_t *o = json_object();
    for (int i = 1; i < ES_ATP_AUDIT_REASON_COUNT; i++)
        if (by_reason[i] != 0)
            json_object_set_new(o, es_atp_audit_reason_name((es_atp_audit_reason)i),
                                json_integer((json_int_t)by_reason[i]));
    return o;
}

static void print_reasons(const uint64_t *by_reason)
{
    const char *sep = " (";
    for (int i = 1; i < ES_ATP_AUDIT_REASON_COUNT; i++)
        if (by_reason[i] != 0) {
            printf("%s%s %" PRIu64, sep, es_atp_audit_reason_name((es_atp_audit_reason)i),
                   by_reason[i]);
            sep = ", ";
        }
    if (sep[0] == ',')
        printf(")");
}

static int on_did(void *ctx, const char *did, uint64_t commits, const uint64_t *by_reason)
{
    run *r = ctx;
    uint64_t ok = by_reason[ES_ATP_AUDIT_OK];
    if (r->json) {
        printf("%s", r->seen++ == 0 ? "" : ",");
        print_json(json_pack("{s:s,s:I,s:I,s:o}", "did", did, "commits", (json_int_t)commits, "ok",
                             (json_int_t)ok, "failures", reasons_json(by_reason)));
        return 0;
    }
    printf("%s: %" PRIu64 " commits, %" PRIu64 " ok", did, commits, ok);
    if (ok != commits) {
        printf(", %" PRIu64 " failed", commits - ok);
        print_reasons(by_reason);
    }
    printf("\n");
    return 0;
}

static void print_summary(run *r, const char *store, bool chain)
{
    es_atp_audit_stats st;
    es_atp_audit_stats_get(r->audit, &st);
    uint64_t ok = st.by_reason[ES_ATP_AUDIT_OK], failed = st.commits - ok;
    if (r->json) {
        printf("],\"dids\":[");
        r->seen = 0;
        if (!r->quiet)
            es_atp_audit_each_did(r->audit, on_did, r);
        printf("],\"summary\":");
        print_json(json_pack("{s:s,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:I,s:I}", "store", store,
                             "chain", chain, "events", (json_int_t)st.events, "skipped_events",
                             (json_int_t)st.skipped_events, "syncs", (json_int_t)st.syncs,
                             "commits", (json_int_t)st.commits, "ok", (json_int_t)ok, "failed",
                             (json_int_t)failed, "failures", reasons_json(st.by_reason), "dids",
                             (json_int_t)st.dids, "did_docs", (json_int_t)st.did_docs));
        printf("}\n");
        return;
    }
    if (!r->quiet)
        es_atp_audit_each_did(r->audit, on_did, r);
    printf("%" PRIu64 " commits checked in %" PRIu64 " repositories (%" PRIu64 " events, %" PRIu64
           " not checked, %" PRIu64 " #sync), %" PRIu64 " ok, %" PRIu64 " failed",
           st.commits, st.dids, st.events, st.skipped_events, st.syncs, ok, failed);
    print_reasons(st.by_reason);
    printf("%s\n", chain ? "" : "; chain checks off");
}

/* ---- reading ----------------------------------------------------------------- */

static es_status on_event(const es_event *ev, void *closure)
{
    run *r = closure;
    es_atp_audit_result res;
    bool ready = false;
    es_status s = es_atp_audit_event(r->audit, ev, &res, &ready);
    if (s != ES_OK) {
        r->failed = s;
        return s;
    }
    if (ready)
        on_result(r, &res);
    es_progress_update(&r->progress, ++r->seen, es_event_seq(ev));
    return ES_OK;
}

typedef struct args {
    const char *store, *did_docs, *did, *entity_type;
    bool no_chain, json, quiet;
    es_read_options bounds;
    uint64_t max_dids;
} args;

static int verify(const es_cli_conn *conn, const args *a, es_atp_audit *audit)
{
    natsConnection *nc = NULL;
    es_status s = es_cli_connect(conn, &nc);
    if (s != ES_OK)
        return es_cli_fail(s, "connecting");
    es_store_options so;
    es_cli_store_options(conn, &so);
    es_store *st = NULL;
    if ((s = es_store_open(nc, a->store, &so, &st)) != ES_OK) {
        int rc = es_cli_fail(s, NULL);
        es_cli_disconnect(nc);
        return rc;
    }
    es_filter f;
    es_filter_init(&f);
    f.entity_type = a->entity_type;
    f.entity_id = a->did;
    run r = {.json = a->json, .quiet = a->quiet, .audit = audit};
    es_progress_start(&r.progress, "verify", a->bounds.up_to_seq, !a->quiet && !a->json);
    if (a->json)
        printf("{\"failures\":[");
    s = es_evolve(st, &f, &a->bounds, on_event, &r, NULL);
    es_progress_finish(&r.progress);
    es_atp_audit_result res;
    bool ready = false;
    if (s == ES_OK && es_atp_audit_finish(audit, &res, &ready) == ES_OK && ready)
        on_result(&r, &res);
    int rc = ES_EXIT_OK;
    if (s != ES_OK) {
        if (a->json)
            printf("]}\n"); /* a document that parses, the error is on stderr */
        rc = es_cli_fail(s, r.failed != ES_OK ? "verifying" : "reading the store");
    } else {
        print_summary(&r, a->store, !a->no_chain && a->entity_type == NULL);
        es_atp_audit_stats stats;
        es_atp_audit_stats_get(audit, &stats);
        if (stats.by_reason[ES_ATP_AUDIT_OK] != stats.commits)
            rc = EXIT_FAILED_COMMITS;
    }
    fflush(stdout);
    es_store_destroy(st);
    es_cli_disconnect(nc);
    return rc;
}

static int parse(int argc, char **argv, es_cli_conn *conn, args *a)
{
    es_cli_parser p;
    es_cli_parser_init(&p, argc - 1, argv + 1, options);
    for (int id; (id = es_cli_next(&p)) != ES_CLI_END;) {
        if (id == ES_CLI_ERROR)
            return ES_EXIT_USAGE;
        int c = es_cli_conn_set(conn, id, p.value);
        if (c == ES_CLI_ERROR)
            return ES_EXIT_USAGE;
        if (c == 1)
            continue;
        switch (id) {
        case OPT_HELP: usage(); exit(ES_EXIT_OK);
        case OPT_VERSION:
            printf("es-atproto-verify %s (nats.c %s)\n", es_version(), es_nats_client_version());
            exit(ES_EXIT_OK);
        case OPT_STORE: a->store = p.value; break;
        case OPT_DID_DOCS: a->did_docs = p.value; break;
        case OPT_DID: a->did = p.value; break;
        case OPT_ENTITY_TYPE: a->entity_type = p.value; break;
        case OPT_NO_CHAIN: a->no_chain = true; break;
        case OPT_JSON: a->json = true; break;
        case OPT_QUIET: a->quiet = true; break;
        case OPT_AFTER:
            if (!es_cli_parse_u64(p.value, "--after", &a->bounds.after_seq))
                return ES_EXIT_USAGE;
            break;
        case OPT_UP_TO:
            if (!es_cli_parse_u64(p.value, "--up-to", &a->bounds.up_to_seq))
                return ES_EXIT_USAGE;
            break;
        case OPT_MAX_DIDS:
            if (!es_cli_parse_u64(p.value, "--max-dids", &a->max_dids) || a->max_dids == 0)
                return a->max_dids == 0 ? es_cli_usage("--max-dids must be at least 1")
                                        : ES_EXIT_USAGE;
            break;
        default: return es_cli_usage("unexpected argument '%s'", p.value);
        }
    }
    if (a->did_docs == NULL)
        return es_cli_usage("--did-docs FILE is required: the keys come from DID documents");
    if (a->entity_type != NULL && !es_valid_entity_type(a->entity_type))
        return es_cli_usage("invalid entity type '%.64s'", a->entity_type);
    if (a->bounds.up_to_seq != 0 && a->bounds.up_to_seq <= a->bounds.after_seq)
        return es_cli_usage("--up-to must be above --after");
    if (es_cli_conn_resolve(conn) != ES_OK)
        return es_cli_fail(ES_ERR_INVALID, NULL);
    return ES_EXIT_OK;
}

int main(int argc, char **argv)
{
    es_cli_set_prog("es-atproto-verify");
    es_cli_conn conn;
    es_cli_conn_init(&conn, "es-atproto-verify");
    args a = {.store = "atproto"};
    es_read_options_init(&a.bounds);
    int rc = parse(argc, argv, &conn, &a);
    if (rc != ES_EXIT_OK)
        return rc;
    es_atp_audit_options o;
    es_atp_audit_options_init(&o);
    o.no_chain = a.no_chain || a.entity_type != NULL;
    if (a.max_dids != 0)
        o.max_dids = (size_t)a.max_dids;
    es_atp_audit *audit = NULL;
    es_status s = es_atp_audit_create(&o, &audit);
    if (s != ES_OK)
        return es_cli_fail(s, "starting");
    size_t docs = 0;
    if ((s = es_atp_audit_load_did_docs(audit, a.did_docs, &docs)) != ES_OK) {
        es_atp_audit_destroy(audit);
        es_cli_error("reading the DID documents: %s", es_last_error());
        return ES_EXIT_USAGE;
    }
    rc = verify(&conn, &a, audit);
    es_atp_audit_destroy(audit);
    return rc;
}
