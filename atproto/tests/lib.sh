# Sourced by the command-line tests (atproto/tests/test-gen.sh,
# tools/es-atproto-ingest/test-ingest.sh): a scratch directory $tmp removed
# on exit, fail and expect_exit.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

expect_exit() { # CODE COMMAND... : run, keep stdout+stderr in $tmp/out
    local want=$1; shift
    local got=0
    "$@" >"$tmp/out" 2>&1 || got=$?
    [ "$got" = "$want" ] || { cat "$tmp/out"; fail "exit $got, expected $want: $*"; }
}
