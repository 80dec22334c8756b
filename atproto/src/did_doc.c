/* DID documents (atproto identity spec): the few fields the adapter uses,
 * picked out of hostile JSON, and the `--did-docs` file of many documents.
 * Documents come from the network or from a file anyone may have written:
 * every string is bounded and checked before it is kept. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <zstd.h>

#include "atp_internal.h"
#include "identity.h"

/* A multibase public key is ~50 characters; a PDS URL is a host name. */
#define KEY_MAX      256
#define ENDPOINT_MAX 2048
/* Entries of alsoKnownAs, verificationMethod and service looked at. */
#define ENTRIES_MAX 64

static const char *const key_types[] = {"Multikey", "EcdsaSecp256k1VerificationKey2019",
                                        "EcdsaSecp256r1VerificationKey2019"};

void esi_atp_did_doc_destroy(esi_atp_did_doc *d)
{
    if (d == NULL)
        return;
    es_free(d->did);
    es_free(d->handle);
    es_free(d->signing_key);
    es_free(d->key_type);
    es_free(d->pds);
    es_free(d);
}

/* A copy of `s` (NULL stays NULL); *ok turns false when memory runs out. */
static char *dup_or_null(const char *s, bool *ok)
{
    if (s == NULL)
        return NULL;
    char *c = esi_atp_strdup(s);
    if (c == NULL)
        *ok = false;
    return c;
}

es_status esi_atp_did_doc_copy(const esi_atp_did_doc *d, esi_atp_did_doc **out)
{
    esi_atp_did_doc *c = es_calloc(1, sizeof *c);
    bool ok = c != NULL;
    if (ok) {
        c->did = dup_or_null(d->did, &ok);
        c->handle = dup_or_null(d->handle, &ok);
        c->signing_key = dup_or_null(d->signing_key, &ok);
        c->key_type = dup_or_null(d->key_type, &ok);
        c->pds = dup_or_null(d->pds, &ok);
    }
    if (!ok) {
        esi_atp_did_doc_destroy(c);
        return es_error(ES_ERR_NOMEM, "DID document: out of memory");
    }
    *out = c;
    return ES_OK;
}

/* The string member `key` of object `o` when it is a string of at most
 * `max` bytes, else NULL. */
static const char *member_string(const json_t *o, const char *key, size_t max)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_string(v) || json_string_length(v) > max)
        return NULL;
    return json_string_value(v);
}

/* Does `id` name the fragment `frag` ("#atproto") of `did`, absolutely
 * ("<did>#atproto") or relatively ("#atproto")? Both forms are in use. */
static bool names_fragment(const char *id, const char *did, const char *frag)
{
    if (id == NULL)
        return false;
    size_t n = strlen(did);
    if (strncmp(id, did, n) == 0)
        id += n;
    return strcmp(id, frag) == 0;
}

/* The handle: the first at:// entry of alsoKnownAs, lower-cased (handles are
 * case-insensitive); none when that entry is not a valid handle. */
static const char *find_handle(const json_t *root, char *buf, size_t cap)
{
    const json_t *aka = json_object_get(root, "alsoKnownAs");
    for (size_t i = 0; i < json_array_size(aka) && i < ENTRIES_MAX; i++) {
        const json_t *e = json_array_get(aka, i);
        const char *s = json_string_value(e);
        if (s == NULL || strncmp(s, "at://", 5) != 0)
            continue;
        size_t n = json_string_length(e) - 5;
        if (n >= cap || !es_atp_valid_handle(s + 5, n))
            return NULL;
        for (size_t k = 0; k < n; k++)
            buf[k] = (s[5 + k] >= 'A' && s[5 + k] <= 'Z') ? (char)(s[5 + k] + 32) : s[5 + k];
        buf[n] = '\0';
        return buf;
    }
    return NULL;
}

static bool known_key_type(const char *type)
{
    for (size_t i = 0; type != NULL && i < ES_ARRAY_LEN(key_types); i++)
        if (strcmp(type, key_types[i]) == 0)
            return true;
    return false;
}

/* The "#atproto" verification method whose controller is the DID itself; its
 * key must be a multibase base58btc string ('z'). */
static const json_t *find_signing_method(const json_t *root, const char *did)
{
    const json_t *vms = json_object_get(root, "verificationMethod");
    for (size_t i = 0; i < json_array_size(vms) && i < ENTRIES_MAX; i++) {
        const json_t *vm = json_array_get(vms, i);
        if (!names_fragment(member_string(vm, "id", ESI_ATP_DID_MAX + 16), did, "#atproto"))
            continue;
        const char *controller = member_string(vm, "controller", ESI_ATP_DID_MAX);
        const char *key = member_string(vm, "publicKeyMultibase", KEY_MAX);
        if ((controller == NULL || strcmp(controller, did) == 0) &&
            known_key_type(member_string(vm, "type", 64)) && key != NULL && key[0] == 'z')
            return vm;
    }
    return NULL;
}

/* The "#atproto_pds" service's endpoint, an http(s) URL. */
static const char *find_pds(const json_t *root, const char *did)
{
    const json_t *svcs = json_object_get(root, "service");
    for (size_t i = 0; i < json_array_size(svcs) && i < ENTRIES_MAX; i++) {
        const json_t *svc = json_array_get(svcs, i);
        if (!names_fragment(member_string(svc, "id", ESI_ATP_DID_MAX + 16), did, "#atproto_pds"))
            continue;
        const char *type = member_string(svc, "type", 64);
        const char *url = member_string(svc, "serviceEndpoint", ENDPOINT_MAX);
        if (type != NULL && strcmp(type, "AtprotoPersonalDataServer") == 0 && url != NULL &&
            (strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0))
            return url;
    }
    return NULL;
}

static es_status doc_from_json(const json_t *root, esi_atp_did_doc **out)
{
    if (!json_is_object(root))
        return es_error(ES_ERR_DECODE, "DID document: not a JSON object");
    const char *did = member_string(root, "id", ESI_ATP_DID_MAX);
    if (did == NULL || !es_atp_valid_did(did, strlen(did)))
        return es_error(ES_ERR_DECODE, "DID document: \"id\" is missing or not a valid DID");
    char handle[256];
    const json_t *vm = find_signing_method(root, did);
    esi_atp_did_doc d = {
        .did = (char *)did,
        .handle = (char *)find_handle(root, handle, sizeof handle),
        .signing_key = (char *)member_string(vm, "publicKeyMultibase", KEY_MAX),
        .key_type = (char *)member_string(vm, "type", 64),
        .pds = (char *)find_pds(root, did),
    };
    return esi_atp_did_doc_copy(&d, out);
}

es_status esi_atp_did_doc_parse(const char *json, size_t len, esi_atp_did_doc **out)
{
    if (json == NULL || out == NULL)
        return es_error(ES_ERR_INVALID, "esi_atp_did_doc_parse: NULL argument");
    if (len > ESI_ATP_DID_DOC_MAX)
        return es_error(ES_ERR_LIMIT, "DID document: %zu bytes, over the %d-byte bound", len,
                        ESI_ATP_DID_DOC_MAX);
    json_error_t err;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &err);
    if (root == NULL)
        return es_error(ES_ERR_DECODE, "DID document: not JSON: %s", err.text);
    es_status s = doc_from_json(root, out);
    json_decref(root);
    return s;
}

/* ---- the --did-docs file ---------------------------------------------------- */

static const unsigned char zstd_magic[4] = {0x28, 0xb5, 0x2f, 0xfd};

/* Grows *buf to hold at least `need` bytes, within the file bound. */
static es_status reserve(char **buf, size_t *cap, size_t need, const char *path)
{
    if (need <= *cap)
        return ES_OK;
    if (need > ESI_ATP_DID_DOCS_FILE_MAX)
        return es_error(ES_ERR_LIMIT, "%s: over the %zu-byte bound of a DID documents file", path,
                        ESI_ATP_DID_DOCS_FILE_MAX);
    size_t grown = *cap * 2 > need ? *cap * 2 : need;
    char *p = es_realloc(*buf, grown);
    if (p == NULL)
        return es_error(ES_ERR_NOMEM, "%s: out of memory", path);
    *buf = p;
    *cap = grown;
    return ES_OK;
}

static es_status read_raw(FILE *f, const char *path, char **buf, size_t *len)
{
    size_t cap = 0, n = 0;
    for (;;) {
        es_status s = reserve(buf, &cap, n + 65536, path);
        if (s != ES_OK)
            return s;
        size_t got = fread(*buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f))
        return es_error(ES_ERR_IO, "%s: read failed", path);
    *len = n;
    return ES_OK;
}

/* Decompresses [in, in+in_len) into *out, bounded like a plain file. */
static es_status unzstd(const char *in, size_t in_len, const char *path, char **out, size_t *len)
{
    ZSTD_DStream *z = ZSTD_createDStream();
    if (z == NULL)
        return es_error(ES_ERR_NOMEM, "%s: out of memory", path);
    size_t cap = 0, r = 1;
    ZSTD_inBuffer src = {in, in_len, 0};
    ZSTD_outBuffer dst = {NULL, 0, 0};
    es_status s = ES_OK;
    while (s == ES_OK && (src.pos < src.size || r != 0)) {
        s = reserve(out, &cap, dst.pos + ZSTD_DStreamOutSize(), path);
        if (s != ES_OK)
            break;
        dst.dst = *out;
        dst.size = cap;
        size_t before = dst.pos;
        r = ZSTD_decompressStream(z, &dst, &src);
        if (ZSTD_isError(r))
            s = es_error(ES_ERR_DECODE, "%s: corrupt zstd data: %s", path, ZSTD_getErrorName(r));
        else if (src.pos == src.size && r != 0 && dst.pos == before)
            s = es_error(ES_ERR_DECODE, "%s: truncated zstd data", path);
    }
    ZSTD_freeDStream(z);
    *len = dst.pos;
    return s;
}

/* The file's JSON text, decompressed when it starts with the zstd magic. */
static es_status read_docs_file(const char *path, char **text, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return es_error(ES_ERR_IO, "%s: %s", path, strerror(errno));
    char *raw = NULL;
    size_t raw_len = 0;
    es_status s = read_raw(f, path, &raw, &raw_len);
    fclose(f);
    if (s == ES_OK && raw_len >= 4 && memcmp(raw, zstd_magic, 4) == 0) {
        s = unzstd(raw, raw_len, path, text, len);
        es_free(raw);
        return s;
    }
    *text = raw;
    *len = raw_len;
    return s;
}

/* One entry of the file: a document no larger than a fetched one may be,
 * filed under its own DID. */
static es_status load_entry(const char *path, const char *key, const json_t *value,
                            esi_atp_did_doc_fn fn, void *ctx)
{
    if (json_dumpb(value, NULL, 0, JSON_COMPACT) > ESI_ATP_DID_DOC_MAX)
        return es_error(ES_ERR_LIMIT, "%s: the document of %.64s is over the %d-byte bound", path,
                        key, ESI_ATP_DID_DOC_MAX);
    esi_atp_did_doc *doc = NULL;
    es_status s = doc_from_json(value, &doc);
    if (s != ES_OK)
        return esi_atp_error_wrap(s, "%s: %.64s", path, key);
    if (strcmp(doc->did, key) != 0) {
        esi_atp_did_doc_destroy(doc);
        return es_error(ES_ERR_DECODE, "%s: the document filed under %.64s is for another DID",
                        path, key);
    }
    return fn(ctx, doc);
}

es_status esi_atp_did_docs_load(const char *path, esi_atp_did_doc_fn fn, void *ctx, size_t *count)
{
    if (path == NULL || fn == NULL)
        return es_error(ES_ERR_INVALID, "esi_atp_did_docs_load: NULL argument");
    char *text = NULL;
    size_t len = 0, n = 0;
    es_status s = read_docs_file(path, &text, &len);
    json_error_t err;
    json_t *root = s == ES_OK ? json_loadb(text, len, JSON_REJECT_DUPLICATES, &err) : NULL;
    es_free(text);
    if (s == ES_OK && !json_is_object(root))
        s = es_error(ES_ERR_DECODE, "%s: not a JSON object {did: document}%s%s", path,
                     root == NULL ? ": " : "", root == NULL ? err.text : "");
    const char *key;
    json_t *value;
    if (s == ES_OK) {
        json_object_foreach(root, key, value)
        {
            s = load_entry(path, key, value, fn, ctx);
            if (s != ES_OK)
                break;
            n++;
        }
    }
    json_decref(root);
    if (count != NULL)
        *count = n;
    return s;
}
