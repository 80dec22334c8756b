/* The real relay capture (fixtures/firehose-corpus) through the decoder,
 * checked against Jetstream's independent output for the same frames. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include <es/atproto.h>
#include <es/cbor.h>
#include <es/json.h>

#include "fixtures.h"

#define MAX_EVENTS 400

/* What we keep of one mapped event, as JSON for easy comparison. */
typedef struct mapped {
    json_t *fields;  /* kind, did, collection, rkey, operation, cid, rev, seq */
    json_t *payload; /* the payload rendered to the atproto JSON form, or NULL */
    int matches;
} mapped;

static const char *meta_value(const es_event_spec *e, const char *key, char *buf, size_t size)
{
    for (size_t i = 0; i < e->meta_count; i++)
        if (strcmp(e->meta[i].key, key) == 0) {
            snprintf(buf, size, "%s", e->meta[i].value);
            return buf;
        }
    return NULL;
}

/* The payload (DAG-CBOR) as a jansson value, through the codecs' JSON form. */
static json_t *payload_json(const es_event_spec *e)
{
    if (e->data == NULL)
        return NULL;
    es_arena *a = NULL;
    assert_int_equal(es_arena_create(0, &a), ES_OK);
    es_value *v;
    size_t used;
    assert_int_equal(es_cbor_decode(e->data, e->data_len, NULL, a, &v, &used), ES_OK);
    assert_int_equal(used, e->data_len);
    es_buf text = ES_BUF_INIT;
    assert_int_equal(es_json_encode(v, NULL, &text), ES_OK);
    json_error_t err;
    json_t *j = json_loadb((const char *)text.data, text.len, 0, &err);
    assert_non_null(j);
    es_buf_free(&text);
    es_arena_destroy(a);
    return j;
}

static void keep_event(mapped *m, const es_event_spec *e)
{
    char buf[256], rkey[600], cid[128], rev[32], seq[32];
    json_t *f = json_object();
    json_object_set_new(f, "did", json_stringn(e->entity_id, e->entity_id_len));
    if (strcmp(e->entity_type, "repo") == 0) {
        json_object_set_new(f, "kind", json_string(e->event_type));
    } else {
        /* the entity type maps back to the collection: NSIDs never hold '_' */
        snprintf(buf, sizeof buf, "%s", e->entity_type);
        for (char *c = buf; *c; c++)
            *c = *c == '_' ? '.' : *c;
        json_object_set_new(f, "kind", json_string("commit"));
        json_object_set_new(f, "collection", json_string(buf));
        json_object_set_new(f, "operation", json_string(e->event_type));
        json_object_set_new(f, "rkey", json_string(meta_value(e, "rkey", rkey, sizeof rkey)));
        json_object_set_new(f, "rev", json_string(meta_value(e, "rev", rev, sizeof rev)));
        if (meta_value(e, "cid", cid, sizeof cid))
            json_object_set_new(f, "cid", json_string(cid));
        /* the message id is <did>/<rev>/<collection>/<rkey> */
        char id[1200];
        snprintf(id, sizeof id, "%.*s/%s/%s/%s", (int)e->entity_id_len, e->entity_id, rev, buf,
                 rkey);
        assert_string_equal(e->event_id, id);
    }
    json_object_set_new(f, "seq", json_string(meta_value(e, "seq", seq, sizeof seq)));
    m->fields = f;
    m->payload = payload_json(e);
}

/* How many mapped events match one line of expected_v1.jsonl; the match's
 * payload must equal the line's record (or identity/account object). */
static int match_line(json_t *line, mapped *events, size_t count)
{
    const char *kind = json_string_value(json_object_get(line, "kind"));
    json_t *want = json_object();
    json_object_set(want, "did", json_object_get(line, "did"));
    json_object_set_new(want, "kind", json_string(kind));
    json_t *body = json_object_get(line, kind);
    json_t *record = NULL;
    if (strcmp(kind, "commit") == 0) {
        const char *keys[] = {"collection", "operation", "rkey", "rev", "cid"};
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
            if (json_object_get(body, keys[k]))
                json_object_set(want, keys[k], json_object_get(body, keys[k]));
        record = json_object_get(body, "record");
    } else {
        char seq[32];
        snprintf(seq, sizeof seq, "%lld",
                 (long long)json_integer_value(json_object_get(body, "seq")));
        json_object_set_new(want, "seq", json_string(seq));
        record = body;
    }
    int found = 0;
    for (size_t i = 0; i < count; i++) {
        json_t *have = json_deep_copy(events[i].fields);
        if (strcmp(kind, "commit") == 0)
            json_object_del(have, "seq"); /* Jetstream's commit lines carry no seq */
        if (json_equal(have, want)) {
            found++;
            events[i].matches++;
            if (record == NULL)
                assert_null(events[i].payload);
            else if (!json_equal(events[i].payload, record)) {
                char *a = json_dumps(events[i].payload, JSON_SORT_KEYS);
                char *b = json_dumps(record, JSON_SORT_KEYS);
                fail_msg("payload differs:\n ours %s\n jetstream %s", a, b);
            }
        }
        json_decref(have);
    }
    json_decref(want);
    return found;
}

static void real_capture_matches_jetstream(void **state)
{
    (void)state;
    const char *frames_path = fixture_path("firehose-corpus/frames.bin.zst");
    if (frames_path == NULL)
        skip();
    char path[4096];
    snprintf(path, sizeof path, "%s", frames_path);
    const char *expected_path = fixture_path("firehose-corpus/expected_v1.jsonl");
    if (expected_path == NULL)
        skip();

    es_atp_options o = {.verify_all_blocks = true};
    es_atp_decoder *d = NULL;
    assert_int_equal(es_atp_decoder_create(&o, &d), ES_OK);
    es_arena *a = NULL;
    assert_int_equal(es_arena_create(0, &a), ES_OK);
    es_atp_capture *c = NULL;
    assert_int_equal(es_atp_capture_open(path, 0, &c), ES_OK);
    static mapped events[MAX_EVENTS];
    size_t count = 0, frames = 0, blocks = 0;
    const uint8_t *frame;
    size_t len;
    uint64_t last_seq = 0;
    while (es_atp_capture_next(c, &frame, &len) == ES_OK) {
        es_arena_reset(a);
        es_atp_batch b;
        es_status s = es_atp_decode(d, frame, len, a, &b);
        if (s != ES_OK)
            fail_msg("frame %zu: %s", frames, es_last_error());
        assert_true(b.has_seq);
        assert_true(b.seq > last_seq); /* contiguous, increasing */
        last_seq = b.seq;
        int64_t ns;
        assert_true(es_atp_parse_datetime(b.time, b.time_len, &ns));
        assert_int_equal(ns, b.time_ns);
        for (size_t i = 0; i < b.count; i++) {
            assert_true(count < MAX_EVENTS);
            assert_int_equal(b.events[i].time_ns, b.time_ns);
            assert_int_equal(b.events[i].codec != NULL, b.events[i].data != NULL);
            keep_event(&events[count++], &b.events[i]);
        }
        frames++;
    }
    es_atp_capture_close(c);
    const es_atp_stats *st = es_atp_decoder_stats(d);
    blocks = st->blocks_verified;
    assert_int_equal(frames, 150);
    assert_int_equal(st->by_kind[ES_ATP_KIND_COMMIT], 148);
    assert_int_equal(st->by_kind[ES_ATP_KIND_IDENTITY], 1);
    assert_int_equal(st->by_kind[ES_ATP_KIND_ACCOUNT], 1);
    for (int k = 0; k < ES_ATP_ERR_COUNT; k++)
        assert_int_equal(st->errors[k], 0);
    assert_true(blocks > 148 * 8);              /* ~10.5 blocks per commit, every one verified */
    assert_int_equal(last_seq, 31527015471ULL); /* beyond 2^32 */

    /* every Jetstream line matches exactly one event, every event one line */
    size_t elen;
    char *text = (char *)read_whole_file(expected_path, &elen);
    assert_non_null(text);
    size_t lines = 0;
    for (char *line = text; *line;) {
        size_t n = strcspn(line, "\n");
        if (n > 0) {
            json_error_t err;
            json_t *j = json_loadb(line, n, 0, &err);
            assert_non_null(j);
            int found = match_line(j, events, count);
            if (found != 1)
                fail_msg("line %zu matches %d events: %.*s", lines + 1, found,
                         (int)(n > 300 ? 300 : n), line);
            json_decref(j);
            lines++;
        }
        line += n + (line[n] == '\n');
    }
    assert_int_equal(lines, 152);
    assert_int_equal(count, 152);
    for (size_t i = 0; i < count; i++) {
        assert_int_equal(events[i].matches, 1);
        json_decref(events[i].fields);
        json_decref(events[i].payload);
    }
    free(text);
    es_arena_destroy(a);
    es_atp_decoder_destroy(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(real_capture_matches_jetstream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
