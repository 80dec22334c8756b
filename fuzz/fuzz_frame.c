/* Target `frame`: one firehose frame (`com.atproto.sync.subscribeRepos`, a
 * DAG-CBOR header then a body) through es_atp_decode, the whole path from
 * bytes to the batch of events: header and body decoding, the CAR of a
 * commit, hash verification, the commit block, every op and its record
 * block, filters, and the mapping to es_event_spec.
 *
 * A mutated record or MST node no longer hashes to its CID, so nearly every
 * mutation inside a CAR would stop at verification. When the frame is
 * refused for a hash mismatch, the target decodes it once more after
 * re-sealing its CAR (fuzz_reseal_car), to reach the code behind it.
 *
 * The decoder's options vary with the input's length, so one corpus covers
 * the default path, verify_all_blocks, skip_record_decode, small limits and
 * a filter. Each decoded batch is checked against what the core engine will
 * require of it (es/event.h, es/atproto.h). */
#include <string.h>

#include <es/atproto.h>
#include <es/cbor.h>

#include "fuzz.h"

/* The per-frame arena; es/atproto.h: "a few times the frame size is ample". */
#define FRAME_ARENA_LIMIT ((size_t)16 << 20)

static bool name_chars(const char *s)
{
    if (s == NULL || *s == '\0')
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-'))
            return false;
    return true;
}

static bool single_line(const char *s)
{
    return s != NULL && strpbrk(s, "\r\n") == NULL;
}

static bool inside(const void *p, size_t n, const uint8_t *buf, size_t len)
{
    const uint8_t *q = p;
    return q >= buf && n <= len && (size_t)(q - buf) <= len - n;
}

/* What es_append_batch will require of the events, and what es/atproto.h
 * promises about them. */
static void check_batch(const es_atp_batch *b, const uint8_t *frame, size_t len)
{
    FUZZ_CHECK(b->count == 0 || b->events != NULL);
    if (b->kind == ES_ATP_KIND_COMMIT)
        FUZZ_CHECK(b->count <= b->ops);
    for (size_t i = 0; i < b->count; i++) {
        const es_event_spec *e = &b->events[i];
        FUZZ_CHECK(name_chars(e->entity_type) && name_chars(e->event_type));
        FUZZ_CHECK(e->entity_id == b->did && e->entity_id_len == b->did_len && b->did_len > 0);
        FUZZ_CHECK(e->event_id != NULL && *e->event_id != '\0' &&
                   strlen(e->event_id) <= ES_ATP_EVENT_ID_MAX);
        FUZZ_CHECK(e->data != NULL || e->data_len == 0);
        FUZZ_CHECK(e->data == NULL || inside(e->data, e->data_len, frame, len));
        for (size_t m = 0; m < e->meta_count; m++)
            FUZZ_CHECK(name_chars(e->meta[m].key) && single_line(e->meta[m].value));
    }
}

/* Options from the input's length: deterministic for a given input, and
 * spread over the corpus. */
static void options_for(size_t size, es_atp_options *o, es_atp_filter **filter)
{
    memset(o, 0, sizeof *o);
    *filter = NULL;
    switch (size % 5) {
    case 1: o->verify_all_blocks = true; break;
    case 2: o->skip_record_decode = true; break;
    case 3:
        o->limits.max_ops = 2;
        o->limits.max_depth = 8;
        o->limits.car.max_blocks = 8;
        o->limits.car.max_roots = 1;
        break;
    case 4:
        if (es_atp_filter_create(filter) != ES_OK ||
            es_atp_filter_add_collections(*filter, "app.bsky.feed.*,app.bsky.graph.follow") !=
                ES_OK)
            abort();
        o->filter = *filter;
        break;
    default: break;
    }
}

/* Decode one frame with a fresh arena; returns the error kind (NONE on success). */
static es_atp_error decode(es_atp_decoder *d, const uint8_t *frame, size_t len)
{
    es_arena *arena = NULL;
    if (es_arena_create(FRAME_ARENA_LIMIT, &arena) != ES_OK)
        abort();
    es_atp_batch batch;
    es_status s = es_atp_decode(d, frame, len, arena, &batch);
    if (s == ES_OK)
        check_batch(&batch, frame, len);
    else
        FUZZ_CHECK(batch.count == 0 && batch.events == NULL && batch.error != ES_ATP_ERR_NONE);
    es_arena_destroy(arena);
    return s == ES_OK ? ES_ATP_ERR_NONE : batch.error;
}

/* Where the body's `blocks` (the CAR) lies in the frame, if anywhere. */
static bool find_car(const uint8_t *frame, size_t len, size_t *off, size_t *car_len)
{
    es_arena *arena = NULL;
    if (es_arena_create(FRAME_ARENA_LIMIT, &arena) != ES_OK)
        abort();
    es_cbor_options o;
    es_cbor_options_init(&o, true);
    es_value *header, *body;
    size_t used = 0, body_used = 0;
    bool found = false;
    if (es_cbor_decode(frame, len, &o, arena, &header, &used) == ES_OK &&
        es_cbor_decode(frame + used, len - used, &o, arena, &body, &body_used) == ES_OK) {
        const es_value *blocks = es_value_get(body, "blocks");
        if (blocks != NULL && blocks->kind == ES_VALUE_BYTES) {
            *off = (size_t)(blocks->u.bytes.ptr - frame);
            *car_len = blocks->u.bytes.len;
            found = true;
        }
    }
    es_arena_destroy(arena);
    return found;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    es_atp_options opts;
    es_atp_filter *filter;
    options_for(size, &opts, &filter);
    es_atp_decoder *d = NULL;
    if (es_atp_decoder_create(&opts, &d) != ES_OK)
        abort();
    uint8_t *frame = fuzz_copy(data, size);
    size_t off, car_len;
    if (decode(d, frame, size) == ES_ATP_ERR_HASH && find_car(frame, size, &off, &car_len) &&
        fuzz_reseal_car(frame, size, off, car_len) > 0)
        (void)decode(d, frame, size);
    const es_atp_stats *st = es_atp_decoder_stats(d);
    FUZZ_CHECK(st->frames >= 1 && st->bytes >= size);
    free(frame);
    es_atp_decoder_destroy(d);
    es_atp_filter_destroy(filter);
    return 0;
}
