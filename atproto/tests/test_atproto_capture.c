#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <es/atproto.h>

#include "fixtures.h"

#define FRAMES 300

static char tmp_path[64];

static int make_tmp(void **state)
{
    (void)state;
    strcpy(tmp_path, "/tmp/es-capture-XXXXXX");
    int fd = mkstemp(tmp_path);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

static int remove_tmp(void **state)
{
    (void)state;
    unlink(tmp_path);
    return 0;
}

/* Frame i: i*37 bytes (some empty, some larger than the reader's chunk) of a
 * pattern derived from i. */
static size_t frame_len(int i)
{
    return (size_t)i * 37 % 9000 + (i % 50 == 49 ? 300000 : 0);
}
static uint8_t frame_byte(int i, size_t k)
{
    return (uint8_t)((size_t)i * 131 + k * 7);
}

static void write_frames(int level)
{
    es_atp_capture_writer *w = NULL;
    assert_int_equal(es_atp_capture_create(tmp_path, level, &w), ES_OK);
    static uint8_t buf[400000];
    for (int i = 0; i < FRAMES; i++) {
        size_t n = frame_len(i);
        for (size_t k = 0; k < n; k++)
            buf[k] = frame_byte(i, k);
        assert_int_equal(es_atp_capture_write(w, buf, n), ES_OK);
    }
    assert_int_equal(es_atp_capture_finish(w), ES_OK);
}

static void read_frames_back(void)
{
    es_atp_capture *c = NULL;
    assert_int_equal(es_atp_capture_open(tmp_path, 0, &c), ES_OK);
    const uint8_t *f;
    size_t n;
    for (int i = 0; i < FRAMES; i++) {
        assert_int_equal(es_atp_capture_next(c, &f, &n), ES_OK);
        assert_int_equal(n, frame_len(i));
        for (size_t k = 0; k < n; k++)
            if (f[k] != frame_byte(i, k))
                fail_msg("frame %d byte %zu differs", i, k);
    }
    assert_int_equal(es_atp_capture_next(c, &f, &n), ES_ERR_NOT_FOUND);
    assert_int_equal(es_atp_capture_next(c, &f, &n), ES_ERR_NOT_FOUND);
    es_atp_capture_close(c);
}

static void plain_round_trip(void **state)
{
    (void)state;
    write_frames(0);
    read_frames_back();
}

static void zstd_round_trip(void **state)
{
    (void)state;
    write_frames(3);
    FILE *f = fopen(tmp_path, "rb");
    unsigned char magic[4];
    assert_int_equal(fread(magic, 1, 4, f), 4);
    fclose(f);
    assert_int_equal(magic[0], 0x28);
    read_frames_back();
}

/* Truncate the file to `keep` bytes and count the frames read before the
 * reader reports `expected`. */
static int frames_before(size_t keep, es_status expected, size_t max_frame)
{
    assert_int_equal(truncate(tmp_path, (off_t)keep), 0);
    es_atp_capture *c = NULL;
    assert_int_equal(es_atp_capture_open(tmp_path, max_frame, &c), ES_OK);
    const uint8_t *f;
    size_t n;
    int count = 0;
    es_status s;
    while ((s = es_atp_capture_next(c, &f, &n)) == ES_OK)
        count++;
    assert_int_equal(s, expected);
    assert_int_equal(es_atp_capture_next(c, &f, &n), expected); /* errors are sticky */
    es_atp_capture_close(c);
    return count;
}

static void truncated_files_are_errors(void **state)
{
    (void)state;
    /* plain: frames 0 (empty) and 1 (37 bytes) take 4 + 4 + 37 = 45 bytes */
    write_frames(0);
    assert_int_equal(frames_before(45, ES_ERR_NOT_FOUND, 0), 2);
    write_frames(0);
    assert_int_equal(frames_before(44, ES_ERR_DECODE, 0), 1);
    write_frames(0);
    assert_int_equal(frames_before(47, ES_ERR_DECODE, 0), 2); /* half a length prefix */
    /* zstd: a file cut anywhere in the middle is an error, never a clean end */
    write_frames(3);
    struct stat st;
    assert_int_equal(stat(tmp_path, &st), 0);
    frames_before((size_t)st.st_size - 5, ES_ERR_DECODE, 0);
}

static void oversized_frames_are_refused(void **state)
{
    (void)state;
    write_frames(0);
    struct stat st;
    assert_int_equal(stat(tmp_path, &st), 0);
    /* frame 49 is 300000+ bytes: over a 100 KB bound */
    assert_int_equal(frames_before((size_t)st.st_size, ES_ERR_LIMIT, 100000), 49);
    /* an absurd length prefix in a tiny file */
    FILE *f = fopen(tmp_path, "wb");
    fwrite("\xff\xff\xff\xff"
           "abc",
           1, 7, f);
    fclose(f);
    assert_int_equal(frames_before(7, ES_ERR_LIMIT, 0), 0);
}

static void missing_file(void **state)
{
    (void)state;
    es_atp_capture *c = (es_atp_capture *)1;
    assert_int_equal(es_atp_capture_open("/nonexistent/capture", 0, &c), ES_ERR_NOT_FOUND);
    assert_null(c);
    es_atp_capture_close(NULL);
    assert_int_equal(es_atp_capture_finish(NULL), ES_OK);
}

static void real_capture(void **state)
{
    (void)state;
    const char *path = fixture_path("firehose-corpus/frames.bin.zst");
    if (path == NULL)
        skip();
    es_atp_capture *c = NULL;
    assert_int_equal(es_atp_capture_open(path, 0, &c), ES_OK);
    const uint8_t *f;
    size_t n, total = 0;
    int count = 0;
    es_status s;
    while ((s = es_atp_capture_next(c, &f, &n)) == ES_OK) {
        assert_true(n > 0);
        assert_int_equal(f[0] & 0xE0, 0xA0); /* each frame starts with a CBOR map header */
        total += n;
        count++;
    }
    assert_int_equal(s, ES_ERR_NOT_FOUND);
    assert_int_equal(count, 150);
    assert_true(total > 150 * 4000 && total < 150 * 7000); /* 5.4 KB on average */
    es_atp_capture_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(plain_round_trip, make_tmp, remove_tmp),
        cmocka_unit_test_setup_teardown(zstd_round_trip, make_tmp, remove_tmp),
        cmocka_unit_test_setup_teardown(truncated_files_are_errors, make_tmp, remove_tmp),
        cmocka_unit_test_setup_teardown(oversized_frames_are_refused, make_tmp, remove_tmp),
        cmocka_unit_test(missing_file),
        cmocka_unit_test(real_capture),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
