/* End-to-end tests of es-tool projections, checkpoints and completion: the
 * binary (argv[1]) against the server at $NATS_URL. Projections and
 * checkpoints are made with the library's public API (es-tool only looks at
 * them) and read back through the tool, text and JSON; the completion
 * scripts are sourced in bash (and zsh when installed) and asked for
 * completions as the shells would. */
#include "tool_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <es/es.h>

static char prefix[32]; /* store names of this run */

static void store_name(char *out, const char *what)
{
    snprintf(out, 40, "%s%s", prefix, what);
}

static void create_store(const char *name)
{
    run_result r;
    RUN(&r, "create", (char *)name);
    assert_ok(&r);
    run_free(&r);
}

static void delete_store(const char *name)
{
    run_result r;
    RUN(&r, "delete", (char *)name, "--force");
    run_free(&r);
}

/* Opens `name` with the library, for what es-tool only reads. */
static void open_store(const char *name, natsConnection **nc, es_store **st)
{
    es_connect_options o;
    es_connect_options_init(&o);
    o.servers = getenv("NATS_URL");
    assert_int_equal(es_connect(&o, nc), ES_OK);
    assert_int_equal(es_store_open(*nc, name, NULL, st), ES_OK);
}

/* ---- help ------------------------------------------------------------------------- */

static void test_help(void **state)
{
    (void)state;
    const char *commands[] = {"projections", "checkpoints", "completion"};
    run_result r;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        RUN(&r, (char *)commands[i], "--help");
        assert_ok(&r);
        if (!strstr(r.out, "Examples:") || !strstr(r.out, "--context"))
            fail_msg("%s --help lacks examples or connection options", commands[i]);
        run_free(&r);
    }
    RUN(&r, "--help");
    assert_ok(&r);
    assert_non_null(strstr(r.out, "  projections  "));
    run_free(&r);
    RUN(&r, "completion", "fish");
    assert_fails(&r, 1, "bash|zsh");
    run_free(&r);
    RUN(&r, "checkpoints");
    assert_fails(&r, 1, "which store");
    run_free(&r);
}

/* ---- projections ------------------------------------------------------------------ */

static void test_projections(void **state)
{
    (void)state;
    char name[40];
    store_name(name, "p");
    create_store(name);
    run_result r;
    RUN_IN(&r,
           "{\"type\":\"account\",\"id\":\"a1\",\"event\":\"Opened\",\"data\":{}}\n"
           "{\"type\":\"account\",\"id\":\"a2\",\"event\":\"Opened\",\"data\":{}}\n"
           "{\"type\":\"order\",\"id\":\"o1\",\"event\":\"Placed\",\"data\":{}}\n",
           "append", name, "--batch", "-");
    assert_ok(&r);
    run_free(&r);
    RUN(&r, "projections", name);
    assert_ok(&r);
    assert_string_equal(r.out, "");
    assert_non_null(strstr(r.err, "no projections"));
    run_free(&r);

    natsConnection *nc;
    es_store *st;
    open_store(name, &nc, &st);
    es_projection_config cfg;
    es_projection_config_init(&cfg);
    assert_int_equal(es_projection_create(st, "all", &cfg), ES_OK);
    es_filter accounts;
    es_filter_init(&accounts);
    accounts.entity_type = "account";
    cfg.filters = &accounts;
    cfg.filter_count = 1;
    cfg.ordered = true;
    cfg.partitions = 2;
    assert_int_equal(es_projection_create(st, "balances", &cfg), ES_OK);

    RUN(&r, "projections", name, "--json");
    assert_ok(&r);
    json_t *lines = json_lines(&r);
    assert_int_equal(json_array_size(lines), 2);
    json_t *all = json_array_get(lines, 0), *bal = json_array_get(lines, 1);
    assert_string_equal(jstr(all, "name"), "all");
    assert_int_equal(jint(all, "pending"), 3);
    assert_int_equal(jint(all, "partitions"), 1);
    assert_true(json_is_false(json_object_get(all, "ordered")));
    assert_string_equal(jstr(bal, "name"), "balances");
    assert_true(json_is_true(json_object_get(bal, "ordered")));
    assert_int_equal(jint(bal, "partitions"), 2);
    assert_int_equal(jint(bal, "filters"), 1);
    assert_int_equal(jint(bal, "pending"), 2); /* each partition reads the filter's events */
    assert_string_equal(jstr(bal, "start"), "from_start");
    json_decref(lines);
    run_free(&r);

    RUN(&r, "projections", name, "balances", "--json");
    assert_ok(&r);
    lines = json_lines(&r);
    assert_int_equal(json_array_size(lines), 1);
    json_t *parts = json_object_get(json_array_get(lines, 0), "partition");
    assert_int_equal(json_array_size(parts), 2);
    assert_int_equal(jint(json_array_get(parts, 1), "partition"), 1);
    assert_int_equal(jint(json_array_get(parts, 1), "pending"), 2);
    json_decref(lines);
    run_free(&r);

    RUN(&r, "projections", name);
    assert_ok(&r);
    assert_non_null(strstr(r.out, "PROJECTION"));
    assert_non_null(strstr(r.out, "balances"));
    run_free(&r);
    RUN(&r, "projections", name, "balances");
    assert_ok(&r);
    assert_non_null(strstr(r.out, "Projection balances of store"));
    assert_non_null(strstr(r.out, "2 partitions"));
    assert_non_null(strstr(r.out, "PARTITION"));
    run_free(&r);
    RUN(&r, "projections", name, "nope");
    assert_fails(&r, 2, "no projection 'nope'");
    run_free(&r);
    RUN(&r, "projections", name, "balances", "extra");
    assert_fails(&r, 1, "unexpected argument");
    run_free(&r);
    es_store_destroy(st);
    es_connection_close(nc);
    delete_store(name);
    RUN(&r, "projections", name);
    assert_fails(&r, 2, "does not exist");
    run_free(&r);
}

/* ---- checkpoints ------------------------------------------------------------------ */

static bool has_checkpoint_bucket(const char *name)
{
    run_result r;
    RUN(&r, "info", (char *)name, "--json");
    assert_ok(&r);
    bool has = strstr(r.out, "_checkpoints") != NULL;
    run_free(&r);
    return has;
}

static void test_checkpoints(void **state)
{
    (void)state;
    char name[40];
    store_name(name, "c");
    create_store(name);
    run_result r;
    /* a look does not create the bucket */
    RUN(&r, "checkpoints", name);
    assert_ok(&r);
    assert_non_null(strstr(r.err, "no checkpoints"));
    run_free(&r);
    RUN(&r, "checkpoints", name, "relay");
    assert_fails(&r, 2, "no checkpoint 'relay'");
    run_free(&r);
    assert_false(has_checkpoint_bucket(name));

    natsConnection *nc;
    es_store *st;
    open_store(name, &nc, &st);
    es_checkpoints *cps;
    assert_int_equal(es_checkpoints_open(st, &cps), ES_OK);
    uint64_t rev = 0;
    assert_int_equal(es_checkpoint_set(cps, "relay", 42, "{\"cursor\": \"abc\", \"n\": [1, 2]}",
                                       ES_CHECKPOINT_NEW, &rev),
                     ES_OK);
    assert_int_equal(es_checkpoint_set(cps, "ingest.one", 7, NULL, ES_CHECKPOINT_NEW, NULL), ES_OK);

    RUN(&r, "checkpoints", name, "--json");
    assert_ok(&r);
    json_t *lines = json_lines(&r);
    assert_int_equal(json_array_size(lines), 2);
    json_t *relay = NULL, *one = NULL, *l;
    size_t i;
    json_array_foreach(lines, i, l)
    {
        if (strcmp(jstr(l, "name"), "relay") == 0)
            relay = l;
        else if (strcmp(jstr(l, "name"), "ingest.one") == 0)
            one = l;
    }
    assert_non_null(relay);
    assert_non_null(one);
    assert_int_equal(jint(relay, "position"), 42);
    assert_int_equal(jint(relay, "revision"), (json_int_t)rev);
    assert_string_equal(jstr(json_object_get(relay, "data"), "cursor"), "abc");
    assert_int_equal(strlen(jstr(relay, "time")), 30); /* RFC 3339, nine digits */
    assert_int_equal(jint(one, "position"), 7);
    assert_null(json_object_get(one, "data"));
    json_decref(lines);
    run_free(&r);

    RUN(&r, "checkpoints", name);
    assert_ok(&r);
    assert_non_null(strstr(r.out, "CHECKPOINT"));
    assert_non_null(strstr(r.out, "{\"cursor\":\"abc\""));
    run_free(&r);
    RUN(&r, "checkpoints", name, "relay");
    assert_ok(&r);
    assert_non_null(strstr(r.out, "position:  42"));
    assert_non_null(strstr(r.out, "\"cursor\""));
    run_free(&r);
    RUN(&r, "checkpoints", name, "ingest.one", "--json");
    assert_ok(&r);
    assert_non_null(strstr(r.out, "\"position\":7"));
    run_free(&r);
    es_checkpoints_destroy(cps);
    es_store_destroy(st);
    es_connection_close(nc);
    delete_store(name);
}

/* ---- completion ------------------------------------------------------------------- */

/* What the completion function offers for `words` (the last one being
 * completed), in `shell` after sourcing `es-tool completion <shell>`. */
static void complete(const char *shell, const char *words, run_result *r)
{
    char script[4096];
    snprintf(script, sizeof script,
             "source <('%s' completion %s) || exit 9\n"
             "%s"
             "COMP_WORDS=('%s' %s)\n"
             "COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))\n"
             "_es_tool\n"
             "printf '%%s\\n' \"${COMPREPLY[@]}\"\n",
             tool, shell, strcmp(shell, "zsh") == 0 ? "setopt ksharrays\n" : "", tool, words);
    memset(r, 0, sizeof *r);
    char path[] = "/tmp/es-tool-compl-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, script, strlen(script)), (ssize_t)strlen(script));
    close(fd);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "%s %s '%s'", shell, strcmp(shell, "zsh") == 0 ? "-f" : "--norc",
             path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, p);
    buf[n] = '\0';
    r->code = pclose(p);
    r->out = strdup(buf);
    r->err = strdup("");
    unlink(path);
}

/* `word` is one of the lines of r->out. */
static bool offers(const run_result *r, const char *word)
{
    size_t len = strlen(word);
    for (const char *p = r->out; (p = strstr(p, word)) != NULL; p += len)
        if ((p == r->out || p[-1] == '\n') && (p[len] == '\n' || p[len] == '\0'))
            return true;
    return false;
}

static void test_bash_completion(void **state)
{
    (void)state;
    if (system("bash --version > /dev/null 2>&1") != 0) {
        print_message("no bash: bash completion not tested\n");
        skip();
    }
    char name[40];
    store_name(name, "compl");
    create_store(name);
    run_result r;
    complete("bash", "rep", &r);
    assert_int_equal(r.code, 0);
    assert_string_equal(r.out, "replay\n");
    run_free(&r);
    complete("bash", "pro", &r);
    assert_string_equal(r.out, "projections\n");
    run_free(&r);
    complete("bash", "replay x --fo", &r);
    assert_true(offers(&r, "--follow") && offers(&r, "--format"));
    assert_int_equal(count_lines(r.out), 2);
    run_free(&r);
    complete("bash", "stores --js", &r);
    assert_true(offers(&r, "--js-domain") && offers(&r, "--js-api-prefix") && offers(&r, "--json"));
    run_free(&r);
    complete("bash", "replay x --format ''", &r);
    assert_string_equal(r.out, "jsonl\npretty\nraw\n");
    run_free(&r);
    complete("bash", "completion ''", &r);
    assert_string_equal(r.out, "bash\nzsh\n");
    run_free(&r);
    /* the store names come from the server */
    char words[128];
    snprintf(words, sizeof words, "info %s", prefix);
    complete("bash", words, &r);
    assert_true(offers(&r, name));
    run_free(&r);
    /* ... only where a store goes, and not as a value of an option */
    snprintf(words, sizeof words, "info %s %s", name, prefix);
    complete("bash", words, &r);
    assert_string_equal(r.out, "\n");
    run_free(&r);
    snprintf(words, sizeof words, "replay --type %s", prefix);
    complete("bash", words, &r);
    assert_string_equal(r.out, "\n");
    run_free(&r);
    delete_store(name);
}

static void test_zsh_completion(void **state)
{
    (void)state;
    if (system("zsh --version > /dev/null 2>&1") != 0) {
        print_message("no zsh (apt-get install zsh): zsh completion not tested\n");
        skip();
    }
    run_result r;
    complete("zsh", "rep", &r);
    assert_int_equal(r.code, 0);
    assert_true(offers(&r, "replay"));
    run_free(&r);
    complete("zsh", "replay x --format ''", &r);
    assert_true(offers(&r, "jsonl") && offers(&r, "pretty") && offers(&r, "raw"));
    run_free(&r);
    /* registered for es-tool with zsh's completion system */
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "HOME=/nonexistent zsh -f -c 'source <(\"%s\" completion zsh) && "
             "[[ $_comps[es-tool] == *_es_tool* ]]' 2>/dev/null",
             tool);
    assert_int_equal(system(cmd), 0);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_estool_cmds PATH-TO-es-tool\n");
        return 1;
    }
    tool = argv[1];
    const char *url = getenv("NATS_URL");
    if (url == NULL || *url == '\0') {
        fprintf(stderr, "test_estool_cmds: NATS_URL is not set: these tests need a live server "
                        "(tools/test starts one)\n");
        return 1;
    }
    snprintf(prefix, sizeof prefix, "cmds%dx", (int)getpid() % 10000000);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help),           cmocka_unit_test(test_projections),
        cmocka_unit_test(test_checkpoints),    cmocka_unit_test(test_bash_completion),
        cmocka_unit_test(test_zsh_completion),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
