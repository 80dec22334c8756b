/* The backup format of export and import (docs/es-tool.md): JSON lines,
 *
 *   {"es_export":2,"tenancy":false,"config":{"storage":"file","replicas":1,...}}
 *   {"subject":"account.acc-1.Opened","headers":{"Nats-Msg-Id":["..."],...},"data":{"$bytes":"..."}}
 *   ...
 *   {"end":true,"events":N}
 *
 * Each event line holds the subject after "$ES.<store>.", every header of
 * the stored event (sorted by name, values in order; JetStream's own
 * control headers, Nats-* other than Nats-Msg-Id, are not part of an event)
 * and the payload as stored, base64: es_raw_event, as es_event_raw gives it
 * and es_import_async takes it. Strings that are not valid UTF-8 are
 * written as {"$bytes": ...}. The closing line makes a truncated file
 * detectable. The opening line's config (config.h; since version 2) is the
 * source store's, for import --create; version 1 files have none and read
 * still. Nothing in the events depends on the store's name or sequences, so a
 * store exported, imported elsewhere and exported again gives the same bytes. */
#ifndef ESTOOL_BACKUP_H
#define ESTOOL_BACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/arena.h>
#include <es/buf.h>
#include <es/es.h>
#include <es/value.h>

#define BACKUP_VERSION     2           /* what export writes; import reads 1 too */
#define BACKUP_HEADERS_MAX 256         /* header names per event */
#define BACKUP_VALUES_MAX  64          /* values per header name */
#define BACKUP_VALUE_MAX   (64 * 1024) /* bytes per header value */

/* The opening line, with the store's configuration. */
es_status backup_write_start(es_buf *out, const es_store_config *cfg);
es_status backup_write_end(es_buf *out, uint64_t events);

/* Appends the line of one event as stored (es_event_raw: its subject within
 * the store, its headers, its payload). `arena` holds the line's value
 * tree: reset it between events. */
es_status backup_write_event(es_arena *arena, const es_raw_event *ev, es_buf *out);

typedef enum backup_kind { BACKUP_START, BACKUP_EVENT, BACKUP_END } backup_kind;

typedef struct backup_line {
    backup_kind kind;
    bool tenancy;           /* START */
    bool has_config;        /* START: version 2 gives the store's configuration */
    es_store_config config; /* START, when has_config */
    uint64_t events;        /* END */
    es_raw_event event; /* EVENT: what es_import_async takes; points into the arena */
} backup_line;

/* Parses and checks one line (without its newline) into `out`, whose
 * pointers go into `arena`. For an event, everything is checked that could
 * make its import wrong or harmful (es_import_check for a store with or
 * without tenancy: the subject's shape and names, header names and values,
 * no control header), and the format's own bounds. ES_ERR_DECODE /
 * ES_ERR_INVALID with a text that says what is wrong. */
es_status backup_parse_line(const char *text, size_t len, bool tenancy, es_arena *arena,
                            backup_line *out);

#endif
