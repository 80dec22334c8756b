/* The hold of live frames during a resync (hold.h) alone: order per
 * repository, round robin between repositories, the three bounds and what
 * happens past them, the cursor's limit through release and settling. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "hold.h"

#define A "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
#define B "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"

static hold *open_hold(size_t repos, size_t frames, size_t bytes)
{
    hold_options o;
    hold_options_init(&o);
    o.max_repos = repos;
    o.max_frames = frames;
    o.max_bytes = bytes;
    hold *h = NULL;
    assert_int_equal(hold_create(&o, &h), ES_OK);
    return h;
}

static es_status push(hold *h, const char *did, uint64_t seq)
{
    char frame[32];
    int n = snprintf(frame, sizeof frame, "frame-%llu", (unsigned long long)seq);
    return hold_push(h, did, strlen(did), seq, (const uint8_t *)frame, (size_t)n);
}

/* The next frame released: its repository and seq; 0 when none. */
static uint64_t next(hold *h, const char **did, bool unsettled)
{
    size_t did_len, len;
    uint64_t seq;
    const uint8_t *frame;
    if (!hold_peek(h, did, &did_len, &seq, &frame, &len))
        return 0;
    char want[32];
    snprintf(want, sizeof want, "frame-%llu", (unsigned long long)seq);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(frame, want, len);
    hold_pop(h, unsettled);
    return seq;
}

static uint64_t min_seq(hold *h)
{
    uint64_t seq;
    return hold_min_seq(h, &seq) ? seq : 0;
}

static void frames_wait_then_go_in_order(void **state)
{
    (void)state;
    hold *h = open_hold(0, 0, 0);
    assert_int_equal(hold_get(h, A, strlen(A)), HOLD_NONE);
    assert_int_equal(push(h, A, 1), ES_ERR_INVALID); /* not held: not kept */
    assert_int_equal(hold_begin(h, A, strlen(A)), ES_OK);
    assert_int_equal(hold_begin(h, B, strlen(B)), ES_OK);
    assert_int_equal(push(h, A, 10), ES_OK);
    assert_int_equal(push(h, B, 11), ES_OK);
    assert_int_equal(push(h, A, 12), ES_OK);
    assert_int_equal(push(h, B, 13), ES_OK);
    assert_int_equal(min_seq(h), 10);
    const char *did;
    assert_int_equal(next(h, &did, false), 0); /* nothing until the snapshot is in */
    assert_true(hold_release(h, B, strlen(B)));
    assert_true(hold_release(h, A, strlen(A)));
    /* round robin between repositories, in order within each */
    assert_int_equal(next(h, &did, true), 11);
    assert_string_equal(did, B);
    assert_int_equal(push(h, B, 14), ES_OK); /* a new frame queues behind the held ones */
    assert_int_equal(next(h, &did, true), 10);
    assert_string_equal(did, A);
    assert_int_equal(next(h, &did, false), 13);
    assert_int_equal(next(h, &did, false), 12);
    assert_int_equal(next(h, &did, false), 14);
    assert_int_equal(next(h, &did, false), 0);
    /* released with events: the cursor waits until the sink settles them */
    assert_int_equal(min_seq(h), 10);
    hold_settled(h, A, strlen(A), 10);
    assert_int_equal(min_seq(h), 11);
    assert_int_equal(hold_get(h, B, strlen(B)), HOLD_NONE); /* only settling: frames go on */
    hold_settled(h, B, strlen(B), 11);
    assert_int_equal(min_seq(h), 0);
    hold_stats st;
    hold_get_stats(h, &st);
    assert_int_equal(st.repos, 0);
    assert_int_equal(st.frames, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(st.held, 5);
    assert_int_equal(st.released, 5);
    hold_destroy(h);
}

static void past_a_bound_frames_drop_and_another_snapshot_follows(void **state)
{
    (void)state;
    hold *h = open_hold(1, 2, 1 << 20);
    assert_int_equal(hold_begin(h, A, strlen(A)), ES_OK);
    assert_int_equal(hold_begin(h, B, strlen(B)), ES_ERR_LIMIT); /* one repository at most */
    assert_int_equal(push(h, A, 1), ES_OK);
    assert_int_equal(push(h, A, 2), ES_OK);
    assert_int_equal(push(h, A, 3), ES_ERR_LIMIT); /* the third: all dropped */
    assert_int_equal(hold_get(h, A, strlen(A)), HOLD_OVERFLOWED);
    assert_int_equal(min_seq(h), 0); /* nothing held: the cursor may pass them */
    assert_int_equal(push(h, A, 4), ES_ERR_LIMIT);
    assert_false(hold_release(h, A, strlen(A))); /* another snapshot is needed */
    assert_int_equal(hold_get(h, A, strlen(A)), HOLD_NONE);
    hold_stats st;
    hold_get_stats(h, &st);
    assert_int_equal(st.dropped, 4);
    assert_int_equal(st.overflows, 1);
    assert_int_equal(st.repos, 0);
    /* the bytes bound, across repositories */
    hold_destroy(h);
    h = open_hold(10, 100, 20);
    assert_int_equal(hold_begin(h, A, strlen(A)), ES_OK);
    assert_int_equal(push(h, A, 1), ES_OK);  /* "frame-1": 7 bytes */
    assert_int_equal(push(h, A, 2), ES_OK);  /* 14 */
    assert_int_equal(push(h, A, 3), ES_ERR_LIMIT); /* 21 > 20 */
    hold_get_stats(h, &st);
    assert_int_equal(st.bytes, 0);
    hold_destroy(h);
}

static void a_retry_drops_what_is_held(void **state)
{
    (void)state;
    hold *h = open_hold(0, 0, 0);
    assert_int_equal(hold_begin(h, A, strlen(A)), ES_OK);
    assert_int_equal(push(h, A, 5), ES_OK);
    hold_drop(h, A, strlen(A)); /* the snapshot waits for a retry: its frames go */
    assert_int_equal(min_seq(h), 0);
    assert_int_equal(push(h, A, 6), ES_ERR_LIMIT); /* and later ones are not kept */
    assert_false(hold_release(h, A, strlen(A)));
    hold_destroy(h);
}

static void held_again_while_releasing(void **state)
{
    (void)state;
    hold *h = open_hold(0, 0, 0);
    assert_int_equal(hold_begin(h, A, strlen(A)), ES_OK);
    assert_int_equal(push(h, A, 1), ES_OK);
    assert_int_equal(push(h, A, 2), ES_OK);
    assert_int_equal(push(h, A, 3), ES_OK);
    assert_true(hold_release(h, A, strlen(A)));
    const char *did;
    size_t did_len, len;
    uint64_t seq;
    const uint8_t *frame;
    assert_true(hold_peek(h, &did, &did_len, &seq, &frame, &len));
    assert_int_equal(seq, 1);
    /* releasing frame 1 broke the chain: the repository is resynced again;
     * frame 1 is let go, 2 and 3 wait for the next snapshot */
    assert_int_equal(hold_begin(h, A, strlen(A)), ES_OK);
    hold_pop(h, false);
    assert_int_equal(next(h, &did, false), 0);
    assert_int_equal(min_seq(h), 2);
    assert_true(hold_release(h, A, strlen(A)));
    assert_int_equal(next(h, &did, false), 2);
    assert_int_equal(next(h, &did, false), 3);
    assert_int_equal(next(h, &did, false), 0);
    hold_stats st;
    hold_get_stats(h, &st);
    assert_int_equal(st.repos, 0);
    hold_destroy(h);
    hold_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(frames_wait_then_go_in_order),
        cmocka_unit_test(past_a_bound_frames_drop_and_another_snapshot_follows),
        cmocka_unit_test(a_retry_drops_what_is_held),
        cmocka_unit_test(held_again_while_releasing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
