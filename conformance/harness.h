/* Shared fixtures of the conformance suite: a connection to the server
 * under test, a freshly named store per test (deleted afterwards), a few
 * raw nats.c helpers for checking the wire, and control of a server the
 * suite starts itself (for restart tests). */
#ifndef CONF_HARNESS_H
#define CONF_HARNESS_H

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <es/es.h>

typedef struct conf_ctx {
    natsConnection *nc;
    es_store *st;
    char name[ES_STORE_NAME_MAX + 1];
} conf_ctx;

extern const char *conf_url;        /* server under test: one URL or a comma-separated list */
extern const char *conf_server_bin; /* nats-server binary for restart tests, or NULL */
extern int conf_replicas;           /* JetStream replicas of the stores the tests create */

/* A connection to `url` (one URL or a comma-separated list, as es_connect
 * takes it) that rides out restarts; fails the test when none answers. */
natsConnection *conf_connect(const char *url);
/* es_store_config_init, then the suite's replica count; conf_store_config()
 * is such a default configuration, for es_store_create. */
void conf_store_config_init(es_store_config *cfg);
const es_store_config *conf_store_config(void);
void conf_unique_name(char out[ES_STORE_NAME_MAX + 1]);

/* cmocka fixtures: *state becomes a conf_ctx with a fresh store (default
 * config, or tenancy for the _tenancy variant). */
int conf_setup(void **state);
int conf_setup_tenancy(void **state);
int conf_teardown(void **state);

/* An event spec for entity (type, id) with event type and a text payload. */
es_event_spec conf_spec(const char *type, const char *id, const char *event, const char *data);

/* Appends n events to (type, id) with payload "<prefix><i>", as async
 * batches of up to 1000; asserts success. */
void conf_append_many(es_store *st, const char *type, const char *id, const char *event, size_t n);

/* 2 entity types (account, customer) x 3 ids (x, "y.z", "w w") x 2 event
 * types (opened, changed), twice: 24 events, in that order, with payload
 * "<type>/<id>/<event>/<round>". */
void conf_fill_grid(es_store *st);

/* Events collected by conf_collect (an es_event_cb). */
typedef struct conf_seen {
    size_t count;
    size_t cap;
    uint64_t *seqs;
    char **data;   /* payload copies, NUL-terminated */
    char **ids;    /* entity ids, unescaped */
    char **events; /* event types */
} conf_seen;

es_status conf_collect(const es_event *ev, void *closure);
void conf_seen_free(conf_seen *s);

/* conf_seen behind a mutex, for callbacks on another thread (watches):
 * conf_collect_locked takes a conf_locked_seen as its closure. */
typedef struct conf_locked_seen {
    pthread_mutex_t mu; /* pthread_mutex_init it */
    conf_seen seen;
} conf_locked_seen;
es_status conf_collect_locked(const es_event *ev, void *closure);
size_t conf_locked_count(conf_locked_seen *ls);

/* The stored message at `seq`, read with nats.c's own JetStream API. */
natsMsg *conf_raw_get(natsConnection *nc, const char *stream, uint64_t seq);
uint64_t conf_stream_msgs(natsConnection *nc, const char *stream);

/* A nats-server of the suite's own (needs conf_server_bin): start on a free
 * loopback port with a fresh store dir; restart keeps port and store. When
 * the suite runs with --replicas above 1 (a cluster under test),
 * conf_server_start starts a 3-node cluster of its own instead:
 * conf_server_url lists the three, kill stops all three (an outage), and
 * restart kills -9 and restarts one node at a time (a rolling restart, so
 * every stream's leader and every client's node goes down once while the
 * cluster keeps its quorum). */
typedef struct conf_server conf_server;
conf_server *conf_server_start(void);
/* The same with a JetStream domain (NULL: none). */
conf_server *conf_server_start_in(const char *domain);
/* The same with `config` (nats-server's syntax, written to a file with a
 * JetStream store dir added: accounts, users, permissions), ready when
 * `user` (may be NULL) with `password` gets JetStream answers. */
conf_server *conf_server_start_config(const char *config, const char *user,
                                      const char *password);
const char *conf_server_url(const conf_server *s);
void conf_server_kill(conf_server *s);    /* SIGKILL, store kept */
void conf_server_restart(conf_server *s); /* start again on the same port and store */
void conf_server_destroy(conf_server *s); /* stop and remove its store */
/* Destroys every server of the suite's own still running: those of a test
 * that failed before its conf_server_destroy. main.c calls it after each
 * group; it also runs at exit. */
void conf_servers_reap(void);

/* Nodes of a cluster of the suite's own (conf_server_start with --replicas
 * above 1): how many (0: a single server), kill -9 node i (store kept),
 * start it again (without waiting: the cluster elects in its own time),
 * and the node leading a stream's RAFT group now (-1: none). */
int conf_server_nodes(const conf_server *s);
void conf_server_kill_node(conf_server *s, int i);
void conf_server_start_node(conf_server *s, int i);
int conf_server_stream_leader(natsConnection *nc, const char *stream);
/* With --replicas above 1, waits up to 30 s until the store's stream
 * answers a publish (one it refuses, storing nothing): a store created on a
 * cluster just started answered its first appends with "no responders"
 * (ES_ERR_CONNECTION). */
void conf_wait_store_ready(natsConnection *nc, es_store *st);

void conf_sleep_ms(int64_t ms);

/* Groups, one per file. */
int conf_run_store(void);
int conf_run_append(void);
int conf_run_batch(void);
int conf_run_occ(void);
int conf_run_read(void);
int conf_run_filters(void);
int conf_run_watch(void);
int conf_run_concurrency(void);
int conf_run_tenancy(void);
int conf_run_tenant(void);
int conf_run_envelope(void);
int conf_run_checkpoint(void);
int conf_run_snapshot(void);
int conf_run_projection(void);
int conf_run_domain(void);
int conf_run_inspect(void);
int conf_run_import(void);
int conf_run_connect(void);
int conf_run_expect(void);
int conf_run_failover(void);

#endif
