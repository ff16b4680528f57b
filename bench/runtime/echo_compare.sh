#!/usr/bin/env bash
# Spindle's echo example against a reference echo server, measured in the same run on this machine:
# each server pinned to SERVER_CPUS (default core 1, one thread), the load generator (bench/echo_load)
# pinned to LOAD_CPUS (default core 0), closed-loop 64-byte round trips at several concurrencies, RUNS
# runs each, medians.
# Reference: Node.js's net module (`socket.pipe(socket)`), skipped if node is not installed or NODE=0.
# SPINDLE lists the Spindle variants as "name=arguments" separated by ';' (default: the example's
# default scheduler with one worker).
#   bench/runtime/echo_compare.sh [build dir]        RUNS=3 DURATION=5 CONCURRENCY="1 64 1000"
#   SPINDLE="per-core=--scheduler per-core;work-stealing=--scheduler work-stealing" NODE=0 bench/runtime/echo_compare.sh
set -euo pipefail
build=${1:-build/release}
runs=${RUNS:-3}
duration=${DURATION:-5}
concurrency=${CONCURRENCY:-"1 64 1000"}
server_cpus=${SERVER_CPUS:-1}
load_cpus=${LOAD_CPUS:-0}
variants=${SPINDLE:-"spindle=--workers 1"}
here=$(cd "$(dirname "$0")" && pwd)
ticks=$(getconf CLK_TCK)

# shellcheck source=../common.sh
source "$here/../common.sh"

run_peer() {
  local name=$1; shift
  local out; out=$(mktemp)
  taskset -c "$server_cpus" "$@" >"$out" 2>&1 &
  local pid=$!
  local port
  port=$(wait_for_listening "$out") || { echo "$name did not start: $(cat "$out")" >&2; kill "$pid"; return 1; }
  for c in $concurrency; do
    local rates=() p99s=() cpus=()
    for _ in $(seq "$runs"); do
      local before; before=$(cpu_ticks "$pid")
      local line; line=$(taskset -c "$load_cpus" "$build/bench/echo_load" --connect "127.0.0.1:$port" --connections "$c" \
        --duration "$duration" --warmup 1)
      local after; after=$(cpu_ticks "$pid")
      rates+=("$(sed 's/.*round_trips_per_s=\([0-9.]*\).*/\1/' <<<"$line")")
      p99s+=("$(sed 's/.*p99_us=\([0-9.]*\).*/\1/' <<<"$line")")
      cpus+=("$(awk -v t=$((after - before)) -v hz="$ticks" -v d="$duration" 'BEGIN {printf "%.0f", 100 * t / hz / (d + 1)}')")
    done
    printf '| %s | %s | %s | %s | %s%% |\n' "$name" "$c" \
      "$(printf '%s\n' "${rates[@]}" | median)" "$(printf '%s\n' "${p99s[@]}" | median)" "$(printf '%s\n' "${cpus[@]}" | median)"
  done
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  rm -f "$out"
}

echo "| server | connections | round trips/s (median of $runs) | p99 µs | server CPU |"
echo "|---|---:|---:|---:|---:|"
IFS=';' read -ra spindle_variants <<<"$variants"
for variant in "${spindle_variants[@]}"; do
  read -ra variant_args <<<"${variant#*=}"
  run_peer "${variant%%=*}" "$build/examples/echo" --listen 127.0.0.1:0 "${variant_args[@]}"
done
if [[ "${NODE:-1}" != 0 ]] && command -v node >/dev/null; then
  run_peer "node $(node --version)" node "$here/node_echo.js" 127.0.0.1:0
fi
