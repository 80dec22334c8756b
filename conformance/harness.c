#include "harness.h"

#include <errno.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *conf_url;
const char *conf_server_bin;
int conf_replicas = 1;

void conf_sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

natsConnection *conf_connect(const char *url)
{
    es_connect_options o;
    es_connect_options_init(&o);
    o.servers = url;
    o.max_reconnect = -1; /* ride out restarts */
    o.reconnect_wait_ms = 100;
    o.timeout_ms = 5000;
    natsConnection *nc = NULL;
    if (es_connect(&o, &nc) != ES_OK)
        fail_msg("cannot connect to %s: %s", url, es_last_error());
    return nc;
}

void conf_store_config_init(es_store_config *cfg)
{
    es_store_config_init(cfg);
    cfg->replicas = conf_replicas;
}

const es_store_config *conf_store_config(void)
{
    static es_store_config cfg;
    conf_store_config_init(&cfg);
    return &cfg;
}

void conf_unique_name(char out[ES_STORE_NAME_MAX + 1])
{
    static unsigned counter;
    snprintf(out, ES_STORE_NAME_MAX + 1, "conf_%d_%u", (int)getpid() % 100000, ++counter);
}

static int setup_with(void **state, bool tenancy)
{
    conf_ctx *c = calloc(1, sizeof *c);
    c->nc = conf_connect(conf_url);
    conf_unique_name(c->name);
    es_store_config cfg;
    conf_store_config_init(&cfg);
    cfg.tenancy = tenancy;
    es_status s = es_store_create(c->nc, c->name, &cfg, NULL, &c->st);
    if (s != ES_OK)
        fail_msg("creating store %s: %s", c->name, es_last_error());
    *state = c;
    return 0;
}

int conf_setup(void **state)
{
    return setup_with(state, false);
}
int conf_setup_tenancy(void **state)
{
    return setup_with(state, true);
}

int conf_teardown(void **state)
{
    conf_ctx *c = *state;
    es_store_destroy(c->st);
    es_store_delete(c->nc, c->name, NULL);
    natsConnection_Destroy(c->nc);
    free(c);
    return 0;
}

void conf_fill_grid(es_store *st)
{
    const char *types[] = {"account", "customer"}, *ids[] = {"x", "y.z", "w w"};
    const char *events[] = {"opened", "changed"};
    for (int round = 0; round < 2; round++)
        for (int t = 0; t < 2; t++)
            for (int i = 0; i < 3; i++)
                for (int e = 0; e < 2; e++) {
                    char data[64];
                    snprintf(data, sizeof data, "%s/%s/%s/%d", types[t], ids[i], events[e], round);
                    es_event_spec s = conf_spec(types[t], ids[i], events[e], data);
                    assert_int_equal(es_append(st, &s, NULL), ES_OK);
                }
}

es_event_spec conf_spec(const char *type, const char *id, const char *event, const char *data)
{
    es_event_spec e;
    es_event_spec_init(&e);
    e.entity_type = type;
    e.entity_id = id;
    e.event_type = event;
    e.data = data;
    e.data_len = data ? strlen(data) : 0;
    return e;
}

typedef struct many_state {
    _Atomic size_t failures;
} many_state;

/* A failure says why (on the library's thread, during the callback): the
 * test's assertion alone showed a count on a cluster, not the cause. */
static void many_done(es_status s, const es_append_result *r, void *closure)
{
    many_state *m = closure;
    if (s == ES_OK)
        return;
    m->failures++;
    fprintf(stderr, "conf_append_many: a batch failed: %s (err_code %d): %s\n",
            es_status_text(s), r ? r->err_code : 0, r && r->error ? r->error : "");
}

void conf_append_many(es_store *st, const char *type, const char *id, const char *event, size_t n)
{
    enum { CHUNK = 1000 };
    static es_event_spec specs[CHUNK];
    static char payload[CHUNK][24];
    many_state m = {0};
    for (size_t done = 0; done < n;) {
        size_t k = n - done < CHUNK ? n - done : CHUNK;
        for (size_t i = 0; i < k; i++) {
            snprintf(payload[i], sizeof payload[i], "%zu", done + i);
            specs[i] = conf_spec(type, id, event, payload[i]);
        }
        assert_int_equal(es_append_batch_async(st, specs, k, many_done, &m), ES_OK);
        done += k;
    }
    assert_int_equal(es_append_flush(st, 60000), ES_OK);
    assert_int_equal(m.failures, 0);
}

static char *dup_n(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

es_status conf_collect(const es_event *ev, void *closure)
{
    conf_seen *s = closure;
    if (s->count == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->seqs = realloc(s->seqs, s->cap * sizeof *s->seqs);
        s->data = realloc(s->data, s->cap * sizeof *s->data);
        s->ids = realloc(s->ids, s->cap * sizeof *s->ids);
        s->events = realloc(s->events, s->cap * sizeof *s->events);
    }
    const void *d;
    size_t len, idlen;
    assert_int_equal(es_event_data(ev, &d, &len), ES_OK);
    const char *id = es_event_entity_id(ev, &idlen);
    s->seqs[s->count] = es_event_seq(ev);
    s->data[s->count] = dup_n(d, len);
    s->ids[s->count] = dup_n(id, idlen);
    s->events[s->count] = strdup(es_event_event_type(ev));
    s->count++;
    return ES_OK;
}

es_status conf_collect_locked(const es_event *ev, void *closure)
{
    conf_locked_seen *ls = closure;
    pthread_mutex_lock(&ls->mu);
    es_status s = conf_collect(ev, &ls->seen);
    pthread_mutex_unlock(&ls->mu);
    return s;
}

size_t conf_locked_count(conf_locked_seen *ls)
{
    pthread_mutex_lock(&ls->mu);
    size_t n = ls->seen.count;
    pthread_mutex_unlock(&ls->mu);
    return n;
}

void conf_seen_free(conf_seen *s)
{
    for (size_t i = 0; i < s->count; i++) {
        free(s->data[i]);
        free(s->ids[i]);
        free(s->events[i]);
    }
    free(s->seqs);
    free(s->data);
    free(s->ids);
    free(s->events);
    memset(s, 0, sizeof *s);
}

natsMsg *conf_raw_get(natsConnection *nc, const char *stream, uint64_t seq)
{
    jsCtx *js = NULL;
    natsMsg *m = NULL;
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    jsErrCode jerr = 0;
    natsStatus s = js_GetMsg(&m, js, stream, seq, NULL, &jerr);
    jsCtx_Destroy(js);
    if (s != NATS_OK)
        fail_msg("js_GetMsg %s seq %llu: %s (%d)", stream, (unsigned long long)seq,
                 natsStatus_GetText(s), (int)jerr);
    return m;
}

uint64_t conf_stream_msgs(natsConnection *nc, const char *stream)
{
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    assert_int_equal(js_GetStreamInfo(&si, js, stream, NULL, NULL), NATS_OK);
    uint64_t n = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    return n;
}

/* ---- a server of the suite's own -------------------------------------- */

#define CLUSTER_NODES 3

/* One node of a cluster of the suite's own: its client, route and
 * monitoring ports, its store in dir/n<i>. */
typedef struct cluster_node {
    pid_t pid;
    int port, route_port, http_port;
} cluster_node;

struct conf_server {
    pid_t pid;
    int port;
    char dir[256];
    char url[192]; /* the client URL, or the cluster's comma-separated three */
    int nodes;     /* 0: one server; else a cluster of this many */
    cluster_node node[CLUSTER_NODES];
    char domain[64]; /* JetStream domain, or "" */
    bool configured; /* started with a config file (a domain, or the caller's) */
    char ready_url[192]; /* what the readiness check connects to (with a user) */
};

/* ---- servers a failed test left ---------------------------------------- */

/* A test that fails half way (cmocka jumps out of it) skips its own
 * conf_server_destroy. Every server of the suite's own is listed here until
 * destroyed; the end of each group (conf_servers_reap) and the suite's exit
 * stop what is left, so a failed run leaves no nats-server behind. Servers
 * forked from the main thread also die with the suite if it is killed. */
#define LIVE_MAX 16

static conf_server *live[LIVE_MAX];
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;

static void live_add(conf_server *s)
{
    static bool at_exit;
    pthread_mutex_lock(&live_mu);
    size_t i = 0;
    while (i < LIVE_MAX && live[i] != NULL)
        i++;
    if (i < LIVE_MAX)
        live[i] = s;
    if (!at_exit)
        at_exit = atexit(conf_servers_reap) == 0;
    pthread_mutex_unlock(&live_mu);
    if (i == LIVE_MAX)
        fail_msg("more than %d servers of the suite's own at once", LIVE_MAX);
}

static void live_remove(const conf_server *s)
{
    pthread_mutex_lock(&live_mu);
    for (size_t i = 0; i < LIVE_MAX; i++)
        if (live[i] == s)
            live[i] = NULL;
    pthread_mutex_unlock(&live_mu);
}

void conf_servers_reap(void)
{
    for (size_t i = 0; i < LIVE_MAX; i++) {
        pthread_mutex_lock(&live_mu);
        conf_server *s = live[i];
        pthread_mutex_unlock(&live_mu);
        if (s != NULL) {
            fprintf(stderr, "es-conformance: stopping the server a failed test left (%s)\n",
                    conf_server_url(s));
            conf_server_destroy(s);
        }
    }
}

/* A server started. To check that a failed or killed test leaves no server
 * behind (conformance/check-no-server-left), ES_CONFORMANCE_AFTER_SERVER_START
 * makes the test fail right there ("fail") or wait a minute ("wait") for
 * the suite to be killed. */
static conf_server *started(conf_server *s)
{
    const char *then = getenv("ES_CONFORMANCE_AFTER_SERVER_START");
    if (then != NULL && strcmp(then, "fail") == 0)
        fail_msg("failing on purpose after starting %s (ES_CONFORMANCE_AFTER_SERVER_START)",
                 s->url);
    if (then != NULL && strcmp(then, "wait") == 0)
        conf_sleep_ms(60000);
    return s;
}

/* In a child about to exec a server: die with the suite. The kernel sends
 * the signal when the forking thread ends, so only the main thread's
 * children ask for it (a helper thread restarting a node ends early). */
static void die_with_parent(bool main_thread, pid_t parent)
{
    if (main_thread && (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent))
        _exit(125);
}

static bool on_main_thread(void)
{
    return getpid() == (pid_t)syscall(SYS_gettid);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void spawn(conf_server *s)
{
    char port[16], log[300], conf[300];
    snprintf(port, sizeof port, "%d", s->port);
    snprintf(log, sizeof log, "%s/server.log", s->dir);
    snprintf(conf, sizeof conf, "%s/server.conf", s->dir);
    bool main_thread = on_main_thread();
    pid_t parent = getpid();
    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        die_with_parent(main_thread, parent);
        /* The server logs to its file: it must not hold the suite's output
         * open (a pipe reading the suite would wait for it). */
        if (freopen("/dev/null", "w", stdout) == NULL || freopen("/dev/null", "w", stderr) == NULL)
            _exit(126);
        if (s->configured) /* a domain, users: only in a config file */
            execl(conf_server_bin, conf_server_bin, "-c", conf, "-a", "127.0.0.1", "-p", port,
                  "-l", log, (char *)NULL);
        else
            execl(conf_server_bin, conf_server_bin, "-a", "127.0.0.1", "-p", port, "-js", "-sd",
                  s->dir, "-l", log, (char *)NULL);
        _exit(127);
    }
    /* Ready when a client gets JetStream answers. */
    for (int i = 0; i < 200; i++) {
        natsConnection *nc = NULL;
        if (natsConnection_ConnectTo(&nc, s->ready_url[0] ? s->ready_url : s->url) == NATS_OK) {
            natsMsg *m = NULL;
            natsStatus st = natsConnection_RequestString(&m, nc, "$JS.API.INFO", "", 500);
            natsMsg_Destroy(m);
            natsConnection_Destroy(nc);
            if (st == NATS_OK)
                return;
        }
        conf_sleep_ms(50);
    }
    fail_msg("the suite's own nats-server did not start (see %s)", log);
}

/* A server not started yet: a store dir (under $TMPDIR) and a free port of
 * its own; listed as live from here on. */
static conf_server *server_new(void)
{
    conf_server *s = calloc(1, sizeof *s);
    assert_non_null(s);
    const char *tmp = getenv("TMPDIR");
    int n = snprintf(s->dir, sizeof s->dir, "%s/es-conformance-XXXXXX",
                     tmp && tmp[0] ? tmp : "/tmp");
    if (n < 0 || (size_t)n >= sizeof s->dir || mkdtemp(s->dir) == NULL) {
        free(s);
        fail_msg("cannot make a store folder under %s", tmp && tmp[0] ? tmp : "/tmp");
    }
    s->port = free_port();
    snprintf(s->url, sizeof s->url, "nats://127.0.0.1:%d", s->port);
    live_add(s);
    return s;
}

/* Its config file: JetStream in its dir (in its domain, if any), then `rest`. */
static void write_config(conf_server *s, const char *rest)
{
    char path[300];
    snprintf(path, sizeof path, "%s/server.conf", s->dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    bool domain = s->domain[0] != '\0';
    fprintf(f, "jetstream { %s%s%sstore_dir: \"%s\" }\n%s\n", domain ? "domain: " : "",
            s->domain, domain ? ", " : "", s->dir, rest ? rest : "");
    assert_int_equal(fclose(f), 0);
    s->configured = true;
}

conf_server *conf_server_start_in(const char *domain)
{
    if (conf_server_bin == NULL)
        return NULL;
    conf_server *s = server_new();
    snprintf(s->domain, sizeof s->domain, "%s", domain ? domain : "");
    if (domain != NULL)
        write_config(s, NULL);
    spawn(s);
    return started(s);
}

conf_server *conf_server_start_config(const char *config, const char *user,
                                      const char *password)
{
    if (conf_server_bin == NULL)
        return NULL;
    conf_server *s = server_new();
    write_config(s, config);
    if (user != NULL)
        snprintf(s->ready_url, sizeof s->ready_url, "nats://%s:%s@127.0.0.1:%d", user, password,
                 s->port);
    spawn(s);
    return started(s);
}

/* ---- a cluster of the suite's own ------------------------------------- */

static void write_node_config(const conf_server *s, int i)
{
    char path[300];
    snprintf(path, sizeof path, "%s/n%d.conf", s->dir, i);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "server_name: n%d\nlisten: 127.0.0.1:%d\nhttp: 127.0.0.1:%d\n"
               "jetstream { store_dir: \"%s/n%d\" }\ncluster { name: conf, listen: 127.0.0.1:%d, "
               "routes: [",
            i, s->node[i].port, s->node[i].http_port, s->dir, i, s->node[i].route_port);
    for (int k = 0; k < s->nodes; k++)
        fprintf(f, "%snats-route://127.0.0.1:%d", k ? ", " : "", s->node[k].route_port);
    fprintf(f, "] }\n");
    assert_int_equal(fclose(f), 0);
}

static void spawn_node(conf_server *s, int i)
{
    char conf[300], log[300];
    snprintf(conf, sizeof conf, "%s/n%d.conf", s->dir, i);
    snprintf(log, sizeof log, "%s/n%d.log", s->dir, i);
    bool main_thread = on_main_thread();
    pid_t parent = getpid();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        die_with_parent(main_thread, parent);
        if (freopen("/dev/null", "w", stdout) == NULL || freopen("/dev/null", "w", stderr) == NULL)
            _exit(126);
        execl(conf_server_bin, conf_server_bin, "-c", conf, "-l", log, (char *)NULL);
        _exit(127);
    }
    s->node[i].pid = pid;
}

static void kill_node(conf_server *s, int i)
{
    if (s->node[i].pid > 0) {
        kill(s->node[i].pid, SIGKILL);
        waitpid(s->node[i].pid, NULL, 0);
        s->node[i].pid = 0;
    }
}

/* True when the node's monitoring port says it is healthy: nats-server's
 * /healthz answers "ok" only once its JetStream is current (meta leader
 * known, every stream and consumer it holds caught up). */
static bool node_healthy(const cluster_node *n)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)n->http_port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    char buf[1024];
    size_t got = 0;
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
        static const char req[] = "GET /healthz HTTP/1.0\r\n\r\n";
        if (write(fd, req, sizeof req - 1) == (ssize_t)(sizeof req - 1)) {
            ssize_t r;
            while (got < sizeof buf - 1 && (r = read(fd, buf + got, sizeof buf - 1 - got)) > 0)
                got += (size_t)r;
        }
    }
    if (fd >= 0)
        close(fd);
    buf[got] = '\0';
    return strstr(buf, " 200 ") != NULL && strstr(buf, "\"ok\"") != NULL;
}

/* Waits (up to 60 s: an election, a node catching up) until every running
 * node is healthy. */
static void wait_cluster(const conf_server *s)
{
    for (int i = 0; i < 1200; i++) {
        bool all = true;
        for (int k = 0; k < s->nodes && all; k++)
            all = s->node[k].pid <= 0 || node_healthy(&s->node[k]);
        if (all)
            return;
        conf_sleep_ms(50);
    }
    fail_msg("the suite's own cluster did not become healthy (see %s/n*.log)", s->dir);
}

static conf_server *cluster_start(void)
{
    conf_server *s = server_new();
    s->nodes = CLUSTER_NODES;
    size_t o = 0;
    for (int i = 0; i < s->nodes; i++) {
        s->node[i].port = i == 0 ? s->port : free_port();
        s->node[i].route_port = free_port();
        s->node[i].http_port = free_port();
        o += (size_t)snprintf(s->url + o, sizeof s->url - o, "%snats://127.0.0.1:%d",
                              i ? "," : "", s->node[i].port);
        assert_true(o < sizeof s->url);
    }
    for (int i = 0; i < s->nodes; i++)
        write_node_config(s, i);
    for (int i = 0; i < s->nodes; i++)
        spawn_node(s, i);
    wait_cluster(s);
    return started(s);
}

int conf_server_nodes(const conf_server *s)
{
    return s->nodes;
}

void conf_server_kill_node(conf_server *s, int i)
{
    assert_true(i >= 0 && i < s->nodes);
    kill_node(s, i);
}

void conf_server_start_node(conf_server *s, int i)
{
    assert_true(i >= 0 && i < s->nodes && s->node[i].pid <= 0);
    spawn_node(s, i);
}

int conf_server_stream_leader(natsConnection *nc, const char *stream)
{
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    int leader = -1;
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    if (js_GetStreamInfo(&si, js, stream, NULL, NULL) == NATS_OK && si->Cluster != NULL &&
        si->Cluster->Leader != NULL && si->Cluster->Leader[0] == 'n')
        leader = atoi(si->Cluster->Leader + 1); /* the nodes are named n<i> */
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    return leader;
}

/* Whether the store's stream answers a publish: one that expects an
 * impossible last sequence, which the stream refuses without storing. */
static bool store_answers(natsConnection *nc, es_store *st)
{
    es_filter f;
    es_filter_init(&f);
    f.entity_type = "probe";
    f.entity_id = "ready";
    f.event_type = "checked";
    char subject[256];
    assert_int_equal(es_filter_subject(st, &f, subject, sizeof subject), ES_OK);
    natsMsg *m = NULL, *reply = NULL;
    assert_int_equal(natsMsg_Create(&m, subject, NULL, NULL, 0), NATS_OK);
    assert_int_equal(natsMsgHeader_Set(m, "Nats-Expected-Last-Sequence", "999999999999"), NATS_OK);
    natsStatus s = natsConnection_RequestMsg(&reply, nc, m, 1000);
    bool answered = s == NATS_OK && natsMsg_GetDataLength(reply) > 0;
    natsMsg_Destroy(reply);
    natsMsg_Destroy(m);
    return answered;
}

void conf_wait_store_ready(natsConnection *nc, es_store *st)
{
    if (conf_replicas <= 1)
        return;
    for (int i = 0; i < 300; i++) {
        if (store_answers(nc, st))
            return;
        conf_sleep_ms(100);
    }
    fail_msg("store %s took no publish for 30 s", es_store_stream(st));
}

conf_server *conf_server_start(void)
{
    if (conf_server_bin != NULL && conf_replicas > 1)
        return cluster_start();
    return conf_server_start_in(NULL);
}

const char *conf_server_url(const conf_server *s)
{
    return s->url;
}

void conf_server_kill(conf_server *s)
{
    for (int i = 0; i < s->nodes; i++) /* all at once: no client hops to a node still up */
        if (s->node[i].pid > 0)
            kill(s->node[i].pid, SIGKILL);
    for (int i = 0; i < s->nodes; i++)
        kill_node(s, i);
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}

void conf_server_restart(conf_server *s)
{
    if (s->nodes == 0) {
        conf_server_kill(s);
        spawn(s);
        return;
    }
    bool down = true; /* after conf_server_kill: all nodes come back together */
    for (int i = 0; i < s->nodes; i++)
        down = down && s->node[i].pid <= 0;
    if (down) {
        for (int i = 0; i < s->nodes; i++)
            spawn_node(s, i);
        wait_cluster(s);
        return;
    }
    for (int i = 0; i < s->nodes; i++) { /* rolling: the quorum stays */
        kill_node(s, i);
        spawn_node(s, i);
        wait_cluster(s);
    }
}

void conf_server_destroy(conf_server *s)
{
    if (s == NULL)
        return;
    live_remove(s);
    conf_server_kill(s);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", s->dir);
    free(s);
}
