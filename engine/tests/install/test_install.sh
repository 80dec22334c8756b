#!/usr/bin/env bash
# Installs the build into a temporary prefix, then builds and runs a consumer
# against it twice: with find_package(es) (shared and static targets) and
# with pkg-config; and, given TOOLS_DIR, builds es-tool from its sources
# against the installed tree alone and runs it.
# Usage: test_install.sh BUILD_DIR SOURCE_DIR [TOOLS_DIR]
set -euo pipefail
build=$1 src=$2 tools=${3:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
test -f "$tmp/prefix/lib/libes.a" -o -f "$tmp/prefix/lib/x86_64-linux-gnu/libes.a"
cmake -S "$src" -B "$tmp/cmake" -DCMAKE_PREFIX_PATH="$tmp/prefix" -DES_TOOLS_DIR="$tools" >/dev/null
cmake --build "$tmp/cmake" -j 2 >/dev/null
LD_LIBRARY_PATH=$(dirname "$(find "$tmp/prefix" -name 'libes.so*' | head -n1)") "$tmp/cmake/consumer"
"$tmp/cmake/consumer_static"
if [ -n "$tools" ]; then
    LD_LIBRARY_PATH=$(dirname "$(find "$tmp/prefix" -name 'libes.so*' | head -n1)") \
        "$tmp/cmake/es-tool" --version | grep -q '^es-tool '
    echo "install: es-tool built from its sources against the installed tree and ran"
fi
pc=$(dirname "$(find "$tmp/prefix" -name es.pc | head -n1)")
# shellcheck disable=SC2046
cc -o "$tmp/pc-consumer" "$src/consumer.c" $(PKG_CONFIG_PATH=$pc pkg-config --cflags --libs es)
LD_LIBRARY_PATH=$(dirname "$(find "$tmp/prefix" -name 'libes.so*' | head -n1)") "$tmp/pc-consumer"
echo "install: find_package(es) and pkg-config consumers built and ran"
