/* A growable byte buffer: what encoders write into. The struct is public so
 * callers can read `data`/`len` directly; grow it only through es_buf_*. */
#ifndef ES_BUF_H
#define ES_BUF_H

#include <stddef.h>
#include <stdint.h>

#include <es/export.h>
#include <es/status.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct es_buf {
    uint8_t *data; /* owned; NULL until the first append */
    size_t len;
    size_t cap;
} es_buf;

#define ES_BUF_INIT                                                                                \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

/* Make room for `more` bytes beyond len. ES_ERR_NOMEM on failure or overflow. */
ES_API es_status es_buf_reserve(es_buf *b, size_t more);
ES_API es_status es_buf_append(es_buf *b, const void *p, size_t n);
ES_API es_status es_buf_append_byte(es_buf *b, uint8_t c);
/* Append a NUL-terminated string, without its NUL. */
ES_API es_status es_buf_append_str(es_buf *b, const char *s);
/* Keep the storage, forget the contents. */
static inline void es_buf_clear(es_buf *b)
{
    b->len = 0;
}
/* Free the storage and reset to ES_BUF_INIT. Accepts NULL. */
ES_API void es_buf_free(es_buf *b);

#ifdef __cplusplus
}
#endif
#endif
