/* Test helpers shared by the adapter's test programs: locating the fixtures
 * of ../shared (through ES_SHARED_DIR) and reading whole files. A test that
 * needs an absent fixture calls cmocka's skip() after saying why. */
#ifndef ES_ATP_TEST_FIXTURES_H
#define ES_ATP_TEST_FIXTURES_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <es/atproto.h>

/* The path of fixtures/<rel> under ES_SHARED_DIR (static storage), or NULL
 * after printing why when it is absent. */
static inline const char *fixture_path(const char *rel)
{
    static char path[4096];
    const char *dir = getenv("ES_SHARED_DIR");
    struct stat st;
    if (dir == NULL || *dir == '\0') {
        printf("SKIP: ES_SHARED_DIR is not set; fixture %s unavailable\n", rel);
        return NULL;
    }
    snprintf(path, sizeof path, "%s/fixtures/%s", dir, rel);
    if (stat(path, &st) != 0) {
        printf("SKIP: fixture %s is absent (ES_SHARED_DIR=%s)\n", path, dir);
        return NULL;
    }
    return path;
}

/* The whole file, malloc'ed and NUL-terminated (the caller frees it), or NULL. */
static inline unsigned char *read_whole_file(const char *path, size_t *len)
{
    *len = 0; /* set on every path: callers read it after asserting the buffer */
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap + 1);
    while (buf != NULL) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        unsigned char *grown = realloc(buf, cap * 2 + 1);
        if (grown == NULL) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = grown;
        cap *= 2;
    }
    fclose(f);
    if (buf != NULL) {
        buf[n] = '\0';
        *len = n;
    }
    return buf;
}

/* The firehose corpus's frames, opened for reading, or NULL after printing
 * why when the fixture is absent (the caller skips). */
static inline es_atp_capture *corpus_frames_open(void)
{
    const char *path = fixture_path("firehose-corpus/frames.bin.zst");
    es_atp_capture *c = NULL;
    if (path != NULL && es_atp_capture_open(path, 0, &c) != ES_OK)
        printf("SKIP: %s does not open: %s\n", path, es_last_error());
    return c;
}

/* fixtures/<rel> whole (read_whole_file), or NULL after saying why when it
 * is absent. */
static inline unsigned char *fixture_load(const char *rel, size_t *len)
{
    const char *path = fixture_path(rel);
    *len = 0;
    return path != NULL ? read_whole_file(path, len) : NULL;
}

/* The value after "<label>: " in a text such as car_expected_commit.txt,
 * into out[size]; false when the label is absent or the value too long. */
static inline bool fixture_field(const char *text, const char *label, char *out, size_t size)
{
    const char *p = strstr(text, label);
    if (p == NULL)
        return false;
    p += strlen(label);
    size_t n = strcspn(p, "\n");
    if (n >= size)
        return false;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

/* The corpus's real repository CAR (firehose-corpus/repo.car), its records
 * (car_expected_records.tsv, NUL-terminated) and its commit's DID and rev
 * (car_expected_commit.txt), as indigo's tools listed them. */
typedef struct corpus_repo {
    unsigned char *car, *tsv;
    size_t car_len, tsv_len;
    char did[128], rev[32];
} corpus_repo;

static inline void corpus_repo_free(corpus_repo *r)
{
    free(r->car);
    free(r->tsv);
    r->car = r->tsv = NULL;
}

/* Loads it; false, holding nothing, when a file is absent (fixture_path
 * said so) or the commit text lacks its fields. */
static inline bool corpus_repo_load(corpus_repo *r)
{
    memset(r, 0, sizeof *r);
    size_t commit_len;
    r->car = fixture_load("firehose-corpus/repo.car", &r->car_len);
    r->tsv = fixture_load("firehose-corpus/car_expected_records.tsv", &r->tsv_len);
    unsigned char *commit = fixture_load("firehose-corpus/car_expected_commit.txt", &commit_len);
    bool ok = r->car != NULL && r->tsv != NULL && commit != NULL &&
              fixture_field((char *)commit, "DID: ", r->did, sizeof r->did) &&
              fixture_field((char *)commit, "Revision: ", r->rev, sizeof r->rev);
    free(commit);
    if (!ok)
        corpus_repo_free(r);
    return ok;
}

#endif
