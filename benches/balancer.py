#!/usr/bin/env python3
"""The scaling benchmark behind a load balancer: 1, 2 and 3 `hookpipe serve` instances on one
Tansu broker behind haproxy (loopback, round robin, health-checking /readyz), loaded by wrk
through haproxy; reports accepted requests per server CPU-second at each N and its ratio to N=1,
three times per fleet: under a closed loop (wrk as fast as it can: the machine saturates), then
paced (each connection pauses --paced-delay-ms after every answer: about connections / (pause +
latency) requests per second, the same in total at every N, far below saturation), then weakly
scaled (paced the same way, --weak-connections-per-instance x N connections: the same offered
load per instance at every N). The first two hold the total load fixed and split it over N
(strong scaling: each instance sees 1/N of it, so its pages and wake-ups are shared by fewer
requests); the third is what scaling out is for (more senders, more instances). Also the idle CPU of
every instance (no traffic, before the load), the voluntary context switches of the servers per
request (a thread going to sleep and being woken again), and the servers' CPU per request by
thread (HTTP threads, librdkafka's broker and main threads, the producers' poll threads, the
topic followers), from /proc/PID/task/*/stat.

Run through benches/balancer.sh (it builds the release binary and installs wrk and haproxy).
Not a test: nothing here asserts; it measures and writes benches/results/balancer.{json,md}.
"""

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")
LISTENER = "bench"
PUBLIC_ID = "balancerbenchlistener0001"

CONFIG = """
[server]
public_id_secret = "balancer-bench-secret-0123456789"
workers = {workers}
drain_ms = 500
shutdown_timeout_secs = 5
max_in_flight = 100000
[kafka]
pages_topic = "bench.pages"
topic_partitions = 3
[pipeline]
page_linger_ms = 2
[[listeners]]
id = "{listener}"
public_id = "{public_id}"
[listeners.rate_limit]
capacity = 100000000
refill_per_sec = 100000000
"""

HAPROXY = """global
    maxconn 4096
    nbthread 1
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    retries 3
    retry-on conn-failure
    option redispatch 1
frontend hooks
    bind 127.0.0.1:{port}
    default_backend serve
backend serve
    balance roundrobin
    option httpchk
    http-check send meth GET uri /readyz
    http-check expect status 200
    default-server inter 500ms fall 2 rise 1
{servers}
"""

WRK_LUA = r"""
local f = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
if pause > 0 then
  -- Paced: each connection waits this long after every answer, so the offered rate is about
  -- connections / (pause + latency), the same at every N, and nothing saturates.
  function delay()
    return pause
  end
end
function done(summary, latency, requests)
  io.write(string.format('BENCH_JSON {"requests":%d,"duration_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def log(message):
    print(f"[balancer] {message}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    """utime + stime of the whole process (all threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def thread_cpu_seconds(pid):
    """utime + stime per thread name (threads of one name summed), from /proc/PID/task/*/stat."""
    by_name = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                data = f.read()
        except OSError:
            continue  # the thread ended meanwhile
        name = data[data.index("(") + 1:data.rindex(")")]
        fields = data[data.rindex(")") + 2:].split()
        by_name[name] = by_name.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / CLK_TCK
    return by_name


def context_switches(pid):
    """Voluntary context switches of all the process's threads (a thread going to sleep)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                total += next(int(l.split()[1]) for l in f if l.startswith("voluntary_ctxt_switches"))
        except (OSError, StopIteration):
            continue
    return total


def thread_delta(before, after):
    """CPU seconds per thread name between two `thread_cpu_seconds` (threads that ended are lost)."""
    return {name: round(value - before.get(name, 0.0), 3) for name, value in after.items()
            if value - before.get(name, 0.0) > 0}


def wait_port(port, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout} s")


def http_get(port, path, timeout=2):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""
    except OSError:
        return None, ""


def accepted(port):
    """hookpipe's own count of 2xx answers to the bench listener (from its /metrics)."""
    status, text = http_get(port, "/metrics")
    if status != 200:
        raise RuntimeError(f"/metrics of :{port} answered {status}")
    pattern = re.compile(r'^hookpipe_http_requests_total\{(?=[^}]*listener="%s")(?=[^}]*status_class="2xx")[^}]*\} (\S+)$' % LISTENER, re.M)
    match = pattern.search(text)
    return float(match.group(1)) if match else 0.0


def page_totals(port):
    """(records, pages) published for the bench listener, from hookpipe_page_records's sum and count."""
    _, text = http_get(port, "/metrics")
    values = []
    for series in ("sum", "count"):
        match = re.search(r'^hookpipe_page_records_%s\{listener="%s"\} (\S+)$' % (series, LISTENER), text, re.M)
        values.append(float(match.group(1)) if match else 0.0)
    return tuple(values)


class Fleet:
    """N serve instances, haproxy in front, all on one broker; stopped (SIGTERM, then kill) on exit."""

    def __init__(self, args, n, workdir):
        self.processes = []
        self.haproxy = None
        try:
            self._start(args, n, workdir)
        except BaseException:
            self.stop()
            raise

    def _start(self, args, n, workdir):
        self.ports = [free_port() for _ in range(n)]
        config = os.path.join(workdir, "hookpipe.toml")
        with open(config, "w") as f:
            f.write(CONFIG.format(workers=args.server_workers, listener=LISTENER, public_id=PUBLIC_ID))
        for index, port in enumerate(self.ports):
            env = dict(os.environ, HOOKPIPE_KAFKA__BROKERS=args.bootstrap,
                       HOOKPIPE_SERVER__LISTEN=f"127.0.0.1:{port}", HOOKPIPE_LOG="warn")
            stderr = open(os.path.join(workdir, f"serve-{n}-{index}.log"), "w")
            self.processes.append(subprocess.Popen([args.binary, "serve", "--config", config], env=env,
                                                   stdout=subprocess.DEVNULL, stderr=stderr))
        for port in self.ports:
            deadline = time.time() + 60
            while http_get(port, "/readyz")[0] != 200:
                if time.time() > deadline:
                    raise RuntimeError(f"instance :{port} not ready")
                time.sleep(0.1)
        self.port = free_port()
        servers = "\n".join(f"    server s{i} 127.0.0.1:{p} check" for i, p in enumerate(self.ports))
        cfg = os.path.join(workdir, f"haproxy-{n}.cfg")
        with open(cfg, "w") as f:
            f.write(HAPROXY.format(port=self.port, servers=servers))
        self.haproxy = subprocess.Popen([args.haproxy, "-db", "-f", cfg], stdout=subprocess.DEVNULL,
                                        stderr=open(os.path.join(workdir, f"haproxy-{n}.log"), "w"))
        wait_port(self.port, 10)
        time.sleep(1.5)  # every server's first health check passed (rise 1, inter 500 ms)

    def stop(self):
        processes = self.processes + ([self.haproxy] if self.haproxy else [])
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wrk_load(args, mode, n):
    """(connections, pause in ms after every answer) of a run of `mode` at N = `n`."""
    if mode == "closed":
        return args.connections, 0
    if mode == "paced":
        return args.paced_connections, args.paced_delay_ms
    return args.weak_connections_per_instance * n, args.paced_delay_ms


def run_wrk(args, port, duration, body_file, mode="closed", n=1):
    connections, delay = wrk_load(args, mode, n)
    env = dict(os.environ, BENCH_BODY_FILE=body_file, BENCH_DELAY_MS=str(delay))
    out = subprocess.run([args.wrk, "-t", "1", "-c", str(connections), "-d", f"{duration}s",
                          "--timeout", "10s", "-s", args.lua, f"http://127.0.0.1:{port}/hooks/{PUBLIC_ID}"],
                         env=env, capture_output=True, text=True, timeout=duration + 60)
    line = next((l for l in out.stdout.splitlines() if l.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {out.stdout}\n{out.stderr}")
    return json.loads(line[len("BENCH_JSON "):])


def load_run(args, fleet, tansu_pid, duration, body_file, mode):
    """One measured wrk run through the fleet's haproxy: what the servers accepted and spent."""
    pids = [p.pid for p in fleet.processes]
    before_cpu = [cpu_seconds(pid) for pid in pids]
    before_threads = [thread_cpu_seconds(pid) for pid in pids]
    before_switches = sum(context_switches(pid) for pid in pids)
    before_ok = [accepted(port) for port in fleet.ports]
    before_lb, before_broker = cpu_seconds(fleet.haproxy.pid), cpu_seconds(tansu_pid)
    before_pages = [page_totals(port) for port in fleet.ports]
    started = time.time()
    wrk = run_wrk(args, fleet.port, duration, body_file, mode, len(pids))
    wall = time.time() - started
    time.sleep(0.3)  # answers still in flight when wrk stopped
    cpu = [cpu_seconds(pid) - b for pid, b in zip(pids, before_cpu)]
    threads = [thread_delta(b, thread_cpu_seconds(pid)) for pid, b in zip(pids, before_threads)]
    switches = sum(context_switches(pid) for pid in pids) - before_switches
    ok = [accepted(port) - b for port, b in zip(fleet.ports, before_ok)]
    after_pages = [page_totals(port) for port in fleet.ports]
    records = sum(a[0] - b[0] for a, b in zip(after_pages, before_pages))
    pages = sum(a[1] - b[1] for a, b in zip(after_pages, before_pages))
    return {
        "instances": len(pids),
        "mode": mode,
        "connections": wrk_load(args, mode, len(pids))[0],
        "accepted": sum(ok),
        "accepted_per_instance": ok,
        "server_cpu_seconds": sum(cpu),
        "server_cpu_per_instance": cpu,
        "server_cpu_by_thread": threads,
        "accepted_per_server_cpu_second": sum(ok) / sum(cpu) if sum(cpu) else 0.0,
        "accepted_per_second": sum(ok) / wall,
        "haproxy_cpu_seconds": cpu_seconds(fleet.haproxy.pid) - before_lb,
        "broker_cpu_seconds": cpu_seconds(tansu_pid) - before_broker,
        "records_per_page": records / pages if pages else 0.0,
        "requests_per_page": sum(ok) / pages if pages else 0.0,
        "server_sleeps_per_request": switches / sum(ok) if sum(ok) else 0.0,
        "wall_seconds": wall,
        "wrk": wrk,
    }


def idle_run(fleet, tansu_pid, seconds):
    """CPU of each instance (per thread name) and of the broker with no traffic at all."""
    pids = [p.pid for p in fleet.processes]
    before = [thread_cpu_seconds(pid) for pid in pids]
    before_broker = cpu_seconds(tansu_pid)
    time.sleep(seconds)
    threads = [thread_delta(b, thread_cpu_seconds(pid)) for pid, b in zip(pids, before)]
    return {
        "seconds": seconds,
        "server_cpu_ms_per_second": [1000 * sum(t.values()) / seconds for t in threads],
        "server_cpu_by_thread": threads,
        "broker_cpu_ms_per_second": 1000 * (cpu_seconds(tansu_pid) - before_broker) / seconds,
    }


def measure(args, n, workdir, body_file, tansu_pid):
    """N instances: idle CPU, then the closed loop, then (unless off) the paced load, fixed in
    total (strong scaling) and then per instance (weak scaling)."""
    fleet = Fleet(args, n, workdir)
    try:
        idle = idle_run(fleet, tansu_pid, args.idle) if args.idle > 0 else None
        run_wrk(args, fleet.port, args.warmup, body_file)
        runs = [load_run(args, fleet, tansu_pid, args.duration, body_file, "closed")]
        if args.paced_delay_ms > 0:
            runs.append(load_run(args, fleet, tansu_pid, args.duration, body_file, "paced"))
            if args.weak_connections_per_instance > 0:
                runs.append(load_run(args, fleet, tansu_pid, args.duration, body_file, "weak"))
        for run in runs:
            run["idle"] = idle
        return runs
    finally:
        fleet.stop()


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def start_broker(args, workdir):
    """A Tansu broker with memory storage on a free port; sets `args.bootstrap`."""
    broker_port = free_port()
    args.bootstrap = f"127.0.0.1:{broker_port}"
    url = f"tcp://127.0.0.1:{broker_port}"
    tansu = subprocess.Popen([args.tansu, "broker", "--listener-url", url, "--advertised-listener-url", url,
                              "--storage-engine", "memory://tansu/"], cwd=workdir, env=dict(os.environ, RUST_LOG="warn"),
                             stdout=subprocess.DEVNULL, stderr=open(os.path.join(workdir, "tansu.log"), "a"))
    try:
        wait_port(broker_port, 20)
    except BaseException:
        tansu.kill()
        raise
    return tansu


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", required=True)
    parser.add_argument("--tansu", required=True)
    parser.add_argument("--haproxy", default="haproxy")
    parser.add_argument("--wrk", default="wrk")
    parser.add_argument("--instances", default="1,2,3")
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--paced-connections", type=int, default=32,
                        help="connections of the paced run")
    parser.add_argument("--paced-delay-ms", type=int, default=10,
                        help="pause of each paced connection after every answer (0: no paced runs)")
    parser.add_argument("--weak-connections-per-instance", type=int, default=10,
                        help="connections per instance of the weak-scaling run (C x N connections, "
                             "paced like the paced run; 0: none)")
    parser.add_argument("--idle", type=float, default=3,
                        help="seconds of idle CPU measured before the load (0: none)")
    parser.add_argument("--server-workers", type=int, default=1,
                        help="server.workers (HTTP threads) of each instance")
    parser.add_argument("--out", default="benches/results/balancer")
    parser.add_argument("--command-line", default="benches/balancer.sh")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="hookpipe-balancer-bench-")
    body_file = os.path.join(workdir, "body.json")
    with open(body_file, "w") as f:
        json.dump([{"id": f"item-{i}", "sku": "SKU-12345", "quantity": i, "price": "19.99",
                    "note": "x" * 120} for i in range(2)], f)
    lua = os.path.join(workdir, "bench.lua")
    with open(lua, "w") as f:
        f.write(WRK_LUA)
    args.lua = lua
    results = []
    counts = [int(n) for n in args.instances.split(",")]
    for rep in range(args.reps):
        for n in counts:
            log(f"rep {rep + 1}/{args.reps}: {n} instance(s)")
            # A fresh broker for every fleet: one broker for the whole benchmark holds every
            # page of the runs before (memory storage) and slows down as it fills, which made
            # the last fleet of a repetition (always N=3) pay for all the others.
            tansu = start_broker(args, workdir)
            try:
                for run in measure(args, n, workdir, body_file, tansu.pid):
                    run["rep"] = rep
                    log(f"  {run['mode']}: {run['accepted']:.0f} accepted, {run['server_cpu_seconds']:.2f} server "
                        f"CPU-s -> {run['accepted_per_server_cpu_second']:.0f} per CPU-s, "
                        f"{run['accepted_per_second']:.0f}/s")
                    results.append(run)
            finally:
                tansu.send_signal(signal.SIGTERM)
                try:
                    tansu.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    tansu.kill()
                    tansu.wait()

    commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip()
    summaries = {mode: summarize([r for r in results if r["mode"] == mode]) for mode in ("closed", "paced", "weak")}
    report = {"command": args.command_line, "commit": commit, "cores": os.cpu_count(), "duration": args.duration, "reps": args.reps,
              "connections": args.connections, "paced_connections": args.paced_connections,
              "paced_delay_ms": args.paced_delay_ms, "weak_connections_per_instance": args.weak_connections_per_instance,
              "server_workers": args.server_workers, "summary": summaries["closed"],
              "paced_summary": summaries["paced"], "weak_summary": summaries["weak"], "runs": results}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out + ".json", "w") as f:
        json.dump(report, f, indent=2)
    lines = [
        f"`{args.command_line}` at {commit or 'an unknown commit'}: {os.cpu_count()} cores, {args.reps} reps (median) of {args.duration} s per run, "
        f"server.workers = {args.server_workers} per instance, one Tansu broker (memory storage), a fresh one for every fleet, 2-record JSON "
        "bodies, wrk through haproxy; both runs of an N on the same fleet, one after the other.",
        "",
        f"Closed loop (strong scaling: a fixed total load split over N; saturating: wrk, haproxy, Tansu and the "
        f"servers share the cores), {args.connections} connections:",
        "",
    ] + table(summaries["closed"])
    if summaries["paced"]:
        lines += ["", f"Paced (strong scaling: the same total offered load at every N, split over N; the machine not "
                  f"saturated): {args.paced_connections} connections, each pausing {args.paced_delay_ms} ms after every answer:", ""]
        lines += table(summaries["paced"])
    if summaries["weak"]:
        lines += ["", f"Weak scaling (the same offered load per instance at every N: {args.weak_connections_per_instance} x N "
                  f"connections, each pausing {args.paced_delay_ms} ms after every answer):", ""]
        lines += table(summaries["weak"])
    for mode, title in (("closed", "closed loop"), ("weak", "weak scaling")):
        if summaries[mode]:
            lines += ["", f"Server CPU per accepted request by thread ({title}, µs, median run), and idle CPU per instance:", ""]
            lines += thread_table([r for r in results if r["mode"] == mode])
    with open(args.out + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def summarize(runs):
    summary = []
    base = None
    for n in sorted({r["instances"] for r in runs}):
        of_n = [r for r in runs if r["instances"] == n]
        per_cpu = median([r["accepted_per_server_cpu_second"] for r in of_n])
        if base is None and n == 1:
            base = per_cpu
        summary.append({
            "instances": n,
            "accepted_per_server_cpu_second": per_cpu,
            "ratio_to_1": per_cpu / base if base else None,
            "accepted_per_second": median([r["accepted_per_second"] for r in of_n]),
            "server_cpu_seconds_per_second": median([r["server_cpu_seconds"] / r["wall_seconds"] for r in of_n]),
            "haproxy_cpu_seconds_per_second": median([r["haproxy_cpu_seconds"] / r["wall_seconds"] for r in of_n]),
            "broker_cpu_seconds_per_second": median([r["broker_cpu_seconds"] / r["wall_seconds"] for r in of_n]),
            "p99_ms": median([r["wrk"]["p99_us"] / 1000 for r in of_n]),
            "records_per_page": median([r["records_per_page"] for r in of_n]),
            "server_sleeps_per_request": median([r["server_sleeps_per_request"] for r in of_n]),
            "non_2xx_or_errors": sum(r["wrk"]["errors"]["status"] + r["wrk"]["errors"]["connect"]
                                     + r["wrk"]["errors"]["read"] + r["wrk"]["errors"]["timeout"] for r in of_n),
        })
    return summary


def table(summary):
    lines = [
        "| instances | accepted / server CPU-s | ratio to N=1 | accepted / s | server CPU (cores) | haproxy CPU | "
        "broker CPU | records / page | server sleeps / request | p99 ms | non-2xx + errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        ratio = f"{s['ratio_to_1']:.2f}" if s["ratio_to_1"] is not None else "—"
        lines.append(f"| {s['instances']} | {s['accepted_per_server_cpu_second']:.0f} | {ratio} | "
                     f"{s['accepted_per_second']:.0f} | {s['server_cpu_seconds_per_second']:.2f} | "
                     f"{s['haproxy_cpu_seconds_per_second']:.2f} | {s['broker_cpu_seconds_per_second']:.2f} | "
                     f"{s['records_per_page']:.1f} | {s['server_sleeps_per_request']:.2f} | {s['p99_ms']:.1f} | "
                     f"{s['non_2xx_or_errors']} |")
    return lines


def thread_group(name):
    """Thread names as /proc shows them (15 characters), grouped by what they do."""
    if name.startswith("actix-rt"):
        return "HTTP threads"
    if name.startswith("rdk:broker"):
        return "librdkafka broker threads"
    if name.startswith("producer pollin"):
        return "producer poll threads"
    if name.startswith("rdk:main"):
        return "librdkafka main threads"
    if name.startswith("state-"):
        return "followers (state, debug, errors, dedup, fleet)"
    return "other"


def thread_table(runs):
    groups = ["HTTP threads", "librdkafka broker threads", "producer poll threads", "librdkafka main threads",
              "followers (state, debug, errors, dedup, fleet)", "other"]
    lines = ["| instances | " + " | ".join(groups) + " | total | idle CPU per instance (ms/s) | idle broker CPU (ms/s) |",
             "|---" * (len(groups) + 4) + "|"]
    for n in sorted({r["instances"] for r in runs}):
        of_n = sorted((r for r in runs if r["instances"] == n), key=lambda r: r["accepted_per_server_cpu_second"])
        run = of_n[len(of_n) // 2]
        per_group = dict.fromkeys(groups, 0.0)
        for threads in run["server_cpu_by_thread"]:
            for name, seconds in threads.items():
                per_group[thread_group(name)] += seconds
        micros = [1e6 * per_group[g] / run["accepted"] for g in groups]
        idle = run.get("idle")
        idle_text = ("—", "—") if not idle else (
            " / ".join(f"{v:.1f}" for v in idle["server_cpu_ms_per_second"]), f"{idle['broker_cpu_ms_per_second']:.1f}")
        lines.append(f"| {n} | " + " | ".join(f"{m:.1f}" for m in micros) +
                     f" | {1e6 * run['server_cpu_seconds'] / run['accepted']:.1f} | {idle_text[0]} | {idle_text[1]} |")
    return lines


if __name__ == "__main__":
    main()
