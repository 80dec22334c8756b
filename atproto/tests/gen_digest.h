/* The fingerprint of a generated capture, for the generator's determinism
 * tests: equal options must give equal digests. Include after <cmocka.h>. */
#ifndef ES_ATP_TEST_GEN_DIGEST_H
#define ES_ATP_TEST_GEN_DIGEST_H

#include <es/cid.h>

#include "atproto_gen.h"

/* The SHA-256 of `frames` frames generated with `o` and, when they are
 * signed, of the DID documents before and after them (rotations change
 * them); *counts (may be NULL) gets what was generated. */
static inline void gen_digest(es_atp_gen_options o, int frames, uint8_t out[ES_CID_SHA256_LEN],
                              es_atp_gen_counts *counts)
{
    es_atp_gen *g = NULL;
    assert_int_equal(es_atp_gen_create(&o, &g), ES_OK);
    es_buf all = ES_BUF_INIT;
    if (!o.unsigned_commits)
        assert_int_equal(es_atp_gen_did_docs(g, &all), ES_OK);
    for (int i = 0; i < frames; i++)
        assert_int_equal(es_atp_gen_next(g, &all), ES_OK);
    if (!o.unsigned_commits)
        assert_int_equal(es_atp_gen_did_docs(g, &all), ES_OK);
    assert_int_equal(es_cid_sha256(ES_CID_CODEC_RAW, all.data, all.len, out), ES_OK);
    if (counts != NULL)
        *counts = *es_atp_gen_counts_of(g);
    es_buf_free(&all);
    es_atp_gen_destroy(g);
}

#endif
