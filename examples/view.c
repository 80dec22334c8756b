/* Shared plumbing of the view examples: see view.h. */
#include "view.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void view_parse_args(int argc, char **argv, const char *tool, const char *usage, view_args *a)
{
    memset(a, 0, sizeof *a);
    a->server = getenv("NATS_URL");
    a->store = "atproto";
    a->name = tool;
    a->partitions = 1;
    a->instances = 1;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        bool has_value = i + 1 < argc;
        if (strcmp(arg, "--server") == 0 && has_value)
            a->server = argv[++i];
        else if (strcmp(arg, "--store") == 0 && has_value)
            a->store = argv[++i];
        else if (strcmp(arg, "--bucket") == 0 && has_value)
            a->bucket = argv[++i];
        else if (strcmp(arg, "--name") == 0 && has_value)
            a->name = argv[++i];
        else if (strcmp(arg, "--partitions") == 0 && has_value)
            a->partitions = atoi(argv[++i]);
        else if (strcmp(arg, "--instance") == 0 && has_value)
            a->instance = atoi(argv[++i]);
        else if (strcmp(arg, "--instances") == 0 && has_value)
            a->instances = atoi(argv[++i]);
        else if (strcmp(arg, "--exit-when-caught-up") == 0)
            a->exit_when_caught_up = true;
        else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(usage, stdout);
            exit(0);
        } else if (arg[0] != '-' && a->command == NULL)
            a->command = arg;
        else if (arg[0] != '-' && a->operand == NULL)
            a->operand = arg;
        else {
            fprintf(stderr, "%s: unexpected argument '%s'\n%s", tool, arg, usage);
            exit(2);
        }
    }
    if (a->partitions < 1 || a->instances < 1 || a->instance < 0 || a->instance >= a->instances) {
        fprintf(stderr, "%s: --partitions >= 1 and 0 <= --instance < --instances\n", tool);
        exit(2);
    }
}

static void die(const char *what)
{
    fprintf(stderr, "%s: %s\n", what, es_last_error());
    exit(1);
}

es_status view_nats_status(natsStatus s)
{
    switch (s) {
    case NATS_OK: return ES_OK;
    case NATS_NOT_FOUND: return ES_ERR_NOT_FOUND;
    case NATS_TIMEOUT: return ES_ERR_TIMEOUT;
    case NATS_NO_MEMORY: return ES_ERR_NOMEM;
    default: return ES_ERR_CONNECTION; /* worth a retry */
    }
}

void view_open(const view_args *a, const char *suffix, bool create, view *v)
{
    memset(v, 0, sizeof *v);
    natsOptions *o = NULL;
    natsOptions_Create(&o);
    natsOptions_SetURL(o, a->server ? a->server : NATS_DEFAULT_URL);
    natsOptions_SetMaxReconnect(o, -1); /* a view outlives server restarts */
    natsOptions_SetReconnectWait(o, 250);
    natsStatus ns = natsConnection_Connect(&v->nc, o);
    natsOptions_Destroy(o);
    if (ns != NATS_OK) {
        fprintf(stderr, "cannot connect to %s: %s\n", a->server ? a->server : NATS_DEFAULT_URL,
                natsStatus_GetText(ns));
        exit(1);
    }
    if (es_store_open(v->nc, a->store, NULL, &v->store) != ES_OK)
        die(a->store);
    snprintf(v->bucket, sizeof v->bucket, "%s", a->bucket ? a->bucket : "");
    if (a->bucket == NULL)
        snprintf(v->bucket, sizeof v->bucket, "%s_%s", a->store, suffix);
    natsConnection_JetStream(&v->js, v->nc, NULL);
    ns = js_KeyValue(&v->kv, v->js, v->bucket);
    if (ns == NATS_NOT_FOUND && create) {
        kvConfig cfg;
        kvConfig_Init(&cfg);
        cfg.Bucket = v->bucket;
        cfg.History = 1;
        ns = js_CreateKeyValue(&v->kv, v->js, &cfg);
    }
    if (ns != NATS_OK) {
        fprintf(stderr, "KV bucket %s: %s%s\n", v->bucket, natsStatus_GetText(ns),
                ns == NATS_NOT_FOUND ? " (run the indexer first)" : "");
        exit(1);
    }
}

void view_close(view *v)
{
    kvStore_Destroy(v->kv);
    jsCtx_Destroy(v->js);
    es_store_destroy(v->store);
    natsConnection_Destroy(v->nc);
}

static volatile sig_atomic_t signalled;

static void on_signal(int sig)
{
    (void)sig;
    signalled = 1;
}

int view_run(const view_args *a, view *v, const es_filter *filters, size_t nfilters,
             const es_projection_handler *h)
{
    es_projection_config cfg;
    es_projection_config_init(&cfg);
    cfg.filters = filters;
    cfg.filter_count = nfilters;
    cfg.ordered = true; /* a delete must never overtake its create */
    cfg.partitions = a->partitions;
    if (es_projection_create(v->store, a->name, &cfg) != ES_OK)
        die(a->name);
    es_projection_run_options ro;
    es_projection_run_options_init(&ro);
    ro.instance = a->instance;
    ro.instances = a->instances;
    es_projection *p = NULL;
    if (es_projection_start(v->store, a->name, h, &ro, &p) != ES_OK)
        die(a->name);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    es_status s = ES_OK;
    if (a->exit_when_caught_up)
        s = es_projection_wait_caught_up(p, -1);
    else
        while (!signalled) {
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
        }
    es_status stop = es_projection_stop(p);
    if (s == ES_OK)
        s = stop;
    es_projection_stats st;
    es_projection_stats_get(p, &st);
    fprintf(stderr, "%s: %s: %llu events handled, %llu retried, %llu dead-lettered\n", a->name,
            s == ES_OK ? (a->exit_when_caught_up ? "caught up" : "stopped") : es_last_error(),
            (unsigned long long)st.handled, (unsigned long long)st.retried,
            (unsigned long long)st.dead_lettered);
    es_projection_destroy(p);
    return s == ES_OK ? 0 : 1;
}

es_status view_scan(view *v, const char *pattern, es_status (*cb)(kvEntry *e, void *closure),
                    void *closure)
{
    kvWatchOptions o;
    kvWatchOptions_Init(&o);
    o.IgnoreDeletes = true;
    kvWatcher *w = NULL;
    es_status s = view_nats_status(kvStore_Watch(&w, v->kv, pattern, &o));
    while (s == ES_OK) {
        kvEntry *e = NULL;
        s = view_nats_status(kvWatcher_Next(&e, w, 5000));
        if (s != ES_OK || e == NULL) /* NULL: every current value was seen */
            break;
        s = cb(e, closure);
        kvEntry_Destroy(e);
    }
    kvWatcher_Destroy(w);
    return s;
}
