#!/usr/bin/env bash
# Installs the build into a temporary prefix, then builds and runs consumers
# of both installed libraries (consumer.c: libes; atproto_consumer.c:
# libes-atproto) against it: through find_package(es) (es::es,
# es::es_static, es::atproto, es::atproto_static) and through pkg-config
# (es, es-atproto; shared, and static from a copy of the prefix without the
# .so files, which also shows that the tree can move). Given TOOLS_DIR, it
# also builds es-tool from its sources against the installed tree alone
# (the tools use the public API only) and runs it. Given EXAMPLES_DIR, it
# builds the examples that check their own outcome (flight_booking,
# live_watch, order_inventory) from their sources against the installed
# package and, when NATS_URL names a server, runs them against it.
#
# What it proves about a consumer's needs: only libnats-dev and the -dev
# packages of zstd, libsodium, jansson and OpenSSL (and libcurl for a static
# libes-atproto: its DID resolver).
#   1. The installed es.pc, es-atproto.pc and CMake package files never name
#      libcbor, msgpack, cmocka or libwebsockets; the installed headers include
#      only <es/...>, <nats/nats.h> and standard C headers.
#   2. Every consumer is configured and built with pkg-config seeing only the
#      installed .pc files and those of libnats, libzstd, libsodium, jansson
#      and libcrypto (PKG_CONFIG_LIBDIR), and no program links or loads
#      libcbor, libmsgpackc, libcmocka or libwebsockets.
#   3. When it can (root, unshare, dpkg), all of that runs in a private mount
#      namespace where every file of libcbor, msgpack-c, cmocka and
#      libwebsockets (-dev and runtime packages) is replaced by an empty file:
#      a header, .pc, CMake file or library of theirs that a consumer needed
#      would fail its build or its run. Otherwise it says that it skipped it.
# Usage: test_install.sh BUILD_DIR SOURCE_DIR [TOOLS_DIR [EXAMPLES_DIR]]
set -euo pipefail
build=$1 src=$2 tools=${3:-} examples=${4:-}
hidden_packages=(libcbor-dev libmsgpack-dev libcmocka-dev libwebsockets-dev)
allowed_modules=(libnats libzstd libsodium jansson libcrypto libsecp256k1 libcurl)

fail() {
    echo "install: $*" >&2
    exit 1
}

# Replaces every file of the hidden packages and of their runtime libraries
# by an empty one (bind mounts: only inside this process's mount namespace).
hide_packages() {
    local pkgs=() p f
    for p in "${hidden_packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || continue
        pkgs+=("$p")
        for f in $(dpkg -L "$p" | grep '\.so$'); do # the runtime package behind each library
            [ -e "$f" ] && pkgs+=("$(dpkg -S "$(readlink -f "$f")" | cut -d: -f1)")
        done
    done
    if [ ${#pkgs[@]} -eq 0 ]; then
        echo "install: none of ${hidden_packages[*]} is installed: nothing to hide"
        return
    fi
    mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" | sort -u)
    local n=0
    for p in "${pkgs[@]}"; do
        while IFS= read -r f; do
            if [ -f "$f" ] && [ ! -L "$f" ]; then
                mount --bind /dev/null "$f"
                n=$((n + 1))
            fi
        done < <(dpkg -L "$p")
    done
    for f in /usr/include/msgpack.h /usr/include/cbor.h; do
        if [ -s "$f" ]; then fail "could not hide $f"; fi
    done
    echo "install: consumers built with ${#pkgs[@]} packages hidden ($n files emptied: ${pkgs[*]})"
}

# Builds and runs every consumer; $tmp holds the installed prefix.
consumers() {
    local prefix=$tmp/prefix libdir pcdir
    libdir=$(dirname "$(find "$prefix" -name 'libes.so' | head -n1)")
    pcdir=$libdir/pkgconfig
    export PKG_CONFIG_LIBDIR=$pcdir:$tmp/pkgconfig-allowed
    unset PKG_CONFIG_PATH

    cmake -S "$src" -B "$tmp/cmake" -DCMAKE_PREFIX_PATH="$prefix" \
        -DES_EXPECTED_VERSION="$version" -DES_TOOLS_DIR="$tools" -DES_EXAMPLES_DIR="$examples" \
        >"$tmp/cmake.log" 2>&1 ||
        { cat "$tmp/cmake.log"; fail "find_package(es) failed"; }
    cmake --build "$tmp/cmake" -j 2 >>"$tmp/cmake.log" 2>&1 ||
        { cat "$tmp/cmake.log"; fail "the find_package(es) consumers did not build"; }

    mkdir "$tmp/pc"
    # shellcheck disable=SC2046
    cc -o "$tmp/pc/consumer" "$src/consumer.c" $(pkg-config --cflags --libs es)
    # shellcheck disable=SC2046
    cc -o "$tmp/pc/atproto_consumer" "$src/atproto_consumer.c" $(pkg-config --cflags --libs es-atproto)
    # Static: a copy of the prefix without the shared libraries, so that the
    # linker takes libes.a and libes-atproto.a and needs every Libs.private.
    cp -a "$prefix" "$tmp/static"
    find "$tmp/static" -name 'libes*.so*' -delete
    local spc=${pcdir/#$prefix/$tmp/static}
    # shellcheck disable=SC2046
    cc -o "$tmp/pc/consumer_static" "$src/consumer.c" \
        $(PKG_CONFIG_LIBDIR=$spc:$tmp/pkgconfig-allowed pkg-config --static --cflags --libs es)
    # shellcheck disable=SC2046
    cc -o "$tmp/pc/atproto_consumer_static" "$src/atproto_consumer.c" \
        $(PKG_CONFIG_LIBDIR=$spc:$tmp/pkgconfig-allowed pkg-config --static --cflags --libs es-atproto)

    local prog needed ran_examples=0 progs=("$tmp"/cmake/consumer "$tmp"/cmake/consumer_static
        "$tmp"/cmake/atproto_consumer "$tmp"/cmake/atproto_consumer_static "$tmp"/pc/*)
    [ -z "$tools" ] || progs+=("$tmp/cmake/es-tool")
    [ -z "$examples" ] || progs+=("$tmp"/cmake/example_*)
    for prog in "${progs[@]}"; do
        needed=$(readelf -d "$prog" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
        if grep -Eqi 'cbor|msgpack|cmocka|websockets' <<<"$needed"; then
            fail "$prog needs: $needed"
        fi
        if [[ $prog == *_static && $needed == *libes* ]]; then
            fail "$prog should have linked libes statically, yet needs: $needed"
        fi
        case "$prog" in
        *atproto_consumer*) LD_LIBRARY_PATH=$libdir "$prog" "$tmp/capture.bin.zst" ;;
        *es-tool) LD_LIBRARY_PATH=$libdir "$prog" --version | grep "^es-tool $version " ;;
        */example_*) # its exit status is its checks'
            [ -z "${NATS_URL:-}" ] || {
                LD_LIBRARY_PATH=$libdir "$prog" --store "install_${prog##*/example_}" &&
                    ran_examples=$((ran_examples + 1))
            }
            ;;
        *) LD_LIBRARY_PATH=$libdir "$prog" ;;
        esac >"$tmp/run.log" 2>&1 || { cat "$tmp/run.log"; fail "$prog failed"; }
    done
    echo "install: ran ${#progs[@]} programs; the last said: $(head -n1 "$tmp/run.log")"
    if [ -n "$examples" ]; then
        if [ "$ran_examples" -gt 0 ]; then
            echo "install: $ran_examples examples built against the install ran their checks on $NATS_URL"
        else
            echo "install: examples built against the install, NOT run (no NATS_URL)"
        fi
    fi
}

if [ "${ES_INSTALL_STAGE:-}" = hidden ]; then # re-run inside the namespace
    tmp=$ES_INSTALL_TMP version=$ES_INSTALL_VERSION
    hide_packages
    consumers
    exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")

# What is installed: both libraries, shared and static, the generated
# headers, and the user-facing programs only.
for lib in libes.so libes.a libes-atproto.so libes-atproto.a; do
    [ -n "$(find "$tmp/prefix" -name "$lib")" ] || fail "$lib is not installed"
done
for h in es.h version.h export.h atproto.h atproto_audit.h; do
    [ -f "$tmp/prefix/include/es/$h" ] || fail "es/$h is not installed"
done
for p in "$tmp"/prefix/bin/*; do
    case "${p##*/}" in
    es-tool | es-atproto-ingest | es-atproto-verify | es-atproto-serve | es-conformance) ;;
    *) fail "installs ${p##*/}, which is not a user-facing program" ;;
    esac
done
for p in es-tool es-atproto-ingest es-atproto-verify es-atproto-serve; do
    [ -x "$tmp/prefix/bin/$p" ] || fail "$p must be installed"
done

# 1. The package's own files.
meta=$(find "$tmp/prefix" \( -name 'es*.pc' -o -path '*/cmake/es/*' \) -type f)
[ "$(wc -l <<<"$meta")" -ge 4 ] || fail "the pkg-config and CMake files are missing"
# shellcheck disable=SC2086
if grep -EiHn 'cbor|msgpack|cmocka|websockets' $meta; then
    fail "the package names a library that libes does not link (above)"
fi
if grep -rhE '^[[:space:]]*#[[:space:]]*include' "$tmp/prefix/include" | grep -vE \
    '<(es/[a-z0-9_]+|nats/nats|assert|errno|inttypes|limits|stdarg|stdbool|stddef|stdint|stdio|stdlib|string|time)\.h>'; then
    fail "an installed header includes a header outside es/, nats.c and the C library (above)"
fi

# 2. pkg-config sees the installed package and the allowed modules only.
mkdir "$tmp/pkgconfig-allowed"
for m in "${allowed_modules[@]}"; do
    ln -s "$(pkg-config --variable=pcfiledir "$m")/$m.pc" "$tmp/pkgconfig-allowed/"
done

# 3. With the other packages hidden when this machine allows it.
if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null && command -v dpkg >/dev/null &&
    unshare --mount true 2>/dev/null; then
    ES_INSTALL_STAGE=hidden ES_INSTALL_TMP=$tmp ES_INSTALL_VERSION=$version \
        unshare --mount --propagation private "$0" "$build" "$src" "$tools" "$examples"
else
    echo "install: libcbor, msgpack-c, cmocka and libwebsockets NOT hidden (needs root and unshare)"
    consumers
fi
echo "install: find_package(es) and pkg-config consumers of libes and libes-atproto built and ran${tools:+, and es-tool from its sources}${examples:+, and the examples}"
