/* Seat booking on one flight, event-sourced with es_decide: four agents book
 * seats at the same time. Each booking is a command decided against the
 * flight's current state (how many seats are taken) and appended with the
 * flight's expected sequence; when another agent booked in between, the
 * append conflicts and es_decide loads the flight again and decides again.
 * So no booking is lost and no seat is sold twice, without a lock.
 *
 *   flight-booking [--server URL] [--store NAME]
 *
 * Starts from an empty store NAME (default "flights"; it is deleted first:
 * this is demo data), books 4 agents x 25 seats on a flight of 100 seats
 * from 4 threads, then tries a 101st booking, which must be refused: the
 * flight is full. Then it reads the flight back and checks that it holds
 * exactly the accepted bookings, seats 1 to 100 once each. Exits 1 when a
 * check fails. */
#include <es/es.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo.h"

#define SEATS              100
#define AGENTS             4
#define BOOKINGS_PER_AGENT 25

/* The flight as its events tell it. */
typedef struct flight {
    unsigned booked;                /* seats sold so far */
    unsigned times_sold[SEATS + 1]; /* per seat number: must end at 1 or 0 */
} flight;

/* What es_decide works on: the state, and the command being decided. */
typedef struct booking {
    flight state;
    const char *passenger;
} booking;

/* The flight's history folded into its state: called once per stored event. */
static void apply(flight *f, const es_event *ev)
{
    if (strcmp(es_event_event_type(ev), "seat_booked") != 0)
        return;
    long seat = demo_number(ev);
    if (seat >= 1 && seat <= SEATS)
        f->times_sold[seat]++;
    f->booked++;
}

static es_status reset(void *state)
{
    memset(&((booking *)state)->state, 0, sizeof(flight));
    return ES_OK;
}

static es_status evolve(void *state, const es_event *ev)
{
    apply(&((booking *)state)->state, ev);
    return ES_OK;
}

/* The rule: the next seat goes to the passenger, unless the flight is full.
 * Two agents deciding on the same state pick the same seat; only the first
 * append is stored, the second conflicts and is decided again. */
static es_status decide(void *state, es_decision *d)
{
    booking *b = state;
    if (b->state.booked >= SEATS) /* nothing is appended; es_decide says why */
        return es_decision_reject(d, "the flight is full");
    char seat[16];
    snprintf(seat, sizeof seat, "%u", b->state.booked + 1);
    es_meta meta[] = {{"passenger", b->passenger}};
    es_event_spec e;
    es_event_spec_init(&e); /* no entity: the flight being decided */
    e.event_type = "seat_booked";
    e.data = seat;
    e.data_len = strlen(seat);
    e.codec = "json";
    e.meta = meta;
    e.meta_count = 1;
    return es_decision_add(d, &e); /* copied: the stack buffers may go */
}

static const es_decider flight_decider = {reset, evolve, decide};

static es_filter the_flight(void)
{
    es_filter f;
    es_filter_init(&f);
    f.entity_type = "flight";
    f.entity_id = "LH-2042";
    return f;
}

static es_status book(es_store *st, const char *passenger)
{
    es_filter f = the_flight();
    booking b = {.passenger = passenger};
    /* Four agents on one entity conflict often: every append that loses a
     * race is decided again, after a jittered backoff, for up to the
     * defaults' time budget (es_decide_options.budget_ms, 5 s). With the old
     * default of 5 attempts and no budget, 8 to 12 of these 100 bookings
     * ran out (measured on a 2-core machine); the defaults suffice now. */
    return es_decide(st, &f, &flight_decider, &b, NULL, NULL);
}

typedef struct agent {
    es_store *st;
    int number;
    int accepted, refused; /* by this agent */
} agent;

static void *agent_loop(void *arg)
{
    agent *a = arg;
    for (int i = 0; i < BOOKINGS_PER_AGENT; i++) {
        char passenger[32];
        snprintf(passenger, sizeof passenger, "agent%d-passenger%d", a->number, i);
        es_status s = book(a->st, passenger);
        if (s == ES_OK) {
            a->accepted++;
        } else {
            a->refused++;
            fprintf(stderr, "agent %d: booking %d not accepted: %s (%s)\n", a->number, i,
                    es_status_text(s), es_last_error());
        }
    }
    return NULL;
}

static es_status fold(const es_event *ev, void *closure)
{
    apply(closure, ev);
    return ES_OK;
}

/* The flight read back from the store, independently of any decision. */
static int check_flight(es_store *st, int accepted)
{
    flight f = {0};
    es_filter fl = the_flight();
    uint64_t last = 0;
    if (es_load(st, &fl, NULL, fold, &f, &last) != ES_OK) {
        fprintf(stderr, "flight-booking: reading the flight: %s\n", es_last_error());
        return 1;
    }
    int failures = 0;
    if (f.booked != (unsigned)accepted) {
        fprintf(stderr, "FAILED: %u bookings stored, %d accepted\n", f.booked, accepted);
        failures++;
    }
    for (unsigned seat = 1; seat <= SEATS; seat++)
        if (f.times_sold[seat] != (seat <= f.booked ? 1u : 0u)) {
            fprintf(stderr, "FAILED: seat %u sold %u times\n", seat, f.times_sold[seat]);
            failures++;
        }
    printf("flight LH-2042: %u seats booked, each once, last event #%llu\n", f.booked,
           (unsigned long long)last);
    return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
    demo d;
    if (!demo_open(argc, argv, "flight-booking", "flights", &d))
        return 1;
    es_store *st = d.st;

    /* One es_store handle serves every thread. */
    pthread_t threads[AGENTS];
    agent agents[AGENTS];
    for (int i = 0; i < AGENTS; i++) {
        agents[i] = (agent){.st = st, .number = i + 1};
        pthread_create(&threads[i], NULL, agent_loop, &agents[i]);
    }
    int accepted = 0, refused = 0;
    for (int i = 0; i < AGENTS; i++) {
        pthread_join(threads[i], NULL);
        accepted += agents[i].accepted;
        refused += agents[i].refused;
    }
    printf("%d agents: %d bookings accepted, %d not accepted\n", AGENTS, accepted, refused);
    int code = accepted == AGENTS * BOOKINGS_PER_AGENT ? 0 : 1;
    if (code)
        fprintf(stderr, "FAILED: every booking fits on the flight, yet %d were not accepted\n",
                refused);

    /* The flight is full now: the rule refuses, nothing is appended. */
    es_status s = book(st, "one-too-many");
    printf("a 101st booking: %s (%s)\n", es_status_text(s), es_last_error());
    if (s != ES_ERR_ABORTED || strcmp(es_last_error(), "the flight is full") != 0) {
        fprintf(stderr, "FAILED: the 101st booking was not refused\n");
        code = 1;
    }
    if (check_flight(st, accepted) != 0)
        code = 1;

    demo_close(&d);
    printf("%s\n", code == 0 ? "flight-booking: every check passed" : "flight-booking: FAILED");
    return code;
}
