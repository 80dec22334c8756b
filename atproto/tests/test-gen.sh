#!/usr/bin/env bash
# Command-line test of es-atproto-gen's signing options: DID documents before
# and after key rotation, identical bytes for identical options, the
# repositories of --repos-out and --pds-url, refusal of bad usage. (What the documents and signatures prove:
# test_atproto_gen_sign.c.)
#   test-gen.sh GEN_BINARY
set -euo pipefail
gen=$1
. "$(dirname "$0")/lib.sh" # $tmp, fail, expect_exit

keys() { grep -o '"z[1-9A-HJ-NP-Za-km-z]*"' "$1"; } # the documents' Multikeys, in order

run() { # NAME CURVE: a capture with rotations and both sets of documents
    expect_exit 0 "$gen" --out "$tmp/$1.bin" --zstd 0 --frames 2000 --repos 20 --seed 4 \
        --curve "$2" --rotate-keys 20 --did-docs-out "$tmp/$1.docs.json" \
        --rotated-docs-out "$tmp/$1.rotated.json"
    grep -q "signed$" "$tmp/out" || fail "$1: not signed"
    rotations=$(sed -n 's/.*(\([0-9]*\) key rotations).*/\1/p' "$tmp/out")
    [ "$rotations" -gt 0 ] || fail "$1: no rotation"
    [ "$(grep -c '"publicKeyMultibase"' "$tmp/$1.docs.json")" = 20 ] || fail "$1: not 20 documents"
    [ "$(grep -c '"alsoKnownAs"' "$tmp/$1.rotated.json")" = 20 ] || fail "$1: not 20 rotated"
    changed=$(diff <(keys "$tmp/$1.docs.json") <(keys "$tmp/$1.rotated.json") | grep -c '^>' || true)
    [ "$changed" = "$rotations" ] || fail "$1: $changed keys changed for $rotations rotations"
}

run k256 k256
run p256 p256
run mixed mixed
# Multikey prefixes: zQ3s (secp256k1-pub), zDn (p256-pub)
for c in k256 p256 mixed; do keys "$tmp/$c.docs.json" >"$tmp/$c.keys"; done
if grep -qv '^"zQ3s' "$tmp/k256.keys"; then fail "k256: a key that is not K-256"; fi
if grep -qv '^"zDn' "$tmp/p256.keys"; then fail "p256: a key that is not P-256"; fi
grep -q '^"zQ3s' "$tmp/mixed.keys" || fail "mixed: no K-256 key"
grep -q '^"zDn' "$tmp/mixed.keys" || fail "mixed: no P-256 key"

# the same options, the same bytes: capture and documents (both curves)
run again mixed
cmp "$tmp/mixed.bin" "$tmp/again.bin" || fail "two runs, two captures"
cmp "$tmp/mixed.rotated.json" "$tmp/again.rotated.json" || fail "two runs, two documents"

# the default is signed with mixed keys; --unsigned still writes a capture
expect_exit 0 "$gen" --out "$tmp/d.bin" --frames 100
grep -q "signed$" "$tmp/out" || fail "default not signed"
expect_exit 0 "$gen" --out "$tmp/u.bin" --frames 100 --unsigned
grep -q "unsigned$" "$tmp/out" || fail "--unsigned is signed"

# --repos-out: one getRepo CAR and one record list per account, the CARs
# those of the capture's repos (what they prove: test_atproto_repo_verify.c,
# which verifies the library's CARs; here the files and the options), the
# same bytes for the same options; --pds-url in every document
mkdir -p "$tmp/repos" "$tmp/repos2"
expect_exit 0 "$gen" --out "$tmp/r.bin" --frames 300 --repos 5 --seed 9 --repos-out "$tmp/repos" \
    --pds-url http://127.0.0.1:2583 --did-docs-out "$tmp/r.docs.json"
[ "$(ls "$tmp/repos"/*.car | wc -l)" = 5 ] || fail "--repos-out: not 5 CARs"
[ "$(ls "$tmp/repos"/*.tsv | wc -l)" = 5 ] || fail "--repos-out: not 5 record lists"
for f in "$tmp/repos"/*.tsv; do
    case $(basename "$f") in did_plc_*.tsv) ;; *) fail "--repos-out: file name $f" ;; esac
    grep -q "did:plc:$(basename "$f" .tsv | sed 's/^did_plc_//')" "$tmp/r.docs.json" ||
        fail "--repos-out: $f names no account"
    [ -s "$f" ] || fail "--repos-out: $f is empty"
    if grep -qvP '^[a-z][a-zA-Z0-9.]*/[A-Za-z0-9._:~-]+\tbafyrei[a-z2-7]+$' "$f"; then
        fail "--repos-out: $f has a line that is not collection/rkey<TAB>CID"
    fi
    LC_ALL=C sort -c "$f" || fail "--repos-out: $f is not in key order"
done
[ "$(grep -c '"serviceEndpoint": "http://127.0.0.1:2583"' "$tmp/r.docs.json")" = 5 ] ||
    fail "--pds-url: not in every document"
expect_exit 0 "$gen" --out "$tmp/r2.bin" --frames 300 --repos 5 --seed 9 --repos-out "$tmp/repos2" \
    --pds-url http://127.0.0.1:2583
cmp "$tmp/r.bin" "$tmp/r2.bin" || fail "--repos-out changed the capture"
diff -r "$tmp/repos" "$tmp/repos2" >/dev/null || fail "two runs, two sets of repos"
grep -q 'https://pds.gen.example' "$tmp/k256.docs.json" || fail "default PDS endpoint"

# bad usage
expect_exit 2 "$gen" --out "$tmp/x.bin" --pds-url ftp://pds.example
expect_exit 2 "$gen" --out "$tmp/x.bin" --unsigned --pds-url https://pds.example
expect_exit 1 "$gen" --out "$tmp/x.bin" --frames 10 --repos-out "$tmp/no/such/dir"
expect_exit 2 "$gen" --out "$tmp/x.bin" --curve ed25519
expect_exit 2 "$gen" --out "$tmp/x.bin" --rotate-keys 1001
expect_exit 2 "$gen" --out "$tmp/x.bin" --unsigned --curve k256
expect_exit 2 "$gen" --out "$tmp/x.bin" --unsigned --did-docs-out "$tmp/x.json"
expect_exit 1 "$gen" --out "$tmp/x.bin" --did-docs-out "$tmp/no/such/dir.json"
echo "test-gen: ok"
