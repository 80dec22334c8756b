/* The shared live fan-out of /subscribe (docs/atproto.md, "Serving"): ONE
 * watch of the store's live tail for the whole server. Each event is
 * described and encoded to Jetstream's JSON once, into a refcounted
 * sub_msg, and offered to every member (a subscriber that is caught up),
 * which filters it and queues a reference: no per-subscriber consumer,
 * copy or encoding.
 *
 * Joining exactly: the hub has seen every event of the stream with a
 * sequence in (floor, last] and keeps the last HUB_RING_MAX of them (floor
 * is the newest one it let go). A subscriber that has delivered everything
 * up to sequence s joins when floor <= s: it is offered the kept events
 * after s at once, then every later one; events at or before s never. So a
 * replay through a watch of its own hands over to the hub with no gap and
 * no repeat, whether it is behind the hub (s < last) or ahead (s > last).
 *
 * Threads: the hub's fan-out thread offers, under the hub's lock, the
 * events its watch kept since its last pass, in one call per member; join
 * and leave take that lock, so once hub_leave returns no offer to that
 * member is running or will run. An offer must not block and must not
 * call the hub. */
#ifndef SERVE_HUB_H
#define SERVE_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <es/es.h>
#include <es/atproto_jetstream.h>

#include "subscriber.h"

/* Events kept for joiners: about two seconds at the firehose's peak. */
#define HUB_RING_MAX 4096

/* One event as the hub offers it: valid during the offer; take a
 * reference (sub_msg_ref) to keep the message. */
typedef struct hub_event {
    uint64_t seq;
    es_atp_jetstream_event d; /* d.did points into this event */
    sub_msg *msg;             /* the Jetstream JSON */
} hub_event;

/* Called with the next `n` events after the member's sequence (oldest
 * first, n >= 1), or with n 0 once when the hub's watch ended for good.
 * false: leave the hub (the member is closed or closing). */
typedef bool (*hub_offer_fn)(void *member, const hub_event *const *evs, size_t n);

typedef struct hub_config {
    size_t record_max; /* memory to decode one record */
    size_t headroom;   /* bytes before each message's JSON (LWS_PRE) */
} hub_config;

/* Starts watching the store's live tail (after its last event now). The
 * caller owns *out (hub_destroy), which must outlive every member. */
es_status hub_create(es_store *st, const hub_config *cfg, hub **out);

/* Stops the watch and frees; members must have left. Accepts NULL. */
void hub_destroy(hub *h);

/* Joins `member` after sequence after_seq (HUB_NOW: wherever the hub is,
 * for a subscriber without a cursor). true when joined: the kept events
 * after after_seq were offered before this returns. false when the hub
 * cannot take over from there yet (after_seq < floor: keep reading and
 * try again later), or has ended. Never call it under a lock offer takes. */
#define HUB_NOW UINT64_MAX
bool hub_join(hub *h, uint64_t after_seq, hub_offer_fn offer, void *member);

/* How many members it has now (/metrics). */
size_t hub_members(hub *h);

/* The member leaves (no offer runs once this returns). Idempotent. */
void hub_leave(hub *h, void *member);

/* Destroys `w` later on a thread of the hub's (a replay's watch, once its
 * subscriber joined: stopping it waits on NATS), then calls done(arg):
 * from then on no callback of `w` runs. */
void hub_retire(hub *h, es_watch *w, void (*done)(void *arg), void *arg);

#endif
