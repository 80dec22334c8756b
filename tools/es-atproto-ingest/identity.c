/* The identity of a verifying ingester (identity.h). */
#include "identity.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

es_status ingest_identity_open(const ingest_config *c, es_atp_identity **out)
{
    *out = NULL;
    if (c->no_verify) {
        ingest_log_msg(LOG_WARN,
                       "--no-verify: signatures, inversion and identities are NOT checked; "
                       "a relay can store anything it forges",
                       NULL);
        return ES_OK;
    }
    es_atp_identity_options o;
    es_atp_identity_options_init(&o);
    if (c->plc_url != NULL)
        o.plc_url = c->plc_url;
    o.offline = c->offline;
    if (c->identity_ttl_ms > 0)
        o.ttl_ms = c->identity_ttl_ms;
    o.allow_insecure = ingest_test_insecure();
    es_atp_identity *id = NULL;
    es_status s = es_atp_identity_create(&o, &id);
    if (s != ES_OK)
        return s;
    size_t n = 0;
    if (c->did_docs != NULL && (s = es_atp_identity_seed_file(id, c->did_docs, &n)) != ES_OK) {
        es_atp_identity_destroy(id);
        return s;
    }
    if (c->did_docs != NULL) {
        ingest_log_line l;
        ingest_log_begin(&l, LOG_INFO, "DID documents seeded");
        ingest_log_str(&l, "file", c->did_docs);
        ingest_log_u64(&l, "documents", n);
        ingest_log_end(&l);
    }
    *out = id;
    return ES_OK;
}

void ingest_identity_report(FILE *out, const es_atp_identity *id)
{
    if (id == NULL) {
        fprintf(out, "verification: off (--no-verify)\n");
        return;
    }
    es_atp_identity_stats st;
    es_atp_identity_stats_get(id, &st);
    fprintf(out,
            "verification: on; DID documents: %" PRIu64 " cached, %" PRIu64 " hits, %" PRIu64
            " fetched, %" PRIu64 " failed, %" PRIu64 " failures remembered, %" PRIu64
            " from KV, %" PRIu64 " KV errors\n",
            st.cached, st.hits, st.fetches, st.failures, st.negative_hits, st.store_hits,
            st.store_errors);
}

bool ingest_test_insecure(void)
{
    const char *insecure = getenv(INGEST_TEST_INSECURE_ENV);
    return insecure != NULL && strcmp(insecure, "1") == 0;
}

void ingest_xrpc_options(const ingest_config *c, es_atp_xrpc_options *o)
{
    es_atp_xrpc_options_init(o);
    o->timeout_ms = c->repo_fetch_timeout_ms;
    o->allow_insecure = ingest_test_insecure();
}
