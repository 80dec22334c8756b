/* Stored events for the adapter's rendering tests: JSON records as
 * DAG-CBOR payloads, and event specs around them. Include after <cmocka.h>. */
#ifndef ES_ATP_TEST_STORED_EVENTS_H
#define ES_ATP_TEST_STORED_EVENTS_H

#include <string.h>

#include <es/cbor.h>
#include <es/es.h>
#include <es/json.h>

/* The DAG-CBOR of a JSON text (atproto form), in `out`. */
static inline void dag_cbor(const char *json, es_buf *out)
{
    es_arena *a;
    assert_int_equal(es_arena_create(0, &a), ES_OK);
    es_value *v;
    assert_int_equal(es_json_decode(json, strlen(json), NULL, a, &v), ES_OK);
    assert_int_equal(es_cbor_encode(v, NULL, out), ES_OK);
    es_arena_destroy(a);
}

/* An event; with `cbor`, its payload as DAG-CBOR. */
static inline es_event_spec spec(const char *type, const char *id, const char *event,
                                 const es_buf *cbor, const es_meta *meta, size_t meta_count)
{
    es_event_spec e;
    memset(&e, 0, sizeof e);
    e.entity_type = type;
    e.entity_id = id;
    e.event_type = event;
    if (cbor != NULL) {
        e.data = cbor->data;
        e.data_len = cbor->len;
        e.codec = "dag-cbor";
    }
    e.meta = meta;
    e.meta_count = meta_count;
    return e;
}

#endif
