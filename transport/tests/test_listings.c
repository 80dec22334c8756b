/* The transport's paged listings (streams.h) and batched last-message
 * lookups (esi_direct_last_seqs), against a scripted connection: pages
 * that arrive unsorted, a total that lies, an empty page, errors, and
 * lookups split into the server's chunks. No server needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "transport/directget.h"
#include "transport/msg.h"
#include "transport/streams.h"

#define QUEUE_MAX 4096

/* A scripted server: API requests answer with the next scripted page;
 * direct gets answer every subject it holds, then an end of batch. */
typedef struct fake {
    json_t *pages; /* replies to API requests, in order */
    size_t requests;
    json_int_t offsets[16]; /* the offset each request asked for */
    const char *subjects_filter;
    natsMsg *queue[QUEUE_MAX];
    size_t head, tail;
    size_t lookups, lookup_sizes[8];
    const char *end_status; /* of a lookup: NULL for "204", "NONE" for none */
    bool released, closed;
    int sub; /* what subscriptions point to */
} fake;

static es_status reply_with(const char *subject, const char *text, natsMsg **out)
{
    return esi_msg_create(subject, NULL, text, strlen(text), out);
}

static es_status fake_request(void *ctx, const char *subject, const void *data, size_t len,
                              int64_t timeout_ms, natsMsg **reply)
{
    (void)timeout_ms;
    fake *f = ctx;
    json_t *req = json_loadb(data, len, 0, NULL);
    if (f->requests < 16)
        f->offsets[f->requests] = json_integer_value(json_object_get(req, "offset"));
    const char *filter = json_string_value(json_object_get(req, "subjects_filter"));
    if (filter != NULL)
        f->subjects_filter = strcmp(filter, "$ES.s.>") == 0 ? "$ES.s.>" : "other";
    json_decref(req);
    json_t *page = json_array_get(f->pages, f->requests++);
    if (page == NULL)
        return es_error(ES_ERR_TIMEOUT, "%s: nothing scripted", subject);
    char *text = json_dumps(page, JSON_COMPACT);
    es_status s = reply_with(subject, text, reply);
    free(text);
    return s;
}

static void enqueue(fake *f, natsMsg *m)
{
    assert_true(f->tail < QUEUE_MAX);
    f->queue[f->tail++] = m;
}

/* The server holds "s.<i>" for every i not divisible by 3, last at i * 10. */
static es_status fake_publish_data(void *ctx, const char *subject, const char *reply,
                                   const void *data, size_t len)
{
    fake *f = ctx;
    assert_non_null(strstr(subject, "DIRECT.GET.ES_s"));
    assert_non_null(reply);
    json_t *req = json_loadb(data, len, 0, NULL);
    json_t *list = json_object_get(req, "multi_last");
    assert_int_equal(json_integer_value(json_object_get(req, "batch")), json_array_size(list));
    if (f->lookups < 8)
        f->lookup_sizes[f->lookups] = json_array_size(list);
    f->lookups++;
    /* answers in reverse order: the lookup must not depend on it */
    for (size_t k = json_array_size(list); k-- > 0;) {
        const char *name = json_string_value(json_array_get(list, k));
        long i = strtol(name + 2, NULL, 10);
        if (i % 3 == 0)
            continue;
        natsMsg *m = NULL;
        char seq[24];
        snprintf(seq, sizeof seq, "%ld", i * 10);
        assert_int_equal(reply_with(reply, "payload", &m), ES_OK);
        esi_msg_header_set(m, "Nats-Subject", name);
        esi_msg_header_set(m, "Nats-Sequence", seq);
        enqueue(f, m);
    }
    if (f->end_status == NULL || strcmp(f->end_status, "NONE") != 0) {
        natsMsg *eob = NULL;
        assert_int_equal(reply_with(reply, "", &eob), ES_OK);
        esi_msg_header_set(eob, "Status", f->end_status ? f->end_status : "204");
        enqueue(f, eob);
    }
    json_decref(req);
    return ES_OK;
}

static es_status fake_subscribe_sync(void *ctx, const char *subject, int max_msgs,
                                     int64_t max_bytes, esi_sub **out)
{
    (void)subject;
    (void)max_msgs;
    (void)max_bytes;
    *out = (esi_sub *)(void *)&((fake *)ctx)->sub;
    return ES_OK;
}

static fake *the_fake; /* next_msg and release get the subscription only */

static es_status fake_next_msg(esi_sub *sub, int64_t timeout_ms, natsMsg **out)
{
    (void)sub;
    (void)timeout_ms;
    fake *f = the_fake;
    if (f->head == f->tail)
        return ES_ERR_TIMEOUT;
    *out = f->queue[f->head++];
    return ES_OK;
}

static void fake_release(void *ctx, esi_sub *sub)
{
    (void)sub;
    ((fake *)ctx)->released = true;
}

static void fake_close(void *ctx, esi_sub *sub)
{
    (void)sub;
    ((fake *)ctx)->closed = true;
}

static const esi_conn_ops fake_ops = {
    .request = fake_request,
    .publish_data = fake_publish_data,
    .subscribe_sync = fake_subscribe_sync,
    .next_msg = fake_next_msg,
    .release = fake_release,
    .close = fake_close,
};

static esi_js *fake_js(fake *f)
{
    memset(f, 0, sizeof *f);
    the_fake = f;
    esi_conn conn = {&fake_ops, f};
    esi_js *js = NULL;
    assert_int_equal(esi_js_create(&conn, NULL, &js), ES_OK);
    return js;
}

static void fake_free(fake *f, esi_js *js)
{
    while (f->head < f->tail)
        esi_msg_destroy(f->queue[f->head++]);
    json_decref(f->pages);
    esi_js_destroy(js);
}

/* ---- subject counts ----------------------------------------------------- */

typedef struct seen {
    char text[512]; /* "subject=count " for every subject, in order */
    size_t pages;
    size_t stop_after; /* pages; 0: never */
} seen;

static es_status on_subjects(const char *const *subjects, const uint64_t *counts, size_t n,
                             void *closure)
{
    seen *s = closure;
    for (size_t i = 0; i < n; i++) {
        size_t used = strlen(s->text);
        snprintf(s->text + used, sizeof s->text - used, "%s=%llu ", subjects[i],
                 (unsigned long long)counts[i]);
    }
    return ++s->pages == s->stop_after ? ES_ERR_ABORTED : ES_OK;
}

static json_t *subjects_page(json_int_t total, const char *json_subjects)
{
    json_t *subjects = json_loads(json_subjects, 0, NULL);
    return json_pack("{s:I, s:{s:o}}", "total", total, "state", "subjects", subjects);
}

static void pages_of_subjects_arrive_sorted(void **state)
{
    (void)state;
    fake f;
    esi_js *js = fake_js(&f);
    f.pages = json_array();
    json_array_append_new(f.pages, subjects_page(5, "{\"$ES.s.b.1.X\":2, \"$ES.s.a.1.X\":1}"));
    json_array_append_new(f.pages, subjects_page(5, "{\"$ES.s.d.1.X\":4, \"$ES.s.c.1.X\":3}"));
    json_array_append_new(f.pages, subjects_page(5, "{\"$ES.s.e.1.X\":5}"));
    seen s = {0};
    assert_int_equal(esi_stream_subjects(js, "ES_s", "$ES.s.>", on_subjects, &s), ES_OK);
    assert_string_equal(s.text, "$ES.s.a.1.X=1 $ES.s.b.1.X=2 $ES.s.c.1.X=3 $ES.s.d.1.X=4 "
                                "$ES.s.e.1.X=5 ");
    assert_int_equal(s.pages, 3);
    assert_int_equal(f.requests, 3);
    assert_int_equal(f.offsets[0], 0);
    assert_int_equal(f.offsets[1], 2);
    assert_int_equal(f.offsets[2], 4);
    assert_string_equal(f.subjects_filter, "$ES.s.>");
    fake_free(&f, js);
}

static void an_empty_page_ends_a_listing_whatever_the_total(void **state)
{
    (void)state;
    fake f;
    esi_js *js = fake_js(&f);
    f.pages = json_array();
    json_array_append_new(f.pages, subjects_page(1000, "{\"$ES.s.a.1.X\":1}"));
    json_array_append_new(f.pages, subjects_page(1000, "{}"));
    seen s = {0};
    assert_int_equal(esi_stream_subjects(js, "ES_s", "$ES.s.>", on_subjects, &s), ES_OK);
    assert_int_equal(f.requests, 2);
    assert_int_equal(s.pages, 1);
    fake_free(&f, js);
}

static void a_callback_or_the_server_stops_a_listing(void **state)
{
    (void)state;
    fake f;
    esi_js *js = fake_js(&f);
    f.pages = json_array();
    json_array_append_new(f.pages, subjects_page(4, "{\"$ES.s.a.1.X\":1, \"$ES.s.b.1.X\":1}"));
    json_array_append_new(f.pages, subjects_page(4, "{\"$ES.s.c.1.X\":1, \"$ES.s.d.1.X\":1}"));
    seen s = {.stop_after = 1};
    assert_int_equal(esi_stream_subjects(js, "ES_s", "$ES.s.>", on_subjects, &s), ES_ERR_ABORTED);
    assert_int_equal(f.requests, 1);
    fake_free(&f, js);

    js = fake_js(&f);
    f.pages = json_array();
    json_array_append_new(f.pages, json_loads("{\"error\":{\"code\":404,\"err_code\":10059,"
                                              "\"description\":\"stream not found\"}}",
                                              0, NULL));
    seen none = {0};
    assert_int_equal(esi_stream_subjects(js, "ES_s", "$ES.s.>", on_subjects, &none),
                     ES_ERR_NOT_FOUND);
    assert_non_null(strstr(es_last_error(), "stream not found"));
    fake_free(&f, js);
}

/* ---- streams ------------------------------------------------------------- */

static es_status on_stream(json_t *info, void *closure)
{
    seen *s = closure;
    size_t used = strlen(s->text);
    snprintf(s->text + used, sizeof s->text - used, "%s ",
             json_string_value(json_object_get(json_object_get(info, "config"), "name")));
    return ES_OK;
}

static void streams_are_listed_page_by_page(void **state)
{
    (void)state;
    fake f;
    esi_js *js = fake_js(&f);
    f.pages = json_array();
    json_array_append_new(f.pages, json_loads("{\"total\":3,\"streams\":[{\"config\":{\"name\":"
                                              "\"ES_a\"}},{\"config\":{\"name\":\"ES_b\"}}]}",
                                              0, NULL));
    json_array_append_new(
        f.pages,
        json_loads("{\"total\":3,\"streams\":[{\"config\":{\"name\":\"ES_c\"}}]}", 0, NULL));
    seen s = {0};
    assert_int_equal(esi_stream_list(js, "$ES.>", on_stream, &s), ES_OK);
    assert_string_equal(s.text, "ES_a ES_b ES_c ");
    assert_int_equal(f.offsets[1], 2);
    fake_free(&f, js);
}

/* ---- last sequences -------------------------------------------------------- */

static void last_sequences_come_in_chunks_the_server_takes(void **state)
{
    (void)state;
    fake f;
    esi_js *js = fake_js(&f);
    size_t n = 2 * ESI_DG_MULTI_LAST_MAX + 100;
    char(*names)[16] = calloc(n, sizeof *names);
    const char **subjects = calloc(n, sizeof *subjects);
    uint64_t *seqs = calloc(n, sizeof *seqs);
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "s.%zu", i);
        subjects[i] = names[i];
        seqs[i] = 99; /* overwritten: 0 for a subject without messages */
    }
    assert_int_equal(esi_direct_last_seqs(js, "ES_s", subjects, n, seqs), ES_OK);
    assert_int_equal(f.lookups, 3);
    assert_int_equal(f.lookup_sizes[0], ESI_DG_MULTI_LAST_MAX);
    assert_int_equal(f.lookup_sizes[1], ESI_DG_MULTI_LAST_MAX);
    assert_int_equal(f.lookup_sizes[2], 100);
    for (size_t i = 0; i < n; i++)
        if (seqs[i] != (i % 3 == 0 ? 0 : i * 10))
            fail_msg("subject %zu: seq %llu", i, (unsigned long long)seqs[i]);
    assert_true(f.released); /* every answer read: freed at once */
    assert_false(f.closed);
    free(names);
    free(subjects);
    free(seqs);
    fake_free(&f, js);
}

static void a_lookup_ends_on_the_servers_status_or_in_time(void **state)
{
    (void)state;
    const char *subjects[] = {"s.1", "s.2"};
    uint64_t seqs[2] = {0, 0};
    fake f;
    esi_js *js = fake_js(&f);
    f.end_status = "NONE"; /* answers, but no end of batch */
    assert_int_equal(esi_direct_last_seqs(js, "ES_s", subjects, 2, seqs), ES_ERR_TIMEOUT);
    assert_non_null(strstr(es_last_error(), "no answer in time"));
    assert_true(f.closed); /* answers may still come: closed, not just freed */
    fake_free(&f, js);

    js = fake_js(&f);
    f.end_status = "408";
    assert_int_equal(esi_direct_last_seqs(js, "ES_s", subjects, 2, seqs), ES_ERR_SERVER);
    assert_non_null(strstr(es_last_error(), "status 408"));
    fake_free(&f, js);

    js = fake_js(&f);
    f.end_status = "404"; /* nothing matched: no sequence, no error */
    assert_int_equal(esi_direct_last_seqs(js, "ES_s", subjects, 2, seqs), ES_OK);
    fake_free(&f, js);
}

int main(void)
{
    esi_nats_open(); /* messages need nats.c started */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pages_of_subjects_arrive_sorted),
        cmocka_unit_test(an_empty_page_ends_a_listing_whatever_the_total),
        cmocka_unit_test(a_callback_or_the_server_stops_a_listing),
        cmocka_unit_test(streams_are_listed_page_by_page),
        cmocka_unit_test(last_sequences_come_in_chunks_the_server_takes),
        cmocka_unit_test(a_lookup_ends_on_the_servers_status_or_in_time),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    esi_nats_close();
    return rc;
}
