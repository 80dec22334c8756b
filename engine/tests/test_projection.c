/* Projection pieces that need no server: JetStream delivery metadata, the
 * partition function, consumer requests and info parsing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <stdio.h>

#include <es/projection.h>

#include "base/hash.h"
#include "event_impl.h"
#include "projection_impl.h"
#include "transport/pull.h"
#include "store_impl.h"

static int partition_of_subject(es_store *st, const char *subject, int n)
{
    natsMsg *m = NULL;
    assert_int_equal(natsMsg_Create(&m, subject, NULL, "", 0), NATS_OK);
    es_event ev;
    memset(&ev, 0, sizeof ev);
    esi_event_wrap(&ev, st, m, natsMsg_GetSubject(m), 1, 0);
    int p = es_projection_partition_of(&ev, n);
    esi_event_clear(&ev);
    natsMsg_Destroy(m);
    return p;
}

static void partitions_by_type_and_id_tokens(void **state)
{
    (void)state;
    es_store st;
    memset(&st, 0, sizeof st);
    strcpy(st.name, "s");
    uint32_t h = esi_fnv1a32("app_bsky_feed_likedid:plc:abc", 29, ESI_FNV32_OFFSET);
    assert_int_equal(partition_of_subject(&st, "$ES.s.app_bsky_feed_like.did:plc:abc.create", 7),
                     (int)(h % 7));
    /* Every event of one entity lands in one partition, whatever its type. */
    assert_int_equal(partition_of_subject(&st, "$ES.s.app_bsky_feed_like.did:plc:abc.delete", 7),
                     (int)(h % 7));
    assert_int_equal(partition_of_subject(&st, "$ES.s.t.x.e", 1), 0);
    /* With tenancy the tenant token counts too. */
    st.config.tenancy = true;
    h = esi_fnv1a32("acmetx", 6, ESI_FNV32_OFFSET);
    assert_int_equal(partition_of_subject(&st, "$ES.s.acme.t.x.e", 5), (int)(h % 5));
    /* Spread: 1000 ids over 4 partitions, none starved. */
    int count[4] = {0};
    for (int i = 0; i < 1000; i++) {
        char subject[64];
        snprintf(subject, sizeof subject, "$ES.s.acme.account.id-%d.changed", i);
        count[partition_of_subject(&st, subject, 4)]++;
    }
    for (int i = 0; i < 4; i++)
        assert_true(count[i] > 180);
}

static void names_consumers(void **state)
{
    (void)state;
    char out[ES_PROJECTION_CONSUMER_MAX];
    esi_projection_consumer_name("likes", 1, 0, out);
    assert_string_equal(out, "likes");
    esi_projection_consumer_name("likes", 4, 3, out);
    assert_string_equal(out, "likes_p3");
    assert_int_equal(esi_projection_check_name("a-b_C9"), ES_OK);
    assert_int_equal(esi_projection_check_name(""), ES_ERR_INVALID);
    assert_int_equal(esi_projection_check_name("a.b"), ES_ERR_INVALID);
    assert_int_equal(esi_projection_check_name("a b"), ES_ERR_INVALID);
    assert_int_equal(esi_projection_check_name(NULL), ES_ERR_INVALID);
    char longname[ES_PROJECTION_NAME_MAX + 2];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(esi_projection_check_name(longname), ES_ERR_INVALID);
}

static void resolves_configurations(void **state)
{
    (void)state;
    es_projection_config c, r;
    es_projection_config_init(&c);
    assert_int_equal(esi_projection_config_resolve(&c, &r), ES_OK);
    assert_int_equal(r.partitions, 1);
    assert_int_equal(r.pin_timeout_ms, c.ack_wait_ms + 5000);
    c.partitions = 8; /* ignored when unordered */
    assert_int_equal(esi_projection_config_resolve(&c, &r), ES_OK);
    assert_int_equal(r.partitions, 1);
    c.ordered = true;
    assert_int_equal(esi_projection_config_resolve(&c, &r), ES_OK);
    assert_int_equal(r.partitions, 8);
    c.pin_timeout_ms = c.ack_wait_ms; /* a crashed holder's events would be overtaken */
    assert_int_equal(esi_projection_config_resolve(&c, &r), ES_ERR_INVALID);
    c.pin_timeout_ms = 0;
    c.partitions = ES_PROJECTION_MAX_PARTITIONS + 1;
    assert_int_equal(esi_projection_config_resolve(&c, &r), ES_ERR_INVALID);
    es_projection_config_init(&c);
    c.max_deliver = 0;
    assert_int_equal(esi_projection_config_resolve(&c, &r), ES_ERR_INVALID);
    es_projection_config_init(&c);
    c.filter_count = ES_PROJECTION_MAX_FILTERS + 1;
    assert_int_equal(esi_projection_config_resolve(&c, &r), ES_ERR_INVALID);
    c.filter_count = 1; /* and no filters */
    assert_int_equal(esi_projection_config_resolve(&c, &r), ES_ERR_INVALID);
    es_projection_config_init(&c);
    c.start = (es_projection_start_at)7;
    assert_int_equal(esi_projection_config_resolve(&c, &r), ES_ERR_INVALID);
    assert_int_equal(esi_projection_config_resolve(NULL, &r), ES_ERR_INVALID);
}

static void builds_consumer_requests(void **state)
{
    (void)state;
    es_projection_config c, r;
    es_projection_config_init(&c);
    c.ordered = true;
    c.partitions = 4;
    c.start = ES_PROJECTION_AFTER_SEQ;
    c.after_seq = 99;
    c.description = "likes view";
    assert_int_equal(esi_projection_config_resolve(&c, &r), ES_OK);
    const char *subjects[] = {"$ES.s.app_bsky_feed_like.*.create",
                              "$ES.s.app_bsky_feed_like.*.delete"};
    json_t *req = esi_projection_consumer_request("ES_s", "likes", &r, subjects, 2, 2, false);
    assert_non_null(req);
    assert_string_equal(json_string_value(json_object_get(req, "action")), "create");
    json_t *cfg = json_object_get(req, "config");
    assert_string_equal(json_string_value(json_object_get(cfg, "durable_name")), "likes_p2");
    assert_string_equal(json_string_value(json_object_get(cfg, "deliver_policy")),
                        "by_start_sequence");
    assert_int_equal(json_integer_value(json_object_get(cfg, "opt_start_seq")), 100);
    assert_string_equal(json_string_value(json_object_get(cfg, "ack_policy")), "explicit");
    assert_int_equal(json_array_size(json_object_get(cfg, "filter_subjects")), 2);
    assert_null(json_object_get(cfg, "filter_subject"));
    assert_string_equal(json_string_value(json_object_get(cfg, "priority_policy")),
                        "pinned_client");
    assert_int_equal(json_integer_value(json_object_get(cfg, "priority_timeout")),
                     35000LL * 1000000);
    json_t *md = json_object_get(cfg, "metadata");
    assert_string_equal(json_string_value(json_object_get(md, ES_META_PARTITION)), "2");
    assert_string_equal(json_string_value(json_object_get(md, ES_META_PARTITIONS)), "4");

    /* Reading it back as the server would echo it. */
    json_t *ci =
        json_pack("{s:O, s:I, s:I, s:{s:I}, s:{s:I}, s:i, s:[{s:s}]}", "config", cfg, "num_pending",
                  (json_int_t)7, "num_ack_pending", (json_int_t)3, "delivered", "stream_seq",
                  (json_int_t)120, "ack_floor", "stream_seq", (json_int_t)110, "num_waiting", 2,
                  "priority_groups", "pinned_id", "abc");
    es_projection_info info;
    memset(&info, 0, sizeof info);
    json_t *md0 = json_object_get(json_object_get(ci, "config"), "metadata");
    json_object_set_new(md0, ES_META_PARTITION, json_string("0"));
    esi_projection_info_add(&info, ci, 0);
    assert_string_equal(info.name, "likes");
    assert_true(info.ordered);
    assert_int_equal(info.partitions, 4);
    assert_int_equal(info.start, ES_PROJECTION_AFTER_SEQ);
    assert_int_equal(info.after_seq, 99);
    assert_int_equal(info.filter_count, 2);
    assert_int_equal(info.ack_wait_ms, 30000);
    assert_int_equal(info.pin_timeout_ms, 35000);
    assert_int_equal(info.pending, 7);
    assert_int_equal(info.ack_pending, 3);
    assert_int_equal(info.ack_floor_seq, 110);
    assert_true(info.partition[0].pinned);
    assert_int_equal(info.partition[0].waiting, 2);
    /* A second partition: pending is the largest, ack pending the sum,
     * the ack floor the smallest. */
    json_object_set_new(ci, "num_pending", json_integer(2));
    json_object_set_new(json_object_get(ci, "ack_floor"), "stream_seq", json_integer(90));
    esi_projection_info_add(&info, ci, 1);
    assert_int_equal(info.pending, 7);
    assert_int_equal(info.ack_pending, 6);
    assert_int_equal(info.ack_floor_seq, 90);
    esi_projection_info_add(&info, ci, ES_PROJECTION_MAX_PARTITIONS); /* ignored */
    json_decref(ci);
    json_decref(req);

    /* Unordered, one filter, from the start, updating. */
    es_projection_config_init(&c);
    assert_int_equal(esi_projection_config_resolve(&c, &r), ES_OK);
    req = esi_projection_consumer_request("ES_s", "all", &r, subjects, 1, 0, true);
    cfg = json_object_get(req, "config");
    assert_string_equal(json_string_value(json_object_get(req, "action")), "update");
    assert_string_equal(json_string_value(json_object_get(cfg, "name")), "all");
    assert_string_equal(json_string_value(json_object_get(cfg, "filter_subject")), subjects[0]);
    assert_null(json_object_get(cfg, "priority_groups"));
    assert_null(json_object_get(cfg, "opt_start_seq"));
    json_decref(req);
}

static void hostile_info_is_harmless(void **state)
{
    (void)state;
    es_projection_info info;
    memset(&info, 0, sizeof info);
    json_t *ci =
        json_pack("{s:{s:{s:s, s:s}}, s:i, s:s}", "config", "metadata", ES_META_PARTITIONS, "9999",
                  ES_META_PROJECTION, "x", "num_pending", -5, "delivered", "nonsense");
    esi_projection_info_add(&info, ci, 0);
    assert_int_equal(info.partitions, 1);
    assert_int_equal(info.pending, 0);
    json_decref(ci);
}

int main(void)
{
    nats_Open(-1); /* natsMsg_Destroy needs the library's garbage collector */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(partitions_by_type_and_id_tokens),
        cmocka_unit_test(names_consumers),
        cmocka_unit_test(resolves_configurations),
        cmocka_unit_test(builds_consumer_requests),
        cmocka_unit_test(hostile_info_is_harmless),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    nats_Close();
    return failed;
}
