/* A store's configuration as es-tool shows it: one JSON object (in info
 * --json, edit --json and an export's opening line) and one text per field
 * (edit's before -> after). */
#ifndef ESTOOL_CONFIG_H
#define ESTOOL_CONFIG_H

#include <jansson.h>

#include <es/es.h>
#include <es/value.h>

/* {"storage":"file","replicas":1,"max_age_ns":0,"max_bytes":0,"max_events":0,
 *  "max_event_size":0,"duplicate_window_ns":120000000000,"tenancy":false,
 *  "compress_threshold":0,"encrypt":false,"storage_compression":"none"}: 0
 * is unlimited / off. The caller owns the result (json_decref); NULL when
 * out of memory. */
json_t *tool_config_json(const es_store_config *c);

/* Reads that object back (as the codecs' JSON reader gives it): every key
 * above (storage_compression may be absent: exports made before it), no
 * other. ES_ERR_DECODE with a text naming the field. */
es_status tool_config_from_value(const es_value *o, es_store_config *out);

/* The fields edit may change, in the order it shows them. */
typedef enum tool_config_field {
    CONFIG_REPLICAS,
    CONFIG_MAX_AGE,
    CONFIG_MAX_BYTES,
    CONFIG_MAX_EVENTS,
    CONFIG_MAX_EVENT_SIZE,
    CONFIG_DUPLICATE_WINDOW,
    CONFIG_COMPRESSION,
    CONFIG_STORAGE_COMPRESSION,
    CONFIG_FIELDS
} tool_config_field;

/* The field's label ("max age"), its key in the JSON object ("max_age_ns")
 * and its value as text ("30d", "unlimited"). */
const char *tool_config_label(tool_config_field f);
const char *tool_config_key(tool_config_field f);
void tool_config_text(const es_store_config *c, tool_config_field f, char out[48]);
/* True when the field has the same value in a and b. */
bool tool_config_same(const es_store_config *a, const es_store_config *b, tool_config_field f);

#endif
