/* End-to-end tests of es-tool: the binary (argv[1]) runs against the server
 * at $NATS_URL (tools/test starts one), each test in stores of its own.
 * Every command, its exit codes and its one-line errors; replay output
 * parsed back and compared with what was appended, for every codec; export
 * -> import -> export byte for byte; follow mode; `| head` ending promptly.
 * Without NATS_URL the program fails: a silent pass would hide that nothing
 * was tested. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "nkey.h"
#include "tool_run.h"

static char prefix[32]; /* store names of this run: t<pid>x */
static int store_counter;

static char *new_store(char *out)
{
    snprintf(out, 40, "%.19s%d", prefix, ++store_counter % 1000);
    return out;
}

static void create_store(char *name, const char *flag)
{
    run_result r;
    new_store(name);
    if (flag)
        RUN(&r, "create", name, (char *)flag);
    else
        RUN(&r, "create", name);
    assert_ok(&r);
    run_free(&r);
}

static void delete_store(char *name)
{
    run_result r;
    RUN(&r, "delete", name, "--force");
    run_free(&r);
}

/* ---- tests ------------------------------------------------------------------------ */

static void test_help_and_version(void **state)
{
    (void)state;
    run_result r;
    RUN(&r, "--version");
    assert_ok(&r);
    assert_non_null(strstr(r.out, "es-tool "));
    run_free(&r);
    const char *commands[] = {"replay", "info",   "entities", "append", "stores", "create",
                              "delete", "export", "import",   "shred",  "edit"};
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        RUN(&r, (char *)commands[i], "--help");
        assert_ok(&r);
        if (!strstr(r.out, "Examples:") || !strstr(r.out, "--server"))
            fail_msg("%s --help lacks examples or connection options", commands[i]);
        run_free(&r);
    }
    RUN(&r, "help", "replay");
    assert_ok(&r);
    assert_non_null(strstr(r.out, "--follow"));
    run_free(&r);
}

static void test_usage_errors(void **state)
{
    (void)state;
    run_result r;
    RUN(&r, "frobnicate");
    assert_fails(&r, 1, "no command");
    run_free(&r);
    RUN(&r, "replay", "x", "--bogus");
    assert_fails(&r, 1, "unknown option --bogus");
    run_free(&r);
    RUN(&r, "replay");
    assert_fails(&r, 1, "which store");
    run_free(&r);
    RUN(&r, "replay", "bad.name");
    assert_fails(&r, 1, "invalid store name");
    run_free(&r);
    RUN(&r, "replay", "x", "--type", "a.b");
    assert_fails(&r, 1, "invalid entity type");
    run_free(&r);
    RUN(&r, "replay", "x", "--limit", "ten");
    assert_fails(&r, 1, "--limit");
    run_free(&r);
    RUN(&r, "replay", "x", "--format", "xml");
    assert_fails(&r, 1, "--format");
    run_free(&r);
    RUN(&r, "append", "x", "t", "i");
    assert_fails(&r, 1, "STORE TYPE ID EVENT");
    run_free(&r);
    RUN(&r, "append", "x", "t", "i", "e", "--data", "{\"a\":", "--codec", "json");
    assert_fails(&r, 1, "not valid JSON");
    run_free(&r);
    RUN(&r, "create", "x", "--max-age", "soon");
    assert_fails(&r, 1, "--max-age");
    run_free(&r);
    RUN(&r, "delete", "x");
    assert_fails(&r, 1, "--force");
    run_free(&r);
    RUN(&r, "stores", "--timeout", "0s");
    assert_fails(&r, 1, "--timeout");
    run_free(&r);
}

static void test_server_down(void **state)
{
    (void)state;
    char url[64];
    closed_url(url, sizeof url);
    const char *commands[][2] = {{"replay", "x"},  {"info", "x"},   {"entities", "x"},
                                 {"stores", NULL}, {"create", "x"}, {"export", "x"}};
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        run_result r;
        if (commands[i][1])
            RUN(&r, (char *)commands[i][0], (char *)commands[i][1], "--server", url);
        else
            RUN(&r, (char *)commands[i][0], "--server", url);
        assert_fails(&r, 4, "cannot connect");
        run_free(&r);
    }
}

static void test_unknown_store(void **state)
{
    (void)state;
    char name[40];
    new_store(name);
    const char *commands[] = {"replay", "info", "entities", "export"};
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        run_result r;
        RUN(&r, (char *)commands[i], name);
        assert_fails(&r, 2, "does not exist");
        run_free(&r);
    }
    run_result r;
    RUN(&r, "append", name, "t", "i", "e", "--data", "1");
    assert_fails(&r, 2, "does not exist");
    run_free(&r);
    RUN_IN(&r, "{\"es_export\":1,\"tenancy\":false}\n{\"end\":true,\"events\":0}\n", "import",
           name);
    assert_fails(&r, 2, "does not exist");
    run_free(&r);
    RUN(&r, "delete", name, "--force");
    assert_fails(&r, 2, "does not exist");
    run_free(&r);
}

static void test_create_delete_stores(void **state)
{
    (void)state;
    char name[40];
    run_result r;
    new_store(name);
    RUN(&r, "create", name, "--max-age", "30d", "--replicas", "1");
    assert_ok(&r);
    assert_non_null(strstr(r.out, "created"));
    run_free(&r);
    RUN(&r, "create", name, "--max-age", "30d");
    assert_ok(&r);
    assert_non_null(strstr(r.out, "exists already"));
    run_free(&r);
    RUN(&r, "create", name, "--max-age", "1h");
    assert_fails(&r, 3, "different configuration");
    run_free(&r);
    RUN(&r, "stores", "--json");
    assert_ok(&r);
    json_t *lines = json_lines(&r);
    bool found = false;
    size_t i;
    json_t *l;
    json_array_foreach(lines, i, l) found = found || strcmp(jstr(l, "store"), name) == 0;
    assert_true(found);
    json_decref(lines);
    run_free(&r);
    RUN(&r, "delete", name, "--force");
    assert_ok(&r);
    run_free(&r);
    RUN(&r, "info", name);
    assert_fails(&r, 2, "does not exist");
    run_free(&r);
}

static void append_ok(char *const *args, json_t **result)
{
    run_result r;
    run_env(&r, NULL, NULL, 0, args);
    assert_ok(&r);
    if (result) {
        json_error_t e;
        *result = json_loads(r.out, 0, &e);
        assert_non_null(*result);
    }
    run_free(&r);
}

/* Appends one event with --data in `codec` and checks that replay gives the
 * same JSON back (which must be `expect`, or the data itself when NULL). */
static void round_trip(const char *store, const char *codec, const char *data, const char *expect)
{
    char *args[] = {"append",     (char *)store, "thing",       "did:web:example.com",
                    "Changed",    "--codec",     (char *)codec, "--data",
                    (char *)data, "--meta",      "who=test",    "--event-id",
                    NULL,         NULL};
    char id[64];
    snprintf(id, sizeof id, "ev-%s-%d", codec, rand());
    args[12] = id;
    json_t *res = NULL;
    append_ok(args, &res);
    json_int_t seq = jint(res, "last_seq");
    json_decref(res);

    char from[32], to[32];
    snprintf(from, sizeof from, "%lld", (long long)seq - 1);
    snprintf(to, sizeof to, "%lld", (long long)seq);
    run_result r;
    RUN(&r, "replay", (char *)store, "--after", from, "--to", to, "--format", "jsonl");
    assert_ok(&r);
    json_t *lines = json_lines(&r);
    assert_int_equal(json_array_size(lines), 1);
    json_t *ev = json_array_get(lines, 0);
    assert_int_equal(jint(ev, "seq"), seq);
    assert_string_equal(jstr(ev, "type"), "thing");
    assert_string_equal(jstr(ev, "id"), "did:web:example.com");
    assert_string_equal(jstr(ev, "event"), "Changed");
    assert_string_equal(jstr(ev, "event_id"), id);
    assert_string_equal(jstr(ev, "codec"), codec);
    assert_string_equal(jstr(json_object_get(ev, "meta"), "who"), "test");
    assert_non_null(strstr(jstr(ev, "subject"), "did:web:example%2Ecom"));
    json_error_t e;
    json_t *want = json_loads(expect ? expect : data, JSON_DECODE_ANY, &e);
    assert_non_null(want);
    if (!json_equal(want, json_object_get(ev, "data"))) {
        char *got = json_dumps(json_object_get(ev, "data"), JSON_ENCODE_ANY);
        fail_msg("%s: appended %s, replayed %s", codec, data, got ? got : "(nothing)");
    }
    json_decref(want);
    json_decref(lines);
    run_free(&r);
}

static void test_append_replay_codecs(void **state)
{
    (void)state;
    char name[40];
    create_store(name, NULL);
    round_trip(name, "json", "{\"n\":1,\"f\":2.5,\"s\":\"h\\u00e9\",\"a\":[true,null,{}]}", NULL);
    round_trip(
        name, "dag-cbor",
        "{\"text\":\"hi\",\"blob\":{\"$bytes\":\"AAEC\"},"
        "\"ref\":{\"$link\":\"bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a\"}}",
        NULL);
    round_trip(name, "cbor", "{\"k\":[1,-2,3.25],\"b\":{\"$bytes\":\"/w\"}}", NULL);
    round_trip(name, "msgpack", "[1,\"two\",{\"three\":3.5},null]", NULL);
    round_trip(name, "binary", "{\"$bytes\":\"aGVsbG8=\"}", "{\"$bytes\":\"aGVsbG8\"}");

    /* --data-file: the bytes as they are, checked against the codec */
    char path[] = "/tmp/es-tool-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "\x00\x01\xfe\xff", 4), 4);
    close(fd);
    char *args[] = {"append",  name,     "blob",        "b1", "Uploaded",
                    "--codec", "binary", "--data-file", path, NULL};
    append_ok(args, NULL);
    run_result r;
    RUN(&r, "replay", name, "--type", "blob", "--format", "raw");
    assert_ok(&r);
    assert_int_equal(r.out_len, 4);
    assert_memory_equal(r.out, "\x00\x01\xfe\xff", 4);
    run_free(&r);
    RUN(&r, "append", name, "blob", "b2", "Uploaded", "--codec", "json", "--data-file", path);
    assert_fails(&r, 1, "not valid json");
    run_free(&r);
    unlink(path);
    delete_store(name);
}

static void test_occ_and_batches(void **state)
{
    (void)state;
    char name[40];
    create_store(name, NULL);
    run_result r;
    RUN(&r, "append", name, "account", "a1", "Opened", "--data", "{}", "--expect-new");
    assert_ok(&r);
    run_free(&r);
    RUN(&r, "append", name, "account", "a1", "Opened", "--data", "{}", "--expect-new");
    assert_fails(&r, 3, "last sequence is 1");
    run_free(&r);
    RUN(&r, "append", name, "account", "a1", "Deposited", "--data", "{\"n\":1}", "--expect-seq",
        "7");
    assert_fails(&r, 3, "last sequence is 1");
    run_free(&r);
    RUN(&r, "append", name, "account", "a1", "Deposited", "--data", "{\"n\":1}", "--expect-seq",
        "1");
    assert_ok(&r);
    run_free(&r);

    /* a batch: one atomic unit, consecutive sequences */
    const char *batch =
        "{\"type\":\"account\",\"id\":\"a2\",\"event\":\"Opened\",\"expect\":\"new\"}\n"
        "{\"type\":\"account\",\"id\":\"a2\",\"event\":\"Deposited\",\"data\":{\"n\":5}}\n"
        "\n"
        "{\"type\":\"account\",\"id\":\"a3\",\"event\":\"Opened\",\"meta\":{\"by\":\"x\"}}\n";
    RUN_IN(&r, batch, "append", name, "--batch", "-");
    assert_ok(&r);
    json_error_t e;
    json_t *res = json_loads(r.out, 0, &e);
    assert_int_equal(jint(res, "count"), 3);
    assert_int_equal(jint(res, "first_seq"), 3);
    assert_int_equal(jint(res, "last_seq"), 5);
    json_decref(res);
    run_free(&r);
    /* a bad line anywhere: nothing is appended */
    const char *bad =
        "{\"type\":\"account\",\"id\":\"a4\",\"event\":\"Opened\"}\n{\"type\":\"account\"\n";
    RUN_IN(&r, bad, "append", name, "--batch", "-");
    assert_fails(&r, 1, "line 2");
    run_free(&r);
    /* a failing expectation in the batch: nothing is appended either */
    const char *occ =
        "{\"type\":\"account\",\"id\":\"a5\",\"event\":\"Opened\"}\n"
        "{\"type\":\"account\",\"id\":\"a1\",\"event\":\"Opened\",\"expect\":\"new\"}\n";
    RUN_IN(&r, occ, "append", name, "--batch", "-");
    assert_fails(&r, 3, NULL);
    run_free(&r);
    /* the same event id twice: refused before sending (exit 1, not the
     * server's duplicate refusal, exit 4), nothing appended */
    const char *twice =
        "{\"type\":\"account\",\"id\":\"a6\",\"event\":\"Opened\",\"event_id\":\"x1\"}\n"
        "{\"type\":\"account\",\"id\":\"a7\",\"event\":\"Opened\",\"event_id\":\"x1\"}\n";
    RUN_IN(&r, twice, "append", name, "--batch", "-");
    assert_fails(&r, 1, "event id 'x1' is also");
    run_free(&r);
    RUN(&r, "info", name, "--json");
    assert_ok(&r);
    res = json_loads(r.out, 0, &e);
    assert_int_equal(jint(json_object_get(res, "state"), "events"), 5);
    json_decref(res);
    run_free(&r);
    /* more than 1000 events is refused, never split */
    size_t n = 1001, len = 0;
    char *big = malloc(n * 64);
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(big + len, "{\"type\":\"t\",\"id\":\"i%zu\",\"event\":\"E\"}\n", i);
    run_env(&r, NULL, big, len, (char *[]){"append", name, "--batch", "-", NULL});
    assert_fails(&r, 1, "at most 1000");
    run_free(&r);
    free(big);
    delete_store(name);
}

static void test_filters_info_entities(void **state)
{
    (void)state;
    char name[40];
    create_store(name, NULL);
    const char *batch =
        "{\"type\":\"account\",\"id\":\"a.1\",\"event\":\"Opened\",\"data\":1}\n"
        "{\"type\":\"account\",\"id\":\"a.1\",\"event\":\"Deposited\",\"data\":2}\n"
        "{\"type\":\"account\",\"id\":\"a2\",\"event\":\"Opened\",\"data\":3}\n"
        "{\"type\":\"user\",\"id\":\"u1\",\"event\":\"Joined\",\"data\":4}\n"
        "{\"type\":\"account\",\"id\":\"a.1\",\"event\":\"Deposited\",\"data\":5}\n";
    run_result r;
    RUN_IN(&r, batch, "append", name, "--batch", "-");
    assert_ok(&r);
    run_free(&r);
    struct {
        char *args[8];
        size_t count;
    } cases[] = {
        {{"--type", "account"}, 4},         {{"--type", "account", "--id", "a.1"}, 3},
        {{"--event", "Opened"}, 2},         {{"--after", "2"}, 3},
        {{"--after", "1", "--up-to", "3"}, 2}, {{"--limit", "2"}, 2},
        {{"--type", "nobody"}, 0},          {{"--up-to", "2", "--type", "account"}, 2},
        {{"--to", "3"}, 3}, /* --up-to's older name */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char *args[16] = {"replay", name, "--format", "jsonl"};
        for (int i = 0; cases[c].args[i]; i++)
            args[4 + i] = cases[c].args[i];
        run_env(&r, NULL, NULL, 0, args);
        assert_ok(&r);
        if (count_lines(r.out) != cases[c].count)
            fail_msg("case %zu: %zu events, expected %zu", c, count_lines(r.out), cases[c].count);
        run_free(&r);
    }
    RUN(&r, "info", name, "--json");
    assert_ok(&r);
    json_error_t e;
    json_t *info = json_loads(r.out, 0, &e);
    json_t *types = json_object_get(info, "entity_types");
    assert_int_equal(json_array_size(types), 2);
    assert_string_equal(jstr(json_array_get(types, 0), "type"), "account");
    assert_int_equal(jint(json_array_get(types, 0), "events"), 4);
    assert_int_equal(jint(json_array_get(types, 0), "entities"), 2);
    assert_int_equal(jint(json_array_get(types, 1), "entities"), 1);
    json_t *events = json_object_get(info, "event_types");
    assert_int_equal(json_array_size(events), 3);
    assert_string_equal(jstr(json_array_get(events, 0), "event"), "Deposited");
    assert_int_equal(jint(json_array_get(events, 0), "events"), 2);
    json_decref(info);
    run_free(&r);
    RUN(&r, "info", name);
    assert_ok(&r);
    assert_non_null(strstr(r.out, "Entity types"));
    run_free(&r);
    RUN(&r, "entities", name, "--type", "account", "--json");
    assert_ok(&r);
    json_t *lines = json_lines(&r);
    assert_int_equal(json_array_size(lines), 2);
    assert_string_equal(jstr(json_array_get(lines, 0), "id"), "a.1");
    assert_int_equal(jint(json_array_get(lines, 0), "events"), 3);
    assert_int_equal(jint(json_array_get(lines, 0), "last_seq"), 5);
    assert_string_equal(jstr(json_array_get(lines, 1), "id"), "a2");
    assert_int_equal(jint(json_array_get(lines, 1), "last_seq"), 3);
    json_decref(lines);
    run_free(&r);
    RUN(&r, "entities", name);
    assert_ok(&r);
    assert_int_equal(count_lines(r.out), 4); /* header and three entities */
    run_free(&r);
    delete_store(name);
}

/* Appends n events of about 200 bytes, as batches of up to 1000. */
static void fill(const char *name, size_t n)
{
    char *buf = malloc(1000 * 256);
    for (size_t done = 0; done < n;) {
        size_t len = 0, k = 0;
        for (; k < 1000 && done + k < n; k++)
            len +=
                (size_t)sprintf(buf + len,
                                "{\"type\":\"t\",\"id\":\"e%zu\",\"event\":\"E\",\"data\":{\"pad\":"
                                "\"%0150zu\"}}\n",
                                (done + k) % 97, done + k);
        run_result r;
        run_env(&r, NULL, buf, len, (char *[]){"append", (char *)name, "--batch", "-", NULL});
        assert_ok(&r);
        run_free(&r);
        done += k;
    }
    free(buf);
}

static void test_head_ends_promptly(void **state)
{
    (void)state;
    char name[40];
    create_store(name, NULL);
    fill(name, 3000); /* far more than a pipe holds */
    int in, out, err;
    pid_t pid = spawn((char *[]){"replay", name, "--format", "jsonl", NULL}, NULL, &in, &out, &err);
    close(in);
    char buf[512];
    assert_true(read(out, buf, sizeof buf) > 0); /* like head: read a little... */
    close(out);                                  /* ...and go away */
    int64_t t0 = now_ms();
    int code = wait_exit(pid, 5000);
    close(err);
    if (code != 0)
        fail_msg("replay | head: exit %d after %lld ms", code, (long long)(now_ms() - t0));
    delete_store(name);
}

static void test_follow(void **state)
{
    (void)state;
    char name[40];
    create_store(name, NULL);
    run_result r;
    RUN(&r, "append", name, "doc", "d1", "Created", "--data", "{\"v\":1}");
    assert_ok(&r);
    run_free(&r);
    int in, out, err;
    pid_t pid = spawn((char *[]){"replay", name, "--follow", "--format", "jsonl", NULL}, NULL, &in,
                      &out, &err);
    close(in);
    char line[4096];
    assert_true(read_line(out, line, sizeof line, 10000));
    assert_non_null(strstr(line, "\"Created\""));
    RUN(&r, "append", name, "doc", "d1", "Edited", "--data", "{\"v\":2}");
    assert_ok(&r);
    run_free(&r);
    assert_true(read_line(out, line, sizeof line, 10000)); /* the live event */
    json_error_t e;
    json_t *ev = json_loads(line, 0, &e);
    assert_non_null(ev);
    assert_string_equal(jstr(ev, "event"), "Edited");
    assert_int_equal(jint(ev, "seq"), 2);
    json_decref(ev);
    kill(pid, SIGINT);
    assert_int_equal(wait_exit(pid, 5000), 0);
    close(out);
    close(err);
    /* --limit ends a follow by itself */
    RUN(&r, "replay", name, "--follow", "--limit", "2", "--format", "jsonl");
    assert_ok(&r);
    assert_int_equal(count_lines(r.out), 2);
    run_free(&r);
    delete_store(name);
}

static void test_export_import(void **state)
{
    (void)state;
    char a[40], b[40], c[40];
    create_store(a, NULL);
    run_result r;
    const char *batch =
        "{\"type\":\"account\",\"id\":\"x y\\u0001z\",\"event\":\"Opened\",\"data\":{\"n\":1},"
        "\"meta\":{\"who\":\"\\u00e9l\\u00e8ve\"}}\n"
        "{\"type\":\"post\",\"id\":\"p1\",\"event\":\"Created\",\"codec\":\"dag-cbor\","
        "\"data\":{\"b\":{\"$bytes\":\"AP8\"}}}\n"
        "{\"type\":\"blob\",\"id\":\"b1\",\"event\":\"Up\",\"codec\":\"binary\","
        "\"data\":{\"$bytes\":\"AAECAw\"}}\n";
    RUN_IN(&r, batch, "append", a, "--batch", "-");
    assert_ok(&r);
    run_free(&r);
    fill(a, 500);

    run_result e1, e2;
    RUN(&e1, "export", a);
    assert_ok(&e1);
    assert_int_equal(count_lines(e1.out), 503 + 2);
    create_store(b, NULL);
    run_env(&r, NULL, e1.out, e1.out_len, (char *[]){"import", b, NULL});
    assert_ok(&r);
    assert_non_null(strstr(r.out, "\"stored\":503"));
    run_free(&r);
    RUN(&e2, "export", b);
    assert_ok(&e2);
    assert_int_equal(e1.out_len, e2.out_len);
    assert_memory_equal(e1.out, e2.out, e1.out_len);
    /* the events read the same too */
    run_result r1, r2;
    RUN(&r1, "replay", a, "--format", "jsonl", "--type", "account");
    RUN(&r2, "replay", b, "--format", "jsonl", "--type", "account");
    json_t *l1 = json_lines(&r1), *l2 = json_lines(&r2);
    json_t *ev1 = json_array_get(l1, 0), *ev2 = json_array_get(l2, 0);
    json_object_del(ev1, "subject");
    json_object_del(ev2, "subject");
    assert_true(json_equal(ev1, ev2));
    json_decref(l1);
    json_decref(l2);
    run_free(&r1);
    run_free(&r2);

    /* again: the ids are known, nothing new is stored */
    run_env(&r, NULL, e1.out, e1.out_len, (char *[]){"import", b, NULL});
    assert_ok(&r);
    assert_non_null(strstr(r.out, "\"duplicates\":503"));
    run_free(&r);
    /* cut short: refused, nothing stored */
    create_store(c, NULL);
    run_env(&r, NULL, e1.out, e1.out_len / 2, (char *[]){"import", c, NULL});
    assert_int_equal(r.code, 1);
    assert_int_equal(count_lines(r.err), 1);
    run_free(&r);
    RUN(&r, "info", c, "--json");
    assert_non_null(strstr(r.out, "\"events\":0"));
    run_free(&r);
    /* a control header is refused */
    RUN_IN(&r,
           "{\"es_export\":1,\"tenancy\":false}\n"
           "{\"subject\":\"a.b.c\",\"headers\":{\"Nats-Rollup\":[\"all\"]},\"data\":{\"$bytes\":"
           "\"\"}}\n"
           "{\"end\":true,\"events\":1}\n",
           "import", c);
    assert_fails(&r, 1, "control header");
    run_free(&r);
    /* a subject that would leave its entity is refused */
    RUN_IN(&r,
           "{\"es_export\":1,\"tenancy\":false}\n"
           "{\"subject\":\"a.b.c.d\",\"headers\":{},\"data\":{\"$bytes\":\"\"}}\n"
           "{\"end\":true,\"events\":1}\n",
           "import", c);
    assert_fails(&r, 1, "shape");
    run_free(&r);
    /* an export with tenancy goes only into a store with tenancy */
    RUN_IN(&r, "{\"es_export\":1,\"tenancy\":true}\n{\"end\":true,\"events\":0}\n", "import", c);
    assert_fails(&r, 1, "tenancy");
    run_free(&r);
    run_free(&e1);
    run_free(&e2);
    delete_store(a);
    delete_store(b);
    delete_store(c);
}

static void test_tenancy(void **state)
{
    (void)state;
    char name[40];
    create_store(name, "--tenancy");
    run_result r;
    RUN(&r, "append", name, "order", "o1", "Placed", "--data", "{}");
    assert_int_equal(r.code, 1); /* a tenant is required */
    run_free(&r);
    RUN(&r, "append", name, "order", "o1", "Placed", "--data", "{}", "--tenant", "acme");
    assert_ok(&r);
    run_free(&r);
    RUN(&r, "replay", name, "--format", "jsonl", "--tenant", "acme");
    assert_ok(&r);
    assert_non_null(strstr(r.out, "\"tenant\":\"acme\""));
    run_free(&r);
    RUN(&r, "entities", name, "--json");
    assert_non_null(strstr(r.out, "\"tenant\":\"acme\""));
    run_free(&r);
    delete_store(name);
}

static void test_encryption_and_shred(void **state)
{
    (void)state;
    char name[40], keyfile[] = "/tmp/es-tool-key-XXXXXX", env[128];
    int fd = mkstemp(keyfile);
    uint8_t key[32];
    randombytes_buf(key, sizeof key);
    assert_int_equal(write(fd, key, sizeof key), 32);
    close(fd);
    create_store(name, "--encrypt");
    run_result r;
    RUN(&r, "append", name, "person", "p1", "Named", "--data", "{\"name\":\"ada\"}");
    assert_fails(&r, 1, "master key");
    run_free(&r);
    RUN(&r, "append", name, "person", "p1", "Named", "--data", "{\"name\":\"ada\"}",
        "--master-key-file", keyfile);
    assert_ok(&r);
    run_free(&r);
    snprintf(env, sizeof env, "ES_MASTER_KEY_FILE=%s", keyfile);
    run_env(&r, env, NULL, 0, (char *[]){"replay", name, "--format", "jsonl", NULL});
    assert_ok(&r);
    assert_non_null(strstr(r.out, "\"data\":{\"name\":\"ada\"}"));
    run_free(&r);
    RUN(&r, "replay", name, "--format", "jsonl"); /* no key: metadata, and a status for data */
    assert_ok(&r);
    assert_non_null(strstr(r.out, "\"data_status\":\"no master key\""));
    assert_null(strstr(r.out, "ada"));
    run_free(&r);
    run_env(&r, env, NULL, 0, (char *[]){"shred", name, "person", "p1", NULL});
    assert_ok(&r);
    run_free(&r);
    run_env(&r, env, NULL, 0, (char *[]){"replay", name, "--format", "jsonl", NULL});
    assert_ok(&r);
    assert_non_null(strstr(r.out, "\"data_status\":\"data shredded\""));
    assert_non_null(strstr(r.out, "\"event\":\"Named\""));
    run_free(&r);
    run_env(&r, env, NULL, 0,
            (char *[]){"append", name, "person", "p1", "Named", "--data", "{}", NULL});
    assert_int_equal(count_lines(r.err), 1);
    assert_true(r.code != 0);
    run_free(&r);
    unlink(keyfile);
    delete_store(name);
}

/* ---- ids, shredding, exit codes and wording (issue 11) ---------------------------- */

/* Runs `command` with bash (the printed id forms are bash's quoting) and
 * returns its exit code, its stdout in *out (caller frees). */
static int run_bash(const char *command, char **out)
{
    char full[4096];
    snprintf(full, sizeof full, "bash -c %s 2>/dev/null", command);
    FILE *f = popen(full, "r");
    assert_non_null(f);
    size_t len = 0, cap = 65536;
    *out = calloc(1, cap);
    size_t n;
    while ((n = fread(*out + len, 1, cap - len - 1, f)) > 0)
        len += n;
    int status = pclose(f);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Pasting the printed id back into --id finds the entity's events. */
static void assert_id_pastes_back(const char *store, const char *printed, size_t events)
{
    char command[2048], *out = NULL;
    /* the whole command in single quotes for bash -c: ' becomes '\'' */
    char inner[1024];
    snprintf(inner, sizeof inner, "%s replay %s --type account --id %s --format jsonl", tool, store,
             printed);
    size_t k = 0;
    command[k++] = '\'';
    for (const char *c = inner; *c && k < sizeof command - 6; c++) {
        if (*c == '\'') {
            memcpy(command + k, "'\\''", 4);
            k += 4;
        } else {
            command[k++] = *c;
        }
    }
    command[k++] = '\'';
    command[k] = '\0';
    assert_int_equal(run_bash(command, &out), 0);
    if (count_lines(out) != events)
        fail_msg("--id %s: %zu events, expected %zu", printed, count_lines(out), events);
    free(out);
}

static void test_ids_print_raw(void **state)
{
    (void)state;
    char name[40];
    create_store(name, NULL);
    const char *batch =
        "{\"type\":\"account\",\"id\":\"acc 43.x\",\"event\":\"Opened\",\"data\":1}\n"
        "{\"type\":\"account\",\"id\":\"acc 43.x\",\"event\":\"Deposited\",\"data\":2}\n"
        "{\"type\":\"account\",\"id\":\"x y\\u0001z\",\"event\":\"Opened\",\"data\":3}\n"
        "{\"type\":\"account\",\"id\":\"it's\",\"event\":\"Opened\",\"data\":4}\n"
        "{\"type\":\"account\",\"id\":\"plain-1\",\"event\":\"Opened\",\"data\":5}\n";
    run_result r;
    RUN_IN(&r, batch, "append", name, "--batch", "-");
    assert_ok(&r);
    run_free(&r);
    RUN(&r, "append", name, "account",
        "ab\xff"
        "c",
        "Opened", "--data", "6"); /* not UTF-8 */
    assert_ok(&r);
    run_free(&r);
    /* the table and pretty replay print the raw id, quoted when it needs it */
    RUN(&r, "entities", name);
    assert_ok(&r);
    assert_non_null(strstr(r.out, " $'ab\\xFFc' "));
    assert_non_null(strstr(r.out, " 'acc 43.x' "));
    assert_non_null(strstr(r.out, " $'x y\\x01z' "));
    assert_non_null(strstr(r.out, " 'it'\\''s' "));
    assert_non_null(strstr(r.out, " plain-1 "));
    assert_null(strstr(r.out, "%20"));
    run_free(&r);
    RUN(&r, "replay", name, "--format", "pretty", "--event", "Deposited");
    assert_ok(&r);
    assert_non_null(strstr(r.out, "account 'acc 43.x'"));
    run_free(&r);
    /* and what is printed finds the entity again */
    assert_id_pastes_back(name, "'acc 43.x'", 2);
    assert_id_pastes_back(name, "$'x y\\x01z'", 1);
    assert_id_pastes_back(name, "'it'\\''s'", 1);
    assert_id_pastes_back(name, "plain-1", 1);
    assert_id_pastes_back(name, "$'ab\\xFFc'", 1);
    /* the escaped token: a read warns and names the raw id... */
    RUN(&r, "replay", name, "--type", "account", "--id", "acc%2043%2Ex", "--format", "jsonl");
    assert_ok(&r);
    assert_int_equal(count_lines(r.out), 0);
    if (!strstr(r.err, "looks escaped") || !strstr(r.err, "'acc 43.x'"))
        fail_msg("no warning about the escaped id: %s", r.err);
    run_free(&r);
    RUN(&r, "replay", name, "--type", "account", "--id", "acc%2043%2Ex", "--raw-id");
    assert_ok(&r);
    assert_int_equal(r.err_len, 0);
    run_free(&r);
    /* ...an append refuses it, unless --raw-id */
    RUN(&r, "append", name, "account", "acc%2043%2Ex", "Opened", "--data", "1");
    assert_fails(&r, 1, "looks escaped");
    run_free(&r);
    RUN(&r, "append", name, "account", "50%25", "Opened", "--data", "1", "--raw-id");
    assert_ok(&r);
    run_free(&r);
    const char *escaped = "{\"type\":\"account\",\"id\":\"b%2E1\",\"event\":\"Opened\"}\n";
    RUN_IN(&r, escaped, "append", name, "--batch", "-");
    assert_fails(&r, 1, "line 1: \"id\" looks escaped");
    run_free(&r);
    RUN_IN(&r, escaped, "append", name, "--batch", "-", "--raw-id");
    assert_ok(&r);
    run_free(&r);
    RUN(&r, "entities", name, "--json");
    assert_non_null(strstr(r.out, "\"id\":\"50%25\""));
    assert_null(strstr(r.out, "acc%2043"));
    run_free(&r);
    delete_store(name);
}

static void write_key(char *keyfile, char *env, size_t env_size)
{
    int fd = mkstemp(keyfile);
    uint8_t key[32];
    randombytes_buf(key, sizeof key);
    assert_int_equal(write(fd, key, sizeof key), 32);
    close(fd);
    snprintf(env, env_size, "ES_MASTER_KEY_FILE=%s", keyfile);
}

static void test_shred_needs_events(void **state)
{
    (void)state;
    char name[40], keyfile[] = "/tmp/es-tool-key-XXXXXX", env[128];
    write_key(keyfile, env, sizeof env);
    create_store(name, "--encrypt");
    run_result r;
    /* a typo: refused, and the id stays usable */
    run_env(&r, env, NULL, 0, (char *[]){"shred", name, "person", "p-typo", NULL});
    assert_fails(&r, 2, "no events");
    assert_non_null(strstr(r.err, "--force"));
    run_free(&r);
    run_env(&r, env, NULL, 0,
            (char *[]){"append", name, "person", "p-typo", "Named", "--data", "{}", NULL});
    assert_ok(&r);
    run_free(&r);
    /* --force shreds one without events; --json says what was done */
    run_env(&r, env, NULL, 0,
            (char *[]){"shred", name, "person", "p-none", "--force", "--json", NULL});
    assert_ok(&r);
    json_error_t e;
    json_t *j = json_loads(r.out, 0, &e);
    assert_non_null(j);
    assert_string_equal(jstr(j, "id"), "p-none");
    assert_int_equal(jint(j, "events"), 0);
    assert_true(json_is_true(json_object_get(j, "shredded")));
    json_decref(j);
    run_free(&r);
    run_env(&r, env, NULL, 0, (char *[]){"shred", name, "person", "p-typo", "--json", NULL});
    assert_ok(&r);
    assert_non_null(strstr(r.out, "\"events\":1"));
    run_free(&r);
    /* a store that does not encrypt says so, whether the entity has events or not */
    char plain[40];
    create_store(plain, NULL);
    run_env(&r, env, NULL, 0, (char *[]){"shred", plain, "person", "nobody", NULL});
    assert_fails(&r, 1, "does not encrypt");
    run_free(&r);
    delete_store(plain);
    /* appending to a shredded entity is a conflict with its state, said in the CLI's words */
    run_env(&r, env, NULL, 0,
            (char *[]){"append", name, "person", "p-typo", "Named", "--data", "{}", NULL});
    assert_fails(&r, 3, "person p-typo was shredded");
    run_free(&r);
    unlink(keyfile);
    delete_store(name);
}

static void test_exit_codes_and_wording(void **state)
{
    (void)state;
    const char *urls[] = {"bogus://x", "not a url", "nats://127.0.0.1:99999"};
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        run_result r;
        RUN(&r, "stores", "--server", (char *)urls[i]);
        assert_fails(&r, 1, "invalid URL");
        run_free(&r);
    }
    char name[40];
    create_store(name, NULL);
    run_result r;
    RUN(&r, "stores", "--json");
    assert_ok(&r);
    json_t *lines = json_lines(&r);
    size_t i;
    json_t *l;
    bool found = false;
    json_array_foreach(lines, i, l) if (strcmp(jstr(l, "store"), name) == 0)
    {
        found = true;
        assert_true(json_is_null(json_object_get(l, "last_time")));
    }
    assert_true(found);
    json_decref(lines);
    run_free(&r);
    /* one event has no number (the library's "event 0" is not shown); a
     * batch's events are named by their line in the file, blank lines
     * counted, in every message */
    RUN(&r, "append", name, "account", "a1", "Bad.Type");
    assert_fails(&r, 1, "invalid event type 'Bad.Type'");
    assert_null(strstr(r.err, "event 0"));
    assert_null(strstr(r.err, "event 1"));
    run_free(&r);
    RUN_IN(&r,
           "\n{\"type\":\"doc\",\"id\":\"d1\",\"event\":\"C\",\"event_id\":\"e1\"}\n"
           "{\"type\":\"doc\",\"id\":\"d2\",\"event\":\"C\",\"event_id\":\"e1\"}\n",
           "append", name, "--batch", "-");
    assert_fails(&r, 1, "line 3: event id 'e1' is also line 2's");
    run_free(&r);
    RUN_IN(&r, "{\"type\":\"doc\",\"id\":\"d1\",\"event\":\"C\"}\n"
               "{\"type\":\"doc\",\"id\":\"d2\",\"event\":\"Bad.T\"}\n",
           "append", name, "--batch", "-");
    assert_fails(&r, 1, "line 2: invalid event type 'Bad.T'");
    run_free(&r);
    /* the CLI names its own commands, not the library's calls */
    RUN(&r, "create", name, "--max-age", "1h");
    assert_fails(&r, 3, "es-tool edit");
    assert_null(strstr(r.err, "es_store"));
    run_free(&r);
    delete_store(name);
}

static void test_edit(void **state)
{
    (void)state;
    char name[40];
    create_store(name, NULL);
    run_result r;
    RUN(&r, "edit", name, "--max-age", "30d", "--max-bytes", "1G");
    assert_ok(&r);
    assert_non_null(strstr(r.out, "max age            unlimited \u2192 30d"));
    assert_non_null(strstr(r.out, "max bytes          unlimited \u2192 1.0 GiB"));
    assert_null(strstr(r.out, "duplicate window"));
    run_free(&r);
    /* a max age below the duplicate window takes it down too; --json */
    RUN(&r, "edit", name, "--max-age", "1m", "--compress-threshold", "1K", "--json");
    assert_ok(&r);
    json_error_t e;
    json_t *j = json_loads(r.out, 0, &e);
    assert_non_null(j);
    json_t *before = json_object_get(j, "before"), *after = json_object_get(j, "after");
    assert_int_equal(jint(before, "max_age_ns"), 30LL * 86400 * 1000000000LL);
    assert_int_equal(jint(after, "max_age_ns"), 60LL * 1000000000LL);
    assert_int_equal(jint(after, "duplicate_window_ns"), 60LL * 1000000000LL);
    assert_int_equal(jint(after, "compress_threshold"), 1024);
    assert_int_equal(jint(after, "max_bytes"), 1LL << 30);
    assert_int_equal(json_array_size(json_object_get(j, "changed")), 3);
    json_decref(j);
    run_free(&r);
    RUN(&r, "info", name, "--json"); /* the server has it */
    j = json_loads(r.out, 0, &e);
    assert_int_equal(jint(json_object_get(j, "config"), "max_age_ns"), 60LL * 1000000000LL);
    json_decref(j);
    run_free(&r);
    /* what cannot change is refused before anything is sent */
    const char *fixed[] = {"--tenancy", "--memory", "--encrypt"};
    for (size_t i = 0; i < 3; i++) {
        RUN(&r, "edit", name, (char *)fixed[i]);
        assert_fails(&r, 1, "cannot change");
        run_free(&r);
    }
    RUN(&r, "edit", name);
    assert_fails(&r, 1, "nothing to change");
    run_free(&r);
    RUN(&r, "edit", name, "--max-age", "1m");
    assert_ok(&r);
    assert_non_null(strstr(r.out, "nothing changes"));
    run_free(&r);
    char missing[40];
    new_store(missing);
    RUN(&r, "edit", missing, "--max-age", "1h");
    assert_fails(&r, 2, "does not exist");
    run_free(&r);
    delete_store(name);
}

static void test_json_create_delete(void **state)
{
    (void)state;
    char name[40];
    new_store(name);
    run_result r;
    RUN(&r, "create", name, "--max-age", "2h", "--json");
    assert_ok(&r);
    json_error_t e;
    json_t *j = json_loads(r.out, 0, &e);
    assert_non_null(j);
    assert_string_equal(jstr(j, "store"), name);
    assert_true(json_is_true(json_object_get(j, "created")));
    assert_int_equal(jint(json_object_get(j, "config"), "max_age_ns"), 7200LL * 1000000000LL);
    json_decref(j);
    run_free(&r);
    RUN(&r, "create", name, "--max-age", "2h", "--json");
    assert_ok(&r);
    assert_non_null(strstr(r.out, "\"created\":false"));
    run_free(&r);
    RUN(&r, "delete", name, "--force", "--json");
    assert_ok(&r);
    j = json_loads(r.out, 0, &e);
    assert_non_null(j);
    assert_true(json_is_true(json_object_get(j, "deleted")));
    json_decref(j);
    run_free(&r);
}

static void test_import_create(void **state)
{
    (void)state;
    char a[40], b[40], c[40], d[40];
    create_store(a, "--tenancy");
    run_result r;
    RUN(&r, "edit", a, "--max-age", "30d", "--compress-threshold", "1K");
    assert_ok(&r);
    run_free(&r);
    RUN(&r, "append", a, "order", "o1", "Placed", "--data", "{\"n\":1}", "--tenant", "acme");
    assert_ok(&r);
    run_free(&r);
    run_result e1, e2;
    RUN(&e1, "export", a);
    assert_ok(&e1);
    /* a cut-off file creates nothing */
    new_store(c);
    run_env(&r, NULL, e1.out, e1.out_len - 5, (char *[]){"import", c, "--create", NULL});
    assert_fails(&r, 1, "nothing imported");
    run_free(&r);
    RUN(&r, "info", c);
    assert_fails(&r, 2, "does not exist");
    run_free(&r);
    /* without --create a missing store stays an error */
    new_store(b);
    run_env(&r, NULL, e1.out, e1.out_len, (char *[]){"import", b, NULL});
    assert_fails(&r, 2, "does not exist");
    run_free(&r);
    /* with it: the source's configuration, its events, the same export */
    run_env(&r, NULL, e1.out, e1.out_len, (char *[]){"import", b, "--create", NULL});
    assert_ok(&r);
    assert_non_null(strstr(r.out, "\"stored\":1"));
    assert_non_null(strstr(r.out, "\"created\":true"));
    run_free(&r);
    run_result i1, i2;
    RUN(&i1, "info", a, "--json");
    RUN(&i2, "info", b, "--json");
    json_error_t e;
    json_t *j1 = json_loads(i1.out, 0, &e), *j2 = json_loads(i2.out, 0, &e);
    assert_true(json_equal(json_object_get(j1, "config"), json_object_get(j2, "config")));
    assert_true(json_is_true(json_object_get(json_object_get(j2, "config"), "tenancy")));
    json_decref(j1);
    json_decref(j2);
    run_free(&i1);
    run_free(&i2);
    RUN(&e2, "export", b);
    assert_ok(&e2);
    assert_int_equal(e1.out_len, e2.out_len);
    assert_memory_equal(e1.out, e2.out, e1.out_len);
    /* again: the store is there, nothing is created or stored twice */
    run_env(&r, NULL, e1.out, e1.out_len, (char *[]){"import", b, "--create", NULL});
    assert_ok(&r);
    assert_non_null(strstr(r.out, "\"created\":false"));
    assert_non_null(strstr(r.out, "\"duplicates\":1"));
    run_free(&r);
    /* a version 1 file: its tenancy, the defaults otherwise */
    new_store(d);
    RUN_IN(&r, "{\"es_export\":1,\"tenancy\":true}\n{\"end\":true,\"events\":0}\n", "import", d,
           "--create");
    assert_ok(&r);
    run_free(&r);
    RUN(&r, "info", d, "--json");
    assert_non_null(strstr(r.out, "\"tenancy\":true"));
    assert_non_null(strstr(r.out, "\"max_age_ns\":0"));
    run_free(&r);
    run_free(&e1);
    run_free(&e2);
    delete_store(a);
    delete_store(b);
    delete_store(d);
}

static pid_t auth_server; /* stopped by the teardown, whatever the test's outcome */
static char auth_dir[64];

static int stop_auth_server(void **state)
{
    (void)state;
    if (auth_server > 0) {
        kill(auth_server, SIGTERM);
        waitpid(auth_server, NULL, 0);
        auth_server = 0;
    }
    if (auth_dir[0] != '\0') {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", auth_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", auth_dir);
        auth_dir[0] = '\0';
    }
    return 0;
}

/* Connection options against a server of our own that wants a password or
 * an NKey (needs the nats-server binary: $ES_NATS_SERVER). */
static void test_auth_options(void **state)
{
    (void)state;
    const char *bin = getenv("ES_NATS_SERVER");
    if (bin == NULL || *bin == '\0') {
        print_message(
            "ES_NATS_SERVER not set: connection options against an auth server skipped\n");
        skip();
    }
    uint8_t raw[32];
    randombytes_buf(raw, sizeof raw);
    char seed[ES_NKEY_SEED_LEN + 1], pub[ES_NKEY_PUBLIC_LEN + 1];
    assert_int_equal(es_nkey_encode_user_seed(raw, seed), ES_OK);
    assert_int_equal(es_nkey_public_from_seed(seed, strlen(seed), pub), ES_OK);
    snprintf(auth_dir, sizeof auth_dir, "/tmp/es-tool-auth-XXXXXX");
    assert_non_null(mkdtemp(auth_dir));
    const char *dir = auth_dir;
    char conf[256], seedfile[256], url[64];
    snprintf(conf, sizeof conf, "%s/server.conf", dir);
    snprintf(seedfile, sizeof seedfile, "%s/user.nk", dir);
    closed_url(url, sizeof url);
    FILE *f = fopen(conf, "w");
    fprintf(f,
            "listen: %s\nauthorization { users = [ {user: ops, password: s3cret}, {nkey: %s} ] }\n",
            url + 7, pub);
    fclose(f);
    f = fopen(seedfile, "w");
    fprintf(f, "%s\n", seed);
    fclose(f);
    pid_t server = auth_server = fork();
    if (server == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 1);
        dup2(null, 2);
        execl(bin, bin, "-c", conf, (char *)NULL);
        _exit(127);
    }
    run_result r;
    for (int i = 0; i < 100; i++) { /* until it listens */
        RUN(&r, "stores", "--server", url, "--user", "ops", "--password", "s3cret", "--timeout",
            "1s");
        bool up = !strstr(r.err, "no server");
        if (up)
            break;
        run_free(&r);
        usleep(50000);
    }
    /* JetStream is off there: the command gets through authentication and then
     * fails on the API, exit 4; a wrong password fails at connect, also 4 but
     * with "authorization" */
    assert_null(strstr(r.err, "authorization"));
    run_free(&r);
    RUN(&r, "stores", "--server", url, "--user", "ops", "--password", "wrong", "--timeout", "1s");
    assert_fails(&r, 4, "authorization");
    run_free(&r);
    RUN(&r, "stores", "--server", url, "--nkey", seedfile, "--timeout", "1s");
    assert_null(strstr(r.err, "authorization"));
    assert_null(strstr(r.err, "NKey"));
    run_free(&r);
    RUN(&r, "stores", "--server", url, "--nkey", conf);
    assert_fails(&r, 1, "NKey");
    run_free(&r);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_estool PATH-TO-es-tool\n");
        return 1;
    }
    tool = argv[1];
    const char *url = getenv("NATS_URL");
    if (url == NULL || *url == '\0') {
        fprintf(stderr, "test_estool: NATS_URL is not set: these tests need a live server "
                        "(tools/test starts one)\n");
        return 1;
    }
    srand((unsigned)getpid());
    snprintf(prefix, sizeof prefix, "estool%dx", (int)getpid() % 10000000);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_and_version),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_server_down),
        cmocka_unit_test(test_unknown_store),
        cmocka_unit_test(test_create_delete_stores),
        cmocka_unit_test(test_append_replay_codecs),
        cmocka_unit_test(test_occ_and_batches),
        cmocka_unit_test(test_filters_info_entities),
        cmocka_unit_test(test_head_ends_promptly),
        cmocka_unit_test(test_follow),
        cmocka_unit_test(test_export_import),
        cmocka_unit_test(test_tenancy),
        cmocka_unit_test(test_encryption_and_shred),
        cmocka_unit_test(test_ids_print_raw),
        cmocka_unit_test(test_shred_needs_events),
        cmocka_unit_test(test_exit_codes_and_wording),
        cmocka_unit_test(test_edit),
        cmocka_unit_test(test_json_create_delete),
        cmocka_unit_test(test_import_create),
        cmocka_unit_test_teardown(test_auth_options, stop_auth_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
