#!/usr/bin/env python3
"""The comparison matrix: Spindle against thread-per-request (Tomcat, Spring Boot's defaults) and Node.js.

Starts each peer pinned to core 0 with the load generators on core 1, measures, stops everything, and
writes docs/benchmarks/matrix.md with PNG charts beside it (gnuplot).

    bench/matrix/run.py [--quick] [--build build/release] [--out docs/benchmarks]

Every load targets 127.0.0.1 and ends by itself. Python's standard library only.
"""

import argparse
import datetime
import http.client
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOMCAT_JARS = ["/usr/share/java/tomcat10-embed-core.jar", "/usr/share/java/jakarta-annotation-api.jar"]
FILE_LIMIT = 20000  # the machine's hard limit per process
USERS_SCRIPT = os.path.join(ROOT, "bench/matrix/users.lua")
USERS_SEEDED = 1000  # users in the table before the end-to-end row's reads
SPIKE_RUNS_SPINDLE = 3  # the spike is Spindle's goal: several runs, the median one charted


def raise_file_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(FILE_LIMIT, hard), hard))


class Progress:
    """One line per step: which peer, which step, how long so far, and the time left by the plan."""

    def __init__(self, planned_seconds):
        self.start = time.monotonic()
        self.planned = planned_seconds

    def say(self, peer, step):
        elapsed = time.monotonic() - self.start
        left = max(0, self.planned - elapsed)
        print(f"[{elapsed:6.0f} s, ~{left:4.0f} s left] {peer}: {step}", flush=True)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Peer:
    """A server process pinned to core 0, started and stopped by the harness."""

    def __init__(self, name, argv, warm_up=3):
        self.name = name
        self.argv = argv
        self.warm_up = warm_up
        self.process = None
        self.port = None

    def start(self):
        self.port = free_port()
        argv = [a.replace("{port}", str(self.port)) for a in self.argv]
        self.process = subprocess.Popen(["taskset", "-c", "0"] + argv, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True, preexec_fn=raise_file_limit)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if line.startswith("listening on"):
                break
            if not line and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited before listening")
        else:
            raise RuntimeError(f"{self.name} did not announce itself")
        self.url = f"http://127.0.0.1:{self.port}"
        # The baseline of "memory per in-flight request": the process as started, before any load, so that
        # what serving brings (threads, buffers, a grown heap) counts.
        time.sleep(1)
        self.start_rss_kb = self.rss_kb()
        if self.warm_up:  # the JVM's JIT above all: a few seconds of each endpoint
            for path in ("/plaintext", "/json", "/delay"):
                run_wrk(f"{self.url}{path}", 50 if path != "/delay" else 200, self.warm_up)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def cpu_ticks(self):
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks

    def settle(self, limit_seconds=30):
        """Waits until the peer is quiet (under 5% of a core over a second): a server still answering the
        requests of a run that ended (Tomcat works through its queue after the client has gone) would
        otherwise slow the next measurement."""
        deadline = time.monotonic() + limit_seconds
        ticks_per_second = os.sysconf("SC_CLK_TCK")
        while time.monotonic() < deadline:
            before = self.cpu_ticks()
            time.sleep(1)
            if self.cpu_ticks() - before <= 0.05 * ticks_per_second:
                return

    def rss_kb(self):
        return proc_status(self.process.pid)["VmRSS"]

    def threads(self):
        return proc_status(self.process.pid)["Threads"]

    def context_switches(self):
        total = 0
        task_dir = f"/proc/{self.process.pid}/task"
        for task in os.listdir(task_dir):
            try:
                status = proc_status_path(f"{task_dir}/{task}/status")
            except FileNotFoundError:
                continue  # a thread that just ended
            total += status["voluntary_ctxt_switches"] + status["nonvoluntary_ctxt_switches"]
        return total


def proc_status_path(path):
    values = {}
    with open(path) as status:
        for line in status:
            key, _, rest = line.partition(":")
            number = rest.split()
            if number and number[0].isdigit():
                values[key] = int(number[0])
    return values


def proc_status(pid):
    return proc_status_path(f"/proc/{pid}/status")


def run_wrk(url, connections, seconds, script_args=None):
    """wrk on core 1: requests per second, latency percentiles (ms), errors. With script_args, the requests
    come from users.lua (its arguments: see the script)."""
    target = ["-s", USERS_SCRIPT, url, "--"] + script_args if script_args else [url]
    return parse_wrk(subprocess.run(["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
                                     "--latency", "--timeout", "5s"] + target, capture_output=True, text=True,
                                    preexec_fn=raise_file_limit, timeout=seconds + 60).stdout)


def parse_wrk(out):
    result = {"rps": 0.0, "errors": 0, "requests": 0}
    if m := re.search(r"Requests/sec:\s+([\d.]+)", out):
        result["rps"] = float(m.group(1))
    if m := re.search(r"(\d+) requests in", out):
        result["requests"] = int(m.group(1))
    for p in ("50", "99"):
        if m := re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\b", out, re.M):
            value, unit = float(m.group(1)), m.group(2)
            result[f"p{p}_ms"] = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        result["errors"] += sum(int(x) for x in m.groups())
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        result["errors"] += int(m.group(1))
    return result


def run_loadgen(build, args, seconds_limit):
    out = subprocess.run(["taskset", "-c", "1", f"{build}/bench/loadgen"] + args, capture_output=True, text=True,
                         preexec_fn=raise_file_limit, timeout=seconds_limit).stdout
    seconds = []
    total = {}
    for line in out.splitlines():
        fields = line.split()
        if fields[:1] == ["second"]:
            seconds.append({fields[i]: float(fields[i + 1]) for i in range(0, len(fields) - 1, 2)})
        elif fields[:1] == ["total"]:
            total = {fields[i]: float(fields[i + 1]) for i in range(1, len(fields) - 1, 2)}
    return seconds, total


def measure_throughput(peer, runs, seconds, progress):
    rows = {}
    for path in ("/plaintext", "/json"):
        progress.say(peer.name, f"throughput {path}, {runs} x {seconds} s, 100 connections")
        peer.settle()
        results = [run_wrk(f"{peer.url}{path}", 100, seconds) for _ in range(runs)]
        rows[path] = {"rps": statistics.median(r["rps"] for r in results),
                      "runs": [r["rps"] for r in results],
                      "p50_ms": statistics.median(r.get("p50_ms", 0) for r in results),
                      "p99_ms": statistics.median(r.get("p99_ms", 0) for r in results)}
    return rows


def measure_delay(peer, concurrency, seconds, progress):
    """Closed loop on /delay with `concurrency` connections (wrk: the lighter client, so that the server
    and not the generator is what saturates): rps, p50/p99, errors, RSS and threads while loaded, context
    switches per request. Memory per in-flight request = (loaded RSS - RSS as started) / the requests in
    flight, which is the connection count (each always has one waiting on the 50 ms)."""
    progress.say(peer.name, f"/delay at {concurrency} connections, {seconds} s")
    peer.settle()
    idle_rss = peer.start_rss_kb
    switches_before = peer.context_switches()
    load = subprocess.Popen(["taskset", "-c", "1", "wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency",
                             "--timeout", "5s", f"{peer.url}/delay"], stdout=subprocess.PIPE, text=True,
                            preexec_fn=raise_file_limit)
    samples = []
    threads = 0
    time.sleep(min(3, seconds / 2))
    while load.poll() is None:
        samples.append(peer.rss_kb())
        threads = max(threads, peer.threads())
        time.sleep(0.5)
    result = parse_wrk(load.stdout.read())
    switches = peer.context_switches() - switches_before
    answered = max(0, result["requests"] - result["errors"])
    loaded_rss = statistics.median(samples) if samples else idle_rss
    return {"concurrency": concurrency, "rps": result["rps"], "ok": answered, "errors": result["errors"],
            "error_rate": result["errors"] / max(1, result["requests"]), "p50_ms": result.get("p50_ms", 0),
            "p99_ms": result.get("p99_ms", 0), "idle_rss_kb": idle_rss, "loaded_rss_kb": loaded_rss,
            "bytes_per_request": (loaded_rss - idle_rss) * 1024 / concurrency, "threads": threads,
            "switches_per_request": switches / max(1, answered)}


def measure_latency(peer, build, concurrency, seconds, progress):
    """p50/p99/p99.9 on /delay from loadgen (wrk prints no p99.9), closed loop."""
    progress.say(peer.name, f"/delay latency at {concurrency} connections, {seconds} s")
    peer.settle()
    _, total = run_loadgen(build, ["--url", f"{peer.url}/delay", "--connections", str(concurrency), "--duration",
                                   str(seconds), "--timeout-ms", "5000"], seconds + 60)
    return total


def spike_worst_second(seconds):
    return max((s["p99_ms"] for s in seconds if s["ok"] > 0), default=0)


def black_friday(peer, build, ramp, hold, runs, progress):
    """The open-loop spike, `runs` times; the run whose worst one-second p99 is the median is the one kept
    whole (charted), and every run's summary is kept beside it."""
    kept = []
    for run in range(runs):
        progress.say(peer.name, f"Black Friday{f' (run {run + 1} of {runs})' if runs > 1 else ''}: /delay 1,000 "
                                f"-> 10,000 req/s over {ramp} s, then {hold} s held")
        peer.settle()
        seconds, total = run_loadgen(build, ["--url", f"{peer.url}/delay", "--rate", "1000", "--rate-end", "10000",
                                             "--ramp", str(ramp), "--hold", str(hold), "--timeout-ms", "2000"],
                                     ramp + hold + 60)
        kept.append({"seconds": seconds, "total": total})
    kept.sort(key=lambda r: spike_worst_second(r["seconds"]))
    median = kept[len(kept) // 2]
    return {"seconds": median["seconds"], "total": median["total"],
            "runs": [{"worst_second_p99_ms": spike_worst_second(r["seconds"]), "total": r["total"]} for r in kept]}


def seed_users(peer, count):
    connection = http.client.HTTPConnection("127.0.0.1", peer.port, timeout=10)
    for i in range(count):
        connection.request("POST", "/users", json.dumps({"name": f"Seed {i}", "email": f"seed-{i}@seed.test"}),
                           {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        if response.status != 201:
            raise RuntimeError(f"seeding the users service: POST /users answered {response.status}")
    connection.close()


def users_total(peer):
    connection = http.client.HTTPConnection("127.0.0.1", peer.port, timeout=10)
    connection.request("GET", "/users?limit=1")
    total = json.loads(connection.getresponse().read())["total"]
    connection.close()
    return total


def users_service(build, runs, seconds, progress):
    """The end-to-end row: the users service (examples/users) on PostgreSQL 15, both on core 0, wrk with
    100 connections on core 1. The table holds USERS_SEEDED users; the list and the reads run on it as
    seeded, the creates last (each adds a row, and the list counts them all)."""
    progress.say("users", "starting PostgreSQL 15 and the users service, seeding")
    pg_dir = tempfile.mkdtemp(prefix="matrix-pg-")
    pg_port = subprocess.run(["taskset", "-c", "0", os.path.join(ROOT, "scripts/postgres-server"), "start", pg_dir],
                             capture_output=True, text=True, check=True).stdout.strip()
    peer = Peer("users", [f"{build}/examples/users-server", "--listen", "127.0.0.1:{port}", "--workers", "1",
                          "--database-url", f"postgres://postgres@127.0.0.1:{pg_port}/postgres"], warm_up=0)
    try:
        peer.start()
        seed_users(peer, USERS_SEEDED)
        run_wrk(peer.url, 50, 2, ["read", str(USERS_SEEDED)])  # warm-up: connections, prepared statements
        rows = {}
        steps = (("GET /users?limit=20", lambda run: (f"{peer.url}/users?limit=20", None)),
                 ("GET /users/{id}", lambda run: (peer.url, ["read", str(USERS_SEEDED)])),
                 ("POST /users", lambda run: (peer.url, ["create", f"run{run}"])))
        for name, target in steps:
            progress.say("users", f"{name}, {runs} x {seconds} s, 100 connections")
            peer.settle()
            results = []
            for run in range(runs):
                url, script_args = target(run)
                results.append(run_wrk(url, 100, seconds, script_args))
            rows[name] = {"rps": statistics.median(r["rps"] for r in results), "runs": [r["rps"] for r in results],
                          "p50_ms": statistics.median(r.get("p50_ms", 0) for r in results),
                          "p99_ms": statistics.median(r.get("p99_ms", 0) for r in results),
                          "errors": sum(r["errors"] for r in results)}
        return {"seeded": USERS_SEEDED, "rows_at_end": users_total(peer), "rss_kb": peer.rss_kb(),
                "threads": peer.threads(), "endpoints": rows}
    finally:
        peer.stop()
        subprocess.run([os.path.join(ROOT, "scripts/postgres-server"), "stop", pg_dir], capture_output=True)


def versions():
    def first_line(argv):
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            return (done.stdout + done.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "not found"
    jar = os.path.realpath(TOMCAT_JARS[0])
    cpu = "unknown"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"kernel": platform.release(), "cpu": cpu, "cores": os.cpu_count(),
            "java": first_line(["java", "-version"]), "node": first_line(["node", "--version"]),
            "wrk": first_line(["wrk", "-v"]), "tomcat": os.path.basename(jar), "gcc": first_line(["g++", "--version"]),
            "postgres": first_line([os.path.join(os.environ.get("SPINDLE_PG_BINDIR", "/usr/lib/postgresql/15/bin"),
                                                 "postgres"), "--version"])}


def write_charts(results, out_dir):
    """gnuplot PNGs: throughput and p99 against concurrency, memory against concurrency, the timeline."""
    data = tempfile.mkdtemp(prefix="matrix-")
    peers = list(results)
    for name in peers:
        with open(f"{data}/{name}.delay", "w") as f:
            for row in results[name]["delay"]:
                f.write(f"{row['concurrency']} {row['rps']} {row['p99_ms']} {row['loaded_rss_kb'] / 1024}\n")
        with open(f"{data}/{name}.spike", "w") as f:
            for row in results[name]["black_friday"]["seconds"]:
                total = row["sent"] + row["not_sent"]
                ok_share = 100 * row["ok"] / total if total else 0
                f.write(f"{row['second']} {ok_share} {row['errors'] + row['not_sent']} {row['p99_ms']}\n")

    def plot(name, title, ylabel, column, suffix, log=False, xlabel="concurrent connections"):
        lines = ", ".join(f"'{data}/{p}.{suffix}' using 1:{column} with linespoints title '{p}'" for p in peers)
        script = (f"set terminal pngcairo size 900,500 font 'sans,11'\nset output '{out_dir}/{name}.png'\n"
                  f"set title '{title}'\nset xlabel '{xlabel}'\nset ylabel '{ylabel}'\nset grid\n"
                  f"set key top left\n{'set logscale y' if log else ''}\nplot {lines}\n")
        subprocess.run(["gnuplot"], input=script, text=True, check=True)

    plot("throughput", "/delay (50 ms wait): requests per second", "requests/s", 2, "delay")
    plot("p99", "/delay: p99 latency", "ms (log scale)", 3, "delay", log=True)
    plot("memory", "/delay: resident memory under load", "MiB", 4, "delay")
    plot("black-friday-p99", "Black Friday: p99 latency per second (1,000 -> 10,000 req/s)", "ms (log scale)", 4,
         "spike", log=True, xlabel="second")
    plot("black-friday-success", "Black Friday: requests answered on time, per second", "% of scheduled", 2, "spike",
         xlabel="second")
    shutil.rmtree(data)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short runs (under 3 minutes)")
    parser.add_argument("--build", default=os.path.join(ROOT, "build/release"))
    parser.add_argument("--out", default=os.path.join(ROOT, "docs/benchmarks"))
    parser.add_argument("--peers", default="spindle,tomcat,node,users",
                        help="which to run; users: the users service on PostgreSQL, the end-to-end row")
    args = parser.parse_args()
    raise_file_limit()

    quick = args.quick
    runs, throughput_seconds = (1, 3) if quick else (3, 8)
    concurrency = [500, 1000, 10000] if quick else [200, 500, 1000, 2000, 5000, 10000, 15000, 18000]
    delay_seconds = 3 if quick else 8
    ramp, hold = (8, 4) if quick else (60, 30)
    warm_up = 1 if quick else 3
    spike_runs = 1 if quick else SPIKE_RUNS_SPINDLE
    classes = tempfile.mkdtemp(prefix="matrix-java-")
    subprocess.run(["javac", "-cp", TOMCAT_JARS[0], "-d", classes,
                    os.path.join(ROOT, "bench/matrix/peers/MatrixServlet.java")], check=True)
    all_peers = {
        "spindle": Peer("spindle", [f"{args.build}/examples/hello", "--listen", "127.0.0.1:{port}", "--workers", "1"],
                        warm_up),
        "tomcat": Peer("tomcat", ["java", "-cp", ":".join(TOMCAT_JARS + [classes]), "MatrixServlet", "127.0.0.1",
                                  "{port}", "200"], warm_up),
        "node": Peer("node", ["node", os.path.join(ROOT, "bench/matrix/peers/matrix-server.js"), "127.0.0.1",
                              "{port}"], warm_up),
    }
    names = args.peers.split(",")
    chosen = [all_peers[name] for name in names if name != "users"]
    per_peer = 4 + 3 * (warm_up + 1) + 2 * runs * (throughput_seconds + 1) + (len(concurrency) + 1) * (delay_seconds + 3)
    spike_seconds = (ramp + hold + 5) * (len(chosen) + (spike_runs - 1 if "spindle" in names else 0))
    users_seconds = 10 + 3 * runs * (throughput_seconds + 1) if "users" in names else 0
    progress = Progress(per_peer * len(chosen) + spike_seconds + users_seconds)
    results = {}
    started = datetime.datetime.now(datetime.timezone.utc)
    for peer in chosen:
        progress.say(peer.name, "starting and warming up")
        peer.start()
        try:
            results[peer.name] = {
                "start_rss_kb": peer.start_rss_kb,
                "idle_threads": peer.threads(),
                "throughput": measure_throughput(peer, runs, throughput_seconds, progress),
                "delay": [measure_delay(peer, c, delay_seconds, progress) for c in concurrency],
                "latency_1000": measure_latency(peer, args.build, 1000, delay_seconds, progress),
                "black_friday": black_friday(peer, args.build, ramp, hold,
                                             spike_runs if peer.name == "spindle" else 1, progress),
            }
        finally:
            peer.stop()
    shutil.rmtree(classes)
    users = users_service(args.build, runs, throughput_seconds, progress) if "users" in names else None
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "matrix.json"), "w") as f:
        json.dump({"started": started.isoformat(), "quick": quick, "versions": versions(), "results": results,
                   "users_service": users}, f, indent=1)
    write_charts(results, args.out)
    subprocess.run([sys.executable, os.path.join(ROOT, "bench/matrix/report.py"), os.path.join(args.out, "matrix.json"),
                    os.path.join(args.out, "matrix.md")], check=True)
    progress.say("all", f"done: {args.out}/matrix.md")


if __name__ == "__main__":
    main()
