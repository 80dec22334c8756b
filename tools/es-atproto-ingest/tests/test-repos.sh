#!/bin/bash
# es-atproto-ingest repos list|status|add|remove against a live server
# (NATS_URL): a signed es-atproto-gen capture stored, then unsigned commits
# of the same accounts refused (signature), which desynchronizes every
# repository; the command shows it, in text and JSON, and says when a DID
# has no state. Then the tracked set: add (twice), remove (twice), list
# --tracked with and without a state, status saying whether one is tracked.
# Usage: test-repos.sh INGEST GEN ES-TOOL
set -u
ingest=$1 gen=$2 estool=$3
. "$(dirname "$0")/../../../atproto/tests/lib.sh"
if [ -z "${NATS_URL:-}" ]; then
    echo "SKIP: NATS_URL is not set; repos list/status need a live server"
    exit 0
fi
store=repos$$
cleanup() { "$estool" delete "$store" --force >/dev/null 2>&1; rm -rf "$tmp"; }
trap cleanup EXIT

"$gen" --out "$tmp/signed.bin" --frames 200 --repos 10 --seed 7 \
    --did-docs-out "$tmp/docs.json" >/dev/null || fail "gen"
"$gen" --out "$tmp/unsigned.bin" --frames 30 --repos 10 --seed 7 --first-seq 5000 \
    --unsigned >/dev/null || fail "gen --unsigned"

expect_exit 2 "$ingest" repos list --store "$store" # no such store yet
grep -q "$store" "$tmp/out" || fail "the missing store is not named: $(cat "$tmp/out")"

expect_exit 0 "$ingest" --from-file "$tmp/signed.bin" --did-docs "$tmp/docs.json" --offline \
    --exit-at-end --store "$store" --quiet
expect_exit 0 "$ingest" repos list --store "$store"
grep -q '^10 repositories, 0 desynchronized, 0 not active$' "$tmp/out" ||
    fail "after the signed capture: $(tail -1 "$tmp/out")"
[ "$(grep -c '^did:plc:.*  active  rev 3' "$tmp/out")" = 10 ] || fail "10 active lines expected"
expect_exit 0 "$ingest" repos list --store "$store" --desynced
[ "$(wc -l <"$tmp/out")" = 1 ] || fail "--desynced lists none yet: $(cat "$tmp/out")"

expect_exit 0 "$ingest" --from-file "$tmp/unsigned.bin" --did-docs "$tmp/docs.json" --offline \
    --exit-at-end --store "$store" --name unsigned --quiet
expect_exit 0 "$ingest" repos list --store "$store" --desynced
grep -q '^10 repositories, 10 desynchronized, 0 not active$' "$tmp/out" ||
    fail "after the unsigned capture: $(tail -1 "$tmp/out")"
[ "$(grep -c 'DESYNCED: signature at seq 50[0-9][0-9]' "$tmp/out")" = 10 ] ||
    fail "each repository desynchronized by a signature refusal: $(cat "$tmp/out")"
did=$(head -1 "$tmp/out" | cut -d' ' -f1)

expect_exit 0 "$ingest" repos status "$did" --store "$store" --json
grep -q "^{\"did\":\"$did\",\"status\":\"active\",\"rev\":\"3[a-z2-7]*\".*\"desynced\":true,\"reason\":\"signature\",\"desync_seq\":50" "$tmp/out" ||
    fail "status --json: $(cat "$tmp/out")"
expect_exit 0 "$ingest" repos list --store "$store" --json
grep -q '^{"repositories":10,"desynced":10,"inactive":0,"unreadable":0}$' "$tmp/out" ||
    fail "list --json summary: $(tail -1 "$tmp/out")"

expect_exit 2 "$ingest" repos status "$did" did:plc:nobodyhasthisdidatallxx --store "$store"
grep -q "^$did  active" "$tmp/out" || fail "the known DID is still shown"
grep -q 'did:plc:nobodyhasthisdidatallxx: no state' "$tmp/out" || fail "the unknown DID is named"

# the tracked set
expect_exit 0 "$ingest" repos list --tracked --store "$store"
grep -q '^0 tracked repositories, 0 with a state$' "$tmp/out" || fail "empty set: $(cat "$tmp/out")"
new=did:plc:trackedbutnotstoredyetxx
expect_exit 0 "$ingest" repos add "$did" "$new" --store "$store"
grep -q "^$did  tracked$" "$tmp/out" || fail "add: $(cat "$tmp/out")"
grep -q "^$new  tracked$" "$tmp/out" || fail "add: $(cat "$tmp/out")"
expect_exit 0 "$ingest" repos add "$did" --store "$store" --json
grep -q "^{\"did\":\"$did\",\"result\":\"already tracked\"}$" "$tmp/out" ||
    fail "add again: $(cat "$tmp/out")"
expect_exit 0 "$ingest" repos list --tracked --store "$store"
grep -q '^2 tracked repositories, 1 with a state$' "$tmp/out" || fail "list --tracked: $(cat "$tmp/out")"
grep -q "^$did  active  rev 3.*DESYNCED: signature.*  tracked since 20" "$tmp/out" ||
    fail "list --tracked shows the state: $(cat "$tmp/out")"
grep -q "^$new  no state  tracked since 20" "$tmp/out" || fail "list --tracked, no state: $(cat "$tmp/out")"
expect_exit 0 "$ingest" repos list --tracked --store "$store" --json
grep -q "^{\"did\":\"$new\",\"tracked\":true,\"tracked_since\":\"20" "$tmp/out" ||
    fail "list --tracked --json: $(cat "$tmp/out")"
grep -q '^{"tracked":2,"with_state":1,"unreadable":0}$' "$tmp/out" ||
    fail "list --tracked --json summary: $(tail -1 "$tmp/out")"
expect_exit 0 "$ingest" repos status "$did" --store "$store"
grep -q "^$did  active .*  tracked since 20" "$tmp/out" || fail "status, tracked: $(cat "$tmp/out")"
expect_exit 0 "$ingest" repos status "$did" --store "$store" --json
grep -q '"tracked":true,"tracked_since":"20' "$tmp/out" || fail "status --json, tracked: $(cat "$tmp/out")"
expect_exit 2 "$ingest" repos status "$new" --store "$store"
grep -q "$new: no state: .*(it is tracked)" "$tmp/out" || fail "status, tracked, no state: $(cat "$tmp/out")"
expect_exit 0 "$ingest" repos remove "$did" --store "$store"
grep -q "^$did  removed$" "$tmp/out" || fail "remove: $(cat "$tmp/out")"
expect_exit 2 "$ingest" repos remove "$did" "$new" --store "$store"
grep -q "$did: not tracked" "$tmp/out" || fail "remove again: $(cat "$tmp/out")"
grep -q "^$new  removed$" "$tmp/out" || fail "remove goes on after one not tracked: $(cat "$tmp/out")"
expect_exit 0 "$ingest" repos status "$did" --store "$store"
grep -q "^$did  active .*  not tracked$" "$tmp/out" || fail "status, not tracked: $(cat "$tmp/out")"
expect_exit 0 "$ingest" repos list --tracked --store "$store"
grep -q '^0 tracked repositories, 0 with a state$' "$tmp/out" || fail "emptied: $(cat "$tmp/out")"
expect_exit 0 "$ingest" repos list --store "$store" # the chain states are untouched
grep -q '^10 repositories, 10 desynchronized, 0 not active$' "$tmp/out" || fail "$(tail -1 "$tmp/out")"
expect_exit 1 "$ingest" repos add not-a-did --store "$store"
grep -q "'not-a-did' is not a DID" "$tmp/out" || fail "add not-a-did: $(cat "$tmp/out")"
expect_exit 1 "$ingest" repos add did:web:a..b --store "$store" # its key would be hashed
grep -q "cannot be tracked" "$tmp/out" || fail "add did:web:a..b: $(cat "$tmp/out")"
expect_exit 1 "$ingest" repos remove --store "$store"
expect_exit 1 "$ingest" repos add "$did" --tracked --store "$store"
expect_exit 1 "$ingest" repos list --tracked --desynced --store "$store"

expect_exit 1 "$ingest" repos status not-a-did --store "$store"
expect_exit 1 "$ingest" repos status --store "$store"
expect_exit 1 "$ingest" repos list "$did" --store "$store"
expect_exit 1 "$ingest" repos frobnicate
expect_exit 0 "$ingest" repos --help
grep -q 'usage: es-atproto-ingest repos list' "$tmp/out" || fail "repos --help"
echo "PASS"
