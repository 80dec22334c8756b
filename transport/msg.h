/* Messages (private to the library): what the components above the
 * transport use to build and read nats.c messages without calling nats.c.
 * A message from the transport is the caller's: esi_msg_destroy it. */
#ifndef ES_TRANSPORT_MSG_H
#define ES_TRANSPORT_MSG_H

#include <stdbool.h>
#include <stddef.h>

#include <nats/nats.h>

#include <es/status.h>

/* A message to publish; the data is copied. reply may be NULL. */
es_status esi_msg_create(const char *subject, const char *reply, const void *data, size_t len,
                         natsMsg **out);
void esi_msg_destroy(natsMsg *m); /* accepts NULL */

const char *esi_msg_subject(natsMsg *m);
const char *esi_msg_reply(natsMsg *m); /* NULL or "" when there is none */
const void *esi_msg_data(natsMsg *m);
size_t esi_msg_len(natsMsg *m);
/* A "503 No Responders" status message. */
bool esi_msg_no_responders(natsMsg *m);

/* The first value of a header, or NULL; owned by the message. */
const char *esi_msg_header(natsMsg *m, const char *name);
/* Sets (replacing) or adds a header value. */
es_status esi_msg_header_set(natsMsg *m, const char *name, const char *value);
es_status esi_msg_header_add(natsMsg *m, const char *name, const char *value);
/* Header names: *keys (the caller frees the array, not the strings) and
 * *n; a message without headers gives NULL and 0. */
es_status esi_msg_header_keys(natsMsg *m, const char ***keys, int *n);
/* Every value of one header: same ownership as esi_msg_header_keys. */
es_status esi_msg_header_values(natsMsg *m, const char *name, const char ***values, int *n);
/* The bytes the server counts against its max payload (and a stream's
 * max_msg_size): the data and the header block ("NATS/1.0\r\n", a
 * "Name: value\r\n" line per value, "\r\n"). */
es_status esi_msg_wire_size(natsMsg *m, size_t *size);

#endif
