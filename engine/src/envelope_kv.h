/* The envelope's keys and dictionaries kept in a store's KV buckets
 * (private): the keyring backend over `ES_<store>_keys`, the dictionary
 * source over `ES_<store>_dicts`. */
#ifndef ES_ENVELOPE_KV_H
#define ES_ENVELOPE_KV_H

#include <es/envelope.h>
#include <es/keyring.h>

#include "transport/js.h"

typedef struct esi_kv_place {
    const esi_js *js; /* borrowed: outlives what is made here */
    const char *store;
    int replicas;        /* of a bucket these calls create: the store's */
    bool memory_storage; /* the same: the store's storage type */
} esi_kv_place;

/* A keyring whose records live in ES_<store>_keys (created when missing),
 * its master key checked (es_keyring_check_master): ES_ERR_CRYPTO when it
 * is not the key the bucket's records were written with. */
es_status esi_keyring_open_kv(const esi_kv_place *at, const es_keyring_options *opt,
                             es_keyring **out);

/* A dictionary source over ES_<store>_dicts, bound on first use. The caller
 * owns *out (esi_dict_source_kv_destroy). */
es_status esi_dict_source_kv_create(const esi_kv_place *at, es_dict_source *out);
void esi_dict_source_kv_destroy(es_dict_source *src);

#endif
