/* The ordered parallel decoder (workers.c) alone: frames decoded on several
 * threads with random delays come back in submission order, each with its
 * own batch, error message and counters; the ring never holds more than its
 * slots; shutdown with frames queued joins cleanly. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>

#include "workers.h"

/* A test frame: seq (8 bytes, little-endian), a delay in µs (4 bytes), and
 * whether the stand-in decoder refuses it (1 byte). */
#define TEST_FRAME_LEN 13

static void make_frame(uint8_t *f, uint64_t seq, uint32_t delay_us, bool refuse)
{
    for (int i = 0; i < 8; i++)
        f[i] = (uint8_t)(seq >> (8 * i));
    for (int i = 0; i < 4; i++)
        f[8 + i] = (uint8_t)(delay_us >> (8 * i));
    f[12] = refuse;
}

static uint64_t frame_seq(const uint8_t *f)
{
    uint64_t seq = 0;
    for (int i = 0; i < 8; i++)
        seq |= (uint64_t)f[i] << (8 * i);
    return seq;
}

/* The stand-in for es_atp_decode: sleeps the frame's delay, then writes its
 * DID into the slot's arena (so each slot's memory is its own) or refuses
 * it with a message naming its seq (set on the decoding thread). */
static es_status slow_decode(es_atp_decoder *d, const uint8_t *frame, size_t len, es_arena *arena,
                             es_atp_batch *out)
{
    (void)d;
    if (len != TEST_FRAME_LEN)
        return es_error(ES_ERR_DECODE, "bad test frame");
    uint32_t delay = 0;
    for (int i = 0; i < 4; i++)
        delay |= (uint32_t)frame[8 + i] << (8 * i);
    struct timespec ts = {0, (long)delay * 1000L};
    nanosleep(&ts, NULL);
    uint64_t seq = frame_seq(frame);
    out->kind = ES_ATP_KIND_COMMIT;
    out->has_seq = true;
    out->seq = seq;
    if (frame[12]) {
        out->error = ES_ATP_ERR_SIGNATURE;
        return es_error(ES_ERR_DECODE, "refused frame %llu", (unsigned long long)seq);
    }
    char *did = es_arena_alloc(arena, 32);
    if (did == NULL)
        return ES_ERR_NOMEM;
    snprintf(did, 32, "did:plc:%llu", (unsigned long long)seq);
    out->did = did;
    out->did_len = strlen(did);
    return ES_OK;
}

static ingest_workers *make_ring(size_t threads, size_t slots, ingest_decode_fn fn)
{
    ingest_workers_options o;
    ingest_workers_options_init(&o);
    o.threads = threads;
    o.slots = slots;
    o.decode_fn = fn;
    ingest_workers *w = NULL;
    assert_int_equal(ingest_workers_create(&o, &w), ES_OK);
    assert_non_null(w);
    return w;
}

/* Checks the oldest frame is `seq`, decoded as slow_decode does. */
static void check_decoded(const ingest_decoded *d, uint64_t seq, bool refused)
{
    assert_non_null(d);
    assert_true(d->batch.has_seq);
    assert_int_equal(d->batch.seq, seq);
    char want[64];
    if (refused) {
        assert_int_equal(d->status, ES_ERR_DECODE);
        assert_int_equal(d->batch.error, ES_ATP_ERR_SIGNATURE);
        snprintf(want, sizeof want, "refused frame %llu", (unsigned long long)seq);
        assert_string_equal(d->error, want);
    } else {
        assert_int_equal(d->status, ES_OK);
        snprintf(want, sizeof want, "did:plc:%llu", (unsigned long long)seq);
        assert_int_equal(d->batch.did_len, strlen(want));
        assert_memory_equal(d->batch.did, want, d->batch.did_len);
    }
}

/* Whether frame `seq` of a stress run is refused: a fixed pattern. */
static bool refused_at(uint64_t seq)
{
    return seq % 7 == 3;
}

/* Many frames, random delays, several threads, a small ring: the frames come
 * back in order, none lost or repeated, the ring never over its slots. */
static void test_order_under_random_delays(void **state)
{
    (void)state;
    enum { FRAMES = 20000, SLOTS = 8 };
    ingest_workers *w = make_ring(4, SLOTS, slow_decode);
    srand(12345);
    uint64_t next_in = 0, next_out = 0;
    uint8_t f[TEST_FRAME_LEN];
    while (next_out < FRAMES) {
        if (next_in < FRAMES) {
            /* mostly fast, sometimes slow, so frames finish out of order */
            uint32_t delay = rand() % 10 == 0 ? (uint32_t)(rand() % 2000) : (uint32_t)(rand() % 50);
            make_frame(f, next_in, delay, refused_at(next_in));
            es_status s = ingest_workers_submit(w, f, sizeof f);
            if (s == ES_OK) {
                next_in++;
                assert_true(ingest_workers_held(w) <= SLOTS);
                assert_int_equal(ingest_workers_bytes(w), ingest_workers_held(w) * TEST_FRAME_LEN);
                if (rand() % 2)
                    continue; /* fill the ring some more */
            } else {
                assert_int_equal(s, ES_ERR_AGAIN);
                assert_int_equal(ingest_workers_held(w), SLOTS);
            }
        }
        /* take: sometimes without waiting (maybe nothing), else until decoded */
        int64_t wait = rand() % 3 == 0 ? 0 : -1;
        const ingest_decoded *d = ingest_workers_head(w, wait);
        if (d == NULL) {
            assert_true(wait == 0 || ingest_workers_held(w) == 0);
            continue;
        }
        check_decoded(d, next_out, refused_at(next_out));
        ingest_workers_release(w);
        next_out++;
    }
    assert_int_equal(next_in, FRAMES);
    assert_int_equal(ingest_workers_held(w), 0);
    assert_int_equal(ingest_workers_bytes(w), 0);
    assert_null(ingest_workers_head(w, 0));
    ingest_workers_destroy(w);
}

/* A timed wait for a frame still decoding returns NULL after about the
 * timeout, then the frame once it is done. */
static void test_head_waits(void **state)
{
    (void)state;
    ingest_workers *w = make_ring(1, 2, slow_decode);
    uint8_t f[TEST_FRAME_LEN];
    make_frame(f, 42, 300000, false); /* 300 ms */
    assert_int_equal(ingest_workers_submit(w, f, sizeof f), ES_OK);
    assert_null(ingest_workers_head(w, 0));
    assert_null(ingest_workers_head(w, 20));
    check_decoded(ingest_workers_head(w, -1), 42, false);
    ingest_workers_release(w);
    ingest_workers_destroy(w);
}

/* Waiting for several of the oldest frames at once: true once they are all
 * decoded, whatever order the threads finished them in; false on timeout. */
static void test_wait_for_the_oldest_half(void **state)
{
    (void)state;
    ingest_workers *w = make_ring(3, 8, slow_decode);
    uint8_t f[TEST_FRAME_LEN];
    for (uint64_t seq = 0; seq < 8; seq++) {
        /* the oldest is the slowest: the others finish before it */
        make_frame(f, seq, seq == 0 ? 200000 : 1000, false);
        assert_int_equal(ingest_workers_submit(w, f, sizeof f), ES_OK);
    }
    assert_false(ingest_workers_wait(w, 4, 0));
    assert_false(ingest_workers_wait(w, 4, 10));
    assert_true(ingest_workers_wait(w, 4, -1));
    for (uint64_t seq = 0; seq < 4; seq++) {
        check_decoded(ingest_workers_head(w, 0), seq, false); /* no wait needed */
        ingest_workers_release(w);
    }
    assert_true(ingest_workers_wait(w, 100, -1)); /* at most what is held */
    assert_int_equal(ingest_workers_held(w), 4);
    assert_true(ingest_workers_wait(w, 0, 0));
    ingest_workers_destroy(w);
}

/* No threads: the frame is decoded inside submit, on the caller's thread. */
static void test_inline(void **state)
{
    (void)state;
    ingest_workers *w = make_ring(0, 1, slow_decode);
    uint8_t f[TEST_FRAME_LEN];
    for (uint64_t seq = 0; seq < 100; seq++) {
        make_frame(f, seq, 0, refused_at(seq));
        assert_int_equal(ingest_workers_submit(w, f, sizeof f), ES_OK);
        assert_int_equal(ingest_workers_submit(w, f, sizeof f), ES_ERR_AGAIN); /* one slot */
        check_decoded(ingest_workers_head(w, 0), seq, refused_at(seq));
        ingest_workers_release(w);
    }
    ingest_workers_destroy(w);
}

/* The real decoder on several threads: each frame's counters travel with it,
 * and their sum is what one decoder would have counted. */
static void test_real_decoder_counters(void **state)
{
    (void)state;
    enum { FRAMES = 500 };
    ingest_workers *w = make_ring(3, 6, NULL);
    es_atp_stats sum = {0};
    const uint8_t junk[4] = {0xff, 0xff, 0xff, 0xff}; /* not CBOR */
    size_t taken = 0;
    for (size_t i = 0; i < FRAMES; i++) {
        es_status s;
        while ((s = ingest_workers_submit(w, junk, sizeof junk)) == ES_ERR_AGAIN) {
            const ingest_decoded *d = ingest_workers_head(w, -1);
            assert_non_null(d);
            assert_int_not_equal(d->status, ES_OK);
            assert_int_equal(d->batch.error, ES_ATP_ERR_CBOR);
            assert_true(d->error[0] != '\0');
            assert_int_equal(d->delta.frames, 1);
            ingest_stats_add(&sum, &d->delta);
            ingest_workers_release(w);
            taken++;
        }
        assert_int_equal(s, ES_OK);
    }
    for (const ingest_decoded *d; (d = ingest_workers_head(w, -1)) != NULL; taken++) {
        ingest_stats_add(&sum, &d->delta);
        ingest_workers_release(w);
    }
    assert_int_equal(taken, FRAMES);
    assert_int_equal(sum.frames, FRAMES);
    assert_int_equal(sum.bytes, FRAMES * sizeof junk);
    assert_int_equal(sum.errors[ES_ATP_ERR_CBOR], FRAMES);
    ingest_workers_destroy(w);
}

/* A decoder whose refusals depend on the thread: frame seq % 3 == 0 is
 * refused for its signature on a worker but accepted on the caller's thread
 * (as a commit after a key rotation decoded in parallel with the #identity
 * would be); seq % 3 == 1 is refused for its signature everywhere; seq % 3
 * == 2 is refused as bad CBOR on a worker. */
static pthread_t caller;
static atomic_int caller_decodes;

static es_status rotating_decode(es_atp_decoder *d, const uint8_t *frame, size_t len,
                                 es_arena *arena, es_atp_batch *out)
{
    (void)d;
    (void)arena;
    (void)len;
    uint64_t seq = frame_seq(frame);
    out->has_seq = true;
    out->seq = seq;
    out->kind = ES_ATP_KIND_COMMIT;
    bool on_caller = pthread_equal(pthread_self(), caller);
    if (on_caller)
        atomic_fetch_add(&caller_decodes, 1);
    if (seq % 3 == 0 && on_caller)
        return ES_OK;
    out->error = seq % 3 == 2 ? ES_ATP_ERR_CBOR : ES_ATP_ERR_SIGNATURE;
    return es_error(ES_ERR_DECODE, "refused on %s", on_caller ? "the caller" : "a worker");
}

/* A signature refusal from a worker gets a second look, in order, on the
 * caller's thread; other refusals do not. */
static void test_second_look_at_signature_refusals(void **state)
{
    (void)state;
    caller = pthread_self();
    atomic_store(&caller_decodes, 0);
    ingest_workers *w = make_ring(2, 4, rotating_decode);
    uint8_t f[TEST_FRAME_LEN];
    for (uint64_t seq = 0; seq < 30; seq++) {
        make_frame(f, seq, 0, false);
        assert_int_equal(ingest_workers_submit(w, f, sizeof f), ES_OK);
        const ingest_decoded *d = ingest_workers_head(w, -1);
        assert_non_null(d);
        assert_int_equal(d->batch.seq, seq);
        if (seq % 3 == 0) {
            assert_int_equal(d->status, ES_OK);
        } else if (seq % 3 == 1) {
            assert_int_equal(d->batch.error, ES_ATP_ERR_SIGNATURE);
            assert_string_equal(d->error, "refused on the caller");
        } else {
            assert_int_equal(d->batch.error, ES_ATP_ERR_CBOR);
            assert_string_equal(d->error, "refused on a worker");
        }
        /* asked again (the sink was full): no third look */
        assert_ptr_equal(ingest_workers_head(w, 0), d);
        ingest_workers_release(w);
    }
    assert_int_equal(atomic_load(&caller_decodes), 20); /* seq % 3 in {0, 1} */
    ingest_workers_destroy(w);
}

/* Out of memory while decoding is not the frame's fault: the status comes
 * back as it is, with its message, and gets no second look. */
static es_status nomem_decode(es_atp_decoder *d, const uint8_t *frame, size_t len,
                              es_arena *arena, es_atp_batch *out)
{
    (void)d;
    (void)len;
    (void)arena;
    out->has_seq = true;
    out->seq = frame_seq(frame);
    out->error = ES_ATP_ERR_SIGNATURE; /* whatever it says, memory ran out */
    if (pthread_equal(pthread_self(), caller))
        atomic_fetch_add(&caller_decodes, 1);
    return es_error(ES_ERR_NOMEM, "out of memory at frame %llu", (unsigned long long)out->seq);
}

static void test_out_of_memory_is_passed_on(void **state)
{
    (void)state;
    caller = pthread_self();
    atomic_store(&caller_decodes, 0);
    ingest_workers *w = make_ring(2, 4, nomem_decode);
    uint8_t f[TEST_FRAME_LEN];
    make_frame(f, 9, 0, false);
    assert_int_equal(ingest_workers_submit(w, f, sizeof f), ES_OK);
    const ingest_decoded *d = ingest_workers_head(w, -1);
    assert_non_null(d);
    assert_int_equal(d->status, ES_ERR_NOMEM);
    assert_string_equal(d->error, "out of memory at frame 9");
    assert_int_equal(atomic_load(&caller_decodes), 0);
    ingest_workers_release(w);
    ingest_workers_destroy(w);
}

static atomic_int ready_calls;

static void on_ready(void *ctx)
{
    (void)ctx;
    atomic_fetch_add(&ready_calls, 1);
}

/* The wake-up runs when the oldest frame is decoded. */
static void test_on_ready(void **state)
{
    (void)state;
    ingest_workers *w = make_ring(2, 4, slow_decode);
    ingest_workers_on_ready(w, on_ready, NULL);
    uint8_t f[TEST_FRAME_LEN];
    make_frame(f, 1, 1000, false);
    assert_int_equal(ingest_workers_submit(w, f, sizeof f), ES_OK);
    check_decoded(ingest_workers_head(w, -1), 1, false);
    /* the wake-up is called under the lock before the head is seen done */
    assert_true(atomic_load(&ready_calls) >= 1);
    ingest_workers_release(w);
    ingest_workers_on_ready(w, NULL, NULL);
    ingest_workers_destroy(w);
}

/* Destroyed with frames queued and one being decoded: the threads stop and
 * are joined, the queued frames dropped (valgrind: nothing leaks). */
static void test_destroy_with_frames_queued(void **state)
{
    (void)state;
    ingest_workers *w = make_ring(2, 16, slow_decode);
    uint8_t f[TEST_FRAME_LEN];
    for (uint64_t seq = 0; seq < 16; seq++) {
        make_frame(f, seq, 5000, false);
        assert_int_equal(ingest_workers_submit(w, f, sizeof f), ES_OK);
    }
    ingest_workers_destroy(w);
    ingest_workers_destroy(NULL);
}

/* A large frame's copy is given back on release; small ones are reused. */
static void test_large_frame_memory(void **state)
{
    (void)state;
    ingest_workers *w = make_ring(1, 2, NULL);
    size_t big = (size_t)1 << 20;
    uint8_t *junk = calloc(1, big);
    assert_non_null(junk);
    junk[0] = 0xff;
    assert_int_equal(ingest_workers_submit(w, junk, big), ES_OK);
    assert_int_equal(ingest_workers_bytes(w), big);
    assert_non_null(ingest_workers_head(w, -1));
    ingest_workers_release(w);
    assert_int_equal(ingest_workers_bytes(w), 0);
    free(junk);
    ingest_workers_destroy(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_under_random_delays),
        cmocka_unit_test(test_head_waits),
        cmocka_unit_test(test_wait_for_the_oldest_half),
        cmocka_unit_test(test_inline),
        cmocka_unit_test(test_real_decoder_counters),
        cmocka_unit_test(test_second_look_at_signature_refusals),
        cmocka_unit_test(test_out_of_memory_is_passed_on),
        cmocka_unit_test(test_on_ready),
        cmocka_unit_test(test_destroy_with_frames_queued),
        cmocka_unit_test(test_large_frame_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
