/* The store handle's insides (private). */
#ifndef ES_STORE_IMPL_H
#define ES_STORE_IMPL_H

#include <es/envelope.h>
#include <es/store.h>
#include <es/subject.h>

typedef struct es_publisher es_publisher;

struct es_store {
    natsConnection *nc; /* the caller's; never closed here */
    char name[ES_STORE_NAME_MAX + 1];
    char stream[ES_STORE_NAME_MAX + 4]; /* "ES_" + name */
    es_store_config config;             /* as the server reported it */
    es_store_options opts;
    es_publisher *pub;   /* the in-flight append machinery */
    es_keyring *keyring; /* encrypting store with a master key, else NULL */
    es_envelope *env;    /* NULL when events travel as they are */
    es_dict_source dicts; /* the envelope's dictionaries, from KV */
};

/* KV buckets belonging to a store are named ES_<store>_<suffix>; these are the
 * suffixes es_store_delete() removes with the store. */
extern const char *const es_store_bucket_suffixes[];

#endif
