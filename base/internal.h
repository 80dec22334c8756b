/* Private helpers shared by the library's modules. Not installed. */
#ifndef ES_INTERNAL_H
#define ES_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <es/status.h>

#define ES_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* Record the calling thread's last error text and return `s`, so a failure
 * reads `return es_error(ES_ERR_INVALID, "store name '%s' ...", name);`. */
es_status es_error(es_status s, const char *fmt, ...) ES_PRINTF(2, 3);
/* The same with the server's JetStream err_code kept for es_last_error_code(). */
es_status es_error_code(es_status s, int err_code, const char *fmt, ...) ES_PRINTF(3, 4);
void es_error_clear(void);

#define ES_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* A byte of a name: [A-Za-z0-9_-] (store, entity type, event type, tenant,
 * metadata key; also what a KV key component keeps unescaped). */
static inline bool es_name_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

/* Hot-path text building without printf: the caller has sized `p` (subjects
 * and header values have bounded parts, validated before they are built). */
static inline char *es_put(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

/* Writes `v` in decimal (no NUL) and returns the end. */
static inline char *es_put_u64(char *p, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0)
        *p++ = tmp[--n];
    return p;
}

#endif
