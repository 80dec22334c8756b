/* The store handle's insides (private). */
#ifndef ES_STORE_IMPL_H
#define ES_STORE_IMPL_H

#include <es/envelope.h>
#include <es/store.h>
#include <es/subject.h>

#include "transport/js.h"
#include "transport/publisher.h"
#include "wire.h"

struct es_store {
    natsConnection *nc; /* the caller's; never closed here */
    esi_js *js;         /* over nc, with the options' domain or prefix and timeout */
    char name[ES_STORE_NAME_MAX + 1];
    char stream[ES_STREAM_NAME_MAX]; /* "ES_" + name */
    es_store_config config;          /* as the server reported it */
    es_store_options opts;
    esi_publisher *pub;   /* the in-flight append machinery */
    es_keyring *keyring;  /* encrypting store with a master key, else NULL */
    es_envelope *env;     /* NULL when events travel as they are */
    es_dict_source dicts; /* the envelope's dictionaries, from KV */
    /* A tenant handle (es/tenant.h): the store handle it views, which owns
     * everything above, and the tenant every call is confined to. NULL and
     * empty on a store handle. */
    const es_store *root;
    char tenant[ES_NAME_MAX + 1];
};

/* The tenant an event or filter of `st` is about: `given`, or a tenant
 * handle's own when `given` is NULL. ES_ERR_INVALID when a tenant handle is
 * given another tenant. */
es_status esi_store_tenant_of(const es_store *st, const char *given, const char **out);

/* The tenant of event `index` of an append: none without tenancy, a valid
 * one with it, the handle's own through a tenant handle (ES_ERR_INVALID
 * saying which rule it breaks). */
es_status esi_tenant_check(const es_store *st, const char *given, size_t index);

/* ES_ERR_INVALID for a tenant handle: `call` acts on the whole store. */
es_status esi_store_whole(const es_store *st, const char *call);

/* Opens (creating when missing) one of the store's buckets, with the store's
 * replicas and storage. The store must outlive *out (esi_kv_close). */
es_status esi_store_kv_open(es_store *st, esi_bucket_kind kind, int history, int32_t max_value_size,
                            esi_kv **out);

/* A JetStream API request about the store: `fmt` names the API after the
 * prefix ("CONSUMER.INFO.%s.%s"); reply as esi_js_request. */
es_status esi_store_api(const es_store *st, json_t *body, json_t **reply, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Gives the store's buckets that exist (every kind of wire.h) `replicas`
 * copies (esi_kv_set_replicas). */
es_status esi_store_set_bucket_replicas(const esi_js *js, const char *name, int replicas);

/* The configuration of the store `name` as the server reports it;
 * ES_ERR_NOT_FOUND when there is no such store. */
es_status esi_store_read_config(const esi_js *js, const char *name, es_store_config *cfg);

/* Deletes the store's buckets (every kind of wire.h), those that exist. */
es_status esi_store_delete_buckets(const esi_js *js, const char *name);

/* es_store_open over any JetStream context (tests: a scripted server under
 * the connection table). Takes `js`, freed on failure too; the handle has no
 * natsConnection (es_store_connection gives NULL) and nothing that needs one
 * (KV watches) works on it. */
es_status esi_store_open_js(esi_js *js, const char *name, const es_store_options *opts,
                            es_store **out);

/* A JetStream context over `nc` with the options' domain, prefix and timeout
 * (opts may be NULL). The caller owns *out. */
es_status esi_store_js(natsConnection *nc, const es_store_options *opts, esi_js **out);

/* ES_OK when a stream's config is an event store's (its one subject
 * "$ES.<name>.>", atomic batches and direct gets allowed), else
 * ES_ERR_INVALID saying so: a stream we did not make is left alone. */
es_status esi_store_check_stream(json_t *config, const char *name);

/* The store info of a stream info reply (config, state, created). */
void esi_store_info_from_json(json_t *stream_info, es_store_info *info);

/* The largest payload an event of the store may have: the server's max
 * payload or the store's max event size, whichever is smaller (headers come
 * on top; the server refuses what still does not fit). */
size_t esi_store_max_payload(const es_store *st);

#endif
