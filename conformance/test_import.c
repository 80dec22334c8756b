/* Events as stored (es_event_raw) and imported byte for byte
 * (es_import_async): a store copied through them reads the same, stores
 * nothing twice, and takes nothing that would change how the server stores
 * it; es_connect and es_store_max_payload on the way. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <pthread.h>

#include "harness.h"

/* ---- copies of raw events ---------------------------------------------------- */

typedef struct raw_copy {
    char *subject;
    es_header *headers;
    size_t header_count;
    void *payload;
    size_t payload_len;
    uint64_t seq;
} raw_copy;

typedef struct raw_list {
    raw_copy items[64];
    size_t n;
} raw_list;

static char *dup_text(const char *s)
{
    char *d = strdup(s);
    assert_non_null(d);
    return d;
}

static es_status collect_raw(const es_event *ev, void *closure)
{
    raw_list *l = closure;
    es_raw_event raw;
    assert_int_equal(es_event_raw(ev, &raw), ES_OK);
    assert_true(l->n < 64);
    raw_copy *c = &l->items[l->n++];
    c->subject = dup_text(raw.subject);
    c->header_count = raw.header_count;
    c->headers = calloc(raw.header_count + 1, sizeof *c->headers);
    for (size_t i = 0; i < raw.header_count; i++)
        c->headers[i] = (es_header){dup_text(raw.headers[i].name), dup_text(raw.headers[i].value)};
    c->payload = malloc(raw.payload_len + 1);
    if (raw.payload_len > 0)
        memcpy(c->payload, raw.payload, raw.payload_len);
    c->payload_len = raw.payload_len;
    c->seq = es_event_seq(ev);
    return ES_OK;
}

static void raw_list_free(raw_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        raw_copy *c = &l->items[i];
        for (size_t k = 0; k < c->header_count; k++) {
            free((void *)c->headers[k].name);
            free((void *)c->headers[k].value);
        }
        free(c->headers);
        free(c->subject);
        free(c->payload);
    }
    l->n = 0;
}

static es_raw_event as_raw(const raw_copy *c)
{
    es_raw_event r = {c->subject, c->headers, c->header_count, c->payload, c->payload_len};
    return r;
}

/* "name=value" lines, sorted: the headers as a multiset with each name's
 * values in order. */
static int by_text(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void assert_same_headers(const raw_copy *a, const raw_copy *b)
{
    assert_int_equal(a->header_count, b->header_count);
    char **x = calloc(a->header_count + 1, sizeof *x), **y = calloc(a->header_count + 1, sizeof *y);
    for (size_t i = 0; i < a->header_count; i++) {
        x[i] = malloc(strlen(a->headers[i].name) + strlen(a->headers[i].value) + 2);
        y[i] = malloc(strlen(b->headers[i].name) + strlen(b->headers[i].value) + 2);
        sprintf(x[i], "%s=%s", a->headers[i].name, a->headers[i].value);
        sprintf(y[i], "%s=%s", b->headers[i].name, b->headers[i].value);
    }
    qsort(x, a->header_count, sizeof *x, by_text);
    qsort(y, a->header_count, sizeof *y, by_text);
    for (size_t i = 0; i < a->header_count; i++) {
        assert_string_equal(x[i], y[i]);
        free(x[i]);
        free(y[i]);
    }
    free(x);
    free(y);
}

/* ---- outcomes --------------------------------------------------------------- */

typedef struct outcomes {
    pthread_mutex_t mu;
    size_t stored, duplicates, failed;
    uint64_t seqs[64];
    char error[256];
} outcomes;

static void on_imported(const es_import_result *r, void *closure)
{
    outcomes *o = closure;
    pthread_mutex_lock(&o->mu);
    if (r->status != ES_OK) {
        o->failed++;
        snprintf(o->error, sizeof o->error, "%s", r->error);
    } else if (r->duplicate) {
        o->duplicates++;
    } else {
        o->stored++;
    }
    size_t k = o->stored + o->duplicates + o->failed - 1;
    if (k < 64)
        o->seqs[k] = r->seq;
    pthread_mutex_unlock(&o->mu);
}

static void import_all(es_store *st, const raw_list *l, outcomes *o)
{
    memset(o, 0, sizeof *o);
    pthread_mutex_init(&o->mu, NULL);
    for (size_t i = 0; i < l->n; i++) {
        es_raw_event r = as_raw(&l->items[i]);
        assert_int_equal(es_import_async(st, &r, on_imported, o), ES_OK);
    }
    assert_int_equal(es_append_flush(st, 10000), ES_OK);
    pthread_mutex_destroy(&o->mu);
}

/* ---- tests ------------------------------------------------------------------- */

static void a_store_copied_through_raw_events_reads_the_same(void **state)
{
    conf_ctx *c = *state;
    es_meta meta[] = {{"who", "\xc3\xa9l\xc3\xa8ve"}};
    es_event_spec b[3] = {
        conf_spec("account", "x y\001z", "Opened", "{\"n\":1}"),
        conf_spec("post", "p1", "Created", NULL),
        conf_spec("blob", "b1", "Up", NULL),
    };
    b[0].codec = "json";
    b[0].meta = meta;
    b[0].meta_count = 1;
    b[1].codec = "dag-cbor";
    b[1].data = "\xa1\x61\x62\x41\x00";
    b[1].data_len = 5;
    b[2].data = "\x00\x01\x02\x03";
    b[2].data_len = 4;
    assert_int_equal(es_append_batch(c->st, b, 3, NULL), ES_OK);

    raw_list *from = calloc(1, sizeof *from), *copy = calloc(1, sizeof *copy);
    assert_int_equal(es_evolve(c->st, NULL, NULL, collect_raw, from, NULL), ES_OK);
    assert_int_equal(from->n, 3);
    assert_string_equal(from->items[0].subject, "account.x%20y%01z.Opened");
    for (size_t i = 0; i < from->n; i++)
        for (size_t k = 0; k < from->items[i].header_count; k++)
            if (strncasecmp(from->items[i].headers[k].name, "Nats-", 5) == 0)
                assert_string_equal(from->items[i].headers[k].name, "Nats-Msg-Id");

    /* another store, through a connection of es_connect's */
    es_connect_options co;
    es_connect_options_init(&co);
    co.servers = conf_url;
    co.name = "conformance import";
    natsConnection *nc = NULL;
    assert_int_equal(es_connect(&co, &nc), ES_OK);
    char name[ES_STORE_NAME_MAX + 1];
    conf_unique_name(name);
    es_store *to = NULL;
    assert_int_equal(es_store_create(nc, name, conf_store_config(), NULL, &to), ES_OK);
    outcomes o;
    import_all(to, from, &o);
    assert_int_equal(o.stored, 3);
    assert_int_equal(o.failed, 0);
    es_status s = es_evolve(to, NULL, NULL, collect_raw, copy, NULL);
    if (s != ES_OK)
        print_message("es_evolve: %s\n", es_last_error());
    assert_int_equal(s, ES_OK);
    assert_int_equal(copy->n, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(copy->items[i].subject, from->items[i].subject);
        assert_int_equal(copy->items[i].payload_len, from->items[i].payload_len);
        assert_memory_equal(copy->items[i].payload, from->items[i].payload,
                            from->items[i].payload_len);
        assert_same_headers(&copy->items[i], &from->items[i]);
    }
    /* only into the store's stream: Nats-Expected-Stream travels with it */
    char stream[64];
    snprintf(stream, sizeof stream, "ES_%s", name);
    natsMsg *m = conf_raw_get(c->nc, stream, copy->items[0].seq);
    const char *expected = NULL;
    assert_int_equal(natsMsgHeader_Get(m, "Nats-Expected-Stream", &expected), NATS_OK);
    assert_string_equal(expected, stream);
    natsMsg_Destroy(m);

    /* again: the ids are known, nothing is stored twice */
    import_all(to, from, &o);
    assert_int_equal(o.duplicates, 3);
    assert_int_equal(o.stored, 0);
    es_store_info info;
    assert_int_equal(es_store_info_get(to, &info), ES_OK);
    assert_int_equal(info.events, 3);

    raw_list_free(from);
    raw_list_free(copy);
    free(from);
    free(copy);
    es_store_destroy(to);
    assert_int_equal(es_store_delete(nc, name, NULL), ES_OK);
    es_connection_close(nc);
}

static void nothing_that_would_change_the_stream_is_imported(void **state)
{
    conf_ctx *c = *state;
    outcomes o;
    memset(&o, 0, sizeof o);
    pthread_mutex_init(&o.mu, NULL);
    es_header rollup[] = {{"Nats-Rollup", "all"}};
    es_raw_event r = {"a.b.c", rollup, 1, "", 0};
    assert_int_equal(es_import_async(c->st, &r, on_imported, &o), ES_ERR_INVALID);
    assert_non_null(strstr(es_last_error(), "control header"));
    es_raw_event leave = {"a.b.c.d", NULL, 0, "", 0};
    assert_int_equal(es_import_async(c->st, &leave, on_imported, &o), ES_ERR_INVALID);
    es_raw_event tenant = {"acme.a.b.c", NULL, 0, "", 0}; /* the store has no tenancy */
    assert_int_equal(es_import_async(c->st, &tenant, on_imported, &o), ES_ERR_INVALID);

    size_t max = es_store_max_payload(c->st);
    assert_true(max >= 1024 * 1024); /* the server's default max payload */
    char *big = calloc(1, max + 1);
    es_raw_event large = {"a.b.c", NULL, 0, big, max + 1};
    assert_int_equal(es_import_async(c->st, &large, on_imported, &o), ES_ERR_TOO_LARGE);
    free(big);
    assert_int_equal(es_import_async(NULL, &leave, on_imported, &o), ES_ERR_INVALID);
    assert_int_equal(es_import_async(c->st, &leave, NULL, NULL), ES_ERR_INVALID);
    assert_int_equal(es_append_flush(c->st, 1000), ES_OK);
    assert_int_equal(o.stored + o.duplicates + o.failed, 0); /* no callback ran */
    es_store_info info;
    assert_int_equal(es_store_info_get(c->st, &info), ES_OK);
    assert_int_equal(info.events, 0);
    pthread_mutex_destroy(&o.mu);

    /* a store's own limit is the smaller one */
    es_store_config cfg;
    assert_int_equal(es_store_info_get(c->st, &info), ES_OK);
    cfg = info.config;
    cfg.max_event_size = 4096;
    assert_int_equal(es_store_update(c->st, &cfg), ES_OK);
    assert_int_equal(es_store_max_payload(c->st), 4096);
    assert_int_equal(es_store_max_payload(NULL), 0);
}

/* A compressing store's raw payload is the stored, sealed bytes, not the data. */
static void raw_payloads_are_the_stored_bytes(void **state)
{
    conf_ctx *c = *state;
    es_store_destroy(c->st);
    c->st = NULL;
    assert_int_equal(es_store_delete(c->nc, c->name, NULL), ES_OK);
    es_store_config cfg;
    conf_store_config_init(&cfg);
    cfg.compress_threshold = 16;
    assert_int_equal(es_store_create(c->nc, c->name, &cfg, NULL, &c->st), ES_OK);
    char data[512];
    memset(data, 'z', sizeof data);
    es_event_spec e = conf_spec("doc", "d1", "Written", NULL);
    e.data = data;
    e.data_len = sizeof data;
    es_append_result res;
    assert_int_equal(es_append(c->st, &e, &res), ES_OK);
    raw_list *l = calloc(1, sizeof *l);
    assert_int_equal(es_evolve(c->st, NULL, NULL, collect_raw, l, NULL), ES_OK);
    assert_int_equal(l->n, 1);
    assert_true(l->items[0].payload_len < sizeof data); /* compressed */
    char stream[64];
    snprintf(stream, sizeof stream, "ES_%s", c->name);
    natsMsg *m = conf_raw_get(c->nc, stream, res.last_seq);
    assert_int_equal((size_t)natsMsg_GetDataLength(m), l->items[0].payload_len);
    assert_memory_equal(natsMsg_GetData(m), l->items[0].payload, l->items[0].payload_len);
    natsMsg_Destroy(m);
    bool sealed = false;
    for (size_t k = 0; k < l->items[0].header_count; k++)
        sealed = sealed || strncmp(l->items[0].headers[k].name, "Es-", 3) == 0;
    assert_true(sealed); /* the envelope's headers come along */
    raw_list_free(l);
    free(l);
}

int conf_run_import(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_store_copied_through_raw_events_reads_the_same,
                                        conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(nothing_that_would_change_the_stream_is_imported,
                                        conf_setup, conf_teardown),
        cmocka_unit_test_setup_teardown(raw_payloads_are_the_stored_bytes, conf_setup,
                                        conf_teardown),
    };
    return cmocka_run_group_tests_name("import", tests, NULL, NULL);
}
