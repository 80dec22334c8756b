/* A subject's messages by direct gets or, for a confined user, by an
 * ordered consumer and subject-form direct gets (scan.h). */
#include "transport/scan.h"

#include <string.h>

#include "base/internal.h"
#include "transport/consumer.h"
#include "transport/msg.h"

#define SCAN_HEARTBEAT_MS 2000
#define SCAN_WAIT_MS      10000 /* no delivery this long with messages pending: give up */

static es_status scan_by_consumer(const esi_js *js, const char *stream, const esi_dg_request *req,
                                  esi_dg_cb cb, void *closure, uint64_t *last_seq)
{
    if (req->start_seq == 0)
        return es_error(ES_ERR_UNSUPPORTED,
                        "a confined read starts from a sequence, not a time");
    const char *filters[1] = {req->filter};
    esi_oc *oc = NULL;
    uint64_t pending = 0, delivered = 0;
    es_status s = esi_oc_create(js, stream, filters, 1, req->start_seq, SCAN_HEARTBEAT_MS, &oc,
                                &pending);
    while (s == ES_OK && pending > 0 && (req->max_msgs == 0 || delivered < req->max_msgs)) {
        esi_oc_msg m;
        s = esi_oc_next(oc, SCAN_WAIT_MS, &m);
        if (s == ES_ERR_TIMEOUT && esi_oc_pending(oc) == 0) {
            s = ES_OK; /* the server recounted (consumer.h): nothing more to come */
            break;
        }
        if (s == ES_ERR_TIMEOUT)
            s = es_error(ES_ERR_TIMEOUT, "read: no delivery for %d ms with %llu pending",
                         SCAN_WAIT_MS, (unsigned long long)pending);
        if (s != ES_OK)
            break;
        pending = m.pending;
        if (req->up_to_seq && m.seq > req->up_to_seq) {
            esi_msg_destroy(m.msg);
            break;
        }
        s = cb(m.msg, esi_msg_subject(m.msg), m.seq, m.stored_ns, closure);
        esi_msg_destroy(m.msg);
        if (s != ES_OK)
            break;
        delivered++;
        if (last_seq)
            *last_seq = m.seq;
    }
    esi_oc_destroy(oc);
    return s;
}

es_status esi_subject_scan(const esi_js *js, const char *stream, const esi_dg_request *req,
                           bool confined, esi_dg_cb cb, void *closure, uint64_t *last_seq)
{
    if (last_seq)
        *last_seq = 0;
    if (!confined)
        return esi_direct_get(js, stream, req, cb, closure, last_seq);
    return scan_by_consumer(js, stream, req, cb, closure, last_seq);
}

static es_status keep_seq(natsMsg *msg, const char *subject, uint64_t seq, int64_t stored_ns,
                          void *closure)
{
    (void)msg, (void)subject, (void)stored_ns;
    *(uint64_t *)closure = seq;
    return ES_OK;
}

es_status esi_subject_last_seq(const esi_js *js, const char *stream, const char *filter,
                               bool confined, uint64_t *seq)
{
    *seq = 0;
    if (!confined)
        return esi_direct_last_seq(js, stream, filter, seq);
    /* The subject form of a direct get takes no wildcard (a publish
     * subject), and a filter here usually has one: the consumer reads the
     * filter's messages through (an entity's: few). */
    esi_dg_request req = {.filter = filter, .start_seq = 1};
    return scan_by_consumer(js, stream, &req, keep_seq, seq, NULL);
}
