/* The stored form of snapshots and their keys (no server). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <es/kvkey.h>
#include <es/snapshot.h>

#include "snapshot_impl.h"

static void round_trips(void **state)
{
    (void)state;
    es_buf b = ES_BUF_INIT;
    assert_int_equal(esi_snapshot_encode(0xFEDCBA9876543210ULL, 7, -5, "state!", 6, &b), ES_OK);
    assert_int_equal(b.len, ES_SNAPSHOT_HEADER + 6);
    assert_memory_equal(b.data, "ESS1", 4);
    es_snapshot snap;
    assert_int_equal(esi_snapshot_decode(b.data, b.len, &snap), ES_OK);
    assert_int_equal(snap.seq, 0xFEDCBA9876543210ULL);
    assert_int_equal(snap.version, 7);
    assert_int_equal(snap.time_ns, -5);
    assert_int_equal(snap.len, 6);
    assert_memory_equal(snap.data, "state!", 6);
    es_snapshot_clear(&snap);
    assert_null(snap.data);

    es_buf_clear(&b); /* an empty state is a state */
    assert_int_equal(esi_snapshot_encode(1, 0, 0, NULL, 0, &b), ES_OK);
    assert_int_equal(esi_snapshot_decode(b.data, b.len, &snap), ES_OK);
    assert_int_equal(snap.len, 0);
    es_snapshot_clear(&snap);
    es_buf_free(&b);
}

static void refuses_hostile_values(void **state)
{
    (void)state;
    es_snapshot snap;
    uint8_t v[ES_SNAPSHOT_HEADER + 4] = {'E', 'S', 'S', '1'};
    assert_int_equal(esi_snapshot_decode(v, 0, &snap), ES_ERR_DECODE);
    assert_int_equal(esi_snapshot_decode(NULL, 30, &snap), ES_ERR_DECODE);
    assert_int_equal(esi_snapshot_decode(v, ES_SNAPSHOT_HEADER - 1, &snap), ES_ERR_DECODE);
    assert_int_equal(esi_snapshot_decode(v, sizeof v, &snap), ES_ERR_DECODE); /* seq 0 */
    v[15] = 1;
    v[0] = 'X';
    assert_int_equal(esi_snapshot_decode(v, sizeof v, &snap), ES_ERR_DECODE);
    v[0] = 'E';
    assert_int_equal(esi_snapshot_decode(v, sizeof v, &snap), ES_OK);
    assert_int_equal(snap.seq, 1);
    assert_int_equal(snap.len, 4);
    es_snapshot_clear(&snap);
    es_buf b = ES_BUF_INIT;
    assert_int_equal(esi_snapshot_encode(0, 1, 0, "x", 1, &b), ES_ERR_INVALID);
    assert_int_equal(esi_snapshot_encode(1, 1, 0, NULL, 3, &b), ES_ERR_INVALID);
    es_buf_free(&b);
}

static void keys_name_one_entity(void **state)
{
    (void)state;
    char key[256];
    es_filter f;
    es_filter_init(&f);
    f.entity_type = "app_bsky_feed_like";
    f.entity_id = "did:plc:abc.def";
    assert_int_equal(esi_snapshot_key(false, &f, key, sizeof key), ES_OK);
    assert_string_equal(key, "app_bsky_feed_like.did=3Aplc=3Aabc=2Edef");
    assert_true(es_kv_key_valid(key));
    f.tenant = "acme";
    assert_int_equal(esi_snapshot_key(true, &f, key, sizeof key), ES_OK);
    assert_string_equal(key, "acme.app_bsky_feed_like.did=3Aplc=3Aabc=2Edef");
    assert_int_equal(esi_snapshot_key(false, &f, key, sizeof key), ES_ERR_INVALID);
    f.tenant = NULL;
    assert_int_equal(esi_snapshot_key(true, &f, key, sizeof key), ES_ERR_INVALID);
    f.entity_id = "a\0b";
    f.entity_id_len = 3;
    assert_int_equal(esi_snapshot_key(false, &f, key, sizeof key), ES_OK);
    assert_string_equal(key, "app_bsky_feed_like.a=00b");
    f.event_type = "create";
    assert_int_equal(esi_snapshot_key(false, &f, key, sizeof key), ES_ERR_INVALID);
    f.event_type = NULL;
    f.entity_type = "bad.type";
    assert_int_equal(esi_snapshot_key(false, &f, key, sizeof key), ES_ERR_INVALID);
    f.entity_type = "t";
    f.entity_id = NULL;
    assert_int_equal(esi_snapshot_key(false, &f, key, sizeof key), ES_ERR_INVALID);
    assert_int_equal(esi_snapshot_key(false, NULL, key, sizeof key), ES_ERR_INVALID);
    f.entity_id = "::::::::";
    f.entity_id_len = 0;
    assert_int_equal(esi_snapshot_key(false, &f, key, 8), ES_ERR_LIMIT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trips),
        cmocka_unit_test(refuses_hostile_values),
        cmocka_unit_test(keys_name_one_entity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
