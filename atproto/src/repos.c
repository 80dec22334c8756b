/* Per-repository chain state (es/atproto_repos.h) over the engine's
 * checkpoints in the repository set (ES_<store>_repos): position = the stream
 * sequence of the repository's last stored event, data = the state as a
 * small versioned JSON object:
 *
 *   {"v":1,"did":"did:plc:...","rev":"3l...","data":"bafyrei...","seq":4711,
 *    "status":"active","desynced":true,"reason":"chain_break","desync_seq":123}
 *
 * (empty fields left out). The DID is always inside: the hashed keys of odd
 * DIDs could collide, and listing needs it anyway. */
#include <es/atproto_repos.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <es/atproto.h>
#include <es/checkpoint.h>
#include <es/cid.h>
#include <es/kvkey.h>

#include "atp_internal.h"

#define STATE_VERSION 1
#define HASHED_PREFIX "cid/"

struct es_atp_repos {
    es_checkpoints *cps;
};

void es_atp_repo_state_init(es_atp_repo_state *st)
{
    memset(st, 0, sizeof *st);
    strcpy(st->status, "active");
}

bool es_atp_repo_active(const es_atp_repo_state *st)
{
    return strcmp(st->status, "active") == 0;
}

/* ---- keys -------------------------------------------------------------------- */

/* A checkpoint name: a valid KV key whose dot-separated tokens are not empty
 * (es_kv_key_valid already refuses a leading or trailing '.' and ".."). */
static bool key_ok(const char *key, size_t len)
{
    return len > 0 && len <= ES_ATP_REPO_KEY_MAX && es_kv_key_valid(key);
}

es_status es_atp_repo_key(const char *did, size_t did_len, char out[ES_ATP_REPO_KEY_MAX + 1])
{
    out[0] = '\0';
    if (did == NULL || !es_atp_valid_did(did, did_len))
        return es_error(ES_ERR_INVALID, "not a DID: '%.*s'", (int)(did_len > 64 ? 64 : did_len),
                        did ? did : "");
    if (did_len <= ES_ATP_REPO_KEY_MAX) {
        /* DIDs hold [A-Za-z0-9._:%-]: ':' and '%' are the only bytes a key
         * cannot hold, and '/' and '=' never occur in a DID: reversible. */
        for (size_t i = 0; i < did_len; i++)
            out[i] = did[i] == ':' ? '/' : did[i] == '%' ? '=' : did[i];
        out[did_len] = '\0';
        if (key_ok(out, did_len))
            return ES_OK;
    }
    uint8_t cid[ES_CID_SHA256_LEN];
    char text[ES_CID_STRING_MAX];
    es_status s = es_cid_sha256(ES_CID_CODEC_RAW, did, did_len, cid);
    if (s == ES_OK)
        s = es_cid_to_string(cid, sizeof cid, text, sizeof text);
    if (s != ES_OK)
        return s;
    snprintf(out, ES_ATP_REPO_KEY_MAX + 1, HASHED_PREFIX "%s", text);
    return ES_OK;
}

bool esi_atp_repo_key_did(const char *key, char *out, size_t *len)
{
    size_t n = strnlen(key, ES_ATP_REPO_KEY_MAX + 1);
    *len = 0;
    out[0] = '\0';
    if (n > ES_ATP_REPO_KEY_MAX || strncmp(key, HASHED_PREFIX, sizeof HASHED_PREFIX - 1) == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        out[i] = key[i] == '/' ? ':' : key[i] == '=' ? '%' : key[i];
    out[n] = '\0';
    /* the DID must map back to this very key (not hashed, not another form) */
    char again[ES_ATP_REPO_KEY_MAX + 1];
    if (es_atp_repo_key(out, n, again) != ES_OK || strcmp(again, key) != 0) {
        es_error_clear();
        out[0] = '\0';
        return false;
    }
    *len = n;
    return true;
}

/* ---- the stored form --------------------------------------------------------- */

static bool fits(const char *s, size_t max)
{
    return strnlen(s, max + 1) <= max;
}

static es_status check_state(const es_atp_repo_state *st)
{
    if (!fits(st->rev, ES_ATP_REPO_REV_MAX) || !fits(st->status, ES_ATP_REPO_STATUS_MAX) ||
        !fits(st->reason, ES_ATP_REPO_REASON_MAX) || st->data_len > ES_ATP_REPO_DATA_MAX ||
        st->position > ES_CHECKPOINT_POSITION_MAX || st->desync_seq > ES_CHECKPOINT_POSITION_MAX ||
        st->seq > ES_CHECKPOINT_POSITION_MAX)
        return es_error(ES_ERR_INVALID, "repository state out of bounds");
    return ES_OK;
}

static int set_str(json_t *o, const char *key, const char *s, size_t len)
{
    return len == 0 ? 0 : json_object_set_new(o, key, json_stringn(s, len));
}

/* The JSON text of a state into *out (es_free). */
static es_status encode_state(const char *did, size_t did_len, const es_atp_repo_state *st,
                              char **out)
{
    char cid[ES_CID_STRING_MAX] = "";
    if (st->data_len > 0 && es_cid_to_string(st->data, st->data_len, cid, sizeof cid) != ES_OK)
        return es_error(ES_ERR_INVALID, "repository state: data is not a CID");
    json_t *o = json_pack("{s:i}", "v", STATE_VERSION);
    int bad = o == NULL;
    if (!bad) {
        bad |= set_str(o, "did", did, did_len);
        bad |= set_str(o, "rev", st->rev, strlen(st->rev));
        bad |= set_str(o, "data", cid, strlen(cid));
        bad |= set_str(o, "status", st->status, strlen(st->status));
        if (st->seq > 0)
            bad |= json_object_set_new(o, "seq", json_integer((json_int_t)st->seq));
    }
    if (!bad && st->desynced) {
        bad |= json_object_set_new(o, "desynced", json_true());
        bad |= set_str(o, "reason", st->reason, strlen(st->reason));
        bad |= json_object_set_new(o, "desync_seq", json_integer((json_int_t)st->desync_seq));
    }
    char *text = bad ? NULL : json_dumps(o, JSON_COMPACT);
    json_decref(o);
    *out = text ? esi_atp_strdup(text) : NULL;
    free(text); /* jansson's, from libc */
    if (*out == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory encoding a repository state");
    return ES_OK;
}

/* A string member of at most `max` bytes into out ("" when absent). */
static bool get_str(json_t *o, const char *key, char *out, size_t max)
{
    json_t *v = json_object_get(o, key);
    out[0] = '\0';
    if (v == NULL)
        return true;
    if (!json_is_string(v) || json_string_length(v) > max)
        return false;
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return memchr(out, '\0', json_string_length(v)) == NULL;
}

static es_status decode_fail(json_t *o, const char *what)
{
    json_decref(o);
    return es_error(ES_ERR_DECODE, "repository state: %s", what);
}

/* Parses the data of a stored checkpoint (hostile input: bounded by the
 * checkpoint's own bound, every field checked). With `did` (may be NULL
 * when listing), the stored DID must be it. `root` (may be NULL) keeps the
 * parsed object for the caller (json_decref) to read the DID from. */
static es_status decode_state(const char *text, size_t len, const char *did, size_t did_len,
                              es_atp_repo_state *st, json_t **root)
{
    es_atp_repo_state_init(st);
    json_t *o = text ? json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
    if (!json_is_object(o))
        return decode_fail(o, "not a JSON object");
    json_t *v = json_object_get(o, "v");
    if (!json_is_integer(v) || json_integer_value(v) != STATE_VERSION)
        return decode_fail(o, "not version 1 (written by a newer or another program)");
    json_t *d = json_object_get(o, "did");
    if (!json_is_string(d) || json_string_length(d) > ES_ATP_REPO_DID_MAX ||
        !es_atp_valid_did(json_string_value(d), json_string_length(d)))
        return decode_fail(o, "no valid did");
    if (did != NULL &&
        (json_string_length(d) != did_len || memcmp(json_string_value(d), did, did_len) != 0)) {
        json_decref(o);
        return es_error(ES_ERR_CONFLICT, "repository state: the key holds another DID's state");
    }
    char cid[ES_CID_STRING_MAX];
    if (!get_str(o, "rev", st->rev, ES_ATP_REPO_REV_MAX) ||
        !get_str(o, "status", st->status, ES_ATP_REPO_STATUS_MAX) ||
        !get_str(o, "reason", st->reason, ES_ATP_REPO_REASON_MAX) ||
        !get_str(o, "data", cid, sizeof cid - 1))
        return decode_fail(o, "a string field is not a string or too long");
    if (st->status[0] == '\0')
        strcpy(st->status, "active");
    if (cid[0] != '\0' &&
        es_cid_from_string(cid, strlen(cid), st->data, sizeof st->data, &st->data_len) != ES_OK)
        return decode_fail(o, "data is not a CID");
    json_t *ds = json_object_get(o, "desynced"), *dseq = json_object_get(o, "desync_seq");
    json_t *seq = json_object_get(o, "seq");
    if ((ds != NULL && !json_is_boolean(ds)) ||
        (dseq != NULL && (!json_is_integer(dseq) || json_integer_value(dseq) < 0)) ||
        (seq != NULL && (!json_is_integer(seq) || json_integer_value(seq) < 0)))
        return decode_fail(o, "desynced, desync_seq or seq has the wrong type");
    st->desynced = json_is_true(ds);
    st->desync_seq = dseq ? (uint64_t)json_integer_value(dseq) : 0;
    st->seq = seq ? (uint64_t)json_integer_value(seq) : 0;
    if (root != NULL)
        *root = o;
    else
        json_decref(o);
    return ES_OK;
}

/* ---- the handle ------------------------------------------------------------- */

es_status es_atp_repos_open(es_store *store, es_atp_repos **out)
{
    if (out == NULL || store == NULL)
        return es_error(ES_ERR_INVALID, "es_atp_repos_open: store and out are required");
    *out = NULL;
    es_atp_repos *r = es_calloc(1, sizeof *r);
    if (r == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    es_status s = es_checkpoints_open_bucket(store, ES_CHECKPOINTS_REPOS, &r->cps);
    if (s != ES_OK) {
        es_free(r);
        return s;
    }
    *out = r;
    return ES_OK;
}

void es_atp_repos_destroy(es_atp_repos *r)
{
    if (r == NULL)
        return;
    es_checkpoints_destroy(r->cps);
    es_free(r);
}

es_status es_atp_repos_get(es_atp_repos *r, const char *did, size_t did_len, es_atp_repo_state *out)
{
    if (r == NULL || out == NULL)
        return es_error(ES_ERR_INVALID, "es_atp_repos_get: handle and out are required");
    es_atp_repo_state_init(out);
    char key[ES_ATP_REPO_KEY_MAX + 1];
    es_status s = es_atp_repo_key(did, did_len, key);
    es_checkpoint cp = {0};
    if (s == ES_OK)
        s = es_checkpoint_get(r->cps, key, &cp);
    if (s == ES_OK)
        s = decode_state(cp.data, cp.data_len, did, did_len, out, NULL);
    if (s == ES_ERR_DECODE)
        s = esi_atp_error_wrap(s, "repository %s", key);
    if (s == ES_OK) {
        out->position = cp.position;
        out->updated_ns = cp.time_ns;
        out->revision = cp.revision;
    }
    es_checkpoint_clear(&cp);
    return s;
}

es_status es_atp_repos_put(es_atp_repos *r, const char *did, size_t did_len,
                           const es_atp_repo_state *st, uint64_t expect_revision,
                           uint64_t *revision)
{
    if (r == NULL || st == NULL)
        return es_error(ES_ERR_INVALID, "es_atp_repos_put: handle and state are required");
    char key[ES_ATP_REPO_KEY_MAX + 1];
    es_status s = es_atp_repo_key(did, did_len, key);
    if (s == ES_OK)
        s = check_state(st);
    char *text = NULL;
    if (s == ES_OK)
        s = encode_state(did, did_len, st, &text);
    if (s == ES_OK)
        s = es_checkpoint_set(r->cps, key, st->position, text, expect_revision, revision);
    es_free(text);
    return s;
}

typedef struct list_ctx {
    es_atp_repo_cb cb;
    void *closure;
    size_t skipped;
} list_ctx;

static es_status list_one(const char *name, const es_checkpoint *cp, void *closure)
{
    (void)name;
    list_ctx *c = closure;
    es_atp_repo_state st;
    json_t *root = NULL;
    if (decode_state(cp->data, cp->data_len, NULL, 0, &st, &root) != ES_OK) {
        c->skipped++;
        return ES_OK;
    }
    st.position = cp->position;
    st.updated_ns = cp->time_ns;
    st.revision = cp->revision;
    json_t *d = json_object_get(root, "did");
    es_status s = c->cb(json_string_value(d), json_string_length(d), &st, c->closure);
    json_decref(root);
    return s;
}

es_status es_atp_repos_list(es_atp_repos *r, es_atp_repo_cb cb, void *closure, size_t *skipped)
{
    if (r == NULL || cb == NULL)
        return es_error(ES_ERR_INVALID, "es_atp_repos_list: handle and callback are required");
    list_ctx c = {cb, closure, 0};
    es_status s = es_checkpoint_list(r->cps, list_one, &c);
    if (skipped != NULL)
        *skipped = c.skipped;
    return s;
}
