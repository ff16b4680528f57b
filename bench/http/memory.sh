#!/usr/bin/env bash
# Memory per connection, Spindle's hello example against nginx (bench/http/connection_memory.cpp does
# the measuring, from the server's VmRSS): CONNECTIONS keep-alive connections that each made one
# request and stay idle; and, for Spindle, CONNECTIONS requests waiting at once on /delay?ms=3000 (nginx
# has no handler that waits). A fresh server for every run; RUNS runs; medians. Servers on core 1, the
# load on core 0; both raise their open-file limit to 20,000 (this machine's hard limit).
#   bench/http/memory.sh [build dir]        RUNS=3 CONNECTIONS=10000
set -euo pipefail
build=${1:-build/release}
runs=${RUNS:-3}
connections=${CONNECTIONS:-10000}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../common.sh
source "$here/../common.sh"
ulimit -n 20000
work=$(mktemp -d)
server_pid=""
cleanup() {
  [[ -n "$server_pid" ]] && kill -TERM "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# run_once SERVER MODE: prints "growth_kib bytes_per_connection"
run_once() {
  local server=$1 mode=$2 port pid
  if [[ $server == spindle ]]; then
    taskset -c 1 "$build/examples/hello" --listen 127.0.0.1:0 --workers 1 >"$work/out" 2>&1 &
    server_pid=$!
    port=$(wait_for_listening "$work/out")
    pid=$server_pid
  else
    port=$(free_port)
    mkdir -p "$work/nginx"
    sed -e "s|@DIR@|$work/nginx|g" -e "s|@PORT@|$port|g" "$here/nginx.conf.in" >"$work/nginx/nginx.conf"
    taskset -c 1 nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" -e "$work/nginx/error.log" &
    server_pid=$!
    wait_for_port "$port"
    pid=$(pgrep -P "$server_pid")  # the worker holds the connections
  fi
  sleep 0.5
  taskset -c 0 "$build/bench/http_connection_memory" --port "$port" --pid "$pid" --connections "$connections" \
    --mode "$mode" | sed 's/.*growth_kib=\([0-9-]*\) bytes_per_connection=\([0-9.-]*\).*/\1 \2/'
  kill -TERM "$server_pid"
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

echo "| server | $connections connections | RSS growth (KiB, median of $runs) | per connection (bytes) |"
echo "|---|---|---:|---:|"
for row in "spindle idle" "nginx idle" "spindle waiting"; do
  read -r server mode <<<"$row"
  growths=() per=()
  for _ in $(seq "$runs"); do
    read -r g b <<<"$(run_once "$server" "$mode")"
    growths+=("$g"); per+=("$b")
  done
  printf '| %s | %s | %s | %s |\n' "$server" "$mode" "$(printf '%s\n' "${growths[@]}" | median)" \
    "$(printf '%s\n' "${per[@]}" | median)"
done
