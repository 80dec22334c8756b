#!/usr/bin/env bash
# Command-line test of es-atproto-ingest (and es-atproto-gen) in dry-run mode:
# exit codes, counts in the report, refusal of bad usage and of corrupt
# captures. (The store side: tests/test_ingest_e2e.c.)
#   test-ingest.sh INGEST_BINARY GEN_BINARY
set -euo pipefail
ingest=$1 gen=$2
. "$(dirname "$0")/../../atproto/tests/lib.sh" # $tmp, fail, expect_exit

# es-atproto-gen signs its captures and writes its accounts' DID documents:
# they are verified offline against those (--did-docs), as the real capture is.
# After an #identity a document is fetched again: the test-only switch lets
# --plc be a closed port on loopback (no network; the seeded document stands).
export ES_ATPROTO_TEST_INSECURE_IDENTITY=1
nv="--did-docs $tmp/gen-docs.json --plc http://127.0.0.1:1"

# a generated capture decodes and verifies without a single error
"$gen" --out "$tmp/gen.zst" --frames 500 --seed 9 --did-docs-out "$tmp/gen-docs.json" \
    >"$tmp/gen.txt"
commits=$(sed -n 's/.*: \([0-9]*\) commits.*/\1/p' "$tmp/gen.txt")
expect_exit 0 "$ingest" --from-file "$tmp/gen.zst" --dry-run --exit-at-end $nv
grep -q "^errors: none" "$tmp/out" || fail "errors in the generated capture"
grep -q "^verification: on; DID documents: 50 cached" "$tmp/out" || fail "not verified"
grep -q "frames: commit $commits " "$tmp/out" || fail "commit count is not $commits"
grep -q "decoded 500 frames" "$tmp/out" || fail "not 500 frames"

# the same, uncompressed, replayed from memory, with every block verified
"$gen" --out "$tmp/gen.bin" --frames 500 --seed 9 --zstd 0 >/dev/null
expect_exit 0 "$ingest" --from-file "$tmp/gen.bin" --dry-run --exit-at-end --repeat 3 \
    --verify-all-blocks $nv
grep -q "decoded 1500 frames" "$tmp/out" || fail "repeat 3 did not decode 1500 frames"
grep -q "^errors: none" "$tmp/out" || fail "errors with --verify-all-blocks"

# filters: a collection filter leaves events out, a DID filter whole frames
expect_exit 0 "$ingest" --from-file "$tmp/gen.bin" --dry-run --exit-at-end \
    --collections app.bsky.graph.follow --dids did:plc:nobody $nv
grep -q "filtered out: 0 ops, 500 frames" "$tmp/out" || fail "DID filter"

# a truncated capture: the frames before the cut, then exit 1
size=$(stat -c %s "$tmp/gen.bin")
head -c $((size - 10)) "$tmp/gen.bin" >"$tmp/cut.bin"
expect_exit 1 "$ingest" --from-file "$tmp/cut.bin" --dry-run --exit-at-end $nv
grep -q "truncated" "$tmp/out" || fail "no truncation message"
grep -q "decoded 499 frames" "$tmp/out" || fail "frames before the cut"

# a damaged frame is skipped with its seq, the rest goes on
cp "$tmp/gen.bin" "$tmp/bad.bin"
printf '\xff\xff\xff\xff\xff\xff\xff\xff' | dd of="$tmp/bad.bin" bs=1 seek=300 conv=notrunc 2>/dev/null
expect_exit 0 "$ingest" --from-file "$tmp/bad.bin" --dry-run --exit-at-end $nv
grep -q "warn frame refused seq=" "$tmp/out" || fail "the damaged frame was not reported"
expect_exit 0 "$ingest" --from-file "$tmp/bad.bin" --dry-run --exit-at-end --log-format json $nv
grep -Eq '^\{"time":"[^"]*","level":"warn","msg":"frame refused","seq":[0-9]*,("did":"did:[^"]*",)?"kind":"[a-z_]*","error":"' \
    "$tmp/out" || fail "JSON log line"
grep -q "decoded 500 frames" "$tmp/out" || fail "frames after the damaged one"

# a flood of hostile frames does not flood the log: 120,000 empty frames
# (a 4-byte zero length each) give at most 10 lines per reason per 10 s in
# full and one summary line; the report's counts stay exact
head -c 480000 /dev/zero >"$tmp/bomb.bin"
expect_exit 0 "$ingest" --from-file "$tmp/bomb.bin" --dry-run --exit-at-end
lines=$(grep -c "frame refused" "$tmp/out" || true)
[ "$lines" -ge 1 ] && [ "$lines" -le 30 ] || fail "$lines 'frame refused' lines for 120000 frames"
[ "$(wc -l <"$tmp/out")" -le 50 ] || fail "$(wc -l <"$tmp/out") log lines for 120000 frames"
left=$(sed -n 's/.*warn frame lines not logged not_logged=\([0-9]*\) .* cbor=\([0-9]*\)$/\1 \2/p' \
    "$tmp/out" | awk '{ n += $1; c += $2 } END { print n + 0, c + 0 }')
[ "$left" = "$((120000 - lines)) $((120000 - lines))" ] ||
    { cat "$tmp/out"; fail "summary counts $left, expected $((120000 - lines)) left out"; }
grep -q "^errors: cbor 120000$" "$tmp/out" || fail "the report's count is not exact"
grep -q "decoded 120000 frames" "$tmp/out" || fail "not 120000 frames"

# an error frame ends the stream: exit 5
printf '\x19\x00\x00\x00\xa1\x62op\x20\xa1\x65error\x6cFutureCursor' >"$tmp/err.bin"
expect_exit 5 "$ingest" --from-file "$tmp/err.bin" --dry-run --exit-at-end
grep -q "FutureCursor" "$tmp/out" || fail "error frame not reported"

# fatal start-up errors are log lines in the chosen format: with json, the
# whole of stderr is one JSON line (nothing listens on port 1)
json_error_line() { # MSG-PREFIX: stderr of the last run is exactly one error line
    [ "$(wc -l <"$tmp/err")" = 1 ] || { cat "$tmp/err"; fail "not one line"; }
    grep -Eq "^\{\"time\":\"[^\"]+\",\"level\":\"error\",\"msg\":\"$1[^\"]*\"\}\$" "$tmp/err" ||
        { cat "$tmp/err"; fail "not one JSON error line: $1"; }
}
got=0
"$ingest" --from-file "$tmp/gen.zst" --exit-at-end --server nats://127.0.0.1:1 --nats-wait 0 \
    --log-format json 2>"$tmp/err" || got=$?
[ "$got" = 4 ] || fail "exit $got, expected 4 (unreachable server)"
json_error_line "connecting: "
got=0 # a usage error before --log-format is in its format too
"$ingest" --max-batches 41 --from-file x --log-format=json 2>"$tmp/err" || got=$?
[ "$got" = 1 ] || fail "exit $got, expected 1 (bad usage)"
json_error_line "--max-batches must be between"

# an unreachable server is tried again, each attempt logged, until --nats-wait
start=$(date +%s%N)
expect_exit 4 "$ingest" --from-file "$tmp/gen.zst" --exit-at-end --server nats://127.0.0.1:1 \
    --nats-wait 1500ms --reconnect-max 400ms
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
retries=$(grep -c "warn NATS unreachable, retrying .*attempt=" "$tmp/out" || true)
[ "$retries" -ge 2 ] || { cat "$tmp/out"; fail "$retries retries logged, expected several"; }
[ "$elapsed_ms" -ge 1400 ] || fail "gave up after $elapsed_ms ms, before --nats-wait 1500ms"
grep -q "error connecting: " "$tmp/out" || fail "no final error line"
expect_exit 1 "$ingest" --from-file x --nats-wait soon

# usage
expect_exit 0 "$ingest" --help
for opt in --from-file --relay --store --name --max-inflight --stats-interval --log-format \
    --nats-wait --server --creds --no-verify UNSAFE --did-docs --plc --offline --identity-ttl \
    --no-resync --require-backfill --max-held-frames --max-held-bytes --max-held-repos "Exit status"; do
    grep -q -- "$opt" "$tmp/out" || fail "--help does not mention $opt"
done
expect_exit 1 "$ingest" --dry-run --exit-at-end                            # no source
expect_exit 1 "$ingest" --from-file x --relay ws://h --exit-at-end          # two sources
expect_exit 1 "$ingest" --relay ws://h --dry-run                            # dry runs read files
expect_exit 1 "$ingest" --from-file x --repeat 3                            # --repeat is dry
expect_exit 1 "$ingest" --relay http://h                                    # not a WebSocket
expect_exit 1 "$ingest" --from-file x --dry-run --collections 'app.bsky.fe*'
expect_exit 1 "$ingest" --from-file x --dry-run --dids /nonexistent/file
expect_exit 1 "$ingest" --from-file x --dry-run --repeat 0
expect_exit 1 "$ingest" --from-file x --max-batches 41
expect_exit 1 "$ingest" --from-file x --log-format xml
expect_exit 1 "$ingest" --from-file x --backfill did:plc:abc --no-resync    # contradiction
expect_exit 1 "$ingest" --from-file x --backfill-all                           # no host
expect_exit 1 "$ingest" --from-file x --require-backfill --no-verify
expect_exit 1 env ES_MAX_BATCHES=41 "$ingest" --from-file x    # options from the environment
expect_exit 1 env ES_DRY_RUN=perhaps "$ingest" --from-file x
expect_exit 1 env ES_FROM_FILE=x ES_DRY_RUN=1 "$ingest" --repeat 0  # theirs, then argv's
expect_exit 1 "$ingest" --from-file x --max-held-frames 0
expect_exit 1 "$ingest" --from-file x --max-held-bytes 0
expect_exit 2 "$ingest" --from-file /nonexistent/capture --dry-run --exit-at-end  # not found
expect_exit 1 "$ingest" --from-file x --dry-run --identity-ttl 0
expect_exit 1 "$ingest" --from-file x --dry-run --max-tracked 0       # 1..10,000,000
expect_exit 1 "$ingest" --from-file x --dry-run --max-tracked 10000001
expect_exit 2 "$ingest" --from-file /nonexistent/capture --exit-at-end --tracked-only \
    --max-tracked 5 # parsed: the missing file is what stops it
expect_exit 1 "$ingest" --from-file x --dry-run --tracked-only      # the set is the store's
expect_exit 1 "$ingest" --backfill did:plc:abc --tracked-only       # for a live source
expect_exit 1 env -u ES_ATPROTO_TEST_INSECURE_IDENTITY "$ingest" --from-file "$tmp/gen.bin" \
    --dry-run --exit-at-end --plc http://plc.test
grep -q "https:// only" "$tmp/out" || fail "an http PLC directory was not refused"
expect_exit 1 "$ingest" --from-file "$tmp/gen.bin" --dry-run --exit-at-end --did-docs /nonexistent
grep -q "setting up identities: /nonexistent" "$tmp/out" || fail "an unreadable --did-docs"

# verification is on by default: without DID documents (and no directory to
# ask) the generated capture is refused commit by commit, and --no-verify
# says what it gives up
expect_exit 0 "$ingest" --from-file "$tmp/gen.bin" --dry-run --exit-at-end \
    --plc http://127.0.0.1:1 --identity-ttl 60 --quiet
grep -q "frames: commit 0 " "$tmp/out" || fail "unverifiable commits were accepted"
grep -Eq "^errors: identity [0-9]+" "$tmp/out" || fail "refusals not counted by reason"
grep -q "warn frame refused seq=[0-9]* did=did:" "$tmp/out" || fail "refusal log lacks the DID"
# --offline: the seeded documents are all there is; nothing is fetched, and
# an unseeded repository is refused
expect_exit 0 "$ingest" --from-file "$tmp/gen.bin" --dry-run --exit-at-end --offline \
    --did-docs "$tmp/gen-docs.json"
grep -q "^errors: none" "$tmp/out" || fail "--offline refused seeded repositories"
grep -q " 0 fetched" "$tmp/out" || fail "--offline fetched documents"
expect_exit 0 "$ingest" --from-file "$tmp/gen.bin" --dry-run --exit-at-end --offline --quiet
grep -q "frames: commit 0 " "$tmp/out" || fail "--offline accepted unseeded repositories"
grep -q "offline, and no document was seeded" "$tmp/out" || fail "--offline refusal not said"
# a seeded repository whose commit does not verify: offline, no newer key can be learned
"$gen" --out "$tmp/unsigned.bin" --frames 20 --seed 9 --unsigned >/dev/null || fail "gen --unsigned"
expect_exit 0 "$ingest" --from-file "$tmp/unsigned.bin" --dry-run --exit-at-end --offline \
    --did-docs "$tmp/gen-docs.json"
grep -q "kind=signature .*offline: the seeded document is the only one" "$tmp/out" ||
    fail "--offline signature refusal not said: $(grep -m1 refused "$tmp/out")"
expect_exit 0 "$ingest" --from-file "$tmp/gen.bin" --dry-run --exit-at-end --no-verify
grep -q "NOT checked" "$tmp/out" || fail "--no-verify does not warn"
grep -q "^verification: off" "$tmp/out" || fail "--no-verify not in the report"

# decoding threads: the same counts, refusals by reason and events whatever
# their number (0: on the reading thread), verified or refused
for args in "$nv" "--offline --quiet"; do
    for threads in 0 1 3; do
        # shellcheck disable=SC2086 # $args is several words
        expect_exit 0 "$ingest" --from-file "$tmp/gen.bin" --dry-run --exit-at-end --repeat 2 \
            --verify-threads $threads $args
        grep -E "^(frames|events|errors):" "$tmp/out" >"$tmp/report.$threads"
    done
    cmp -s "$tmp/report.0" "$tmp/report.1" || fail "1 decoding thread reports otherwise ($args)"
    cmp -s "$tmp/report.0" "$tmp/report.3" || fail "3 decoding threads report otherwise ($args)"
done
grep -q "^frames: commit 0 " "$tmp/report.3" || fail "refused with 3 threads: not all"
expect_exit 1 "$ingest" --from-file "$tmp/gen.bin" --dry-run --verify-threads 257
expect_exit 1 "$ingest" --from-file "$tmp/gen.bin" --dry-run --verify-threads two

# the real relay capture, when ../shared is there
corpus=${ES_SHARED_DIR:-}/fixtures/firehose-corpus/frames.bin.zst
if [ -n "${ES_SHARED_DIR:-}" ] && [ -f "$corpus" ]; then
    docs=$ES_SHARED_DIR/fixtures/firehose-corpus/did_docs.json.zst
    expect_exit 0 "$ingest" --from-file "$corpus" --dry-run --exit-at-end --verify-all-blocks \
        --did-docs "$docs"
    grep -q "frames: commit 148 sync 0 identity 1 account 1" "$tmp/out" || fail "corpus counts"
    grep -q "events: 152 " "$tmp/out" || fail "corpus events"
    grep -q "^errors: none" "$tmp/out" || fail "corpus errors"
    grep -q "^verification: on; DID documents: .* 0 fetched, 0 failed" "$tmp/out" ||
        fail "the corpus was not verified offline"
    grep -q "documents=148" "$tmp/out" || fail "--did-docs did not seed 148 documents"
else
    echo "SKIP: the real capture is absent (ES_SHARED_DIR=${ES_SHARED_DIR:-unset})"
fi
echo "es-atproto-ingest: all checks passed"
