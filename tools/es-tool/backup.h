/* The backup format of export and import (docs/es-tool.md): JSON lines,
 *
 *   {"es_export":1,"tenancy":false}
 *   {"subject":"account.acc-1.Opened","headers":{"Nats-Msg-Id":["..."],...},"data":{"$bytes":"..."}}
 *   ...
 *   {"end":true,"events":N}
 *
 * Each event line holds the subject after "$ES.<store>.", every header of
 * the stored message (sorted by name, values in order; JetStream's own
 * control headers, Nats-* other than Nats-Msg-Id, are not part of an event)
 * and the payload as stored, base64. Strings that are not valid UTF-8 are
 * written as {"$bytes": ...}. The closing line makes a truncated file
 * detectable. Nothing in it depends on the store's name or sequences, so a
 * store exported, imported elsewhere and exported again gives the same bytes. */
#ifndef ESTOOL_BACKUP_H
#define ESTOOL_BACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

#include <es/arena.h>
#include <es/buf.h>
#include <es/es.h>
#include <es/value.h>

#define BACKUP_VERSION     1
#define BACKUP_HEADERS_MAX 256         /* header names per event */
#define BACKUP_VALUES_MAX  64          /* values per header name */
#define BACKUP_VALUE_MAX   (64 * 1024) /* bytes per header value */

es_status backup_write_start(es_buf *out, bool tenancy);
es_status backup_write_end(es_buf *out, uint64_t events);

/* Appends the line of one stored message whose subject, after the store's
 * "$ES.<store>." prefix, is `rel_subject`. `arena` holds the line's value
 * tree: reset it between events. */
es_status backup_write_event(es_arena *arena, natsMsg *msg, const char *rel_subject, es_buf *out);

typedef enum backup_kind { BACKUP_START, BACKUP_EVENT, BACKUP_END } backup_kind;

typedef struct backup_header {
    const char *name;
    const es_value *values; /* ARRAY of STRING/BYTES */
} backup_header;

typedef struct backup_line {
    backup_kind kind;
    bool tenancy;            /* START */
    uint64_t events;         /* END */
    const char *rel_subject; /* EVENT */
    backup_header headers[BACKUP_HEADERS_MAX];
    size_t n_headers;
    const uint8_t *data;
    size_t data_len;
} backup_line;

/* Parses and checks one line (without its newline) into `out`, whose
 * pointers go into `arena`. For an event, everything is checked that could
 * make its publication wrong or harmful: the subject's shape and names for
 * a store with or without tenancy, header names and values, and no control
 * header (Nats-* other than Nats-Msg-Id). ES_ERR_DECODE/ES_ERR_INVALID with
 * a text that says what is wrong. */
es_status backup_parse_line(const char *text, size_t len, bool tenancy, es_arena *arena,
                            backup_line *out);

/* The message to publish for an event line into `store`: subject
 * "$ES.<store>.<rel_subject>", the headers, the payload. The caller owns *out. */
es_status backup_event_msg(const backup_line *ev, const char *store, natsMsg **out);

/* True for the header names an event keeps (everything but JetStream's
 * control headers, Nats-* other than Nats-Msg-Id). */
bool backup_keeps_header(const char *name);

#endif
