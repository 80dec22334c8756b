/* The KV key escape (es/kvkey.h). */
#include <es/kvkey.h>

#include <string.h>

#include "internal.h"

static bool passes(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

static const char hex_upper[] = "0123456789ABCDEF";

es_status es_kv_key_escape(const void *bytes, size_t len, char *out, size_t out_size,
                           size_t *out_len)
{
    if (bytes == NULL || len == 0)
        return es_error(ES_ERR_INVALID, "a KV key component cannot be empty");
    if (out == NULL || out_size == 0)
        return es_error(ES_ERR_INVALID, "es_kv_key_escape: out is NULL");
    const unsigned char *p = bytes;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        size_t need = passes(p[i]) ? 1 : 3;
        if (out_size - n <= need) /* keep room for the NUL */
            return es_error(ES_ERR_LIMIT, "escaped KV key does not fit %zu bytes", out_size);
        if (need == 1) {
            out[n++] = (char)p[i];
        } else {
            out[n++] = '=';
            out[n++] = hex_upper[p[i] >> 4];
            out[n++] = hex_upper[p[i] & 0xF];
        }
    }
    out[n] = '\0';
    if (out_len)
        *out_len = n;
    return ES_OK;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1; /* lower case is not canonical: refusing it keeps the escape 1:1 */
}

es_status es_kv_key_unescape(const char *in, size_t len, char *out, size_t out_size,
                             size_t *out_len)
{
    if (in == NULL || len == 0)
        return es_error(ES_ERR_INVALID, "a KV key component cannot be empty");
    if (out == NULL || out_size == 0)
        return es_error(ES_ERR_INVALID, "es_kv_key_unescape: out is NULL");
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '=') {
            int hi = i + 2 < len ? hex_value(in[i + 1]) : -1;
            int lo = i + 2 < len ? hex_value(in[i + 2]) : -1;
            if (hi < 0 || lo < 0 || passes((unsigned char)(hi << 4 | lo)))
                return es_error(ES_ERR_INVALID, "bad escape at byte %zu of a KV key", i);
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        } else if (!passes(c)) {
            return es_error(ES_ERR_INVALID, "byte 0x%02X at %zu cannot appear in an escaped key", c,
                            i);
        }
        if (n + 1 >= out_size)
            return es_error(ES_ERR_LIMIT, "unescaped KV key does not fit %zu bytes", out_size);
        out[n++] = (char)c;
    }
    out[n] = '\0';
    if (out_len)
        *out_len = n;
    return ES_OK;
}

bool es_kv_key_valid(const char *key)
{
    if (key == NULL || key[0] == '\0' || key[0] == '.')
        return false;
    size_t i = 0;
    for (; key[i] != '\0'; i++) {
        unsigned char c = (unsigned char)key[i];
        if (i >= ES_KV_KEY_MAX || !(passes(c) || c == '.' || c == '/' || c == '='))
            return false;
        if (c == '.' && key[i + 1] == '.')
            return false;
    }
    return key[i - 1] != '.';
}
