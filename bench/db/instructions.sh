#!/usr/bin/env bash
# User-space instructions per request of bench/db/db_server, counted by callgrind (repeatable, unlike
# timings, and unaffected by other work on the machine): REQUESTS sequential keep-alive requests for PATH_
# on one connection, minus a run with one request (start-up, the pool's first connection, shutdown).
# PostgreSQL is a throwaway one (scripts/postgres-server). With ANNOTATE=1 it also prints the top functions
# of the larger run (callgrind_annotate, inclusive of nothing: self cost).
#   bench/db/instructions.sh [build dir]     REQUESTS=5000 PATH_=/db FLAGS="--pipeline on --pool-size 2"
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$repo/build/release}
requests=${REQUESTS:-5000}
path=${PATH_:-/db}
read -ra flags <<<"${FLAGS:---pipeline on --pool-size 2}"
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../common.sh
source "$here/../common.sh"
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
work=$(mktemp -d)
chmod 711 "$work"  # as root, PostgreSQL runs as the postgres user, which must reach $work/pg
pg_started=0
server_pid=""
cleanup() {
  if [[ -n $server_pid ]]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if ((pg_started)); then "$repo/scripts/postgres-server" stop "$work/pg" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

pg_port=$("$repo/scripts/postgres-server" start "$work/pg")
pg_started=1
url="postgres://postgres@127.0.0.1:$pg_port/postgres"
"$build/bench/db/db_server" --database-url "$url" --setup >/dev/null

count() {  # count N: total instructions of a server run that answered N requests
  local n=$1 port
  valgrind --tool=callgrind --callgrind-out-file="$work/cg.$n" "$build/bench/db/db_server" --listen 127.0.0.1:0 \
    --database-url "$url" "${flags[@]}" >"$work/out.$n" 2>"$work/err.$n" &
  server_pid=$!
  port=$(wait_for_listening "$work/out.$n") || { cat "$work/err.$n" >&2; exit 1; }
  send_sequential_requests "$port" "$n" "$path"
  kill -TERM "$server_pid"
  wait "$server_pid" || true
  server_pid=""
  callgrind_annotate "$work/cg.$n" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
}

one=$(count 1)
many=$(count "$requests")
awk -v a="$many" -v b="$one" -v n="$requests" -v p="$path" \
  'BEGIN {printf "%s: %.0f instructions per request (%d requests, callgrind, start-up subtracted)\n", p, (a - b) / (n - 1), n}'
# ANNOTATE=1: the functions that cost most per request (self cost, the one-request run subtracted).
if [[ ${ANNOTATE:-0} == 1 ]]; then
  for n in 1 "$requests"; do callgrind_annotate --threshold=100 "$work/cg.$n" >"$work/annotate.$n" 2>/dev/null; done
  python3 - "$work/annotate.1" "$work/annotate.$requests" "$requests" <<'PY'
import re, sys
def functions(path):
    costs = {}
    for line in open(path):
        m = re.match(r"\s*([\d,]+) \([\s\d.]+%\)\s+(.*)$", line)
        if m and "PROGRAM TOTALS" not in line:
            text = m.group(2)
            obj = text.rsplit("[", 1)[-1].rstrip("]").rsplit("/", 1)[-1] if text.endswith("]") else "?"
            name = text.rsplit(" [", 1)[0] if text.endswith("]") else text
            name = name.split(":", 1)[1] if name.startswith(("???:", "./", "/")) else name
            name = re.sub(r"\[clone [^]]*\]|\(anonymous namespace\)::", "", name)
            name = re.sub(r"\(.*", "", name).strip()
            key = (name, obj)
            costs[key] = costs.get(key, 0) + int(m.group(1).replace(",", ""))
    return costs
one, many, n = functions(sys.argv[1]), functions(sys.argv[2]), int(sys.argv[3])
per = {k: (many[k] - one.get(k, 0)) / (n - 1) for k in many}
total = sum(per.values())
by_object = {}
for (name, obj), cost in per.items():
    by_object[obj] = by_object.get(obj, 0) + cost
print("per object:", ", ".join(f"{o} {c:.0f} ({c / total * 100:.0f}%)" for o, c in sorted(by_object.items(), key=lambda x: -x[1])[:6]))
def layer(name, obj):
    if obj.startswith("libpq"): return "libpq"
    if re.search(r"malloc|free|unlink_chunk|consolidate|tcache", name) and obj.startswith("libc"): return "malloc/free"
    if "pthread_mutex" in name: return "mutex"
    if obj.startswith("libc") or obj.startswith("libstdc++"): return "libc/libstdc++ other"
    if "pg::" in name or "db::" in name: return "spindle::pg/db"
    if "http::" in name: return "spindle::http"
    if "json::" in name: return "spindle::json"
    if name.startswith("spindle::") or "frame" in name: return "runtime"
    return "other (the handlers, std)"
by_layer = {}
for (name, obj), cost in per.items():
    by_layer[layer(name, obj)] = by_layer.get(layer(name, obj), 0) + cost
print("per layer:", ", ".join(f"{k} {c:.0f}" for k, c in sorted(by_layer.items(), key=lambda x: -x[1])))
for (name, obj), cost in sorted(per.items(), key=lambda x: -x[1])[:40]:
    print(f"{cost:8.0f} {cost / total * 100:5.1f}%  {name[:110]}  [{obj}]")
PY
fi
