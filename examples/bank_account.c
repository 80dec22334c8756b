/* A bank account, event-sourced: commands are decided against the account's
 * current state and appended with optimistic concurrency, so two tellers
 * racing on one account can never overdraw it or lose a deposit. The
 * account's state is snapshotted every few events, so a command loads the
 * latest snapshot plus a short tail instead of the whole history.
 *
 *   bank-account [--server URL] [--store NAME]
 *
 * Starts from an empty store NAME (default "bank"; it is deleted first: this
 * is demo data), opens two accounts, runs deposits from four threads at once,
 * refuses an overdraft, and prints each account's history. */
#include <es/es.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo.h" /* demo_number: an event's data as a number */

typedef struct account {
    bool open;
    long balance;
} account;

typedef struct command {
    const char *kind; /* "open", "deposit", "withdraw" */
    long amount;
} command;

typedef struct decision_state {
    account acc;
    const command *cmd;
} decision_state;

static es_status reset(void *state)
{
    ((decision_state *)state)->acc = (account){false, 0};
    return ES_OK;
}

/* State is a fold over the events: the only place the rules of the past live. */
static es_status evolve(void *state, const es_event *ev)
{
    account *a = &((decision_state *)state)->acc;
    const char *type = es_event_event_type(ev);
    if (strcmp(type, "opened") == 0)
        a->open = true;
    else if (strcmp(type, "deposited") == 0)
        a->balance += demo_number(ev);
    else if (strcmp(type, "withdrawn") == 0)
        a->balance -= demo_number(ev);
    return ES_OK;
}

static es_status emit(es_decision *d, const char *type, long amount)
{
    char data[32];
    snprintf(data, sizeof data, "%ld", amount);
    es_event_spec e;
    es_event_spec_init(&e);
    e.event_type = type;
    e.data = data;
    e.data_len = strlen(data);
    e.codec = "json";
    return es_decision_add(d, &e);
}

/* The rules of the present: decide what a command means given the state. */
static es_status decide(void *state, es_decision *d)
{
    decision_state *s = state;
    const command *c = s->cmd;
    if (strcmp(c->kind, "open") == 0)
        return s->acc.open ? ES_OK : emit(d, "opened", 0);
    if (!s->acc.open || c->amount <= 0)
        return ES_ERR_INVALID;
    if (strcmp(c->kind, "deposit") == 0)
        return emit(d, "deposited", c->amount);
    if (s->acc.balance < c->amount)
        return ES_ERR_ABORTED; /* insufficient funds: nothing is appended */
    return emit(d, "withdrawn", c->amount);
}

static const es_decider account_decider = {reset, evolve, decide};

/* Snapshots: the state as text ("open balance"); version 1 of that format. */
#define SNAPSHOT_EVERY   5
#define SNAPSHOT_VERSION 1

static es_status snapshot_write(const void *state, es_buf *out)
{
    const account *a = &((const decision_state *)state)->acc;
    char text[48];
    snprintf(text, sizeof text, "%d %ld", a->open ? 1 : 0, a->balance);
    return es_buf_append_str(out, text);
}

static es_status snapshot_read(void *state, const void *data, size_t len)
{
    account *a = &((decision_state *)state)->acc;
    char text[48];
    int open;
    if (len >= sizeof text)
        return ES_ERR_DECODE;
    memcpy(text, data, len);
    text[len] = '\0';
    if (sscanf(text, "%d %ld", &open, &a->balance) != 2)
        return ES_ERR_DECODE;
    a->open = open != 0;
    return ES_OK;
}

static es_status run(es_store *st, es_snapshots *snaps, const char *id, const char *kind,
                     long amount)
{
    es_filter f;
    es_filter_init(&f);
    f.entity_type = "account";
    f.entity_id = id;
    command cmd = {kind, amount};
    decision_state state = {.cmd = &cmd};
    es_decide_options o;
    es_decide_options_init(&o);
    o.snapshots = snaps;
    o.snapshot_every = SNAPSHOT_EVERY;
    o.snapshot_version = SNAPSHOT_VERSION;
    o.snapshot_write = snapshot_write;
    o.snapshot_read = snapshot_read;
    return es_decide(st, &f, &account_decider, &state, &o, NULL);
}

typedef struct teller {
    es_store *st;
    es_snapshots *snaps;
    const char *account;
    int deposits;
} teller;

static void *teller_loop(void *arg)
{
    teller *t = arg;
    for (int i = 0; i < t->deposits; i++)
        if (run(t->st, t->snaps, t->account, "deposit", 10) != ES_OK)
            fprintf(stderr, "deposit failed: %s\n", es_last_error());
    return NULL;
}

static es_status print_event(const es_event *ev, void *closure)
{
    long *balance = closure;
    const char *type = es_event_event_type(ev);
    long amount = demo_number(ev);
    *balance += strcmp(type, "deposited") == 0   ? amount
                : strcmp(type, "withdrawn") == 0 ? -amount
                                                 : 0;
    printf("  #%-4llu %-10s %5ld   balance %6ld   %s\n", (unsigned long long)es_event_seq(ev), type,
           amount, *balance, es_event_time(ev));
    return ES_OK;
}

int main(int argc, char **argv)
{
    const char *url = getenv("NATS_URL"), *name = "bank";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--server") == 0)
            url = argv[i + 1];
        else if (strcmp(argv[i], "--store") == 0)
            name = argv[i + 1];
    }
    natsConnection *nc = NULL;
    if (natsConnection_ConnectTo(&nc, url ? url : NATS_DEFAULT_URL) != NATS_OK) {
        fprintf(stderr, "bank-account: cannot connect to %s\n", url ? url : NATS_DEFAULT_URL);
        return 1;
    }
    es_store *st = NULL;
    es_store_delete(nc, name, NULL); /* demo data: start afresh */
    if (es_store_create(nc, name, NULL, NULL, &st) != ES_OK) {
        fprintf(stderr, "bank-account: %s\n", es_last_error());
        return 1;
    }
    es_snapshots *snaps = NULL;
    if (es_snapshots_open(st, &snaps) != ES_OK) {
        fprintf(stderr, "bank-account: %s\n", es_last_error());
        return 1;
    }
    const char *accounts[] = {"alice", "bob"};
    for (int i = 0; i < 2; i++)
        run(st, snaps, accounts[i], "open", 0);

    /* Four tellers deposit concurrently: OCC conflicts are retried by es_decide. */
    pthread_t threads[4];
    teller tellers[4];
    for (int i = 0; i < 4; i++) {
        tellers[i] = (teller){st, snaps, accounts[i % 2], 5};
        pthread_create(&threads[i], NULL, teller_loop, &tellers[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(threads[i], NULL);
    printf("withdraw 30 from alice: %s\n", es_status_text(run(st, snaps, "alice", "withdraw", 30)));
    es_status s = run(st, snaps, "bob", "withdraw", 1000);
    printf("withdraw 1000 from bob: %s (refused: insufficient funds)\n", es_status_text(s));

    for (int i = 0; i < 2; i++) {
        es_filter f;
        es_filter_init(&f);
        f.entity_type = "account";
        f.entity_id = accounts[i];
        long balance = 0;
        printf("account %s:\n", accounts[i]);
        es_load(st, &f, NULL, print_event, &balance, NULL);
        es_snapshot snap;
        if (es_snapshot_get(snaps, &f, &snap) == ES_OK)
            printf("  snapshot at #%llu: \"%.*s\" (open, balance)\n", (unsigned long long)snap.seq,
                   (int)snap.len, (const char *)snap.data);
        es_snapshot_clear(&snap);
    }
    es_snapshots_destroy(snaps);
    es_store_destroy(st);
    natsConnection_Destroy(nc);
    return 0;
}
