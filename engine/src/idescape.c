/* The entity-id escape (the subject-safety contract). */
#include <es/subject.h>

#include <string.h>

#include "base/escape.h"
#include "base/internal.h"
#include "wire.h"

/* Bytes that may appear raw in an id token: everything but the subject
 * separator, the wildcards, the escape itself, white space and non-ASCII. */
static bool passes_in_token(unsigned char c)
{
    return c > 0x20 && c < 0x7F && c != '%' && c != '.' && c != '*' && c != '>';
}

es_status esi_id_check(const void *id, size_t len)
{
    if (id == NULL || len == 0)
        return es_error(ES_ERR_INVALID, "entity id is empty");
    if (len > ES_ID_MAX)
        return es_error(ES_ERR_INVALID, "entity id is %zu bytes; the limit is %d", len, ES_ID_MAX);
    return ES_OK;
}

es_status es_id_escape(const void *id, size_t len, char *out, size_t out_size, size_t *out_len)
{
    es_status s = esi_id_check(id, len);
    if (s != ES_OK)
        return s;
    if (out == NULL)
        return es_error(ES_ERR_INVALID, "es_id_escape: out is NULL");
    return esi_escape_bytes(id, len, '%', passes_in_token, "entity id", out, out_size, out_len);
}

es_status es_id_unescape(const char *token, size_t token_len, char *out, size_t out_size,
                         size_t *out_len)
{
    if (token == NULL || token_len == 0 || out == NULL)
        return es_error(ES_ERR_INVALID, "entity id token is empty");
    return esi_unescape_bytes(token, token_len, '%', passes_in_token, "entity id token", out,
                             out_size, out_len);
}
