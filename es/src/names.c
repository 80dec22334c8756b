/* Name validation and the entity-id escape (the subject-safety contract). */
#include <es/subject.h>

#include <string.h>

#include "internal.h"

static bool name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

static bool valid_name_max(const char *name, size_t max)
{
    if (name == NULL || name[0] == '\0')
        return false;
    size_t i = 0;
    for (; name[i] != '\0'; i++)
        if (i >= max || !name_char((unsigned char)name[i]))
            return false;
    return true;
}

bool es_valid_store_name(const char *name)
{
    return valid_name_max(name, 32);
}

bool es_valid_name(const char *name)
{
    return valid_name_max(name, ES_NAME_MAX);
}

/* Bytes that may not appear raw in an id token. */
static bool needs_escape(unsigned char c)
{
    return c <= 0x20 || c >= 0x7F || c == '%' || c == '.' || c == '*' || c == '>';
}

static const char hex_upper[] = "0123456789ABCDEF";

es_status es_id_escape(const void *id, size_t len, char *out, size_t out_size, size_t *out_len)
{
    if (id == NULL || len == 0)
        return es_error(ES_ERR_INVALID, "entity id is empty");
    if (len > ES_ID_MAX)
        return es_error(ES_ERR_INVALID, "entity id is %zu bytes; the limit is %d", len, ES_ID_MAX);
    if (out == NULL)
        return es_error(ES_ERR_INVALID, "es_id_escape: out is NULL");
    const unsigned char *p = id;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        size_t need = needs_escape(p[i]) ? 3 : 1;
        if (out_size - n <= need) /* keep room for the NUL */
            return es_error(ES_ERR_LIMIT, "escaped entity id does not fit %zu bytes", out_size);
        if (need == 3) {
            out[n++] = '%';
            out[n++] = hex_upper[p[i] >> 4];
            out[n++] = hex_upper[p[i] & 0xF];
        } else {
            out[n++] = (char)p[i];
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
    return -1; /* lower case is not canonical: refuse it so escaping stays 1:1 */
}

es_status es_id_unescape(const char *token, size_t token_len, char *out, size_t out_size,
                         size_t *out_len)
{
    if (token == NULL || token_len == 0 || out == NULL)
        return es_error(ES_ERR_INVALID, "entity id token is empty");
    size_t n = 0;
    for (size_t i = 0; i < token_len; i++) {
        unsigned char c = (unsigned char)token[i];
        if (c == '%') {
            int hi = i + 2 < token_len ? hex_value(token[i + 1]) : -1;
            int lo = hi >= 0 ? hex_value(token[i + 2]) : -1;
            if (lo < 0 || !needs_escape((unsigned char)(hi << 4 | lo)))
                return es_error(ES_ERR_INVALID, "entity id token has a bad escape at byte %zu", i);
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        } else if (needs_escape(c)) {
            return es_error(ES_ERR_INVALID, "entity id token has a raw 0x%02X at byte %zu", c, i);
        }
        if (n + 1 >= out_size)
            return es_error(ES_ERR_LIMIT, "entity id does not fit %zu bytes", out_size);
        out[n++] = (char)c;
    }
    out[n] = '\0';
    if (out_len)
        *out_len = n;
    return ES_OK;
}
