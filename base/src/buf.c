#include <es/buf.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/internal.h"

es_status es_buf_reserve(es_buf *b, size_t more)
{
    if (more <= b->cap - b->len)
        return ES_OK;
    if (more > SIZE_MAX / 2 - b->len)
        return es_error(ES_ERR_NOMEM, "buffer size overflow");
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more)
        cap *= 2;
    uint8_t *p = esi_realloc(b->data, cap);
    if (p == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory growing a buffer to %zu bytes", cap);
    b->data = p;
    b->cap = cap;
    return ES_OK;
}

es_status es_buf_append(es_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return ES_OK;
    es_status s = es_buf_reserve(b, n);
    if (s != ES_OK)
        return s;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return ES_OK;
}

es_status es_buf_append_byte(es_buf *b, uint8_t c)
{
    return es_buf_append(b, &c, 1);
}

es_status es_buf_append_str(es_buf *b, const char *s)
{
    return es_buf_append(b, s, strlen(s));
}

void es_buf_free(es_buf *b)
{
    if (b == NULL)
        return;
    esi_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
