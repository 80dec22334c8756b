/* Message accessors over nats.c (see msg.h). */
#include "transport/msg.h"

#include <stdlib.h>
#include <string.h>

#include "base/internal.h"
#include "transport/conn.h"

es_status esi_msg_create(const char *subject, const char *reply, const void *data, size_t len,
                         natsMsg **out)
{
    *out = NULL;
    if (len > INT32_MAX)
        return es_error(ES_ERR_TOO_LARGE, "a message of %zu bytes", len);
    return esi_nats_status(natsMsg_Create(out, subject, reply, data, (int)len),
                           "creating a message");
}

void esi_msg_destroy(natsMsg *m)
{
    natsMsg_Destroy(m);
}

const char *esi_msg_subject(natsMsg *m)
{
    return natsMsg_GetSubject(m);
}

const char *esi_msg_reply(natsMsg *m)
{
    return natsMsg_GetReply(m);
}

const void *esi_msg_data(natsMsg *m)
{
    return natsMsg_GetData(m);
}

size_t esi_msg_len(natsMsg *m)
{
    int n = natsMsg_GetDataLength(m);
    return n > 0 ? (size_t)n : 0;
}

bool esi_msg_no_responders(natsMsg *m)
{
    return natsMsg_IsNoResponders(m);
}

const char *esi_msg_header(natsMsg *m, const char *name)
{
    const char *v = NULL;
    return natsMsgHeader_Get(m, name, &v) == NATS_OK ? v : NULL;
}

es_status esi_msg_header_set(natsMsg *m, const char *name, const char *value)
{
    return esi_nats_status(natsMsgHeader_Set(m, name, value), "setting a header");
}

es_status esi_msg_header_add(natsMsg *m, const char *name, const char *value)
{
    return esi_nats_status(natsMsgHeader_Add(m, name, value), "adding a header");
}

es_status esi_msg_header_keys(natsMsg *m, const char ***keys, int *n)
{
    *keys = NULL;
    *n = 0;
    natsStatus ns = natsMsgHeader_Keys(m, keys, n);
    return ns == NATS_NOT_FOUND ? ES_OK : esi_nats_status(ns, "reading header names");
}

es_status esi_msg_header_values(natsMsg *m, const char *name, const char ***values, int *n)
{
    *values = NULL;
    *n = 0;
    natsStatus ns = natsMsgHeader_Values(m, name, values, n);
    return ns == NATS_NOT_FOUND ? ES_OK : esi_nats_status(ns, "reading header values");
}

/* Sizes of the header block's fixed parts: "NATS/1.0\r\n", ": " and
 * "\r\n" of each line, and the closing "\r\n". */
#define HEADER_STATUS_LINE 10
#define HEADER_LINE_EXTRA 4
#define HEADER_END 2

es_status esi_msg_wire_size(natsMsg *m, size_t *size)
{
    *size = esi_msg_len(m);
    const char **keys = NULL;
    int nkeys = 0;
    es_status s = esi_msg_header_keys(m, &keys, &nkeys);
    if (s != ES_OK || nkeys == 0) {
        free((void *)keys);
        return s;
    }
    size_t headers = HEADER_STATUS_LINE + HEADER_END;
    for (int k = 0; k < nkeys && s == ES_OK; k++) {
        const char **values = NULL;
        int nvalues = 0;
        s = esi_msg_header_values(m, keys[k], &values, &nvalues);
        for (int v = 0; v < nvalues; v++)
            headers += strlen(keys[k]) + strlen(values[v]) + HEADER_LINE_EXTRA;
        free((void *)values);
    }
    free((void *)keys);
    *size += headers;
    return s;
}
