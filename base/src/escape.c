#include "base/escape.h"

#include "base/internal.h"

static const char hex_upper[] = "0123456789ABCDEF";

es_status esi_escape_bytes(const void *in, size_t len, char esc, esi_passes_fn passes,
                          const char *what, char *out, size_t out_size, size_t *out_len)
{
    const unsigned char *p = in;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        size_t need = passes(p[i]) ? 1 : 3;
        if (out_size <= n || out_size - n <= need) /* keep room for the NUL */
            return es_error(ES_ERR_LIMIT, "escaped %s does not fit %zu bytes", what, out_size);
        if (need == 1) {
            out[n++] = (char)p[i];
        } else {
            out[n++] = esc;
            out[n++] = hex_upper[p[i] >> 4];
            out[n++] = hex_upper[p[i] & 0xF];
        }
    }
    if (out_size <= n)
        return es_error(ES_ERR_LIMIT, "escaped %s does not fit %zu bytes", what, out_size);
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

es_status esi_unescape_bytes(const char *in, size_t len, char esc, esi_passes_fn passes,
                            const char *what, char *out, size_t out_size, size_t *out_len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == (unsigned char)esc) {
            int hi = i + 2 < len ? hex_value(in[i + 1]) : -1;
            int lo = hi >= 0 ? hex_value(in[i + 2]) : -1;
            /* an escaped byte that would have passed through is not canonical either */
            if (lo < 0 || passes((unsigned char)(hi << 4 | lo)))
                return es_error(ES_ERR_INVALID, "%s has a bad escape at byte %zu", what, i);
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        } else if (!passes(c)) {
            return es_error(ES_ERR_INVALID, "%s has a raw 0x%02X at byte %zu", what, c, i);
        }
        if (n + 1 >= out_size)
            return es_error(ES_ERR_LIMIT, "%s does not fit %zu bytes", what, out_size);
        out[n++] = (char)c;
    }
    if (out_size == 0)
        return es_error(ES_ERR_LIMIT, "%s does not fit %zu bytes", what, out_size);
    out[n] = '\0';
    if (out_len)
        *out_len = n;
    return ES_OK;
}
