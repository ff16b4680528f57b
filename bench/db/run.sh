#!/usr/bin/env bash
# Database benchmarks: bench/db/db_server (TechEmpower's shapes on spindle::pg) against a throwaway
# PostgreSQL 15 (scripts/postgres-server), all on this machine, loads only on 127.0.0.1.
#
#   bench/db/run.sh [build dir]        (default build/release; this script builds nothing)
#
# Placement: db_server on SERVER_CPUS (core 0) with one worker thread; PostgreSQL and wrk share LOAD_CPUS
# (core 1). The postmaster is started under taskset, so every backend it forks inherits the affinity.
#
# Every figure is the median of the runs, but errors, which are their sum.
#
# Part 1, throughput and CPU per request. For each shape (/db, /queries?queries=Q, /queries-batch?queries=Q,
# /updates?queries=Q) and each pool configuration in CONFIGS (one server each, all started at once so that
# the runs can alternate between them, as bench/http/compare.sh does), WARMUP seconds unmeasured, then RUNS
# runs of DURATION seconds of wrk (one thread, CONNECTIONS keep-alive connections); medians. Reported per
# row: requests/s, p99, errors (non-2xx responses + socket errors), the server's CPU time per request
# (utime + stime from /proc/PID/stat over the run, clock ticks / CLK_TCK, divided by the requests wrk
# completed), the same per query, how busy the server's core was, PostgreSQL's CPU per request (postmaster
# and backends), and the "foreign" CPU: the machine's busy time (/proc/stat, both cores) minus the server's,
# PostgreSQL's and wrk's. Foreign CPU is someone else's work (another build): a run with more than
# MAX_FOREIGN % of a core of it is taken again, up to 3 times, and flagged in the raw log if it stays so.
#
# Part 2, waiting requests. /sleep (SELECT pg_sleep(0.05)) through a pool of 50 connections, with
# WAIT_SIZES connections of wrk at once (each keeps one request in flight), WAIT_DURATION seconds, in
# exclusive mode (--pipeline off, acquire timeout 30 s: at 10,000 waiting, a request waits ~10 s for a
# connection) and in pipeline mode. The database bounds throughput at 50 / 0.05 s = 1,000/s. A fresh server
# per run; its VmRSS (/proc/PID/status) is read once its 50 connections are open (after a short warm-up)
# and every 100 ms during the load; growth = peak - before, divided by the requests in flight.
#
# Environment: RUNS=3 DURATION=10 WARMUP=3 CONNECTIONS=64 QUERIES=20 SHAPES="db queries queries-batch updates"
#   CONFIGS="name=db_server flags;..." WAIT_SIZES="10000 1000" WAIT_DURATION=20 WAIT_MODES="exclusive pipeline"
#   PARTS="throughput wait" SERVER_CPUS=0 LOAD_CPUS=1 MAX_FOREIGN=10 QUIET_WAIT=120
#   LOG=<file for every run's raw figures, default /tmp/bench-db-DATE.log>
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$repo/build/release}
runs=${RUNS:-3}
duration=${DURATION:-10}
warmup=${WARMUP:-3}
connections=${CONNECTIONS:-64}
queries=${QUERIES:-20}
shapes=${SHAPES:-"db queries queries-batch updates"}
# pipeline-2 is the nearest to one shared connection (a pipeline-mode pool needs max_size >= 2).
configs=${CONFIGS:-"pipeline-2=--pipeline on --pool-size 2;pipeline-50=--pipeline on --pool-size 50;exclusive-50=--pipeline off --pool-size 50"}
wait_sizes=${WAIT_SIZES:-"10000 1000"}
wait_duration=${WAIT_DURATION:-20}
wait_modes=${WAIT_MODES:-"exclusive pipeline"}
parts=${PARTS:-"throughput wait"}
server_cpus=${SERVER_CPUS:-0}
load_cpus=${LOAD_CPUS:-1}
max_foreign=${MAX_FOREIGN:-10}
quiet_wait=${QUIET_WAIT:-120}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../common.sh
source "$here/../common.sh"
ticks=$(getconf CLK_TCK)
server=$build/bench/db/db_server
psql=${SPINDLE_PG_BINDIR:-/usr/lib/postgresql/15/bin}/psql
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
[[ -x $server ]] || { echo "$server is missing: build the db_server target first" >&2; exit 1; }

# 10,000 connections on each side, plus the pool's and the process's own files.
ulimit -n 20000 || { echo "cannot raise the open-file limit to 20,000 (ulimit -Hn is $(ulimit -Hn))" >&2; exit 1; }

work=$(mktemp -d)
# As root, scripts/postgres-server runs PostgreSQL as the postgres user, which must reach $work/pg.
chmod 711 "$work"
log=${LOG:-/tmp/bench-db-$(date -u +%Y%m%dT%H%M%SZ).log}
pg_dir=$work/pg
pg_started=0
# The processes this script started and has not yet waited for (servers, a wrk in the background): only
# these are stopped on the way out, by their ids.
declare -A running=()
cleanup() {
  local pid
  for pid in "${!running[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${!running[@]}"; do wait "$pid" 2>/dev/null || true; done
  if ((pg_started)); then "$repo/scripts/postgres-server" stop "$pg_dir" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

note() { echo "$*" | tee -a "$log" >&2; }

# ---- The machine's state -----------------------------------------------------------------------------------

# Busy clock ticks of all cores since boot (user nice system irq softirq steal; idle and iowait left out).
machine_busy() { awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }

# Waits (up to QUIET_WAIT seconds) until the machine is quiet: our servers and PostgreSQL are idle between
# runs, so anything busy now is someone else. Sets `quiet` to the busy share of one core over the last
# second, in % (a global, not printed: in a $(...) subshell it would outlive a stopped script).
wait_quiet() {
  local busy=100 before waited=0
  for _ in $(seq $(((quiet_wait + 1) / 2))); do
    before=$(machine_busy)
    sleep 1
    busy=$(( ($(machine_busy) - before) * 100 / ticks ))
    ((busy <= max_foreign)) && break
    ((waited)) || note "  machine busy ($busy% of a core before a run): waiting; $(uptime | sed 's/.*load/load/')"
    waited=$((waited + 2))
    sleep 1
  done
  ((waited == 0)) || note "  waited ${waited} s for a quiet machine; now $busy% of a core busy"
  quiet=$busy
}

# PostgreSQL's CPU ticks so far: the postmaster with the ticks of its children that have exited, and every
# live child (backends, walwriter, autovacuum...).
pg_ticks() {
  local total child
  total=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$pg_pid/stat")
  for child in $(pgrep -P "$pg_pid"); do total=$((total + $(cpu_ticks "$child" 2>/dev/null || echo 0))); done
  echo "$total"
}

# This shell's waited-for children (wrk runs in one, its ticks land here when it is waited for).
children_ticks() { awk '{print $16 + $17}' /proc/$$/stat; }

to_us() {  # wrk's "1.23ms" / "512.00us" / "1.01s" / "2.00m" in microseconds
  awk '{v = $1; if (v ~ /us$/) {sub(/us$/, "", v); print v} else if (v ~ /ms$/) {sub(/ms$/, "", v); print v * 1000}
        else if (v ~ /m$/) {sub(/m$/, "", v); print v * 60000000} else if (v ~ /s$/) {sub(/s$/, "", v); print v * 1000000}}'
}

# Errors in wrk's output: non-2xx responses plus socket errors (connect, read, write, timeout).
wrk_errors() {
  awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(",", ""); n += $4 + $6 + $8 + $10} END {print n + 0}' <<<"$1"
}

# ---- PostgreSQL -----------------------------------------------------------------------------------------

{
  echo "bench/db/run.sh $(date -u +%FT%TZ), HEAD $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "src/pg and include/spindle/pg changes not committed: $(git -C "$repo" status --short -- src/pg include/spindle/pg 2>/dev/null | tr '\n' ' ')"
  echo "uptime: $(uptime)"
  top -bn1 | sed -n '7,12p'
} | tee -a "$log" >&2

pg_port=$(taskset -c "$load_cpus" "$repo/scripts/postgres-server" start "$pg_dir")
pg_started=1
pg_pid=$(head -1 "$pg_dir/data/postmaster.pid")
url="postgres://postgres@127.0.0.1:$pg_port/postgres"
note "PostgreSQL on port $pg_port, postmaster $pg_pid, $(taskset -cp "$pg_pid" | sed 's/.*: /CPUs /'), max_connections $("$psql" -h 127.0.0.1 -p "$pg_port" -U postgres -Atc 'SHOW max_connections')"
"$server" --database-url "$url" --setup >&2

# ---- Servers --------------------------------------------------------------------------------------------

# start_server NAME FLAGS...: a db_server on SERVER_CPUS; sets server_pid[NAME] and server_port[NAME].
declare -A server_pid=() server_port=()
start_server() {
  local name=$1
  shift
  taskset -c "$server_cpus" "$server" --listen 127.0.0.1:0 --workers 1 --database-url "$url" "$@" \
    >"$work/$name.out" 2>&1 &
  server_pid[$name]=$!
  running[$!]=1
  server_port[$name]=$(wait_for_listening "$work/$name.out") || { cat "$work/$name.out" >&2; exit 1; }
}
stop_server() {
  local pid=${server_pid[$1]} status=0
  kill -TERM "$pid"
  wait "$pid" || status=$?
  unset "running[$pid]"
  ((status == 0)) || note "  server $1 exited with status $status"
}

# ---- Part 1: throughput and CPU per request ---------------------------------------------------------------

path_of() {
  case $1 in
    db) echo /db ;;
    *) echo "/$1?queries=$queries" ;;
  esac
}
queries_of() { if [[ $1 == db ]]; then echo 1; else echo "$queries"; fi; }

# measure NAME PATH SECONDS: one wrk run; sets m_rps m_p99 m_errors m_cpu m_busy m_pg m_foreign (the CPU
# figures in µs per request, the shares in percent of one core).
measure() {
  local name=$1 path=$2 seconds=$3 pid=${server_pid[$1]}
  local s0 p0 c0 b0 s1 p1 c1 b1 out requests
  s0=$(cpu_ticks "$pid"); p0=$(pg_ticks); c0=$(children_ticks); b0=$(machine_busy)
  out=$(taskset -c "$load_cpus" wrk -t1 -c"$connections" -d"${seconds}s" --latency "http://127.0.0.1:${server_port[$name]}$path")
  s1=$(cpu_ticks "$pid"); p1=$(pg_ticks); c1=$(children_ticks); b1=$(machine_busy)
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  m_rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$out")
  m_p99=$(awk '$1 == "99%" {print $2}' <<<"$out" | to_us)
  m_errors=$(wrk_errors "$out")
  read -r m_cpu m_busy m_pg m_foreign < <(awk -v s=$((s1 - s0)) -v p=$((p1 - p0)) -v w=$((c1 - c0)) -v b=$((b1 - b0)) \
    -v hz="$ticks" -v n="$requests" -v d="$seconds" \
    'BEGIN {printf "%.2f %.0f %.2f %.0f\n", s / hz / n * 1e6, s / hz / d * 100, p / hz / n * 1e6, (b - s - p - w) / hz / d * 100}')
}

med() { tr ' ' '\n' <<<"$1" | grep . | median; }
# Errors are summed over the runs, not a median: one run's errors must show.
total() { tr ' ' '\n' <<<"$1" | awk '{n += $1} END {print n + 0}'; }

throughput() {
  local config name shape path run attempt quiet c
  local -a names=() flags=() config_list=()
  IFS=';' read -ra config_list <<<"$configs"
  for config in "${config_list[@]}"; do
    name=${config%%=*}
    read -ra flags <<<"${config#*=}"
    start_server "$name" "${flags[@]}"
    names+=("$name")
  done
  echo
  echo "| shape | pool | requests/s | p99 ms | errors (all runs) | server CPU µs/request | µs/query | server core busy | PostgreSQL CPU µs/request | foreign CPU |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  for shape in $shapes; do
    path=$(path_of "$shape")
    declare -A rps=() p99=() errors=() cpu=() busy=() pgcpu=() foreign=()
    for name in "${names[@]}"; do  # opens the pool's connections, fills PostgreSQL's caches
      measure "$name" "$path" "$warmup"
      note "warm-up $shape $name: $m_rps requests/s, $m_errors errors"
    done
    for run in $(seq "$runs"); do
      for name in "${names[@]}"; do
        for attempt in 1 2 3; do
          wait_quiet
          measure "$name" "$path" "$duration"
          note "run $run $shape $name (attempt $attempt, $quiet% busy before): $m_rps requests/s, p99 $m_p99 µs, $m_errors errors, server $m_cpu µs/request ($m_busy% of its core), PostgreSQL $m_pg µs/request, foreign $m_foreign%"
          ((m_foreign <= max_foreign)) && break
          note "  disturbed: $m_foreign% of a core was someone else's"
        done
        rps[$name]+="$m_rps "; p99[$name]+="$m_p99 "; errors[$name]+="$m_errors "; cpu[$name]+="$m_cpu "
        busy[$name]+="$m_busy "; pgcpu[$name]+="$m_pg "; foreign[$name]+="$m_foreign "
      done
    done
    for name in "${names[@]}"; do
      c=$(med "${cpu[$name]}")
      printf '| %s | %s | %s | %.2f | %s | %s | %.2f | %s%% | %s | %s%% |\n' "$path" "$name" "$(med "${rps[$name]}")" \
        "$(awk -v v="$(med "${p99[$name]}")" 'BEGIN {print v / 1000}')" "$(total "${errors[$name]}")" "$c" \
        "$(awk -v c="$c" -v q="$(queries_of "$shape")" 'BEGIN {print c / q}')" "$(med "${busy[$name]}")" \
        "$(med "${pgcpu[$name]}")" "$(med "${foreign[$name]}")"
    done
    unset rps p99 errors cpu busy pgcpu foreign
  done
  for name in "${names[@]}"; do stop_server "$name"; done
}

# ---- Part 2: requests waiting on the database ---------------------------------------------------------------

vm_rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
client_backends() {
  "$psql" -h 127.0.0.1 -p "$pg_port" -U postgres -Atc \
    "SELECT count(*) - 1 FROM pg_stat_activity WHERE backend_type = 'client backend'"  # - 1: this psql
}

# wait_once MODE N: sets w_line to "rps errors p99_ms growth_kib bytes_per_request cpu_us_per_request
# connections" (not printed: run in a subshell, the server and wrk would escape the cleanup's list).
wait_once() {
  local mode=$1 n=$2 pid out peak before rss s0 s1 requests backends wrk_pid
  local flags=(--pool-size 50 --pipeline on)
  [[ $mode == exclusive ]] && flags=(--pool-size 50 --pipeline off --acquire-timeout-ms 30000)
  start_server wait "${flags[@]}"
  pid=${server_pid[wait]}
  # 100 requests at once for 2 s: every one of the 50 connections opens (exclusive mode leases all of them;
  # pipeline mode opens one while every open one is busy), and the allocator's pools reach their working size.
  taskset -c "$load_cpus" wrk -t1 -c100 -d2s "http://127.0.0.1:${server_port[wait]}/sleep" >/dev/null
  sleep 1
  backends=$(client_backends)
  before=$(vm_rss_kib "$pid")
  peak=$before
  s0=$(cpu_ticks "$pid")
  taskset -c "$load_cpus" wrk -t1 -c"$n" -d"${wait_duration}s" --timeout 30s --latency \
    "http://127.0.0.1:${server_port[wait]}/sleep" >"$work/wait.out" &
  wrk_pid=$!
  running[$wrk_pid]=1
  while kill -0 "$wrk_pid" 2>/dev/null; do
    rss=$(vm_rss_kib "$pid")
    if ((rss > peak)); then peak=$rss; fi
    sleep 0.1
  done
  wait "$wrk_pid" || true
  unset "running[$wrk_pid]"
  s1=$(cpu_ticks "$pid")
  out=$(cat "$work/wait.out")
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  w_line=$(awk -v r="$(awk '/Requests\/sec/ {print $2}' <<<"$out")" -v e="$(wrk_errors "$out")" \
    -v p="$(awk '$1 == "99%" {print $2}' <<<"$out" | to_us)" -v g=$((peak - before)) -v n="$n" \
    -v s=$((s1 - s0)) -v hz="$ticks" -v q="$requests" -v c="$backends" \
    'BEGIN {printf "%.0f %d %.0f %d %.0f %.1f %d\n", r, e, p / 1000, g, g * 1024 / n, s / hz / q * 1e6, c}')
  stop_server wait
}

wait_test() {
  local mode n run quiet r e p g b c k
  local -a w_rps=() w_errors=() w_p99=() w_growth=() w_per=() w_cpu=() w_conns=()
  echo
  echo "| /sleep through 50 connections | requests waiting | requests/s | errors (all runs) | p99 ms | RSS growth KiB | bytes per waiting request | server CPU µs/request | pool connections open |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  for n in $wait_sizes; do
    for mode in $wait_modes; do
      w_rps=() w_errors=() w_p99=() w_growth=() w_per=() w_cpu=() w_conns=()
      for run in $(seq "$runs"); do
        wait_quiet
        wait_once "$mode" "$n"
        note "wait $mode $n run $run ($quiet% busy before): rps errors p99_ms growth_kib bytes/request cpu_us/request connections = $w_line"
        read -r r e p g b c k <<<"$w_line"
        w_rps+=("$r"); w_errors+=("$e"); w_p99+=("$p"); w_growth+=("$g"); w_per+=("$b"); w_cpu+=("$c"); w_conns+=("$k")
      done
      printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$mode" "$n" "$(printf '%s\n' "${w_rps[@]}" | median)" \
        "$(total "${w_errors[*]}")" "$(printf '%s\n' "${w_p99[@]}" | median)" \
        "$(printf '%s\n' "${w_growth[@]}" | median)" "$(printf '%s\n' "${w_per[@]}" | median)" \
        "$(printf '%s\n' "${w_cpu[@]}" | median)" "$(printf '%s\n' "${w_conns[@]}" | median)"
    done
  done
}

for part in $parts; do
  case $part in
    throughput) throughput ;;
    wait) wait_test ;;
    *) echo "unknown part $part" >&2; exit 2 ;;
  esac
done
note "raw figures: $log; uptime at the end: $(uptime)"
