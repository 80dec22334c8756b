/* What the library side (bench.c) and the raw nats.c baseline (raw_nats.c)
 * of es-bench share: the payload, the stores the workloads run in, the
 * clock, and the raw workloads themselves. */
#ifndef ES_BENCH_WORKLOADS_H
#define ES_BENCH_WORKLOADS_H

#include <es/es.h>

#define BENCH_PAYLOAD        256 /* bytes per event */
#define ES_BENCH_EXIT_SERVER 4   /* es-tool's exit code for server trouble */

extern char bench_payload[BENCH_PAYLOAD];
extern int bench_replicas; /* JetStream replicas of the stores the workloads create (--replicas) */

double bench_now_s(void);
/* Reports what failed, with the library's last error, and exits. */
_Noreturn void bench_die(const char *what);
/* The store `name`, emptied (deleted and created again). */
es_store *bench_fresh_store(natsConnection *nc, const char *name);
/* A fresh store holding the 100-event entity account/target among others. */
es_store *bench_store_with_entity(natsConnection *nc, const char *name);

/* The raw workloads: events per second. */
double raw_appends(natsConnection *nc, long n);
double raw_batches(natsConnection *nc, long n);
double raw_loads(natsConnection *nc, long n);
double raw_replay(natsConnection *nc, const char *name, long n);

#endif
