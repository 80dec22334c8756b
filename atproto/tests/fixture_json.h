/* JSON fixtures read whole into jansson: the interop vectors and the
 * corpus's DID documents (zstd). Include after <cmocka.h>. */
#ifndef ES_ATP_TEST_FIXTURE_JSON_H
#define ES_ATP_TEST_FIXTURE_JSON_H

#include <jansson.h>
#include <zstd.h>

#include "fixtures.h"

/* fixtures/<rel> parsed (the caller json_decref's it), or NULL when the
 * fixture is absent (said why: skip). */
static inline json_t *fixture_json(const char *rel)
{
    const char *path = fixture_path(rel);
    if (path == NULL)
        return NULL;
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    if (j == NULL)
        fail_msg("%s: %s", path, err.text);
    return j;
}

/* The zstd-compressed JSON file at `path` (present), parsed (the caller
 * json_decref's it). */
static inline json_t *zst_json(const char *path)
{
    size_t zlen = 0;
    unsigned char *z = read_whole_file(path, &zlen);
    assert_non_null(z);
    unsigned long long n = ZSTD_getFrameContentSize(z, zlen);
    assert_true(n != ZSTD_CONTENTSIZE_ERROR && n != ZSTD_CONTENTSIZE_UNKNOWN);
    char *text = malloc(n);
    assert_non_null(text);
    assert_int_equal(ZSTD_decompress(text, n, z, zlen), n);
    json_t *all = json_loadb(text, n, 0, NULL);
    assert_non_null(all);
    free(text);
    free(z);
    return all;
}

#endif
