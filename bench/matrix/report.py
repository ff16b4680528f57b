#!/usr/bin/env python3
"""Writes the comparison matrix's report (Markdown) from the measurements run.py saved as JSON.

    bench/matrix/report.py docs/benchmarks/matrix.json docs/benchmarks/matrix.md

The verdicts on the seed's claims are computed from the figures by the rules written beside them, so a
new run that changes a figure changes the verdict with it.
"""

import json
import sys

LIMIT_P99_MS = 1000  # the concurrency limit: under 1% errors and p99 under 1 s
LIMIT_ERROR_RATE = 0.01


def kb(value):
    return f"{value / 1024:,.1f} KiB" if value < 1024 * 1024 else f"{value / 1024 / 1024:,.1f} MiB"


def mib(value_kb):
    return f"{value_kb / 1024:,.0f} MiB"


def delay_at(peer, concurrency):
    for row in peer["delay"]:
        if row["concurrency"] == concurrency:
            return row
    return None


def concurrency_limit(peer):
    """The largest concurrency measured that was served with < 1% errors and p99 < 1 s, and whether a
    larger one was measured (otherwise the limit is the largest tried, a lower bound)."""
    served = [r["concurrency"] for r in peer["delay"]
              if r["error_rate"] < LIMIT_ERROR_RATE and r["p99_ms"] < LIMIT_P99_MS]
    tried = max(r["concurrency"] for r in peer["delay"])
    best = max(served) if served else 0
    return best, best == tried


def spike_summary(peer):
    seconds = peer["black_friday"]["seconds"]
    total = peer["black_friday"]["total"]
    failed = int(total.get("errors", 0) + total.get("not_sent", 0))
    scheduled = int(total.get("sent", 0) + total.get("not_sent", 0))
    worst_p99 = max((s["p99_ms"] for s in seconds if s["ok"] > 0), default=0)
    bad_seconds = sum(1 for s in seconds if s["errors"] + s["not_sent"] > 0 or s["p99_ms"] > 60)
    return {"failed": failed, "scheduled": scheduled, "worst_p99": worst_p99, "bad_seconds": bad_seconds,
            "seconds": len(seconds), "p99": total.get("p99_ms", 0)}


def main():
    source, target = sys.argv[1], sys.argv[2]
    with open(source) as f:
        data = json.load(f)
    results = data["results"]
    versions = data["versions"]
    peers = list(results)
    has = lambda name: name in results  # noqa: E731
    out = []
    w = out.append
    w("# The comparison matrix: Spindle, thread-per-request (Tomcat) and Node.js")
    w("")
    w(f"Measured {data['started'][:16].replace('T', ' ')} UTC{' (quick mode: short runs, indicative only)' if data['quick'] else ''}"
      f" by `make bench-matrix` (`bench/matrix/run.py`, report by `bench/matrix/report.py`).")
    w("")
    w(f"- Machine: {versions['cpu']}, {versions['cores']} cores, Linux {versions['kernel']}; at most 20,000 open "
      "files per process, which caps every concurrency figure below (each in-flight request holds a socket on "
      "both sides). The sweep stops at 18,000: one wrk process holds that many sockets, so more client processes "
      "would not raise the cap; the server's own limit would, and only several server processes get past it.")
    w("- Each peer runs alone, pinned to core 0 (`taskset -c 0`); the load generator runs on core 1. wrk (closed "
      "loop) measures throughput and the `/delay` runs at fixed concurrency (it is the lighter client, so the "
      "server saturates first); `bench/loadgen` gives p99.9 at 1,000 and drives the spike open loop.")
    w(f"- Spindle: `examples/hello`, 1 worker thread ({versions['gcc']}). Tomcat: {versions['tomcat']}, embedded, "
      f"Spring Boot's defaults (200 threads, 8,192 connections, backlog 100), the wait `Thread.sleep(50)`; "
      f"{versions['java']}. Node.js {versions['node']}, the `http` module, the wait a timer. {versions['wrk']}.")
    w("- Endpoints: `/plaintext`, `/json`, `/delay` (50 ms wait, then 200). Peers: `bench/matrix/peers/`.")
    w("")
    w("## The matrix")
    w("")
    w("| row | method | " + " | ".join(peers) + " |")
    w("|---|---|" + "---|" * len(peers))

    def row(title, method, cell):
        w(f"| {title} | {method} | " + " | ".join(cell(results[p]) for p in peers) + " |")

    def delay_cell(concurrency, fn):
        def cell(peer):
            r = delay_at(peer, concurrency)
            return fn(r) if r else "not measured"
        return cell

    row("Memory per in-flight request, 1,000", "(RSS under load − RSS of the process as started) / 1,000 "
        "connections each waiting on `/delay`", delay_cell(1000, lambda r: kb(r["bytes_per_request"])))
    row("Memory per in-flight request, 10,000", "the same at 10,000 connections",
        delay_cell(10000, lambda r: kb(r["bytes_per_request"]) + ("" if r["error_rate"] < 0.01 else
                                                                  f" ({r['error_rate'] * 100:.0f}% errors)")))

    def limit_cell(peer):
        best, is_max = concurrency_limit(peer)
        return f"{'≥ ' if is_max else ''}{best:,}" if best else "< " + f"{min(r['concurrency'] for r in peer['delay']):,}"
    tried = ", ".join(f"{r['concurrency']:,}" for r in results[peers[0]]["delay"])
    row("Concurrent request limit", f"largest concurrency tried on `/delay` with < 1% errors and p99 < 1 s "
        f"(tried: {tried})", limit_cell)
    row("OS threads", "most seen in /proc/PID/status under load (idle in brackets)",
        lambda p: f"{max(r['threads'] for r in p['delay'])} ({p['idle_threads']})")
    row("Context switches per request", "all threads' switches (/proc/PID/task/*/status) during the 1,000-connection "
        "run / requests answered", delay_cell(1000, lambda r: f"{r['switches_per_request']:.2f}"))
    row("Requests/s, `/plaintext`", "wrk, 100 connections, median of the runs",
        lambda p: f"{p['throughput']['/plaintext']['rps']:,.0f}")
    row("Requests/s, `/json`", "the same on `/json`", lambda p: f"{p['throughput']['/json']['rps']:,.0f}")
    row("Requests/s, `/delay`, 1,000", "wrk, 1,000 connections (the wait caps it at 20,000)",
        delay_cell(1000, lambda r: f"{r['rps']:,.0f}"))
    row("Memory with 10,000 requests in flight", "RSS, median of samples during the 10,000-connection run",
        delay_cell(10000, lambda r: mib(r["loaded_rss_kb"])))
    row("Latency p50 / p99 / p99.9, `/delay`, 1,000", "loadgen closed loop, 1,000 connections, from send to answer",
        lambda p: f"{p['latency_1000']['p50_ms']:.1f} / {p['latency_1000']['p99_ms']:.1f} / "
                  f"{p['latency_1000']['p999_ms']:.1f} ms")

    def spike_cell(peer):
        s = spike_summary(peer)
        runs = peer["black_friday"].get("runs", [])
        worst_seconds = ", ".join(format(r["worst_second_p99_ms"], ".0f") for r in runs)
        others = (f" (the median of {len(runs)} runs by worst second; theirs: {worst_seconds} ms)"
                  if len(runs) > 1 else "")
        return (f"{s['failed']:,} of {s['scheduled']:,} failed; worst p99 in a second {s['worst_p99']:,.0f} ms"
                f"{others}; {s['bad_seconds']} of {s['seconds']} seconds with errors or p99 > 60 ms")
    row("Black Friday spike", "open loop on `/delay`, 1,000 → 10,000 req/s, then held; 2 s limit per request",
        spike_cell)

    def check_cell(peer):
        wrk = delay_at(peer, 1000)
        own = peer["latency_1000"].get("rps", 0)
        return f"{own:,.0f} vs {wrk['rps']:,.0f} ({(own / wrk['rps'] - 1) * 100:+.0f}%)" if wrk and wrk["rps"] else "—"
    row("Check: loadgen against wrk", "req/s of loadgen's closed-loop run beside wrk's at 1,000 connections on "
        "`/delay` (one run each; the issue asks for medians within 15%)", check_cell)
    w("")
    w("![Throughput](throughput.png)")
    w("![p99 latency](p99.png)")
    w("![Memory](memory.png)")
    w("![Black Friday: p99](black-friday-p99.png)")
    w("![Black Friday: answered](black-friday-success.png)")
    w("")

    w("## The seed's claims beside the measurements")
    w("")
    w("The seed compares Axum/Tokio with Spring Boot; here Spindle takes Tokio's place and Tomcat with Spring "
      "Boot's defaults the thread-per-request side. Each verdict follows from the figures by the rule given.")
    w("")
    w("| claim | measured | verdict |")
    w("|---|---|---|")
    if has("tomcat") and has("spindle"):
        t1000, s1000 = delay_at(results["tomcat"], 1000), delay_at(results["spindle"], 1000)
        t_bytes, s_bytes = t1000["bytes_per_request"], s1000["bytes_per_request"]
        verdict = ("holds" if t_bytes >= 4 * 1024 * 1024 else "holds partly" if t_bytes >= 512 * 1024 else
                   "does not hold")
        w(f"| Thread-per-request costs ~8 MB per request (a thread stack) | Tomcat: {kb(t_bytes)} per in-flight "
          f"request at 1,000 (200 threads run them; the rest wait as sockets) | {verdict} (rule: ≥ 4 MiB holds, "
          f"≥ 512 KiB partly): stacks are reserved address space, touched only as deep as they are used |")
        verdict = "holds" if s_bytes <= 2048 else "holds partly" if s_bytes <= 4096 else "does not hold"
        w(f"| An async task costs ~2 KB per request | Spindle: {kb(s_bytes)} at 1,000, "
          f"{kb(delay_at(results['spindle'], 10000)['bytes_per_request'])} at 10,000 | {verdict} "
          f"(≤ 2 KiB holds, ≤ 4 KiB partly) |")
        t_limit, t_max = concurrency_limit(results["tomcat"])
        s_limit, s_max = concurrency_limit(results["spindle"])
        verdict = "holds" if t_limit <= 500 else "holds partly"
        least = min(r["concurrency"] for r in results["tomcat"]["delay"])
        served = (f"{t_limit:,}{'+' if t_max else ''}" if t_limit else f"fewer than {least:,} (the least tried)")
        w(f"| Thread pools limit concurrency to 200–500 requests | Tomcat runs 200 at once; connections beyond "
          f"wait in its queue, and it served {served} concurrent with < 1% errors and p99 < 1 s | {verdict} "
          f"(holds if its limit is at most 500): 200 run at once, the queue absorbs more until the wait passes "
          f"1 s |")
        verdict = ("cannot be checked here" if s_max else "does not hold")
        w(f"| Async serves 50,000+ concurrent requests | Spindle: {s_limit:,}{'+' if s_max else ''} with p99 < 1 s, "
          f"the most this machine's 20,000-file limit allows one process | {verdict} (50,000 needs several "
          f"server processes here) |")
        t_sw = delay_at(results["tomcat"], 1000)["switches_per_request"]
        s_sw = s1000["switches_per_request"]
        verdict = "holds" if s_sw * 10 <= t_sw else "holds partly" if s_sw < t_sw else "does not hold"
        w(f"| Context switching: high for threads, near zero for async | {t_sw:.2f} vs {s_sw:.2f} switches per "
          f"request | {verdict} (holds if 10× fewer) |")
        t_rps = results["tomcat"]["throughput"]["/plaintext"]["rps"]
        s_rps = results["spindle"]["throughput"]["/plaintext"]["rps"]
        verdict = "does not hold" if t_rps > 2000 * 2 else "holds"
        w(f"| Spring Boot serves 500–2,000 RPS | Tomcat: {t_rps:,.0f} req/s on `/plaintext` on one core; "
          f"{delay_at(results['tomcat'], 1000)['rps']:,.0f} on `/delay` (its ceiling 200 / 0.05 s = 4,000) | "
          f"{verdict} for plain requests; the `/delay` ceiling is the real limit |")
        verdict = "holds" if s_rps >= 50000 else "does not hold"
        w(f"| Async serves 50,000–100,000 RPS | Spindle: {s_rps:,.0f} req/s on `/plaintext` on one core | {verdict} |")
        t10k, s10k = delay_at(results["tomcat"], 10000), delay_at(results["spindle"], 10000)
        w(f"| 10,000 requests take 80 GB with threads, 20 MB async | Tomcat: {mib(t10k['loaded_rss_kb'])} "
          f"({t10k['error_rate'] * 100:.0f}% errors); Spindle: {mib(s10k['loaded_rss_kb'])} | "
          f"{'does not hold' if t10k['loaded_rss_kb'] < 8 * 1024 * 1024 else 'holds'} for threads (no thread "
          f"per waiting request exists: 200 threads, the rest queued); "
          f"{'holds' if s10k['loaded_rss_kb'] <= 30 * 1024 else 'does not hold'} for async (rule: within 1.5× "
          f"of the claimed figure) |")
        ts, ss = spike_summary(results["tomcat"]), spike_summary(results["spindle"])
        w(f"| Black Friday: 10,000 RPS exhausts the thread pool; async serves them all | Tomcat: {ts['failed']:,} "
          f"of {ts['scheduled']:,} failed, worst p99 {ts['worst_p99']:,.0f} ms; Spindle: {ss['failed']:,} failed, "
          f"worst p99 {ss['worst_p99']:,.0f} ms | "
          f"{'holds' if ts['failed'] > 0 and ss['failed'] == 0 else 'holds partly'} (Tomcat queues and times out "
          f"rather than answering 503) |")
    if has("node"):
        n1000 = delay_at(results["node"], 1000)
        w(f"| Node.js cannot use several cores | one Node process here: {results['node']['throughput']['/plaintext']['rps']:,.0f} "
          f"req/s on `/plaintext`, {n1000['rps']:,.0f} on `/delay` at 1,000 | not tested: every peer had one core |")
    w("")
    if has("spindle"):
        s1000, s10k = delay_at(results["spindle"], 1000), delay_at(results["spindle"], 10000)
        limit, is_max = concurrency_limit(results["spindle"])
        spike = spike_summary(results["spindle"])
        w("## Issue 9's goals for Spindle")
        w("")
        w("| goal | measured | met |")
        w("|---|---|---|")
        per_request = max(s1000["bytes_per_request"], s10k["bytes_per_request"])
        w(f"| Memory per in-flight request at most 1.5 KB | {kb(s1000['bytes_per_request'])} at 1,000, "
          f"{kb(s10k['bytes_per_request'])} at 10,000 | {'yes' if per_request <= 1500 else 'no'} |")
        w(f"| Concurrent request limit above 15,000 on one process | {limit:,}{'+ (the most tried)' if is_max else ''} "
          f"| {'yes' if limit > 15000 else 'no'} |")
        runs = results["spindle"]["black_friday"].get("runs") or [
            {"worst_second_p99_ms": spike["worst_p99"], "total": results["spindle"]["black_friday"]["total"]}]
        met = sum(1 for r in runs if r["worst_second_p99_ms"] < 60
                  and r["total"].get("errors", 0) + r["total"].get("not_sent", 0) == 0)
        def run_summary(r):
            failed = int(r["total"].get("errors", 0) + r["total"].get("not_sent", 0))
            return (f"{failed:,} failed, p99 {r['total'].get('p99_ms', 0):.1f} ms over the run, worst second "
                    f"{r['worst_second_p99_ms']:.1f} ms")
        per_run = "; ".join(run_summary(r) for r in runs)
        w(f"| Through the spike: no errors, p99 under 60 ms in every second | {len(runs)} run(s): {per_run} | "
          f"{'yes' if met == len(runs) else f'in {met} of {len(runs)} runs'} |")
        w("")
    users = data.get("users_service")
    if users:
        w("## The users service end to end (PostgreSQL)")
        w("")
        w(f"`examples/users` (`users-server`, 1 worker, its default pool of 16 connections) on "
          f"{versions.get('postgres', 'PostgreSQL')}, started by `scripts/postgres-server` (fsync off); both on core "
          f"0, wrk with 100 connections on core 1 (`bench/matrix/users.lua` makes the requests). The table holds "
          f"{users['seeded']:,} users for the list and the reads; the creates come last and left "
          f"{users['rows_at_end']:,} rows. Each figure is the median of the runs. The list counts the whole table "
          f"(`count(*)`) for its `total`, so its cost grows with the table.")
        w("")
        w("| request | req/s | p50 | p99 | errors | runs (req/s) |")
        w("|---|---:|---:|---:|---:|---|")
        for name, r in users["endpoints"].items():
            each = ", ".join(format(x, ",.0f") for x in r["runs"])
            w(f"| `{name}` | {r['rps']:,.0f} | {r['p50_ms']:.1f} ms | {r['p99_ms']:.1f} ms | {r['errors']:,} | {each} |")
        w("")
        w(f"The service's RSS at the end: {mib(users['rss_kb'])}; {users['threads']} threads.")
        w("")
    w("## Commands")
    w("")
    w("```sh")
    w("make bench-matrix            # the full run (about 20 minutes); make bench-matrix-quick: under 3")
    w("# what it runs, per peer (the server on core 0):")
    w("taskset -c 1 wrk -t1 -c100 -d8s --latency http://127.0.0.1:PORT/plaintext      # 3 runs, /json too")
    w("taskset -c 1 wrk -t1 -cC -d8s --latency --timeout 5s http://127.0.0.1:PORT/delay   # C = 200 ... 18,000")
    w("taskset -c 1 build/release/bench/loadgen --url http://127.0.0.1:PORT/delay --connections 1000 --duration 8")
    w("taskset -c 1 build/release/bench/loadgen --url http://127.0.0.1:PORT/delay --rate 1000 --rate-end 10000 "
      "--ramp 60 --hold 30 --timeout-ms 2000   # Spindle: 3 runs")
    w("# the users service: scripts/postgres-server start DIR, users-server --database-url postgres://..., then")
    w("taskset -c 1 wrk -t1 -c100 -d8s --latency 'http://127.0.0.1:PORT/users?limit=20'")
    w("taskset -c 1 wrk -t1 -c100 -d8s --latency -s bench/matrix/users.lua http://127.0.0.1:PORT -- read 1000")
    w("taskset -c 1 wrk -t1 -c100 -d8s --latency -s bench/matrix/users.lua http://127.0.0.1:PORT -- create PREFIX")
    w("```")
    w("")
    w("The raw figures are in `matrix.json` beside this page.")
    with open(target, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
