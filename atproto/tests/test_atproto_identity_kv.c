/* DID documents kept in the store's KV bucket ES_<store>_identity
 * (es_atp_identity_attach_store) against a live server (NATS_URL; skipped
 * without one) and the PLC stand-in (http_standin.h, which counts requests):
 * a second handle — a restarted ingester — resolves from KV without asking
 * the directory; an entry older than the TTL is fetched again; invalidation
 * deletes it; seeded documents are not written; a KV entry that does not
 * read degrades to the network, counted. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <es/atproto.h>
#include <es/atproto_repos.h>
#include <es/checkpoint.h>
#include <es/time.h>

#include "../src/verify.h"
#include "http_standin.h"
#include "live.h"

#define KEY_A "zQ3shrc8v5X6ZiANcZxA6JerfT2T4SskeCGxpmtDfMuHF9KRj"
#define HOUR_MS ((int64_t)3600 * 1000)

typedef struct ctx {
    live_store live;
    standin plc;
    char plc_url[64];
    es_checkpoints *kv; /* the bucket, read directly */
} ctx;

static void doc_text(char *out, size_t cap, const char *did)
{
    snprintf(out, cap,
             "{\"id\":\"%s\",\"alsoKnownAs\":[\"at://kv.test\"],\"verificationMethod\":[{\"id\":"
             "\"%s#atproto\",\"type\":\"Multikey\",\"controller\":\"%s\","
             "\"publicKeyMultibase\":\"%s\"}]}",
             did, did, did, KEY_A);
}

static void serve(ctx *c, const char *did)
{
    char path[256], body[2048];
    snprintf(path, sizeof path, "/%s", did);
    doc_text(body, sizeof body, did);
    standin_route_set(&c->plc, path, 200, body, 0);
}

static int setup(void **state)
{
    static ctx c;
    *state = NULL;
    int made = live_store_create(&c.live, "idkv_t");
    if (made <= 0)
        return made;
    if (standin_start(&c.plc) != 0 ||
        es_checkpoints_open_bucket(c.live.store, ES_CHECKPOINTS_IDENTITY, &c.kv) != ES_OK)
        return -1;
    snprintf(c.plc_url, sizeof c.plc_url, "http://127.0.0.1:%d", c.plc.port);
    *state = &c;
    return 0;
}

static int teardown(void **state)
{
    ctx *c = *state;
    if (c != NULL) {
        es_checkpoints_destroy(c->kv);
        standin_stop(&c->plc);
        live_store_destroy(&c->live);
    }
    return 0;
}

#define NEED_SERVER(state)                                                                         \
    do {                                                                                           \
        if (*(state) == NULL) {                                                                    \
            print_message("NATS_URL not set: skipped\n");                                          \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* A handle as an ingester opens it: the stand-in directory, the store attached. */
static es_atp_identity *open_identity(ctx *c)
{
    es_atp_identity_options o;
    es_atp_identity_options_init(&o);
    o.plc_url = c->plc_url;
    o.allow_insecure = true;
    es_atp_identity *id = NULL;
    assert_int_equal(es_atp_identity_create(&o, &id), ES_OK);
    assert_int_equal(es_atp_identity_attach_store(id, c->live.store), ES_OK);
    assert_int_equal(es_atp_identity_attach_store(id, c->live.store), ES_ERR_INVALID);
    return id;
}

/* Resolves `did`'s key through the handle, as a verifying decoder does. */
static void resolve(es_atp_identity *id, const char *did)
{
    esi_atp_key *key = NULL;
    if (esi_atp_identity_key(id, did, strlen(did), &key) != ES_OK)
        fail_msg("resolving %s: %s", did, es_last_error());
    esi_atp_key_destroy(key);
}

/* The KV entry of `did`: ES_OK with *cp (cleared by the caller), or its status. */
static es_status kv_entry(ctx *c, const char *did, es_checkpoint *cp)
{
    char key[ES_ATP_REPO_KEY_MAX + 1];
    assert_int_equal(es_atp_repo_key(did, strlen(did), key), ES_OK);
    return es_checkpoint_get(c->kv, key, cp);
}

static es_atp_identity_stats stats_of(const es_atp_identity *id)
{
    es_atp_identity_stats st;
    es_atp_identity_stats_get(id, &st);
    return st;
}

/* Fetched once by the first handle, written to KV with its fetch time; a
 * second handle (a restarted ingester) reads it from KV: no request. */
static void second_handle_reads_kv(void **state)
{
    NEED_SERVER(state);
    ctx *c = *state;
    const char *did = "did:plc:kvfirst";
    serve(c, did);
    unsigned before = standin_requests(&c->plc);
    es_atp_identity *first = open_identity(c);
    resolve(first, did);
    resolve(first, did);
    assert_int_equal(standin_requests(&c->plc), before + 1);
    es_checkpoint cp;
    assert_int_equal(kv_entry(c, did, &cp), ES_OK);
    int64_t now_ms = es_now_ns() / 1000000;
    assert_true((int64_t)cp.position <= now_ms && (int64_t)cp.position > now_ms - 60000);
    assert_non_null(strstr(cp.data, did));
    es_checkpoint_clear(&cp);
    es_atp_identity_destroy(first);

    es_atp_identity *second = open_identity(c);
    resolve(second, did);
    resolve(second, did);
    assert_int_equal(standin_requests(&c->plc), before + 1);
    es_atp_identity_stats st = stats_of(second);
    assert_int_equal(st.fetches, 0);
    assert_int_equal(st.store_hits, 1);
    assert_int_equal(st.hits, 1);
    assert_int_equal(st.store_errors, 0);
    es_atp_identity_destroy(second);
}

/* An entry fetched longer than the TTL ago (24 h by default) is not used:
 * the directory is asked, and the entry rewritten with the new fetch time. */
static void expired_entry_is_fetched_again(void **state)
{
    NEED_SERVER(state);
    ctx *c = *state;
    const char *did = "did:plc:kvold";
    serve(c, did);
    char key[ES_ATP_REPO_KEY_MAX + 1], body[2048];
    assert_int_equal(es_atp_repo_key(did, strlen(did), key), ES_OK);
    doc_text(body, sizeof body, did);
    int64_t old_ms = es_now_ns() / 1000000 - 25 * HOUR_MS;
    assert_int_equal(
        es_checkpoint_set(c->kv, key, (uint64_t)old_ms, body, ES_CHECKPOINT_ANY, NULL), ES_OK);
    unsigned before = standin_requests(&c->plc);
    es_atp_identity *id = open_identity(c);
    resolve(id, did);
    assert_int_equal(standin_requests(&c->plc), before + 1);
    es_atp_identity_stats st = stats_of(id);
    assert_int_equal(st.fetches, 1);
    assert_int_equal(st.store_hits, 0);
    es_checkpoint cp;
    assert_int_equal(kv_entry(c, did, &cp), ES_OK);
    assert_true((int64_t)cp.position > old_ms + 24 * HOUR_MS);
    es_checkpoint_clear(&cp);
    es_atp_identity_destroy(id);
    /* ... and one 23 h old is used */
    int64_t recent_ms = es_now_ns() / 1000000 - 23 * HOUR_MS;
    assert_int_equal(
        es_checkpoint_set(c->kv, key, (uint64_t)recent_ms, body, ES_CHECKPOINT_ANY, NULL), ES_OK);
    id = open_identity(c);
    resolve(id, did);
    assert_int_equal(standin_requests(&c->plc), before + 1);
    assert_int_equal(stats_of(id).store_hits, 1);
    es_atp_identity_destroy(id);
}

/* es_atp_identity_invalidate (an #identity) deletes the KV entry: the next
 * handle asks the directory again. */
static void invalidate_deletes_entry(void **state)
{
    NEED_SERVER(state);
    ctx *c = *state;
    const char *did = "did:plc:kvgone";
    serve(c, did);
    es_atp_identity *id = open_identity(c);
    resolve(id, did);
    es_checkpoint cp;
    assert_int_equal(kv_entry(c, did, &cp), ES_OK);
    es_checkpoint_clear(&cp);
    es_atp_identity_invalidate(id, did, strlen(did));
    assert_int_equal(kv_entry(c, did, &cp), ES_ERR_NOT_FOUND);
    es_atp_identity_invalidate(id, did, strlen(did)); /* none there: no error */
    assert_int_equal(stats_of(id).store_errors, 0);
    es_atp_identity_destroy(id);
    unsigned before = standin_requests(&c->plc);
    id = open_identity(c);
    resolve(id, did);
    assert_int_equal(standin_requests(&c->plc), before + 1);
    es_atp_identity_destroy(id);
}

/* Seeded documents (--did-docs) stay in memory: nothing is written to KV. */
static void seeded_documents_stay_in_memory(void **state)
{
    NEED_SERVER(state);
    ctx *c = *state;
    const char *did = "did:plc:kvseeded";
    char path[64], body[2048];
    snprintf(path, sizeof path, "/tmp/idkv-seed-%ld.json", (long)getpid());
    doc_text(body, sizeof body, did);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "{\"%s\":%s}", did, body);
    fclose(f);
    es_atp_identity *id = open_identity(c);
    size_t n = 0;
    assert_int_equal(es_atp_identity_seed_file(id, path, &n), ES_OK);
    assert_int_equal(n, 1);
    unlink(path);
    unsigned before = standin_requests(&c->plc);
    resolve(id, did);
    assert_int_equal(standin_requests(&c->plc), before);
    es_checkpoint cp;
    assert_int_equal(kv_entry(c, did, &cp), ES_ERR_NOT_FOUND);
    es_atp_identity_destroy(id);
}

/* A KV entry that does not read as the DID's document (written by something
 * else) is a KV failure: counted, and the directory answers; the frame is
 * not refused for it. The fetched document then replaces the entry. */
static void bad_entry_degrades_to_network(void **state)
{
    NEED_SERVER(state);
    ctx *c = *state;
    const char *did = "did:plc:kvbad";
    serve(c, did);
    char key[ES_ATP_REPO_KEY_MAX + 1], other[2048];
    assert_int_equal(es_atp_repo_key(did, strlen(did), key), ES_OK);
    doc_text(other, sizeof other, "did:plc:someoneelse");
    int64_t now_ms = es_now_ns() / 1000000;
    assert_int_equal(
        es_checkpoint_set(c->kv, key, (uint64_t)now_ms, other, ES_CHECKPOINT_ANY, NULL), ES_OK);
    unsigned before = standin_requests(&c->plc);
    es_atp_identity *id = open_identity(c);
    resolve(id, did);
    assert_int_equal(standin_requests(&c->plc), before + 1);
    es_atp_identity_stats st = stats_of(id);
    assert_int_equal(st.store_errors, 1);
    assert_int_equal(st.fetches, 1);
    es_checkpoint cp;
    assert_int_equal(kv_entry(c, did, &cp), ES_OK);
    assert_non_null(strstr(cp.data, did));
    es_checkpoint_clear(&cp);
    es_atp_identity_destroy(id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(second_handle_reads_kv),
        cmocka_unit_test(expired_entry_is_fetched_again),
        cmocka_unit_test(invalidate_deletes_entry),
        cmocka_unit_test(seeded_documents_stay_in_memory),
        cmocka_unit_test(bad_entry_degrades_to_network),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
