/* Shared by the projection's definition (projection_config.c) and its
 * runner (projection.c). Private; exposed for unit tests. */
#ifndef ES_PROJECTION_IMPL_H
#define ES_PROJECTION_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <es/projection.h>

/* The priority group every ordered projection's pulls belong to. */
#define ES_PROJECTION_GROUP "es"
/* "<name>_p<i>" */
#define ES_PROJECTION_CONSUMER_MAX (ES_PROJECTION_NAME_MAX + 8)

/* Metadata keys on each consumer: what makes it part of a projection. */
#define ES_META_PROJECTION "es_projection"
#define ES_META_ORDERED    "es_ordered"
#define ES_META_PARTITIONS "es_partitions"
#define ES_META_PARTITION  "es_partition"

es_status esi_projection_check_name(const char *name);

/* The durable consumer of partition i: "<name>" when there is one
 * partition, else "<name>_p<i>". */
void esi_projection_consumer_name(const char *name, int partitions, int i,
                                 char out[ES_PROJECTION_CONSUMER_MAX]);

/* The number of partitions the configuration asks for (1 when unordered). */
int esi_projection_partition_count(const es_projection_config *cfg);

/* Checks the configuration (NULL fields take their defaults in `out`). */
es_status esi_projection_config_resolve(const es_projection_config *cfg, es_projection_config *out);

/* The JetStream request creating (or, with update, updating) partition i's
 * consumer. `subjects` are the filters as subjects. */
json_t *esi_projection_consumer_request(const char *stream, const char *name,
                                       const es_projection_config *cfg, const char *const *subjects,
                                       size_t nsubjects, int partition, bool update);

/* Fills the settings and the lag of partition i from a consumer info. */
void esi_projection_info_add(es_projection_info *info, json_t *consumer_info, int partition);

/* What an ordered worker asks of its consumer when it must make sure that
 * nothing before its pull is out with anyone else (a new pin, or
 * redeliveries, which the server does not always send in stream order). */
typedef struct esi_consumer_state {
    uint64_t floor_seq;      /* every event up to it is acknowledged (or terminated) */
    uint64_t floor_delivery; /* likewise every delivery numbered up to it (a redelivery
                                keeps its first number) */
    uint64_t ack_pending;    /* delivered and not acknowledged */
    json_t *info;            /* the consumer info (owned): its filters */
} esi_consumer_state;

es_status esi_consumer_state_get(es_store *st, const char *consumer, esi_consumer_state *out);
void esi_consumer_state_free(esi_consumer_state *cs);

/* Whether the stream holds an event of the consumer's filters after
 * `after` and before `before` (one direct get per filter). */
es_status esi_consumer_has_between(es_store *st, const esi_consumer_state *cs, uint64_t after,
                                   uint64_t before, bool *found);

#endif
