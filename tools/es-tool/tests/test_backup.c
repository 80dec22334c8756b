/* Unit tests of es-tool's backup format (backup.c) and JSON indentation
 * (render.c), no server needed: a stored event survives write -> parse ->
 * write, and hostile lines are refused with a clear status. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "backup.h"
#include "render.h"

/* An event as es_event_raw hands it out: a name repeated (its values in
 * order), one not in UTF-8, a payload with NULs. */
static const es_header sample_headers[] = {
    {"X-Multi", "one"},      {"Rita-Type", "Opened"},
    {"Nats-Msg-Id", "id-1"}, {"Rita-Meta-who", "\xff\xfe latin"}, /* not UTF-8 */
    {"X-Multi", "two"},
};

static es_raw_event sample_event(void)
{
    es_raw_event ev = {.subject = "account.a%2E1.Opened",
                       .headers = sample_headers,
                       .header_count = sizeof sample_headers / sizeof sample_headers[0],
                       .payload = "\x00\x01{}",
                       .payload_len = 4};
    return ev;
}

/* The values of `name` in `ev`, in order, joined with '|'. */
static void values_of(const es_raw_event *ev, const char *name, char *out, size_t size)
{
    out[0] = '\0';
    for (size_t i = 0; i < ev->header_count; i++)
        if (strcmp(ev->headers[i].name, name) == 0)
            snprintf(out + strlen(out), size - strlen(out), "%s%s", out[0] ? "|" : "",
                     ev->headers[i].value);
}

static void test_round_trip(void **state)
{
    (void)state;
    es_arena *arena = NULL;
    assert_int_equal(es_arena_create(0, &arena), ES_OK);
    es_raw_event ev = sample_event();
    es_buf line = ES_BUF_INIT;
    assert_int_equal(backup_write_event(arena, &ev, &line), ES_OK);
    assert_int_equal(line.data[line.len - 1], '\n');
    assert_int_equal(es_buf_append_byte(&line, 0), ES_OK); /* for strstr */
    line.len--;
    /* names sorted, the values of one name together and in order */
    char *msgid = strstr((char *)line.data, "Nats-Msg-Id"),
         *rita = strstr((char *)line.data, "Rita-Meta");
    assert_true(msgid != NULL && rita != NULL && msgid < rita);
    assert_non_null(strstr((char *)line.data, "\"X-Multi\":[\"one\",\"two\"]"));

    es_arena *arena2 = NULL;
    assert_int_equal(es_arena_create(0, &arena2), ES_OK);
    backup_line ln;
    assert_int_equal(backup_parse_line((char *)line.data, line.len - 1, false, arena2, &ln), ES_OK);
    assert_int_equal(ln.kind, BACKUP_EVENT);
    assert_string_equal(ln.event.subject, "account.a%2E1.Opened");
    assert_int_equal(ln.event.payload_len, 4);
    assert_memory_equal(ln.event.payload, "\x00\x01{}", 4);
    assert_int_equal(ln.event.header_count, 5);
    char values[64];
    values_of(&ln.event, "Rita-Meta-who", values, sizeof values);
    assert_string_equal(values, "\xff\xfe latin");
    values_of(&ln.event, "X-Multi", values, sizeof values);
    assert_string_equal(values, "one|two");
    assert_int_equal(es_import_check(&ln.event, false), ES_OK);

    /* writing the parsed event gives the same line */
    es_buf again = ES_BUF_INIT;
    es_arena_reset(arena);
    assert_int_equal(backup_write_event(arena, &ln.event, &again), ES_OK);
    assert_int_equal(again.len, line.len);
    assert_memory_equal(again.data, line.data, line.len);
    es_buf_free(&line);
    es_buf_free(&again);
    es_arena_destroy(arena);
    es_arena_destroy(arena2);
}

static void test_start_end(void **state)
{
    (void)state;
    es_arena *arena = NULL;
    assert_int_equal(es_arena_create(0, &arena), ES_OK);
    es_buf b = ES_BUF_INIT;
    backup_line ln;
    es_store_config cfg;
    es_store_config_init(&cfg);
    cfg.tenancy = true;
    cfg.max_age_ns = 86400LL * 1000000000LL;
    cfg.compress_threshold = 1024;
    cfg.encrypt = true;
    assert_int_equal(backup_write_start(&b, &cfg), ES_OK);
    assert_int_equal(backup_parse_line((char *)b.data, b.len - 1, false, arena, &ln), ES_OK);
    assert_int_equal(ln.kind, BACKUP_START);
    assert_true(ln.tenancy);
    assert_true(ln.has_config); /* the configuration comes back whole */
    assert_true(ln.config.tenancy && ln.config.encrypt && !ln.config.memory_storage);
    assert_int_equal(ln.config.max_age_ns, cfg.max_age_ns);
    assert_int_equal(ln.config.compress_threshold, 1024);
    assert_int_equal(ln.config.duplicate_window_ns, cfg.duplicate_window_ns);
    assert_int_equal(ln.config.replicas, 1);
    /* a version 1 file: no configuration, still read */
    const char *v1 = "{\"es_export\":1,\"tenancy\":false}";
    assert_int_equal(backup_parse_line(v1, strlen(v1), false, arena, &ln), ES_OK);
    assert_int_equal(ln.kind, BACKUP_START);
    assert_false(ln.has_config);
    es_buf_clear(&b);
    assert_int_equal(backup_write_end(&b, 42), ES_OK);
    assert_int_equal(backup_parse_line((char *)b.data, b.len - 1, false, arena, &ln), ES_OK);
    assert_int_equal(ln.kind, BACKUP_END);
    assert_int_equal(ln.events, 42);
    es_buf_free(&b);
    es_arena_destroy(arena);
}

static void test_hostile_lines(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "not json",
        "[1,2]",
        "{\"es_export\":2,\"tenancy\":false}",
        "{\"es_export\":1}",
        "{\"es_export\":1,\"tenancy\":false,\"x\":1}",
        "{\"es_export\":3,\"tenancy\":false}",
        "{\"es_export\":1,\"tenancy\":false,\"config\":{}}",
        "{\"es_export\":2,\"tenancy\":false,\"config\":{\"storage\":\"file\",\"replicas\":1,"
        "\"max_age_ns\":0,\"max_bytes\":0,\"max_events\":0,\"max_event_size\":0,"
        "\"duplicate_window_ns\":1,\"tenancy\":true,\"compress_threshold\":0,\"encrypt\":false}}",
        "{\"es_export\":2,\"tenancy\":false,\"config\":{\"storage\":\"disk\"}}",
        "{\"es_export\":2,\"tenancy\":false,\"config\":{\"replicas\":-1}}",
        "{\"end\":true,\"events\":-1}",
        "{\"subject\":\"a.b.c\",\"headers\":{},\"data\":\"AAAA\"}",
        "{\"subject\":\"a.b.c\",\"headers\":{}}",
        "{\"subject\":\"a.b.c\",\"headers\":{},\"data\":{\"$bytes\":\"\"},\"seq\":1}",
        "{\"subject\":\"a.b\",\"headers\":{},\"data\":{\"$bytes\":\"\"}}",
        "{\"subject\":\"a.b.c.d\",\"headers\":{},\"data\":{\"$bytes\":\"\"}}",
        "{\"subject\":\"a..c\",\"headers\":{},\"data\":{\"$bytes\":\"\"}}",
        "{\"subject\":\"a.b.\",\"headers\":{},\"data\":{\"$bytes\":\"\"}}",
        "{\"subject\":\"a.b*.c\",\"headers\":{},\"data\":{\"$bytes\":\"\"}}",
        "{\"subject\":\"a.>.c\",\"headers\":{},\"data\":{\"$bytes\":\"\"}}",
        "{\"subject\":\"a.%2e.c\",\"headers\":{},\"data\":{\"$bytes\":\"\"}}",
        "{\"subject\":\"a b.c.d\",\"headers\":{},\"data\":{\"$bytes\":\"\"}}",
        "{\"subject\":\"a.b\\u0000x.c\",\"headers\":{},\"data\":{\"$bytes\":\"\"}}",
        "{\"subject\":\"a.b.c\",\"headers\":{\"Nats-Rollup\":[\"all\"]},\"data\":{\"$bytes\":\"\"}"
        "}",
        "{\"subject\":\"a.b.c\",\"headers\":{\"nats-ttl\":[\"1s\"]},\"data\":{\"$bytes\":\"\"}}",
        "{\"subject\":\"a.b.c\",\"headers\":{\"Bad:Name\":[\"x\"]},\"data\":{\"$bytes\":\"\"}}",
        "{\"subject\":\"a.b.c\",\"headers\":{\"Bad Name\":[\"x\"]},\"data\":{\"$bytes\":\"\"}}",
        "{\"subject\":\"a.b.c\",\"headers\":{\"X\":\"x\"},\"data\":{\"$bytes\":\"\"}}",
        "{\"subject\":\"a.b.c\",\"headers\":{\"X\":[]},\"data\":{\"$bytes\":\"\"}}",
        "{\"subject\":\"a.b.c\",\"headers\":{\"X\":[\"a\\r\\nNats-Rollup: "
        "all\"]},\"data\":{\"$bytes\":\"\"}}",
        "{\"subject\":\"a.b.c\",\"headers\":{\"X\":[{\"$bytes\":\"AA\"}]},\"data\":{\"$bytes\":"
        "\"\"}}",
        "{\"subject\":\"a.b.c\",\"headers\":{\"X\":[1]},\"data\":{\"$bytes\":\"\"}}",
        "{\"subject\":\"a.b.c\",\"headers\":{},\"data\":{\"$bytes\":\"!!\"}}",
        "{\"subject\":\"a.b.c\",\"subject\":\"x.y.z\",\"headers\":{},\"data\":{\"$bytes\":\"\"}}",
    };
    es_arena *arena = NULL;
    assert_int_equal(es_arena_create(1 << 20, &arena), ES_OK);
    backup_line *ln = malloc(sizeof *ln);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        es_arena_reset(arena);
        es_status s = backup_parse_line(bad[i], strlen(bad[i]), false, arena, ln);
        if (s == ES_OK)
            fail_msg("accepted: %s", bad[i]);
    }
    /* with tenancy, four tokens are needed, and three are refused */
    const char *ten = "{\"subject\":\"acme.a.b.c\",\"headers\":{},\"data\":{\"$bytes\":\"\"}}";
    assert_int_equal(backup_parse_line(ten, strlen(ten), true, arena, ln), ES_OK);
    assert_int_not_equal(backup_parse_line(ten, strlen(ten), false, arena, ln), ES_OK);
    /* deep nesting is bounded by the JSON reader, not the stack */
    char deep[20000];
    size_t n = 0;
    for (int i = 0; i < 5000; i++)
        deep[n++] = '[';
    for (int i = 0; i < 5000; i++)
        deep[n++] = ']';
    assert_int_not_equal(backup_parse_line(deep, n, false, arena, ln), ES_OK);
    free(ln);
    es_arena_destroy(arena);
}

static void test_json_indent(void **state)
{
    (void)state;
    const char *in = "{\"a\":[1,{}],\"b\":\"x,y:{\\\"\",\"c\":{\"d\":null}}";
    es_buf out = ES_BUF_INIT;
    assert_int_equal(tool_json_indent(in, strlen(in), 2, false, &out), ES_OK);
    assert_int_equal(es_buf_append_byte(&out, 0), ES_OK);
    assert_string_equal((char *)out.data, "{\n"
                                          "    \"a\": [\n"
                                          "      1,\n"
                                          "      {}\n"
                                          "    ],\n"
                                          "    \"b\": \"x,y:{\\\"\",\n"
                                          "    \"c\": {\n"
                                          "      \"d\": null\n"
                                          "    }\n"
                                          "  }");
    es_buf_free(&out);
}

static void test_json_text(void **state)
{
    (void)state;
    es_buf out = ES_BUF_INIT;
    assert_int_equal(tool_json_append_text(&out, "a\"b\n", 4), ES_OK);
    assert_int_equal(tool_json_append_text(&out, "\xff", 1), ES_OK);
    assert_int_equal(es_buf_append_byte(&out, 0), ES_OK);
    assert_string_equal((char *)out.data, "\"a\\\"b\\n\"{\"$bytes\":\"/w\"}");
    es_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),    cmocka_unit_test(test_start_end),
        cmocka_unit_test(test_hostile_lines), cmocka_unit_test(test_json_indent),
        cmocka_unit_test(test_json_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
