#include "gen_internal.h"

#include <stdarg.h>
#include <string.h>

#include <es/cbor.h>

es_value *gv_str(es_arena *a, const char *s)
{
    return es_value_new_string(a, s, strlen(s));
}
es_value *gv_strn(es_arena *a, const char *s, size_t len)
{
    return es_value_new_string(a, s, len);
}
es_value *gv_int(es_arena *a, int64_t i)
{
    return es_value_new_int(a, i);
}
es_value *gv_bool(es_arena *a, bool b)
{
    return es_value_new_bool(a, b);
}
es_value *gv_null(es_arena *a)
{
    return es_value_new_null(a);
}
es_value *gv_bytes(es_arena *a, const void *p, size_t len)
{
    return es_value_new_bytes(a, p, len);
}

es_value *gv_link(es_arena *a, const uint8_t cid[ES_CID_SHA256_LEN])
{
    es_value *v = es_value_new_bytes(a, cid, ES_CID_SHA256_LEN);
    if (v != NULL)
        v->kind = ES_VALUE_LINK;
    return v;
}

bool gv_put(es_value *map, size_t i, const char *key, const es_value *value)
{
    if (map == NULL || value == NULL)
        return false;
    map->u.map.entries[i].key = key;
    map->u.map.entries[i].key_len = strlen(key);
    map->u.map.entries[i].value = *value;
    return true;
}

es_value *gv_map(es_arena *a, size_t n, ...)
{
    es_value *m = es_value_new_map(a, n);
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++) {
        const char *key = va_arg(ap, const char *);
        const es_value *v = va_arg(ap, es_value *);
        if (!gv_put(m, i, key, v))
            m = NULL;
    }
    va_end(ap);
    return m;
}

es_value *gv_array(es_arena *a, size_t n, es_value *const *items)
{
    es_value *arr = es_value_new_array(a, n);
    for (size_t i = 0; arr != NULL && i < n; i++) {
        if (items[i] == NULL)
            return NULL;
        arr->u.array.items[i] = *items[i];
    }
    return arr;
}

es_status gv_block(const es_value *v, es_buf *out, uint8_t cid[ES_CID_SHA256_LEN])
{
    if (v == NULL)
        return ES_ERR_NOMEM;
    es_buf_clear(out);
    es_status s = es_cbor_encode(v, NULL, out);
    if (s == ES_OK)
        s = es_cid_sha256(ES_CID_CODEC_DAG_CBOR, out->data, out->len, cid);
    return s;
}
