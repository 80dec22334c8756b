/* Imports (es/import.h): events published as stored, through the store's
 * publisher, so they share its window and acknowledgement handling with
 * asynchronous appends. */
#include <es/import.h>

#include <string.h>

#include "base/alloc.h"
#include "base/internal.h"
#include "headers.h"
#include "store_impl.h"
#include "transport/msg.h"
#include "transport/publisher.h"
#include "wire.h"

/* The local subject's shape and parts. */
static es_status check_subject(const char *subject, bool tenancy)
{
    size_t len = subject ? strlen(subject) : 0;
    char copy[ES_SUBJECT_MAX];
    if (len == 0 || len >= sizeof copy)
        return es_error(ES_ERR_INVALID, "import: the subject must be 1 to %d bytes",
                        (int)sizeof copy - 1);
    memcpy(copy, subject, len + 1);
    esi_subject_parts p;
    es_status s = esi_subject_split_local(copy, tenancy, &p);
    if (s == ES_OK)
        s = esi_subject_parts_check(&p, NULL, NULL);
    if (s != ES_OK)
        return es_error(ES_ERR_INVALID, "import: subject '%.80s': %s", subject, es_last_error());
    return ES_OK;
}

/* Through a tenant handle, an event of that tenant only (its subject was
 * checked, so its first token is a tenant). */
static es_status check_tenant(const es_store *st, const char *subject)
{
    size_t len = strcspn(subject, ".");
    if (len == strlen(st->tenant) && memcmp(subject, st->tenant, len) == 0)
        return ES_OK;
    return es_error(ES_ERR_INVALID, "import: subject '%.80s' is not of tenant '%s', the handle's",
                    subject, st->tenant);
}

/* A header name is a token: printable ASCII without ':'. */
static bool valid_name(const char *k)
{
    size_t len = k ? strlen(k) : 0;
    if (len == 0 || len > 256)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)k[i] <= 0x20 || (unsigned char)k[i] >= 0x7f || k[i] == ':')
            return false;
    return true;
}

/* One line: a CR or LF would end the header block early. */
static bool valid_value(const char *v)
{
    return v != NULL && strpbrk(v, "\r\n") == NULL;
}

es_status es_import_check(const es_raw_event *ev, bool tenancy)
{
    if (ev == NULL)
        return es_error(ES_ERR_INVALID, "import: event is NULL");
    if ((ev->header_count > 0 && ev->headers == NULL) || (ev->payload_len > 0 && !ev->payload))
        return es_error(ES_ERR_INVALID, "import: headers or payload missing for their count");
    es_status s = check_subject(ev->subject, tenancy);
    for (size_t i = 0; i < ev->header_count && s == ES_OK; i++) {
        const es_header *h = &ev->headers[i];
        if (!valid_name(h->name))
            s = es_error(ES_ERR_INVALID, "import: invalid header name '%.40s'",
                         h->name ? h->name : "(null)");
        else if (esi_header_is_control(h->name))
            s = es_error(ES_ERR_INVALID,
                         "import: header %.40s is a JetStream control header: not part of an "
                         "event",
                         h->name);
        else if (!valid_value(h->value))
            s = es_error(ES_ERR_INVALID, "import: header %.40s: a value is one line", h->name);
    }
    return s;
}

/* The message of one import, with the ticket's reply subject. */
static es_status build(const es_store *st, const es_raw_event *ev, const char *reply, natsMsg **out)
{
    char subject[ES_SUBJECT_MAX + ES_STORE_NAME_MAX + 8];
    char *p = esi_wire_put_store_prefix(subject, st->name);
    *p++ = '.';
    memcpy(p, ev->subject, strlen(ev->subject) + 1); /* checked to fit */
    natsMsg *m = NULL;
    es_status s = esi_msg_create(subject, reply, ev->payload, ev->payload_len, &m);
    /* Names may repeat: each value is added after those of its name. */
    for (size_t i = 0; i < ev->header_count && s == ES_OK; i++)
        s = esi_msg_header_add(m, ev->headers[i].name, ev->headers[i].value);
    /* Only into this store's stream, whatever else may listen on the subject. */
    if (s == ES_OK)
        s = esi_msg_header_set(m, ES_HDR_EXPECTED_STREAM, st->stream);
    if (s != ES_OK) {
        esi_msg_destroy(m);
        return s;
    }
    *out = m;
    return ES_OK;
}

typedef struct import_call {
    es_import_cb cb;
    void *closure;
} import_call;

static bool import_done(es_status s, const esi_pub_result *r, const char *text, natsMsg **msgs,
                        size_t n, void *closure)
{
    (void)msgs;
    (void)n;
    import_call *c = closure;
    es_import_result res = {.status = s,
                            .seq = r->seq,
                            .duplicate = r->duplicate,
                            .err_code = r->err_code,
                            .error = s == ES_OK ? ""
                                     : text     ? text
                                                : es_status_text(s)};
    c->cb(&res, c->closure);
    esi_free(c);
    return false;
}

es_status es_import_async(es_store *st, const es_raw_event *ev, es_import_cb cb, void *closure)
{
    if (st == NULL || cb == NULL)
        return es_error(ES_ERR_INVALID, "es_import_async: store and callback are required");
    es_status s = es_import_check(ev, st->config.tenancy);
    if (s == ES_OK && st->root != NULL)
        s = check_tenant(st, ev->subject);
    if (s != ES_OK)
        return s;
    size_t limit = esi_store_max_payload(st);
    if (ev->payload_len > limit)
        return es_error(ES_ERR_TOO_LARGE, "import: %zu bytes of payload; the limit is %zu",
                        ev->payload_len, limit);
    import_call *c = esi_malloc(sizeof *c);
    if (c == NULL)
        return es_error(ES_ERR_NOMEM, "out of memory");
    *c = (import_call){cb, closure};
    esi_pub_ticket t;
    s = esi_publisher_reserve(st->pub, false, import_done, c, &t);
    if (s != ES_OK) {
        esi_free(c);
        return s;
    }
    natsMsg **msgs = esi_calloc(1, sizeof *msgs);
    s = msgs ? build(st, ev, t.reply, &msgs[0]) : es_error(ES_ERR_NOMEM, "out of memory");
    if (s != ES_OK) {
        esi_free(msgs);
        esi_publisher_cancel(st->pub, &t);
        esi_free(c);
        return s;
    }
    esi_publisher_send(st->pub, &t, msgs, 1);
    return ES_OK;
}
