/* Target `repo_verify`: a CAR as from com.atproto.sync.getRepo through
 * es_atp_verify_repo, the whole-repository verification: commit fields,
 * the canonical MST (layers, empty nodes, prefixes), key syntax, every
 * record block present, hashing to its CID and decoded strictly.
 *
 * The expected DID is the commit's own (read by es_atp_walk_repo), so that
 * inputs get past the did check; the signature is skipped (the `sig` target
 * fuzzes it). As in `car`, an input whose blocks no longer hash to their
 * CIDs is verified a second time after re-sealing (fuzz_reseal_car), so that
 * mutated nodes reach the structure checks. */
#include <string.h>

#include <es/atproto.h>
#include <es/car.h>

#include "fuzz.h"

#define KEY_MAX 1024 /* the walk's bound on a key */

typedef struct seen {
    char last[KEY_MAX + 1];
    size_t last_len;
    size_t records, invalid;
} seen;

/* Every record verify passes on: a valid collection/rkey key, strictly
 * after the previous one, with its (verified) block. */
static int on_record(const es_atp_record *r, void *user)
{
    seen *w = user;
    FUZZ_CHECK(r->key != NULL && r->key_len <= KEY_MAX && r->key[r->key_len] == '\0');
    const char *slash = memchr(r->key, '/', r->key_len);
    FUZZ_CHECK(slash != NULL && es_atp_valid_nsid(r->key, (size_t)(slash - r->key)) &&
               es_atp_valid_rkey(slash + 1, r->key_len - (size_t)(slash - r->key) - 1));
    FUZZ_CHECK(r->block != NULL && es_car_block_verified(r->block));
    if (w->records > 0) {
        size_t common = r->key_len < w->last_len ? r->key_len : w->last_len;
        int c = memcmp(w->last, r->key, common);
        FUZZ_CHECK(c < 0 || (c == 0 && w->last_len < r->key_len));
    }
    memcpy(w->last, r->key, r->key_len);
    w->last_len = r->key_len;
    w->records++;
    w->invalid += r->invalid != NULL;
    return 0;
}

static int count_only(const es_atp_record *r, void *user)
{
    (void)r;
    (*(size_t *)user)++;
    return 0;
}

/* Parse and verify; returns whether some block failed its hash. */
static bool parse_and_verify(const uint8_t *buf, size_t len)
{
    es_arena *arena = NULL;
    if (es_arena_create(FUZZ_ARENA_LIMIT, &arena) != ES_OK)
        abort();
    es_car car;
    bool bad_hash = false;
    es_atp_commit_info info;
    size_t walked = 0;
    if (es_car_parse(buf, len, NULL, arena, &car) == ES_OK &&
        es_atp_walk_repo(&car, arena, &info, count_only, &walked) != ES_ERR_NOMEM) {
        for (size_t i = 0; i < car.count; i++)
            bad_hash = bad_hash || es_car_verify(&car.blocks[i]) != ES_OK;
        es_atp_repo_verify_options o;
        es_atp_repo_verify_options_init(&o);
        o.did = info.did != NULL ? info.did : "did:plc:fuzz";
        o.skip_signature = true;
        seen *w = calloc(1, sizeof *w);
        if (w == NULL)
            abort();
        es_atp_repo_verdict v;
        es_status s = es_atp_verify_repo(&car, &o, arena, NULL, on_record, w, &v);
        if (s == ES_OK) {
            /* what verification accepts, the plain walk accepts too, record for record */
            FUZZ_CHECK(v.error == ES_ATP_ERR_NONE && v.records == w->records &&
                       v.invalid_records == w->invalid && walked == w->records);
        } else if (s != ES_ERR_NOMEM) {
            FUZZ_CHECK((s == ES_ERR_DECODE || s == ES_ERR_LIMIT) && v.error != ES_ATP_ERR_NONE);
        }
        free(w);
    }
    es_arena_destroy(arena);
    return bad_hash;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *car = fuzz_copy(data, size);
    if (parse_and_verify(car, size) && fuzz_reseal_car(car, size, 0, size) > 0)
        (void)parse_and_verify(car, size);
    free(car);
    return 0;
}
