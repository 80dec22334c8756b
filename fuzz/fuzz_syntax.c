/* Target `syntax`: the atproto identifier checks that stand between the
 * network and subjects, message ids and metadata: DIDs, NSIDs, record keys,
 * TIDs and datetimes (es/atproto.h), and the filter lookups that take them.
 * The input is the text, in a buffer of exactly its length (no NUL after
 * it), so that a check reading past `len` is caught.
 *
 * Properties: what the checks accept is safe where the mapping puts it (an
 * NSID mapped to an entity type, a record key in an id or a header); a
 * datetime that parses is valid, and its instant is stable when the text is
 * written again in UTC. */
#include <string.h>
#include <time.h>

#include <es/atproto.h>

#include "fuzz.h"

static es_atp_filter *filter;

static void free_filter(void)
{
    es_atp_filter_destroy(filter);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (es_atp_filter_create(&filter) != ES_OK ||
        es_atp_filter_add_collections(filter, "app.bsky.feed.*,app.bsky.graph.follow") != ES_OK ||
        es_atp_filter_add_dids(filter, "did:plc:ewvi7nxzyoun6zhxrhs64oiz did:web:example.com") !=
            ES_OK)
        abort();
    atexit(free_filter);
    return 0;
}

/* None of these bytes may reach a subject token, an id or a header value. */
static bool safe_token(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] == '\0' || s[i] == '*' || s[i] == '>' || s[i] == ' ' || s[i] == '\r' ||
            s[i] == '\n' || s[i] == '\t' || s[i] == '/')
            return false;
    return true;
}

/* The instant written again as UTC with nanoseconds parses to itself. */
static void check_datetime(const char *s, size_t len)
{
    int64_t ns = 0, again = 0;
    bool valid = es_atp_valid_datetime(s, len);
    if (!es_atp_parse_datetime(s, len, &ns))
        return;
    FUZZ_CHECK(valid);
    int64_t secs = ns / 1000000000, frac = ns % 1000000000;
    if (frac < 0) {
        secs--;
        frac += 1000000000;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    FUZZ_CHECK(gmtime_r(&t, &tm) != NULL);
    char text[64];
    int n = snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long long)frac);
    FUZZ_CHECK(n > 0 && (size_t)n < sizeof text);
    FUZZ_CHECK(es_atp_parse_datetime(text, (size_t)n, &again) && again == ns);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = (char *)fuzz_copy(data, size);
    if (es_atp_valid_did(s, size))
        FUZZ_CHECK(memcmp(s, "did:", 4) == 0 && safe_token(s, size));
    if (es_atp_valid_nsid(s, size))
        FUZZ_CHECK(safe_token(s, size) && memchr(s, '_', size) == NULL);
    if (es_atp_valid_rkey(s, size))
        FUZZ_CHECK(safe_token(s, size));
    if (es_atp_valid_tid(s, size))
        FUZZ_CHECK(size == 13 && es_atp_valid_rkey(s, size));
    check_datetime(s, size);
    (void)es_atp_filter_keeps_collection(filter, s, size);
    (void)es_atp_filter_keeps_did(filter, s, size);
    free(s);
    return 0;
}
