/* Private helpers shared by the library's modules. Not installed. */
#ifndef ES_INTERNAL_H
#define ES_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <es/status.h>

#define ES_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* es_error, es_error_code and es_error_clear (es/status.h) record the
 * thread's last error: a failure reads
 * `return es_error(ES_ERR_INVALID, "store name '%s' ...", name);`. */

#define ES_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* A byte of a name: [A-Za-z0-9_-] (store, entity type, event type, tenant,
 * metadata key; also what a KV key component keeps unescaped). */
static inline bool esi_name_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

/* Hot-path text building without printf: the caller has sized `p` (subjects
 * and header values have bounded parts, validated before they are built). */
static inline char *esi_put(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

/* Writes `v` in decimal (no NUL) and returns the end. */
static inline char *esi_put_u64(char *p, uint64_t v)
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
