#!/usr/bin/env bash
# WebSocket sockets held open on the chat example (examples/chat): the servers' memory per socket, and how
# long a broadcast takes to reach every socket.
#
#   bench/websocket/run.sh [CONNECTIONS] [--compression]      (default 10000, compression off)
#
# Servers on core 0, load generators (bench/websocket/ws_load.cpp) on core 1. A process here may hold
# 20,000 open files, and one source address has about 28,000 ephemeral ports towards one server port, so:
# one chat process per 17,000 sockets, all on the same port (SO_REUSEPORT: the kernel spreads the
# connections), and one ws_load process per 17,000 sockets, each from its own source address (127.0.0.2,
# 127.0.0.3, ...). Broadcast latency is measured only with one server: a broadcast reaches the sockets of
# the process that received it. RSS is what the processes hold in user space; the kernel's socket buffers
# are not in it (/proc/net/sockstat shows them, printed at the end).
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/common.sh

CONNECTIONS=${1:-10000}
COMPRESSION=""
[[ "${2:-}" == "--compression" ]] && COMPRESSION="--compression"
BUILD=${BUILD:-build/release}
PER_PROCESS=17000
HOLD=${HOLD:-25}                 # seconds each load process holds its sockets once they are open
PING_INTERVAL=${PING_INTERVAL:-5}  # seconds of silence before a socket pings (every socket pings)
BROADCASTS=${BROADCASTS:-20}
PAYLOAD=${PAYLOAD:-0}              # bytes per broadcast message (past 64 they are compressed, if enabled)

ulimit -n 20000
servers=$(( (CONNECTIONS + PER_PROCESS - 1) / PER_PROCESS ))
clients=$servers
port=$(free_port)
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

server_pids=()
for i in $(seq "$servers"); do
  taskset -c 0 "$BUILD/examples/chat" --listen "127.0.0.1:$port" --workers 1 $COMPRESSION >"$work/server$i.out" 2>&1 &
  pids+=($!)
  server_pids+=($!)
  wait_for_listening "$work/server$i.out" >/dev/null
done
sleep 0.5
baseline=0
for pid in "${server_pids[@]}"; do baseline=$((baseline + $(rss_kib "$pid"))); done

echo "$CONNECTIONS sockets, $servers server process(es), compression ${COMPRESSION:-off}, every socket pings after ${PING_INTERVAL}s of silence"
client_pids=()
for i in $(seq "$clients"); do
  share=$(( CONNECTIONS / clients + (i <= CONNECTIONS % clients ? 1 : 0) ))
  extra=()
  if [[ $i -eq 1 && $servers -eq 1 ]]; then extra=(--broadcasts "$BROADCASTS" --payload "$PAYLOAD" --latency-file "$work/latencies"); fi
  taskset -c 1 "$BUILD/bench/ws_load" --url "ws://127.0.0.1:$port/ws" --connections "$share" \
    --local "127.0.0.$((i + 1))" --hold "$HOLD" --ping-interval "$PING_INTERVAL" $COMPRESSION "${extra[@]}" \
    >"$work/client$i.out" 2>"$work/client$i.err" &
  pids+=($!)
  client_pids+=($!)
done
for i in $(seq "$clients"); do
  until grep -q '^connected' "$work/client$i.out"; do
    kill -0 "${client_pids[$((i - 1))]}" 2>/dev/null || { cat "$work/client$i.err"; exit 1; }
    sleep 0.2
  done
  grep '^connected' "$work/client$i.out"
done
sleep 2  # the last handshakes' buffers go back to their pools
total=0
for pid in "${server_pids[@]}"; do total=$((total + $(rss_kib "$pid"))); done
held=$((total - baseline))
echo "server RSS: ${total} KiB in all (${baseline} KiB before the sockets opened)"
# PSS counts a page shared by several processes (the libraries') once in all: the memory really used.
pss=0
for pid in "${server_pids[@]}"; do pss=$((pss + $(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup"))); done
echo "server PSS: ${pss} KiB in all"
echo "per socket: $(( held * 1024 / CONNECTIONS )) bytes of server RSS"
grep -E '^(TCP|sockets)' /proc/net/sockstat | sed 's/^/kernel: /'

for pid in "${client_pids[@]}"; do wait "$pid" || true; done
for i in $(seq "$clients"); do grep '^received' "$work/client$i.out" || true; done
if [[ -s "$work/latencies" ]]; then
  sort -g "$work/latencies" | awk '{a[NR]=$1} END {
    printf "broadcast latency to %d deliveries: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", NR,
      a[int(NR*0.5)+1]/1e6, a[int(NR*0.99)+1]/1e6, a[NR]/1e6 }'
fi
