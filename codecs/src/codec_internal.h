/* Private to codecs/value: helpers shared by the codecs. */
#ifndef ES_CODEC_INTERNAL_H
#define ES_CODEC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when s[0..len) is well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF). On false, *bad_at (if not NULL) is
 * the offset of the first byte of the offending sequence. */
bool esi_utf8_valid(const uint8_t *s, size_t len, size_t *bad_at);

/* DAG-CBOR map key order: shorter keys first, then bytewise. <0, 0 or >0. */
static inline int esi_dag_key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return alen < blen ? -1 : 1;
    /* Keys are short: an inline loop beats a call to memcmp (measured). */
    for (size_t i = 0; i < alen; i++)
        if (a[i] != b[i])
            return (unsigned char)a[i] < (unsigned char)b[i] ? -1 : 1;
    return 0;
}

#endif
