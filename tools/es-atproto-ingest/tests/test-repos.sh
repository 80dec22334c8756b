#!/bin/bash
# es-atproto-ingest repos list|status against a live server (NATS_URL): a
# signed es-atproto-gen capture stored, then unsigned commits of the same
# accounts refused (signature), which desynchronizes every repository; the
# command shows it, in text and JSON, and says when a DID has no state.
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

expect_exit 1 "$ingest" repos status not-a-did --store "$store"
expect_exit 1 "$ingest" repos status --store "$store"
expect_exit 1 "$ingest" repos list "$did" --store "$store"
expect_exit 1 "$ingest" repos frobnicate
expect_exit 0 "$ingest" repos --help
grep -q 'usage: es-atproto-ingest repos list' "$tmp/out" || fail "repos --help"
echo "PASS"
