/* esi_kv_set_replicas over the scripted server: the stream update it asks
 * for (what a one-server test cannot show: a bucket going to R3), that it
 * keeps the rest of the bucket's configuration, sends nothing when the
 * count is already right, and reports a missing bucket as one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "transport/js.h"
#include "transport/kv.h"
#include "transport/msg.h"
#include "transport/tests/fake_conn.h"

#define INFO   "$JS.API.STREAM.INFO.KV_ES_s_checkpoints"
#define UPDATE "$JS.API.STREAM.UPDATE.KV_ES_s_checkpoints"

typedef struct server {
    int replicas;          /* the bucket's, as its stream info says; 0: no bucket */
    int updates;           /* STREAM.UPDATE requests seen */
    json_t *update_config; /* the last one's body */
} server;

static void answer(fake_conn *f, natsMsg *m, void *closure)
{
    server *sv = closure;
    const char *subject = esi_msg_subject(m);
    char text[512];
    if (strcmp(subject, INFO) == 0 && sv->replicas == 0) {
        fake_conn_answer_text(f, m,
                              "{\"error\":{\"code\":404,\"err_code\":10059,"
                              "\"description\":\"stream not found\"}}",
                              0);
    } else if (strcmp(subject, INFO) == 0) {
        snprintf(text, sizeof text,
                 "{\"config\":{\"name\":\"KV_ES_s_checkpoints\",\"subjects\":"
                 "[\"$KV.ES_s_checkpoints.>\"],\"storage\":\"memory\",\"num_replicas\":%d,"
                 "\"max_msgs_per_subject\":8,\"allow_direct\":true},\"state\":{}}",
                 sv->replicas);
        fake_conn_answer_text(f, m, text, 0);
    } else if (strcmp(subject, UPDATE) == 0) {
        sv->updates++;
        json_decref(sv->update_config);
        sv->update_config = json_loadb(esi_msg_data(m), esi_msg_len(m), 0, NULL);
        json_t *c = sv->update_config;
        sv->replicas = (int)json_integer_value(json_object_get(c, "num_replicas"));
        char *dumped = json_dumps(c, JSON_COMPACT);
        snprintf(text, sizeof text, "{\"config\":%s,\"state\":{}}", dumped ? dumped : "{}");
        free(dumped);
        fake_conn_answer_text(f, m, text, 0);
    }
}

typedef struct fixture {
    fake_conn *f;
    esi_js *js;
    server sv;
} fixture;

static void open_fixture(fixture *x, int replicas)
{
    memset(x, 0, sizeof *x);
    x->sv.replicas = replicas;
    x->f = fake_conn_create();
    fake_conn_set_handler(x->f, answer, &x->sv);
    assert_non_null(x->js = fake_conn_js(x->f, 2000));
}

static void close_fixture(fixture *x)
{
    esi_js_destroy(x->js);
    fake_conn_destroy(x->f);
    json_decref(x->sv.update_config);
}

static void asks_for_the_new_count_keeping_the_rest(void **state)
{
    (void)state;
    fixture x;
    open_fixture(&x, 1);
    assert_int_equal(esi_kv_set_replicas(x.js, "ES_s_checkpoints", 3), ES_OK);
    assert_int_equal(x.sv.updates, 1);
    json_t *c = x.sv.update_config;
    assert_non_null(c);
    assert_int_equal(json_integer_value(json_object_get(c, "num_replicas")), 3);
    /* the bucket stays what it was: storage, history, subjects */
    assert_string_equal(json_string_value(json_object_get(c, "storage")), "memory");
    assert_int_equal(json_integer_value(json_object_get(c, "max_msgs_per_subject")), 8);
    assert_string_equal(json_string_value(json_array_get(json_object_get(c, "subjects"), 0)),
                        "$KV.ES_s_checkpoints.>");
    assert_true(json_is_true(json_object_get(c, "allow_direct")));
    close_fixture(&x);
}

static void sends_nothing_when_the_count_is_right(void **state)
{
    (void)state;
    fixture x;
    open_fixture(&x, 3);
    assert_int_equal(esi_kv_set_replicas(x.js, "ES_s_checkpoints", 3), ES_OK);
    assert_int_equal(x.sv.updates, 0);
    close_fixture(&x);
}

static void a_missing_bucket_is_not_found(void **state)
{
    (void)state;
    fixture x;
    open_fixture(&x, 0);
    assert_int_equal(esi_kv_set_replicas(x.js, "ES_s_checkpoints", 3), ES_ERR_NOT_FOUND);
    assert_int_equal(x.sv.updates, 0);
    assert_int_equal(esi_kv_set_replicas(x.js, "ES_s_checkpoints", 0), ES_ERR_INVALID);
    assert_int_equal(esi_kv_set_replicas(x.js, "ES_s_checkpoints", 6), ES_ERR_INVALID);
    close_fixture(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(asks_for_the_new_count_keeping_the_rest),
        cmocka_unit_test(sends_nothing_when_the_count_is_right),
        cmocka_unit_test(a_missing_bucket_is_not_found),
    };
    return cmocka_run_group_tests(tests, fake_nats_setup, fake_nats_teardown);
}
