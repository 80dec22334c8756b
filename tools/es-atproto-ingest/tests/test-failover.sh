#!/bin/bash
# es-atproto-ingest on a 3-node cluster (tools/nats-local cluster, an
# instance of its own) through the loss of its store's stream leader:
#  1. an ingest (--from-file, an es-atproto-gen capture) while the stream
#     leader is killed and, 2 s later, restarted: it ends by itself (exit 0)
#     with every op stored exactly once;
#  2. an ingester killed (-9) while the cluster elects a new leader, then
#     started again with the same --name: it resumes from its cursor and the
#     store ends with every op exactly once.
# "Every op exactly once": the store holds as many events as a reference
# ingest of the same capture into a store on no failing node.
# Usage: test-failover.sh INGEST GEN ES-TOOL
set -u
ingest=$1 gen=$2 estool=$3
. "$(dirname "$0")/../../../atproto/tests/lib.sh"
nl="$(cd "$(dirname "$0")/../../.." && pwd)/tools/nats-local"
name="ingest-failover-$$"
trap '"$nl" cluster stop "$name"; rm -rf "$tmp"' EXIT
url=$("$nl" cluster start "$name") || fail "cluster start"

"$gen" --out "$tmp/cap.bin" --frames 4000 --repos 50 --seed 11 --unsigned >/dev/null || fail "gen"
run_ingest() { # STORE [more options]: in the background, pid in $ingest_pid
    local store=$1; shift
    "$ingest" --from-file "$tmp/cap.bin" --no-verify --exit-at-end --store "$store" \
        --server "$url" --quiet "$@" >>"$tmp/ingest-$store.log" 2>&1 &
    ingest_pid=$!
}
events() { "$estool" info "$1" --server "$url" --json 2>/dev/null |
    sed -n 's/.*"state":{"events":\([0-9]*\).*/\1/p'; }
wait_events() { # STORE N: until the store holds at least N events (20 s)
    for _ in $(seq 1 200); do [ "$(events "$1")" -ge "$2" ] 2>/dev/null && return 0; sleep 0.1; done
    fail "$1 never reached $2 events"
}
count_of() { # STORE: its event count, asked until the cluster answers (a node
    # restarted a moment ago may leave es-tool without an answer for a while: 20 s)
    local n
    for _ in $(seq 1 200); do n=$(events "$1"); [ -n "$n" ] && { echo "$n"; return; }; sleep 0.1; done
}
leader_of() { "$nl" cluster stream-leader "$name" "ES_$1"; }

# the reference: the same capture, nothing failing
"$estool" create ref --replicas 3 --server "$url" >/dev/null || fail "create ref"
run_ingest ref
wait "$ingest_pid" || fail "the reference ingest failed: $(tail -3 "$tmp/ingest-ref.log")"
want=$(count_of ref)
[ "${want:-0}" -gt 2500 ] || fail "the reference holds ${want:-no} events"

# 1. the stream leader killed and restarted under a running ingest
"$estool" create kill1 --replicas 3 --server "$url" >/dev/null || fail "create kill1"
run_ingest kill1
wait_events kill1 1000
node=$(leader_of kill1); [ -n "$node" ] || fail "no leader known for ES_kill1"
"$nl" cluster kill "$name" "$node"
sleep 2
"$nl" cluster restart "$name" "$node" || fail "restart node $node"
wait "$ingest_pid" || fail "the ingest through the leader kill failed: $(tail -5 "$tmp/ingest-kill1.log")"
got=$(count_of kill1)
[ "$got" = "$want" ] || fail "after a leader kill: $got events, $want expected"
echo "ok: ingest through a stream-leader kill (node $node): $got events, as the reference"

# 2. the ingester killed while the cluster elects, then started again
"$estool" create kill2 --replicas 3 --server "$url" >/dev/null || fail "create kill2"
run_ingest kill2
wait_events kill2 1000
node=$(leader_of kill2); [ -n "$node" ] || fail "no leader known for ES_kill2"
"$nl" cluster kill "$name" "$node"
kill -9 "$ingest_pid"; wait "$ingest_pid" 2>/dev/null
run_ingest kill2 # elected or not yet: it waits for the server and resumes from its cursor
"$nl" cluster restart "$name" "$node" || fail "restart node $node"
wait "$ingest_pid" || fail "the ingest started during the election failed: $(tail -5 "$tmp/ingest-kill2.log")"
got=$(count_of kill2)
[ "$got" = "$want" ] || fail "after an ingester killed during an election: $got events, $want expected"
echo "ok: an ingester killed during an election, restarted: $got events, as the reference"
