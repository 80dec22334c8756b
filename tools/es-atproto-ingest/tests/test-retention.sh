#!/bin/bash
# es-atproto-ingest --max-age, --max-bytes, --replicas, --compression (and
# their ES_* variables) against a live server (NATS_URL): a store the
# ingester creates gets them; an existing store with other values is never
# changed: the run stops with exit 3 naming each difference and the es-tool
# edit command (none for S2, set at creation only; es-tool edit refuses it);
# the same values, or no flags, run. Usage: test-retention.sh INGEST GEN ES-TOOL
set -u
ingest=$1 gen=$2 estool=$3
. "$(dirname "$0")/../../../atproto/tests/lib.sh"
if [ -z "${NATS_URL:-}" ]; then
    echo "SKIP: NATS_URL is not set; the retention flags need a live server"
    exit 0
fi
store=retention$$
s2store=retention_s2_$$
cleanup() {
    "$estool" delete "$store" --force >/dev/null 2>&1
    "$estool" delete "$s2store" --force >/dev/null 2>&1
    rm -rf "$tmp"
}
trap cleanup EXIT

"$gen" --out "$tmp/cap.bin" --frames 40 --repos 4 --seed 11 \
    --did-docs-out "$tmp/docs.json" >/dev/null || fail "gen"
run() { # EXIT [ARGS...]: ingest the capture into $store
    local want=$1; shift
    expect_exit "$want" "$ingest" --from-file "$tmp/cap.bin" --did-docs "$tmp/docs.json" \
        --offline --exit-at-end --store "$store" --quiet "$@"
}
config() { "$estool" info "$store" --json | sed 's/.*"config":\({[^}]*}\).*/\1/'; }

# usage errors come before anything is created
run 1 --max-age 1m # below the default duplicate window (2m)
grep -q -- '--max-age must be at least --duplicate-window' "$tmp/out" || fail "$(cat "$tmp/out")"
run 1 --replicas 6
run 1 --max-bytes lots
expect_exit 2 "$estool" info "$store"

# created with them
run 0 --max-age 36h --max-bytes 64M --replicas 1
c=$(config)
echo "$c" | grep -q '"replicas":1,"max_age_ns":129600000000000,"max_bytes":67108864,' ||
    fail "the store's config: $c"

# the same values (flags or environment) and no flags at all run
run 0 --max-age 36h --max-bytes 64M
ES_MAX_AGE=36h ES_REPLICAS=1 run 0
run 0

# other values: refused, nothing changed, each difference named
run 3 --max-age 2h --max-bytes 64M --replicas 3
grep -q "store '$store' exists with max age 129600.000s where --max-age says 2h, 1 replica where --replicas says 3" "$tmp/out" ||
    fail "the refusal names the differences: $(cat "$tmp/out")"
grep -q "es-tool edit $store --max-age 2h --replicas 3" "$tmp/out" ||
    fail "the refusal says how to change the store: $(cat "$tmp/out")"
ES_MAX_BYTES=1G run 3
grep -q "max bytes 67108864 where --max-bytes says 1G" "$tmp/out" || fail "$(cat "$tmp/out")"
[ "$(config)" = "$c" ] || fail "the store was changed: $(config)"

# S2: chosen at creation, never changed afterwards
run 1 --compression zstd
grep -q -- "--compression is none or s2" "$tmp/out" || fail "$(cat "$tmp/out")"
run 3 --compression s2
grep -q "exists with none storage compression where --compression says s2; storage compression is set when a store is created" "$tmp/out" ||
    fail "the S2 refusal: $(cat "$tmp/out")"
ES_COMPRESSION=none run 0
"$estool" create "$s2store" --compression s2 >/dev/null || fail "es-tool create --compression s2"
"$estool" info "$s2store" --json | grep -q '"storage_compression":"s2"' ||
    fail "the S2 store's config: $("$estool" info "$s2store" --json)"
"$estool" info "$s2store" | grep -q "S2-compressed blocks" || fail "es-tool info shows S2"
store=$s2store run 0 --compression s2
store=$s2store ES_COMPRESSION=none run 3
expect_exit 1 "$estool" edit "$s2store" --compression none
grep -q "is s2 and is set at creation only" "$tmp/out" || fail "es-tool edit: $(cat "$tmp/out")"
expect_exit 0 "$estool" edit "$s2store" --compression s2 --max-age 48h
"$estool" info "$s2store" --json | grep -q '"max_age_ns":172800000000000.*"storage_compression":"s2"' ||
    fail "an edit keeps S2: $("$estool" info "$s2store" --json)"
echo "PASS"
