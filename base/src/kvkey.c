/* The KV key escape (es/kvkey.h). */
#include <es/kvkey.h>

#include <string.h>

#include "base/escape.h"
#include "base/internal.h"

es_status es_kv_key_escape(const void *bytes, size_t len, char *out, size_t out_size,
                           size_t *out_len)
{
    if (bytes == NULL || len == 0)
        return es_error(ES_ERR_INVALID, "a KV key component cannot be empty");
    if (out == NULL || out_size == 0)
        return es_error(ES_ERR_INVALID, "es_kv_key_escape: out is NULL");
    return esi_escape_bytes(bytes, len, '=', esi_name_byte, "KV key", out, out_size, out_len);
}

es_status es_kv_key_unescape(const char *in, size_t len, char *out, size_t out_size,
                             size_t *out_len)
{
    if (in == NULL || len == 0)
        return es_error(ES_ERR_INVALID, "a KV key component cannot be empty");
    if (out == NULL || out_size == 0)
        return es_error(ES_ERR_INVALID, "es_kv_key_unescape: out is NULL");
    return esi_unescape_bytes(in, len, '=', esi_name_byte, "KV key", out, out_size, out_len);
}

bool es_kv_key_valid(const char *key)
{
    if (key == NULL || key[0] == '\0' || key[0] == '.')
        return false;
    size_t i = 0;
    for (; key[i] != '\0'; i++) {
        unsigned char c = (unsigned char)key[i];
        if (i >= ES_KV_KEY_MAX || !(esi_name_byte(c) || c == '.' || c == '/' || c == '='))
            return false;
        if (c == '.' && key[i + 1] == '.')
            return false;
    }
    return key[i - 1] != '.';
}
