/* zstd dictionaries of a store: kept in its KV bucket `ES_<store>_dicts`
 * under their own ids, so that every reader finds the dictionary an event
 * names (Es-Dict). Train one with es_dict_train (es/envelope.h) and turn it
 * on with es_store_config.compress_dict. */
#ifndef ES_DICT_H
#define ES_DICT_H

#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

#include <es/export.h>
#include <es/status.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Stores a dictionary in the store's bucket (created when missing, with the
 * store's replicas and storage type, or one file replica when the store
 * does not exist yet) under its own id, which it returns in *dict_id (may
 * be NULL). Dictionaries are immutable: storing the same one again is
 * ES_OK, another one under a used id ES_ERR_EXISTS; ES_ERR_INVALID for
 * bytes that are not a dictionary. */
ES_API es_status es_dict_put(natsConnection *nc, const char *store, const uint8_t *dict, size_t len,
                      uint32_t *dict_id);

#ifdef __cplusplus
}
#endif
#endif
