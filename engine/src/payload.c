/* Payload validation: an append must not store what every reader will
 * refuse (docs/api.md "Appending"). The codec name is looked up in the
 * registry for every event; the payload is decoded by that codec, into an
 * arena thrown away at once, unless the handle opted out
 * (skip_payload_validation: docs/performance.md has the cost). */
#include "payload.h"

#include <stdint.h>
#include <string.h>

#include <es/arena.h>
#include <es/codec.h>

#include "base/internal.h"
#include "store_impl.h"

#define DEFAULT_CODEC "binary"
/* Decoded values take more room than their encoding (a one-byte integer
 * becomes a whole value node): bound the arena by a multiple of the payload,
 * never below the arena's default. */
#define ARENA_PER_BYTE 64
#define ARENA_FLOOR    ((size_t)64 << 20)

static size_t arena_limit(const es_event_spec *events, size_t n)
{
    size_t largest = 0;
    for (size_t i = 0; i < n; i++)
        if (events[i].data_len > largest)
            largest = events[i].data_len;
    if (largest > SIZE_MAX / ARENA_PER_BYTE)
        return SIZE_MAX;
    return largest * ARENA_PER_BYTE > ARENA_FLOOR ? largest * ARENA_PER_BYTE : ARENA_FLOOR;
}

/* Whether the codec takes any bytes, so that decoding proves nothing. */
static bool takes_anything(const es_codec *c)
{
    return strcmp(c->name, DEFAULT_CODEC) == 0;
}

static es_status check_one(const es_codec *c, const es_event_spec *e, size_t index, es_arena *a)
{
    es_value *v = NULL;
    es_arena_reset(a);
    es_status s = c->decode(c, e->data, e->data_len, a, &v);
    if (s == ES_OK || s == ES_ERR_NOMEM)
        return s;
    return es_error(ES_ERR_DECODE, "event %zu: its data is not valid %s: %s", index, c->name,
                    es_last_error());
}

es_status esi_payloads_check(const es_store *st, const es_event_spec *events, size_t n)
{
    es_arena *arena = NULL;
    es_status s = ES_OK;
    for (size_t i = 0; i < n && s == ES_OK; i++) {
        const char *name = events[i].codec ? events[i].codec : DEFAULT_CODEC;
        const es_codec *c = es_codec_find(name);
        if (c == NULL) {
            s = es_error(ES_ERR_NO_CODEC,
                         "event %zu: no codec '%.64s' is registered (es_codec_register)", i, name);
            break;
        }
        if (st->opts.skip_payload_validation || takes_anything(c))
            continue;
        if (arena == NULL)
            s = es_arena_create(arena_limit(events, n), &arena);
        if (s == ES_OK)
            s = check_one(c, &events[i], i, arena);
    }
    es_arena_destroy(arena);
    return s;
}
