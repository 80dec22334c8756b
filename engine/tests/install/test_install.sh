#!/usr/bin/env bash
# Installs the build into a temporary prefix, then builds and runs a consumer
# against it twice: with find_package(es) (shared and static targets) and
# with pkg-config. Usage: test_install.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
test -f "$tmp/prefix/lib/libes.a" -o -f "$tmp/prefix/lib/x86_64-linux-gnu/libes.a"
cmake -S "$src" -B "$tmp/cmake" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/cmake" >/dev/null
LD_LIBRARY_PATH=$(dirname "$(find "$tmp/prefix" -name 'libes.so*' | head -n1)") "$tmp/cmake/consumer"
"$tmp/cmake/consumer_static"
pc=$(dirname "$(find "$tmp/prefix" -name es.pc | head -n1)")
# shellcheck disable=SC2046
cc -o "$tmp/pc-consumer" "$src/consumer.c" $(PKG_CONFIG_PATH=$pc pkg-config --cflags --libs es)
LD_LIBRARY_PATH=$(dirname "$(find "$tmp/prefix" -name 'libes.so*' | head -n1)") "$tmp/pc-consumer"
echo "install: find_package(es) and pkg-config consumers built and ran"
