/* Uses only installed headers of libes-atproto: writes a zstd-compressed
 * capture of two frames to argv[1], reads it back, and runs a collection
 * filter. Allocation crosses from libes-atproto into libes (es/alloc.h), and
 * the capture needs libzstd: what a wrong link interface would break. */
#include <es/atproto.h>
#include <es/version.h>

#include <stdio.h>
#include <string.h>

static int roundtrip(const char *path)
{
    static const char *const frames[] = {"first frame", "second, longer frame"};
    es_atp_capture_writer *w = NULL;
    if (es_atp_capture_create(path, 3, &w) != ES_OK)
        return 1;
    for (size_t i = 0; i < 2; i++)
        if (es_atp_capture_write(w, (const uint8_t *)frames[i], strlen(frames[i])) != ES_OK) {
            es_atp_capture_finish(w);
            return 1;
        }
    if (es_atp_capture_finish(w) != ES_OK)
        return 1;
    es_atp_capture *c = NULL;
    if (es_atp_capture_open(path, 0, &c) != ES_OK)
        return 1;
    size_t n = 0;
    const uint8_t *frame;
    size_t len;
    es_status s;
    while ((s = es_atp_capture_next(c, &frame, &len)) == ES_OK) {
        if (n >= 2 || len != strlen(frames[n]) || memcmp(frame, frames[n], len) != 0)
            break;
        n++;
    }
    es_atp_capture_close(c);
    return s == ES_ERR_NOT_FOUND && n == 2 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    if (roundtrip(argv[1]) != 0) {
        fprintf(stderr, "capture round trip failed: %s\n", es_last_error());
        return 1;
    }
    es_atp_filter *f = NULL;
    if (es_atp_filter_create(&f) != ES_OK ||
        es_atp_filter_add_collections(f, "app.bsky.feed.*") != ES_OK)
        return 1;
    int ok = es_atp_filter_keeps_collection(f, "app.bsky.feed.like", 18) &&
             !es_atp_filter_keeps_collection(f, "app.bsky.graph.follow", 21);
    es_atp_filter_destroy(f);
    printf("libes-atproto with libes %s: capture and filter ok\n", es_version());
    return ok ? 0 : 1;
}
