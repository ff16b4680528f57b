#!/usr/bin/env bash
# examples/hello against nginx, measured in the same run: each server on SERVER_CPUS (default core 1;
# Spindle with --workers 1, nginx with one worker), wrk with one thread on LOAD_CPUS (default core 0),
# 64 keep-alive connections, DURATION seconds per run, RUNS runs alternating between the servers,
# medians. Scenarios: GET /plaintext, GET /json, and /plaintext pipelined DEPTH deep (pipeline.lua).
# One wrk thread saturates its core before either server does, so the server's CPU time per request
# (utime + stime from /proc/PID/stat over the run, divided by the requests wrk completed) is the figure
# that tells the servers apart. A third server, bench/http/floor_server.cpp (an epoll loop that answers
# every read with a fixed response, parsing nothing), shows what the kernel's share of that figure is.
#   bench/http/compare.sh [build dir]          RUNS=5 DURATION=10 CONNECTIONS=64 DEPTH=16
set -euo pipefail
build=${1:-build/release}
runs=${RUNS:-5}
duration=${DURATION:-10}
connections=${CONNECTIONS:-64}
depth=${DEPTH:-16}
server_cpus=${SERVER_CPUS:-1}
load_cpus=${LOAD_CPUS:-0}
scenarios=${SCENARIOS:-"plaintext json pipelined"}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../common.sh
source "$here/../common.sh"
ticks=$(getconf CLK_TCK)
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
command -v nginx >/dev/null || { echo "nginx is not installed (apt-get install nginx)" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Spindle
taskset -c "$server_cpus" "$build/examples/hello" --listen 127.0.0.1:0 --workers 1 >"$work/spindle.out" 2>&1 &
spindle_pid=$!
pids+=("$spindle_pid")
spindle_port=$(wait_for_listening "$work/spindle.out") || { cat "$work/spindle.out" >&2; exit 1; }

# nginx (master and its one worker, both counted)
nginx_port=$(free_port)
mkdir -p "$work/nginx"
sed -e "s|@DIR@|$work/nginx|g" -e "s|@PORT@|$nginx_port|g" "$here/nginx.conf.in" >"$work/nginx/nginx.conf"
taskset -c "$server_cpus" nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" -e "$work/nginx/error.log" &
nginx_master=$!
pids+=("$nginx_master")
wait_for_port "$nginx_port" || { cat "$work/nginx/error.log" >&2; exit 1; }

to_us() {  # wrk's "1.23ms" / "512.00us" / "1.01s" in microseconds
  awk '{v = $1; if (v ~ /us$/) {sub(/us$/, "", v); print v} else if (v ~ /ms$/) {sub(/ms$/, "", v); print v * 1000}
        else if (v ~ /s$/) {sub(/s$/, "", v); print v * 1000000}}'
}

# One wrk run against port $2 for server processes $3 (comma-separated); prints "rps p99_us cpu_us_per_request".
measure() {
  local scenario=$1 port=$2 server_pids=$3
  local path=/plaintext script=()
  [[ $scenario == json ]] && path=/json
  [[ $scenario == pipelined ]] && script=(-s "$here/pipeline.lua")
  local before=0 after=0 pid
  for pid in ${server_pids//,/ }; do before=$((before + $(cpu_ticks "$pid"))); done
  local out
  out=$(taskset -c "$load_cpus" wrk -t1 -c"$connections" -d"${duration}s" --latency "${script[@]}" \
    "http://127.0.0.1:$port$path" ${script:+-- "$depth"})
  for pid in ${server_pids//,/ }; do after=$((after + $(cpu_ticks "$pid"))); done
  local requests rps p99 errors
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out" | to_us)
  # wrk records no latency for the responses to a pipelined batch but the first (its percentiles read 0).
  [[ $scenario == pipelined ]] && p99=-1
  errors=$(awk '/Non-2xx|Socket errors/' <<<"$out")
  [[ -z "$errors" ]] || echo "warning ($scenario on port $port): $errors" >&2
  awk -v r="$rps" -v p="$p99" -v t=$((after - before)) -v hz="$ticks" -v n="$requests" \
    'BEGIN {printf "%.0f %.0f %.3f\n", r, p, t / hz / n * 1e6}'
}

# The floor
floor_port=$(free_port)
taskset -c "$server_cpus" "$build/bench/http_floor_server" "$floor_port" >"$work/floor.out" 2>&1 &
floor_pid=$!
pids+=("$floor_pid")
wait_for_listening "$work/floor.out" >/dev/null || { cat "$work/floor.out" >&2; exit 1; }

nginx_pids="$nginx_master,$(pgrep -P "$nginx_master" | paste -sd,)"
echo "| scenario | server | requests/s | p99 µs | server CPU µs/request | CPU vs nginx |"
echo "|---|---|---:|---:|---:|---:|"
for scenario in $scenarios; do
  declare -A rps=() p99=() cpu=()
  for _ in $(seq "$runs"); do
    for server in nginx floor spindle; do
      case $server in
        nginx) line=$(measure "$scenario" "$nginx_port" "$nginx_pids") ;;
        floor) line=$(measure "$scenario" "$floor_port" "$floor_pid") ;;
        spindle) line=$(measure "$scenario" "$spindle_port" "$spindle_pid") ;;
      esac
      read -r r p c <<<"$line"
      rps[$server]+="$r "; p99[$server]+="$p "; cpu[$server]+="$c "
    done
  done
  nginx_cpu=$(tr ' ' '\n' <<<"${cpu[nginx]}" | grep . | median)
  for server in nginx floor spindle; do
    m_cpu=$(tr ' ' '\n' <<<"${cpu[$server]}" | grep . | median)
    m_p99=$(tr ' ' '\n' <<<"${p99[$server]}" | grep . | median)
    [[ $m_p99 == -1 ]] && m_p99="n/a"
    printf '| %s | %s | %s | %s | %s | %.2f× |\n' "$scenario" "$server" \
      "$(tr ' ' '\n' <<<"${rps[$server]}" | grep . | median)" "$m_p99" \
      "$m_cpu" "$(awk -v a="$m_cpu" -v b="$nginx_cpu" 'BEGIN {print a / b}')"
  done
  unset rps p99 cpu
done
