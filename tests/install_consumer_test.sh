#!/usr/bin/env bash
# Installs Spindle into a temporary prefix and builds a one-file program against it, once through
# find_package(spindle) and once through pkg-config; both programs must run.
set -euo pipefail
source_dir=$1 build_dir=$2 compiler=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null

mkdir -p "$work/consumer"
cp "$source_dir/tests/install_consumer/main.cpp" "$source_dir/tests/install_consumer/CMakeLists.txt" "$work/consumer/"
cmake -S "$work/consumer" -B "$work/consumer/build" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_CXX_COMPILER="$compiler" >/dev/null
cmake --build "$work/consumer/build" >/dev/null
"$work/consumer/build/consumer" | grep -qx "consumer: 42"

PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig:$work/prefix/lib/x86_64-linux-gnu/pkgconfig" \
  "$compiler" "$work/consumer/main.cpp" -o "$work/consumer-pc" \
  $(PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig:$work/prefix/lib/x86_64-linux-gnu/pkgconfig" pkg-config --cflags --libs spindle)
"$work/consumer-pc" | grep -qx "consumer: 42"
echo "install consumer: find_package and pkg-config builds both ran"
