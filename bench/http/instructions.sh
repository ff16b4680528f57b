#!/usr/bin/env bash
# User-space instructions per request, counted by callgrind (repeatable, unlike timings): the hello
# example answers REQUESTS sequential keep-alive requests for PATH on one connection, and the count of
# a run with one request is subtracted (start-up and shutdown).
#   bench/http/instructions.sh [build dir]        REQUESTS=10000 PATH_=/plaintext
set -euo pipefail
build=${1:-build/release}
requests=${REQUESTS:-10000}
path=${PATH_:-/plaintext}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../common.sh
source "$here/../common.sh"
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

count() {  # count N: total instructions of a server run that answered N requests
  local n=$1 port
  port=$(free_port)
  valgrind --tool=callgrind --callgrind-out-file="$work/cg.$n" "$build/examples/hello" --listen "127.0.0.1:$port" \
    >"$work/out.$n" 2>"$work/err.$n" &
  local pid=$!
  wait_for_listening "$work/out.$n" >/dev/null
  send_sequential_requests "$port" "$n" "$path"
  kill -INT "$pid"
  wait "$pid" || true
  callgrind_annotate "$work/cg.$n" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
}

one=$(count 1)
many=$(count "$requests")
awk -v a="$many" -v b="$one" -v n="$requests" -v p="$path" \
  'BEGIN {printf "%s: %.0f instructions per request (%d requests, callgrind, start-up subtracted)\n", p, (a - b) / (n - 1), n}'
