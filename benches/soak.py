#!/usr/bin/env python3
"""The hookpipe soak: a bounded run at a fixed share of the maximum load, with hostile requests
mixed in and a slowloris, that fails when the server's resources grow. Run it through
benches/soak.sh, which builds the release binary, installs the generators and raises the
file-descriptor limit.

  1. start `hookpipe serve --config benches/load.toml` (embedded Kafka, or `--kafka tansu`),
     and (--pair, the default) a second, identical one: the control;
  2. calibrate: a closed loop (64 connections) for --calibrate-secs on that server — paired,
     on both servers at once (one generator each), the maximum being their sum: two servers on
     the same cores carry less than one (each sees half the concurrency, so smaller pages) —
     unless --rate is given; the soak rate is --share (50 %) of it. The closed loop is driven
     by the soak's own generator, oha (--calibrate-with oha, the default), so the maximum is
     what the machine carries with the generator the soak runs; --calibrate-with wrk for
     scenario A's. On a quiet machine the two gave the same maximum (oha 20,638 req/s at
     a63ac94, wrk 20,231 at 55b9c50): what saturated 55b9c50's run was the generators' and
     servers' CPU at that rate (the asyncio hostile mix, 0.21 cores), not the calibration;
  3. for --secs (600): oha at the rate × (1 - --hostile-share) of valid signed 1 KB JSON
     (open loop, latency from the scheduled send time, in segments of --segment-secs so p99
     is a time series), plus hostile requests at rate × --hostile-share (benches/hostile.py
     mix: each must get its 4xx). After the first --baseline-secs, a slowloris of
     --slowloris connections, each sending one byte every --slowloris-interval seconds
     (benches/hostile.py slowloris), until the end. Paired, each server gets half of the
     valid load (its own oha, both started together for each segment) and of the hostile
     mix, and only the measured one gets the slowloris;
  4. a cool-down of --cooldown-secs without load;
  5. every second throughout: VmRSS, threads, open fds, CPU of the server process, and
     hookpipe_producer_queue_depth / hookpipe_in_flight_requests from /metrics, to a CSV.

Checks (exit 1 if any fails): growth from the mean of the 20-40 % window of the run (after
warm-up; the slowloris is on in both windows) to the mean of the last 20 %:

  - RSS: fails if it grew by more than 10 % AND by more than 20 MB;
  - open fds: end mean at most base mean + 256; peak at most the count before the load +
    slowloris connections + 64 (oha) + the hostile mix's peak in flight + 256; after the
    cool-down at most the count before the load + 64 (every connection released);
  - threads: peak at most the count before the load + 4;
  - producer queue depth: end mean at most 2 × base mean + 100, and back to <= 5 in the
    cool-down; requests in flight back to 0;
  - normal requests: all 2xx, no socket errors (both servers);
  - slow senders must not starve normal ones: paired, in at least half of the slowloris
    segments the attacked server's p99 at most 1.5 × the control's in the same segment (same
    30 s, same machine) + 5 ms; the median segment p99 with the slowloris vs before it (3 × + 10 ms) is reported
    but, paired, not a criterion (it moves with whatever else the shared machine runs); with
    --no-pair it is the criterion, as before;
  - hostile requests: every one got its expected 4xx (never a 2xx, a 5xx or no answer);
  - slowloris: the server ended connections of both kinds, none lived longer than the
    deadline that should end it (server.body_read_timeout_ms, which is also actix's
    client_request_timeout) + the send interval + 5 s.
"""

import argparse
import concurrent.futures
import csv
import datetime
import json
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

sys.dont_write_bytecode = True  # no benches/__pycache__ from importing load.py
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import load  # noqa: E402  (the load benchmark: processes, payloads, wrk and oha runners)

BODY_READ_TIMEOUT_S = 10.0  # server.body_read_timeout_ms's default, also actix's client_request_timeout
RSS_GROWTH_RATIO = 0.10
RSS_GROWTH_MB = 20.0
FD_TREND_SLACK = 256
FD_PEAK_SLACK = 256
FD_AFTER_SLACK = 64
THREAD_SLACK = 4
QUEUE_DRAINED = 5
P99_FACTOR = 3.0
P99_SLACK_MS = 10.0
# Paired: the attacked server's p99 against the control's, same segments.
PAIR_FACTOR = 1.5
PAIR_SLACK_MS = 5.0


def log(message):
    load.log(message)


def metric_values(text, name):
    """Sum of a metric's samples by their status_class label (or '' without one)."""
    out = {}
    for match in re.finditer(rf"^{name}(\{{[^}}]*\}})? (\S+)$", text, re.M):
        labels = match.group(1) or ""
        klass = re.search(r'status_class="([^"]+)"', labels)
        key = klass.group(1) if klass else ""
        out[key] = out.get(key, 0.0) + float(match.group(2))
    return out


class Sampler:
    """Once a second: the server's memory, threads, fds, CPU and two gauges from /metrics."""

    FIELDS = ["t_s", "phase", "rss_mb", "threads", "fds", "cpu_cores", "queue_depth", "in_flight",
              "slowloris_open", "broker_rss_mb"]

    def __init__(self, server, started, phase_of, slowloris_open, broker=None):
        self.server = server
        self.started = started
        self.phase_of = phase_of
        self.slowloris_open = slowloris_open
        self.broker = broker
        self.rows = []
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.metrics_errors = 0

    def one(self):
        pid = self.server.pid
        now = time.time()
        cpu = load.cpu_seconds(pid)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.server.port}/metrics", timeout=2) as response:
                text = response.read().decode()
            queue = metric_values(text, "hookpipe_producer_queue_depth").get("")
            in_flight = metric_values(text, "hookpipe_in_flight_requests").get("")
        except OSError:
            self.metrics_errors += 1
            queue = in_flight = None
        return now, cpu, {
            "rss_mb": load.status_kb(pid, "VmRSS") / 1024,
            "threads": load.status_kb(pid, "Threads"),
            "fds": len(os.listdir(f"/proc/{pid}/fd")),
            "queue_depth": queue,
            "in_flight": in_flight,
            "slowloris_open": self.slowloris_open(),
            "broker_rss_mb": load.status_kb(self.broker.pid, "VmRSS") / 1024 if self.broker else None,
        }

    def run(self):
        previous = None
        tick = self.started
        while not self.stop_event.is_set():
            now, cpu, row = self.one()
            t = now - self.started
            row["t_s"] = round(t, 1)
            row["phase"] = self.phase_of(t)
            row["cpu_cores"] = None if previous is None else (cpu - previous[1]) / (now - previous[0])
            previous = (now, cpu)
            self.rows.append(row)
            tick += 1
            self.stop_event.wait(max(tick - time.time(), 0))

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stop_event.set()
        self.thread.join()

    def write_csv(self, path):
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.FIELDS)
            writer.writeheader()
            for row in self.rows:
                writer.writerow({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()})


def mean(rows, key):
    values = [row[key] for row in rows if row.get(key) is not None]
    return statistics.fmean(values) if values else None


def summary_line(process, kind="summary"):
    for line in reversed(process.lines):
        if line.startswith(kind + " "):
            return json.loads(line[len(kind) + 1 :])
    return None


def machine_busy_seconds():
    """CPU-seconds every core of the machine has been busy (all of /proc/stat's cpu line but
    idle and iowait)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / load.CLK_TCK


def hostile_process(args, name, argv, logdir):
    return load.Process(name, [sys.executable, os.path.join(args.repo, "benches", "hostile.py"), *argv], logdir=logdir)


def children_cpu_seconds():
    """CPU-seconds of this process's children that have ended (the oha and wrk runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_soak(args, logdir):
    payload = load.Payload("json-1KB", "application/json", load.json_body(1024), logdir)
    broker = None
    brokers = None
    if args.kafka == "tansu":
        port = load.free_port()
        url = f"tcp://127.0.0.1:{port}"
        workdir = os.path.join(logdir, "tansu")
        os.makedirs(workdir, exist_ok=True)
        broker = load.Process(
            "tansu", [args.tansu, "broker", "--listener-url", url, "--advertised-listener-url", url,
                      "--storage-engine", "memory://tansu/"],
            env=dict(os.environ, RUST_LOG="warn"), cwd=workdir, logdir=logdir,
        ).start()
        load.wait_port(port, 30, broker)
        brokers = f"127.0.0.1:{port}"
    server = load.Server("hookpipe", args, logdir, brokers=brokers, label="soak-hookpipe").start()
    url = server.urls["bench"]
    path = "/" + url.split("/", 3)[3]
    log(f"hookpipe pid {server.pid} on port {server.port} ({args.kafka} Kafka), listener path {path}")
    # The paired check (default): a second, identical hookpipe (the control) runs alongside for
    # the whole soak and gets half of the normal load and of the hostile mix, the measured one
    # the other half and the slowloris. Both are measured in the same segments, so whatever the
    # shared machine does to latency it does to both; only what the slow connections do to the
    # server that holds them shows as a difference.
    control = None
    if args.pair:
        control = load.Server("hookpipe", args, logdir, brokers=brokers, label="soak-control").start()
        log(f"control: a second hookpipe, pid {control.pid} on port {control.port}")
    # The older control experiment: the slowloris aimed at a second, identical server, so that the
    # machine carries the same load (generator and a server ending slow connections) while the
    # measured server has no slow connection. The same p99 rise then means the machine, not the
    # server, made it.
    decoy = None
    slow_port, slow_path = server.port, path
    if args.slowloris_decoy:
        decoy = load.Server("hookpipe", args, logdir, brokers=brokers, label="soak-decoy").start()
        slow_port, slow_path = decoy.port, "/" + decoy.urls["bench"].split("/", 3)[3]
        log(f"slowloris decoy: a second hookpipe, pid {decoy.pid} on port {decoy.port}")

    calibration = None
    if args.rate:
        rate = args.rate
        if control:
            # The same warm-up on both.
            for u in (url, control.urls["bench"]):
                load.run_wrk(args, u, payload, 2)
    else:
        urls = [url] + ([control.urls["bench"]] if control else [])
        log(f"calibrating: {args.calibrate_with} closed loop, 64 connections, {args.calibrate_secs} s (after 2 s of warm-up)"
            + (", on both servers at once (the maximum is the sum)" if control else ""))

        def on_each(duration):
            # Paired, both servers at the same time: what the machine carries with two of them.
            with concurrent.futures.ThreadPoolExecutor(len(urls)) as pool:
                return list(pool.map(lambda u: closed_loop(args, u, payload, duration), urls))

        on_each(2)
        runs = on_each(args.calibrate_secs)
        calibration = dict(runs[0])
        calibration["rps"] = sum(r["rps"] for r in runs)
        calibration["non_2xx"] = sum(r["non_2xx"] for r in runs)
        calibration["per_server_rps"] = [r["rps"] for r in runs]
        rate = int(calibration["rps"] * args.share)
        log(f"  max {calibration['rps']:.0f} req/s"
            + (f" ({' + '.join(f'{r:.0f}' for r in calibration['per_server_rps'])})" if control else "")
            + f" (non-2xx {calibration['non_2xx']}): soak rate {rate}/s")
    normal_rate = max(int(rate * (1 - args.hostile_share)), 1)
    hostile_rate = rate * args.hostile_share
    # The machine carries the soak rate either way; paired, each server gets half of it.
    servers = [server] + ([control] if control else [])
    share = len(servers)
    per_server_normal = max(normal_rate // share, 1)
    time.sleep(3)  # let the calibration's connections close

    def resources(s):
        return {
            "rss_mb": load.status_kb(s.pid, "VmRSS") / 1024,
            "threads": load.status_kb(s.pid, "Threads"),
            "fds": len(os.listdir(f"/proc/{s.pid}/fd")),
        }

    before = resources(server)
    control_before = resources(control) if control else None
    log(f"before the soak: RSS {before['rss_mb']:.1f} MB, {before['threads']} threads, {before['fds']} fds")

    secs, baseline = args.secs, args.baseline_secs
    slowloris = hostile_process(args, "slowloris", [
        "slowloris", "--port", str(slow_port), "--path", slow_path, "--count", str(args.slowloris),
        "--interval", str(args.slowloris_interval), "--secs", str(secs - baseline), "--mode", args.slowloris_mode,
    ], logdir)
    mixes = [hostile_process(args, "hostile-mix" if s is server else "hostile-mix-control", [
        "mix", "--port", str(s.port), "--path", "/" + s.urls["bench"].split("/", 3)[3],
        "--rate", f"{hostile_rate / share:.3f}", "--secs", str(secs),
    ], logdir) for s in servers]
    mix = mixes[0]

    def slowloris_open():
        if slowloris.proc is None:
            return 0
        for line in reversed(slowloris.lines[-5:]):
            if line.startswith("tick "):
                return json.loads(line[5:])["open"]
        return 0

    def phase_of(t):
        return "baseline" if t < baseline else "slowloris" if t < secs else "cooldown"

    started = time.time()
    sampler = Sampler(server, started, phase_of, slowloris_open, broker).start()
    control_sampler = Sampler(control, started, phase_of, lambda: 0).start() if control else None
    for m in mixes:
        m.start()
    segments = []
    control_segments = []

    def cpu_snapshot():
        """CPU-seconds so far of each process of the soak, and of the whole machine."""
        def of(process):
            try:
                return load.cpu_seconds(process.pid) if process is not None and process.proc is not None else 0.0
            except OSError:
                return 0.0
        return {
            "server": load.cpu_seconds(server.pid),
            "control": load.cpu_seconds(control.pid) if control else None,
            "decoy": load.cpu_seconds(decoy.pid) if decoy else None,
            "slowloris_generator": of(slowloris),
            "hostile_mix": sum(of(m) for m in mixes),
            "machine": machine_busy_seconds(),
        }

    cpu_at = {"start": cpu_snapshot()}

    def oha_segments():
        while True:
            t = time.time() - started
            length = min(args.segment_secs, secs - t)
            if length < 2:
                return
            results = [None] * len(servers)
            children_before = children_cpu_seconds()

            def one(i, s):
                results[i] = load.run_oha(args, s.urls["bench"], payload, int(round(length)), per_server_normal)

            runs = [threading.Thread(target=one, args=(i, s)) for i, s in enumerate(servers)]
            if len(segments) % 2:
                runs.reverse()  # neither server's oha always starts first
            for run in runs:
                run.start()
            for run in runs:
                run.join()
            if any(r is None for r in results):
                raise RuntimeError("an oha run failed; see the log above")
            end_t = round(time.time() - started, 1)
            phase = "baseline" if t < baseline - 1 else "slowloris"
            oha_cpu = children_cpu_seconds() - children_before
            segments.append({"start_s": round(t, 1), "end_s": end_t, "phase": phase, "oha_cpu_s": oha_cpu, **results[0]})
            r = segments[-1]
            line = (f"  segment {r['start_s']:.0f}-{r['end_s']:.0f} s ({r['phase']}): {r['rps']:.0f} req/s, "
                    f"p50 {r['p50_ms']:.2f} p99 {r['p99_ms']:.2f} max {r['max_ms']:.1f} ms, non-2xx {r['non_2xx']}, "
                    f"errors {r['socket_errors']}")
            if control:
                c = results[1]
                control_segments.append({"start_s": round(t, 1), "end_s": end_t, "phase": phase, **c})
                line += f"; control {c['rps']:.0f} req/s, p50 {c['p50_ms']:.2f} p99 {c['p99_ms']:.2f} max {c['max_ms']:.1f} ms"
            log(line)

    generator = threading.Thread(target=oha_segments, daemon=True)
    log(f"soak: {secs} s at {rate}/s ({normal_rate}/s valid, {hostile_rate:.1f}/s hostile"
        + (f", half of each to the measured server and half to the control" if control else "")
        + f"); slowloris of {args.slowloris} from {baseline} s")
    generator.start()
    time.sleep(max(started + baseline - time.time(), 0))
    cpu_at["slowloris"] = cpu_snapshot()
    slowloris.start()
    generator.join()
    cpu_at["end"] = cpu_snapshot()
    log("load done; waiting for the slowloris and the hostile mix to finish")
    slowloris.wait_for_line(r"^summary ", 120)
    for m in mixes:
        m.wait_for_line(r"^summary ", 120)
    log(f"cool-down {args.cooldown_secs} s")
    time.sleep(max(started + secs + args.cooldown_secs - time.time(), 0))
    sampler.stop()
    if control_sampler:
        control_sampler.stop()
    peak_rss = load.status_kb(server.pid, "VmHWM") / 1024
    control_peak_rss = load.status_kb(control.pid, "VmHWM") / 1024 if control else None
    server_log = server.process.log_path
    server.stop()
    for other in (control, decoy):
        if other:
            other.stop()
    broker_peak = load.status_kb(broker.pid, "VmHWM") / 1024 if broker else None
    if broker:
        broker.stop()
    slowloris.stop()
    for m in mixes:
        m.stop()

    # Cores each process used per phase (CPU-seconds / seconds of the phase); oha's from the
    # segments of the phase (a segment's two runs are waited for, so their CPU is known).
    durations = {"baseline": baseline, "slowloris": max(secs - baseline, 1)}
    cores = {}
    for phase, (a, b) in (("baseline", ("start", "slowloris")), ("slowloris", ("slowloris", "end"))):
        out = {}
        for key, value in cpu_at[b].items():
            if value is not None:
                out[key] = (value - cpu_at[a][key]) / durations[phase]
        phase_segments = [s for s in segments if s["phase"] == phase]
        seconds = sum(s["end_s"] - s["start_s"] for s in phase_segments)
        out["oha"] = sum(s["oha_cpu_s"] for s in phase_segments) / seconds if seconds else None
        cores[phase] = out
    hostile_summaries = [summary_line(m) for m in mixes]
    return {
        "kafka": args.kafka,
        "rate": rate,
        "normal_rate": normal_rate,
        "per_server_normal_rate": per_server_normal,
        "hostile_rate": hostile_rate,
        "calibration": calibration,
        "before": before,
        "control_before": control_before,
        "peak_rss_mb": peak_rss,
        "control_peak_rss_mb": control_peak_rss,
        "broker_peak_rss_mb": broker_peak,
        "server_cores": {phase: cores[phase]["server"] for phase in cores},
        # Busy cores of the whole machine (every process, from /proc/stat), and of each process of
        # the soak: what the load itself cost the shared 2 cores, per phase.
        "machine_cores": {phase: cores[phase]["machine"] for phase in cores},
        "cores": cores,
        "slowloris_generator_cores": cores["slowloris"]["slowloris_generator"],
        "decoy_cores": cores["slowloris"].get("decoy"),
        "slowloris_target": "decoy" if decoy else "server",
        "paired": bool(control),
        "segments": segments,
        "control_segments": control_segments,
        "slowloris": summary_line(slowloris),
        "slowloris_ready": summary_line(slowloris, "ready"),
        "hostile": hostile_summaries[0],
        "control_hostile": hostile_summaries[1] if control else None,
        "hostile_peak_in_flight": max([json.loads(line[5:])["in_flight"] for line in mix.lines if line.startswith("tick ")] or [0]),
        "samples": sampler.rows,
        "control_samples": control_sampler.rows if control_sampler else [],
        "metrics_errors": sampler.metrics_errors,
        "server_log": server_log,
    }, sampler


def evaluate(args, result):
    """The checks of the module doc: (name, measured, limit, pass)."""
    secs = args.secs
    rows = result["samples"]
    load_rows = [r for r in rows if r["t_s"] < secs]
    base = [r for r in load_rows if 0.2 * secs <= r["t_s"] < 0.4 * secs]
    end = [r for r in load_rows if r["t_s"] >= 0.8 * secs]
    cool = [r for r in rows if r["t_s"] >= secs]
    before = result["before"]
    checks = []

    def add(name, measured, limit, ok, info=False):
        checks.append({"check": name, "measured": measured, "limit": limit, "pass": bool(ok), "info": info})

    rss_base, rss_end = mean(base, "rss_mb"), mean(end, "rss_mb")
    grew = rss_end - rss_base
    add("RSS growth (mean of last 20 % vs 20-40 %)", f"{rss_base:.1f} -> {rss_end:.1f} MB ({grew:+.1f} MB, {grew / rss_base:+.1%})",
        f"not both > {RSS_GROWTH_RATIO:.0%} and > {RSS_GROWTH_MB:g} MB",
        not (grew > RSS_GROWTH_RATIO * rss_base and grew > RSS_GROWTH_MB))
    fd_base, fd_end = mean(base, "fds"), mean(end, "fds")
    add("open fds, trend", f"{fd_base:.0f} -> {fd_end:.0f}", f"<= base + {FD_TREND_SLACK}", fd_end <= fd_base + FD_TREND_SLACK)
    fd_peak = max(r["fds"] for r in load_rows)
    fd_limit = before["fds"] + args.slowloris + load.CONNECTIONS + result["hostile_peak_in_flight"] + FD_PEAK_SLACK
    add("open fds, peak", f"{fd_peak}", f"<= {fd_limit} (before {before['fds']} + slowloris {args.slowloris} + oha "
        f"{load.CONNECTIONS} + hostile in flight {result['hostile_peak_in_flight']} + {FD_PEAK_SLACK})", fd_peak <= fd_limit)
    fd_after = cool[-1]["fds"] if cool else None
    add("open fds after the cool-down", f"{fd_after}", f"<= {before['fds'] + FD_AFTER_SLACK} (before + {FD_AFTER_SLACK})",
        fd_after is not None and fd_after <= before["fds"] + FD_AFTER_SLACK)
    threads_peak = max(r["threads"] for r in rows)
    add("threads, peak", f"{before['threads']} -> max {threads_peak}", f"<= before + {THREAD_SLACK}",
        threads_peak <= before["threads"] + THREAD_SLACK)
    q_base, q_end = mean(base, "queue_depth"), mean(end, "queue_depth")
    add("producer queue depth, trend", f"{q_base:.1f} -> {q_end:.1f} (max {max(r['queue_depth'] or 0 for r in load_rows):.0f})",
        "end <= 2 x base + 100", q_end is not None and q_base is not None and q_end <= 2 * q_base + 100)
    q_after = [r["queue_depth"] for r in cool if r["queue_depth"] is not None]
    add("producer queue depth after the load", f"{q_after[-1]:.0f}" if q_after else "none",
        f"<= {QUEUE_DRAINED}", bool(q_after) and q_after[-1] <= QUEUE_DRAINED)
    in_flight_after = [r["in_flight"] for r in cool if r["in_flight"] is not None]
    add("requests in flight after the cool-down", f"{in_flight_after[-1]:.0f}" if in_flight_after else "none", "0",
        bool(in_flight_after) and in_flight_after[-1] == 0)

    segments = result["segments"]
    control_segments = result.get("control_segments") or []
    normal_non_2xx = sum(s["non_2xx"] for s in segments + control_segments)
    normal_errors = sum(s["socket_errors"] for s in segments + control_segments)
    add("normal requests: non-2xx and socket errors" + (" (both servers)" if control_segments else ""),
        f"{normal_non_2xx} / {normal_errors}", "0 / 0", normal_non_2xx == 0 and normal_errors == 0)
    p99_before = median_of(segments, "baseline", "p99_ms")
    p99_during = median_of(segments, "slowloris", "p99_ms")
    limit = None if p99_before is None else P99_FACTOR * p99_before + P99_SLACK_MS
    # Paired, the before/during comparison is reported but is not the criterion: on a shared
    # machine it moves with whatever else runs (it failed as much with the slowloris aimed at
    # another server); the side-by-side comparison below is the check.
    add("normal p99 with the slowloris vs before (median of segments)",
        f"{fmt_ms(p99_before)} -> {fmt_ms(p99_during)}", "none" if limit is None else f"<= {limit:.1f} ms "
        f"({P99_FACTOR:g} x before + {P99_SLACK_MS:g} ms)", limit is not None and p99_during is not None and p99_during <= limit,
        info=bool(control_segments))
    if control_segments:
        # Segment by segment (the same 30 s on the same machine): is the attacked server's p99
        # within PAIR_FACTOR x the control's + PAIR_SLACK_MS? It must be in at least half of the
        # segments with the slowloris, i.e. the median segment passes. Not the ratio of the two
        # medians: that unpairs the segments, and at 86e6824 it was 1.72 with no slowloris at all.
        pairs = [(s["p99_ms"], c["p99_ms"]) for s, c in zip(segments, control_segments)
                 if s["phase"] == "slowloris" and s.get("p99_ms") is not None and c.get("p99_ms") is not None]
        within = sum(a <= PAIR_FACTOR * c + PAIR_SLACK_MS for a, c in pairs)
        attacked = median_of(segments, "slowloris", "p99_ms")
        unattacked = median_of(control_segments, "slowloris", "p99_ms")
        # The soak's premise is load the servers can carry (--share of the maximum). On a machine
        # whose other tenants take the cores, the servers fall behind the offered rate, queues
        # grow, and the p99s compare how each copes with overload, not starvation. Reported, so
        # such a run can be told from one that measured what it meant to.
        target = result.get("per_server_normal_rate") or 0
        kept_up = sum(s["rps"] >= 0.98 * target and c["rps"] >= 0.98 * target
                      for s, c in zip(segments, control_segments) if s["phase"] == "slowloris")
        add("segments with the slowloris in which both servers served >= 98 % of their offered rate",
            f"{kept_up} of {len(pairs)}", "all (else the machine, not the load, set the latency)",
            kept_up == len(pairs), info=True)
        add("normal p99 with the slowloris, attacked vs control server in the same segments",
            f"{within} of {len(pairs)} segments within (medians {fmt_ms(attacked)} vs {fmt_ms(unattacked)})",
            f"attacked <= {PAIR_FACTOR:g} x control + {PAIR_SLACK_MS:g} ms in at least half of the segments",
            bool(pairs) and 2 * within >= len(pairs))
    hostile = result["hostile"] or {}
    unexpected = dict(hostile.get("unexpected", {"no summary": 1}))
    sent = hostile.get("sent", 0)
    if control_segments:
        other = result.get("control_hostile") or {}
        for key, n in other.get("unexpected", {"control: no summary": 1}).items():
            unexpected["control " + key] = unexpected.get("control " + key, 0) + n
        sent += other.get("sent", 0)
    add("hostile requests with the wrong answer" + (" (both servers)" if control_segments else ""),
        f"{sum(unexpected.values())} of {sent}"
        + (f" ({', '.join(f'{k} x{v}' for k, v in sorted(unexpected.items()))})" if unexpected else ""), "0",
        not unexpected)
    slow = result["slowloris"] or {}
    deadline = BODY_READ_TIMEOUT_S + args.slowloris_interval + 5
    for mode in ("headers", "body"):
        part = slow.get(mode) or {}
        if args.slowloris_mode not in ("mixed", mode):
            continue
        ended, longest = part.get("ended_by_server", 0), part.get("lifetime_max_s")
        add(f"slowloris ({mode}) connections ended by the server", f"{ended}, longest {fmt_s(longest)}",
            f"> 0, longest <= {deadline:g} s", ended > 0 and longest is not None and longest <= deadline)
    return checks


def closed_loop(args, url, payload, duration):
    """One closed-loop run of the calibration with --calibrate-with's generator."""
    if args.calibrate_with == "wrk":
        return load.run_wrk(args, url, payload, duration)
    return load.run_oha(args, url, payload, duration, None)


def median_of(segments, phase, key):
    values = [s[key] for s in segments if s["phase"] == phase and s.get(key) is not None]
    return statistics.median(values) if values else None


def worst_of(segments, phase, key):
    values = [s[key] for s in segments if s["phase"] == phase and s.get(key) is not None]
    return max(values) if values else None


def fmt_ms(value):
    return "–" if value is None else f"{value:.2f} ms"


def fmt_s(value):
    return "–" if value is None else f"{value:.1f} s"


def figures(args, result):
    """The start -> end figures of the report."""
    rows = result["samples"]
    secs = args.secs
    load_rows = [r for r in rows if r["t_s"] < secs]
    first = [r for r in load_rows if r["t_s"] < min(args.baseline_secs, 10)] or load_rows[:1]
    base = [r for r in load_rows if 0.2 * secs <= r["t_s"] < 0.4 * secs]
    end = [r for r in load_rows if r["t_s"] >= 0.8 * secs]
    baseline_rows = [r for r in load_rows if r["phase"] == "baseline" and r["t_s"] >= 2]
    cool = [r for r in rows if r["t_s"] >= secs]
    out = {}
    for key in ("rss_mb", "fds", "threads", "queue_depth", "in_flight", "cpu_cores"):
        out[key] = {
            "before": result["before"].get(key),
            "first_10s": mean(first, key),
            "baseline": mean(baseline_rows, key),
            "window_20_40": mean(base, key),
            "last_20": mean(end, key),
            "max": max((r[key] for r in load_rows if r.get(key) is not None), default=None),
            "after_cooldown": cool[-1].get(key) if cool else None,
        }
    segs = result["segments"]
    counts = {}
    for s in segs:
        for k, v in s["status_counts"].items():
            counts[k] = counts.get(k, 0) + v
    out["normal"] = {
        "requests": sum(s["requests"] for s in segs),
        "status_counts": counts,
        "socket_errors": sum(s["socket_errors"] for s in segs),
        "before": {k: median_of(segs, "baseline", k) for k in ("rps", "p50_ms", "p99_ms", "p999_ms", "max_ms")},
        "during": {k: median_of(segs, "slowloris", k) for k in ("rps", "p50_ms", "p99_ms", "p999_ms", "max_ms")},
        "during_worst": {k: worst_of(segs, "slowloris", k) for k in ("p99_ms", "p999_ms", "max_ms")},
    }
    csegs = result.get("control_segments") or []
    if csegs:
        out["control_normal"] = {
            "requests": sum(s["requests"] for s in csegs),
            "before": {k: median_of(csegs, "baseline", k) for k in ("rps", "p50_ms", "p99_ms", "p999_ms", "max_ms")},
            "during": {k: median_of(csegs, "slowloris", k) for k in ("rps", "p50_ms", "p99_ms", "p999_ms", "max_ms")},
            "during_worst": {k: worst_of(csegs, "slowloris", k) for k in ("p99_ms", "p999_ms", "max_ms")},
        }
        ratios = [s["p99_ms"] / c["p99_ms"] for s, c in zip(segs, csegs)
                  if s["phase"] == "slowloris" and s.get("p99_ms") and c.get("p99_ms")]
        base_ratios = [s["p99_ms"] / c["p99_ms"] for s, c in zip(segs, csegs)
                       if s["phase"] == "baseline" and s.get("p99_ms") and c.get("p99_ms")]
        out["pair_ratio"] = {"baseline_median": statistics.median(base_ratios) if base_ratios else None,
                             "slowloris_median": statistics.median(ratios) if ratios else None,
                             "slowloris_max": max(ratios) if ratios else None}
        crows = [r for r in result.get("control_samples") or [] if r["t_s"] < secs]
        cbase = [r for r in crows if 0.2 * secs <= r["t_s"] < 0.4 * secs]
        cend = [r for r in crows if r["t_s"] >= 0.8 * secs]
        out["control_resources"] = {key: {"window_20_40": mean(cbase, key), "last_20": mean(cend, key),
                                          "max": max((r[key] for r in crows if r.get(key) is not None), default=None)}
                                    for key in ("rss_mb", "fds", "threads", "cpu_cores")}
    baseline_rss = out["rss_mb"]["baseline"]
    slowloris_rss = out["rss_mb"]["window_20_40"]
    if baseline_rss and slowloris_rss and args.slowloris and not args.slowloris_decoy:
        out["rss_per_slowloris_conn_kb"] = (slowloris_rss - baseline_rss) * 1024 / args.slowloris
    return out


def markdown(report):
    r, f, a = report["result"], report["figures"], report["args"]
    m = report["machine"]
    slow = r["slowloris"] or {}
    hostile = r["hostile"] or {}
    lines = [
        "# hookpipe soak",
        "",
        f"- date: {report['date']}; commit {report['commit']}; verdict: **{'pass' if report['pass'] else 'FAIL'}**",
        f"- machine: {m['nproc']} cores, {m['cpu_model']}, {m['mem_gb']:.0f} GB RAM, {m['kernel']}; "
        f"generators, slowloris and servers share it{report['machine_note']}",
        f"- command: `{report['command']}`",
        f"- load: {a['secs']} s at {r['rate']}/s = {a['share']:.0%} of "
        + (f"the calibrated maximum {r['calibration']['rps']:.0f} req/s ({a.get('calibrate_with', 'wrk')} closed loop, 64 connections, {a['calibrate_secs']} s"
           + (", on both servers at once: " + " + ".join(f"{x:.0f}" for x in r['calibration']['per_server_rps'])
              if r['calibration'].get('per_server_rps') and len(r['calibration']['per_server_rps']) > 1 else "") + ")"
           if r["calibration"] else "the given rate")
        + f"; {r['normal_rate']}/s valid signed 1 KB JSON (oha {report['tools']['oha']}, open loop, 64 connections, "
        f"{a['segment_secs']} s segments) + {r['hostile_rate']:.1f}/s hostile ({a['hostile_share']:.0%}); "
        f"{r['kafka']} Kafka",
        f"- slowloris: {a['slowloris']} connections ({a['slowloris_mode']}), one byte every {a['slowloris_interval']:g} s, "
        f"from {a['baseline_secs']} s to the end; then {a['cooldown_secs']} s of cool-down",
    ]
    if r.get("paired"):
        lines.append(
            f"- **paired**: two identical hookpipes side by side for the whole run, each with half of the valid load "
            f"({r['per_server_normal_rate']}/s, its own oha in the same segments) and of the hostile mix; the slowloris "
            f"only at the measured (attacked) one. The starvation check compares the attacked server's p99 with the "
            f"control's in the same segments (docs/benchmarks.md#soak)")
    lines += [
        "",
        "## Checks",
        "",
        "| check | measured | limit | pass |",
        "|---|---|---|---|",
    ]
    for c in report["checks"]:
        verdict = "yes" if c["pass"] else "**NO**"
        if c.get("info"):
            verdict = ("yes" if c["pass"] else "no") + " (reported, not a criterion)"
        lines.append(f"| {c['check']} | {c['measured']} | {c['limit']} | {verdict} |")

    def num(value, digits=1):
        return "–" if value is None else f"{value:,.{digits}f}"

    lines += [
        "",
        "## Resources",
        "",
        "| | before the load | baseline (no slowloris) | 20-40 % | last 20 % | max | after cool-down |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, name, digits in (("rss_mb", "RSS MB", 1), ("fds", "open fds", 0), ("threads", "threads", 0),
                              ("queue_depth", "producer queue depth", 1), ("in_flight", "requests in flight", 1),
                              ("cpu_cores", "server CPU (cores)", 2)):
        x = f[key]
        lines.append(f"| {name} | {num(x['before'], digits)} | {num(x['baseline'], digits)} | {num(x['window_20_40'], digits)} | "
                     f"{num(x['last_20'], digits)} | {num(x['max'], digits)} | {num(x['after_cooldown'], digits)} |")
    if f.get("control_resources"):
        for key, name, digits in (("rss_mb", "control RSS MB", 1), ("fds", "control open fds", 0),
                                  ("threads", "control threads", 0), ("cpu_cores", "control CPU (cores)", 2)):
            x = f["control_resources"][key]
            lines.append(f"| {name} | – | – | {num(x['window_20_40'], digits)} | {num(x['last_20'], digits)} | "
                         f"{num(x['max'], digits)} | – |")
    cores = r.get("cores")
    if cores:
        lines += ["", "CPU per phase (cores: CPU-seconds / seconds of the phase):", "",
                  "| process | before the slowloris | with the slowloris |", "|---|---|---|"]
        for key, name in (("server", "measured (attacked) hookpipe"), ("control", "control hookpipe"),
                          ("decoy", "decoy hookpipe (slowloris target)"), ("slowloris_generator", "slowloris generator"),
                          ("hostile_mix", "hostile mix generator(s)"), ("oha", "oha (normal load)"),
                          ("machine", "whole machine (busy cores, every process)")):
            if cores["slowloris"].get(key) is None and cores["baseline"].get(key) is None:
                continue
            lines.append(f"| {name} | {num(cores['baseline'].get(key), 3)} | {num(cores['slowloris'].get(key), 3)} |")
    lines += [
        "",
        f"Peak RSS (VmHWM, including the calibration): {r['peak_rss_mb']:.1f} MB. "
        + (f"RSS per slowloris connection: {f['rss_per_slowloris_conn_kb']:.1f} KB. " if "rss_per_slowloris_conn_kb" in f else "")
        + f"Server CPU: {r['server_cores']['baseline']:.2f} cores before the slowloris, "
        f"{r['server_cores']['slowloris']:.2f} with it."
        + (f" The whole machine: {r['machine_cores']['baseline']:.2f} busy cores before the slowloris, "
           f"{r['machine_cores']['slowloris']:.2f} with it (the slowloris generator "
           f"{r['slowloris_generator_cores'] or 0:.2f}"
           + (f", the decoy server {r['decoy_cores']:.2f}" if r.get("decoy_cores") is not None else "") + ")."
           if r.get("machine_cores") else "")
        + (" **Control run: the slowloris was aimed at a second hookpipe (the decoy), not at the measured one.**"
           if r.get("slowloris_target") == "decoy" else "")
        + (f" Broker peak RSS {r['broker_peak_rss_mb']:.0f} MB (in-memory storage: grows with what it keeps; not checked)."
           if r.get("broker_peak_rss_mb") else ""),
        "",
        "## Normal requests",
        "",
        "| | req/s | p50 ms | p99 ms | p99.9 ms | max ms |",
        "|---|---|---|---|---|---|",
    ]
    n = f["normal"]
    for label, x in (("before the slowloris (median of segments)", n["before"]),
                     ("with the slowloris (median of segments)", n["during"]),
                     ("with the slowloris (worst segment)", dict(n["during_worst"], rps=None))):
        lines.append(f"| {label} | {num(x.get('rps'), 0)} | {num(x.get('p50_ms'), 2)} | {num(x.get('p99_ms'), 2)} | "
                     f"{num(x.get('p999_ms'), 2)} | {num(x.get('max_ms'), 1)} |")
    cn = f.get("control_normal")
    if cn:
        for label, x in (("control: before the slowloris (median of segments)", cn["before"]),
                         ("control: while the other has the slowloris (median)", cn["during"]),
                         ("control: worst segment", dict(cn["during_worst"], rps=None))):
            lines.append(f"| {label} | {num(x.get('rps'), 0)} | {num(x.get('p50_ms'), 2)} | {num(x.get('p99_ms'), 2)} | "
                         f"{num(x.get('p999_ms'), 2)} | {num(x.get('max_ms'), 1)} |")
        pr = f["pair_ratio"]
        lines += ["", f"Attacked / control p99, per segment: median {num(pr['baseline_median'], 2)} before the slowloris "
                  f"(the pairing's own noise), median {num(pr['slowloris_median'], 2)} and worst {num(pr['slowloris_max'], 2)} "
                  f"with it. The first rows are the measured server's (the one that gets the slowloris)."]
    classes = {}
    for status, count in n["status_counts"].items():
        classes[status[0] + "xx"] = classes.get(status[0] + "xx", 0) + count
    lines += [
        "",
        f"{n['requests']:,} normal requests: " + ", ".join(f"{k} {v:,}" for k, v in sorted(classes.items()))
        + f"; socket errors {n['socket_errors']}.",
        "",
    ]
    csegs = r.get("control_segments") or []
    if csegs:
        lines += ["| segment s | phase | req/s | p50 ms | p99 ms | p99.9 ms | max ms | non-2xx | control p50 ms | "
                  "control p99 ms | control max ms | control non-2xx | p99 attacked / control |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    else:
        lines += ["| segment s | phase | req/s | p50 ms | p99 ms | p99.9 ms | max ms | non-2xx |",
                  "|---|---|---|---|---|---|---|---|"]
    for i, s in enumerate(r["segments"]):
        row = (f"| {s['start_s']:.0f}-{s['end_s']:.0f} | {s['phase']} | {s['rps']:,.0f} | {num(s['p50_ms'], 2)} | "
               f"{num(s['p99_ms'], 2)} | {num(s['p999_ms'], 2)} | {num(s['max_ms'], 1)} | {s['non_2xx']} |")
        if i < len(csegs):
            c = csegs[i]
            ratio = s["p99_ms"] / c["p99_ms"] if s.get("p99_ms") and c.get("p99_ms") else None
            row += (f" {num(c['p50_ms'], 2)} | {num(c['p99_ms'], 2)} | {num(c['max_ms'], 1)} | {c['non_2xx']} | "
                    f"{num(ratio, 2)} |")
        lines.append(row)
    hclasses = {}
    for status, count in hostile.get("status_counts", {}).items():
        key = status[0] + "xx" if status[:1].isdigit() else status
        hclasses[key] = hclasses.get(key, 0) + count
    lines += [
        "",
        "## Hostile requests",
        "",
        f"{hostile.get('sent', 0):,} sent: " + ", ".join(f"{k} {v:,}" for k, v in sorted(hclasses.items()))
        + f"; wrong answers: {sum(hostile.get('unexpected', {}).values())}."
        + (f" The control's mix: {r['control_hostile'].get('sent', 0):,} sent, wrong answers "
           f"{sum(r['control_hostile'].get('unexpected', {}).values())}." if r.get("control_hostile") else ""),
        "",
        "| kind | weight | expected | got |",
        "|---|---|---|---|",
    ]
    for kind, got in hostile.get("by_kind", {}).items():
        lines.append(f"| {kind} | {hostile['weights'][kind]:g} | {', '.join(hostile['expected'][kind])} | "
                     + ", ".join(f"{k} x{v:,}" for k, v in sorted(got.items())) + " |")
    ready = r.get("slowloris_ready") or {}
    lines += [
        "",
        "## Slowloris",
        "",
        f"{slow.get('target', 0):,} connections open after {ready.get('after_s', '–')} s; at least "
        f"{slow.get('min_open_after_ready') or 0:,} open at any time after that; {slow.get('opened', 0):,} opened in all "
        f"(each reopened at once when the server ended it), {slow.get('failed_connects', 0)} failed connects, "
        f"{slow.get('bytes_sent', 0):,} bytes sent.",
        "",
        "| kind | ended by the server | how | lifetime p50 | p99 | max |",
        "|---|---|---|---|---|---|",
    ]
    for mode in ("headers", "body"):
        part = slow.get(mode) or {}
        if not part.get("ended_by_server") and a["slowloris_mode"] not in ("mixed", mode):
            continue
        how = ", ".join(f"{k} x{v:,}" for k, v in sorted(part.get("endings", {}).items()))
        lines.append(f"| {mode} | {part.get('ended_by_server', 0):,} | {how} | {fmt_s(part.get('lifetime_p50_s'))} | "
                     f"{fmt_s(part.get('lifetime_p99_s'))} | {fmt_s(part.get('lifetime_max_s'))} |")
    lines += ["", f"Per-second samples: `{report['csv']}`" + (" (the control's: `soak-control.csv` beside it)" if r.get("paired") else "") + ".", ""]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", required=True)
    parser.add_argument("--hookpipe", required=True)
    parser.add_argument("--wrk", default="wrk")
    parser.add_argument("--oha", default="oha")
    parser.add_argument("--tansu", default=os.path.expanduser("~/.cache/hookpipe/tansu/bin/tansu"))
    parser.add_argument("--kafka", choices=("embedded", "tansu"), default="embedded")
    parser.add_argument("--config", default="benches/load.toml")
    parser.add_argument("--secs", type=int, default=600)
    parser.add_argument("--rate", type=int, help="requests/s of the soak (default: --share of the calibrated maximum)")
    parser.add_argument("--share", type=float, default=0.5)
    parser.add_argument("--calibrate-secs", type=int, default=10)
    parser.add_argument("--calibrate-with", choices=("oha", "wrk"), default="oha",
                        help="the closed-loop generator of the calibration (default: oha, the soak's own)")
    parser.add_argument("--hostile-share", type=float, default=0.01)
    parser.add_argument("--slowloris", type=int, default=2000)
    parser.add_argument("--slowloris-interval", type=float, default=5.0)
    parser.add_argument("--slowloris-mode", choices=("headers", "body", "mixed"), default="mixed")
    parser.add_argument("--pair", action=argparse.BooleanOptionalAction, default=True,
                        help="run a second, identical hookpipe (the control) alongside with half of the normal load "
                        "and of the hostile mix, and check the attacked server's p99 against it (default; --no-pair: one server)")
    parser.add_argument("--slowloris-decoy", action="store_true",
                        help="control experiment: aim the slowloris at a second hookpipe instead of the measured one")
    parser.add_argument("--baseline-secs", type=int, help="seconds before the slowloris starts (default: 10 %% of --secs, at least a segment)")
    parser.add_argument("--segment-secs", type=int, help="length of one oha run (default: --secs / 20, at least 10)")
    parser.add_argument("--cooldown-secs", type=int, default=20)
    parser.add_argument("--generator-threads", type=int, default=2)
    parser.add_argument("--hookpipe-log", default="info")
    parser.add_argument("--out", help="directory for soak.md/.json/.csv (default: benches/results for a run of 600 s "
                        "or more, else the log directory)")
    parser.add_argument("--command", default=" ".join(sys.argv))
    args = parser.parse_args()
    if args.slowloris_decoy:
        args.pair = False  # the older control experiment: the slowloris at the second server
    args.segment_secs = args.segment_secs or max(10, args.secs // 20)
    args.baseline_secs = args.baseline_secs or max(args.segment_secs, round(args.secs * 0.1 / args.segment_secs) * args.segment_secs)
    if args.baseline_secs >= 0.2 * args.secs and args.secs >= 50:
        parser.error("--baseline-secs must end before the 20-40 % window the growth checks start from")
    args.config = args.config if os.path.isabs(args.config) else os.path.join(args.repo, args.config)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    logdir = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"hookpipe-soak-{stamp}")
    os.makedirs(logdir, exist_ok=True)
    out_dir = args.out or (os.path.join(args.repo, "benches/results") if args.secs >= 600 else logdir)
    out_dir = out_dir if os.path.isabs(out_dir) else os.path.join(args.repo, out_dir)
    os.makedirs(out_dir, exist_ok=True)
    args.wrk_lua = os.path.join(logdir, "post.lua")
    with open(args.wrk_lua, "w") as f:
        f.write(load.WRK_LUA)
    log(f"logs in {logdir}; results to {out_dir}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(130))
    try:
        result, sampler = run_soak(args, logdir)
    finally:
        load.stop_all()
    csv_path = os.path.join(out_dir, "soak.csv")
    sampler.write_csv(csv_path)
    if result.get("control_samples"):
        with open(os.path.join(out_dir, "soak-control.csv"), "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=Sampler.FIELDS)
            writer.writeheader()
            for row in result["control_samples"]:
                writer.writerow({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()})
    checks = evaluate(args, result)
    commit = subprocess.run(["git", "-C", args.repo, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", args.repo, "status", "--porcelain", "src"], capture_output=True, text=True).stdout.strip()
    load_avg = os.getloadavg()
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": load.machine(),
        "machine_note": f"; load average at the end {load_avg[0]:.1f} / {load_avg[1]:.1f} / {load_avg[2]:.1f} (1/5/15 min)",
        "command": args.command,
        "commit": commit + (" (src/ modified)" if dirty else ""),
        "tools": {"oha": load.tool_version([args.oha, "--version"]).replace("oha ", "")},
        "args": {k: v for k, v in vars(args).items() if k not in ("command",)},
        "csv": os.path.relpath(csv_path, args.repo) if csv_path.startswith(args.repo) else csv_path,
        "result": {k: v for k, v in result.items() if k not in ("samples", "control_samples")},
        "figures": figures(args, result),
        "checks": checks,
        "pass": all(c["pass"] for c in checks if not c.get("info")),
    }
    with open(os.path.join(out_dir, "soak.json"), "w") as f:
        json.dump(report, f, indent=1)
    text = markdown(report)
    with open(os.path.join(out_dir, "soak.md"), "w") as f:
        f.write(text)
    print(text)
    log(f"wrote {out_dir}/soak.md, soak.json, soak.csv: {'pass' if report['pass'] else 'FAIL'}")
    sys.exit(0 if report["pass"] else 1)


if __name__ == "__main__":
    main()
