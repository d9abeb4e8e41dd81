#!/usr/bin/env python3
"""Fleet-wide rate limits, measured: 1, 2 and 3 `hookpipe serve` instances on one Tansu broker
share one listener's bucket (capacity C, refill R/s); closed-loop senders post to the instances
directly, round robin or skewed (80/20 for N = 2, 80/15/5 for N = 3), for a fixed time t.
Reports, per case, the requests accepted (2xx) against what the bucket allows, C + R × t, and
the bound of the README, C + R × t + N.

Run through benches/fleet_rate_limit.sh (it installs Tansu and builds the binary). Not a test:
nothing here asserts; it measures and writes benches/results/fleet_rate_limit.{json,md}.
"""

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

PUBLIC_ID = "fleetratebenchlistener01"

CONFIG = """
[server]
public_id_secret = "fleet-rate-bench-secret-0123456789"
workers = 1
drain_ms = 100
shutdown_timeout_secs = 5
[kafka]
topic_partitions = 1
[pipeline]
page_linger_ms = 2
[[listeners]]
id = "limited"
public_id = "{public_id}"
[listeners.rate_limit]
capacity = {capacity}
refill_per_sec = {rate}
"""

DISTRIBUTIONS = {
    "round robin": {1: [1], 2: [1, 1], 3: [1, 1, 1]},
    "skewed": {1: [1], 2: [80, 20], 3: [80, 15, 5]},
}


def log(message):
    print(message, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port} after {timeout} s")


def get(port, path):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def metric(port, name):
    try:
        _, text = get(port, "/metrics")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


def wait_ready(port, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if get(port, "/readyz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"instance on {port} not ready after {timeout} s")


def pattern(weights):
    """Instance indexes in proportion to `weights`, interleaved."""
    total = sum(weights)
    picks, credit = [], [0.0] * len(weights)
    for _ in range(total):
        for index, weight in enumerate(weights):
            credit[index] += weight / total
        best = max(range(len(weights)), key=lambda index: credit[index])
        credit[best] -= 1
        picks.append(best)
    return picks


def load(ports, weights, duration, senders):
    picks = pattern(weights)
    counter = {"next": 0}
    lock = threading.Lock()
    accepted = [0] * len(ports)
    sent = [0] * len(ports)
    other = []
    stop = threading.Event()

    def sender():
        connections = {}
        while not stop.is_set():
            with lock:
                target = picks[counter["next"] % len(picks)]
                counter["next"] += 1
            try:
                connection = connections.get(target) or http.client.HTTPConnection("127.0.0.1", ports[target], timeout=10)
                connections[target] = connection
                connection.request("POST", f"/hooks/{PUBLIC_ID}", body=b'{"a":1}',
                                   headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                connections.pop(target, None)
                status = None
            with lock:
                sent[target] += 1
                if status is not None and 200 <= status < 300:
                    accepted[target] += 1
                elif status != 429:
                    other.append(status)

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(duration)
    stop.set()
    for thread in threads:
        thread.join()
    return {"elapsed_s": time.monotonic() - started, "sent": sent, "accepted": accepted, "other": other}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--tansu", required=True)
    parser.add_argument("--capacity", type=int, default=100)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--instances", default="1,2,3")
    parser.add_argument("--command-line", default="benches/fleet_rate_limit.py")
    parser.add_argument("--results", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="hookpipe-fleet-bench-")
    rows = []
    for n in [int(value) for value in args.instances.split(",")]:
        for name, by_n in DISTRIBUTIONS.items():
            if n == 1 and name != "round robin":
                continue
            rows.append(run_case(args, workdir, n, name, by_n[n]))
    write_results(args, rows)


def run_case(args, workdir, n, name, weights):
    """A fresh broker and fleet per case, so every case starts with a full bucket."""
    case_dir = tempfile.mkdtemp(dir=workdir)
    broker_port = free_port()
    url = f"tcp://127.0.0.1:{broker_port}"
    tansu = subprocess.Popen([args.tansu, "broker", "--listener-url", url, "--advertised-listener-url", url,
                              "--storage-engine", "memory://tansu/"], cwd=case_dir,
                             env=dict(os.environ, RUST_LOG="warn"), stdout=subprocess.DEVNULL,
                             stderr=open(os.path.join(case_dir, "tansu.log"), "w"))
    processes = []
    try:
        wait_port(broker_port, 30)
        config = os.path.join(case_dir, "hookpipe.toml")
        with open(config, "w") as file:
            file.write(CONFIG.format(public_id=PUBLIC_ID, capacity=args.capacity, rate=args.rate))
        ports = [free_port() for _ in range(n)]
        for index, port in enumerate(ports):
            env = dict(os.environ, HOOKPIPE_KAFKA__BROKERS=f"127.0.0.1:{broker_port}",
                       HOOKPIPE_SERVER__LISTEN=f"127.0.0.1:{port}", HOOKPIPE_SERVER__INSTANCE_ID=f"bench-{index}")
            processes.append(subprocess.Popen([args.binary, "serve", "--config", config], env=env,
                                              stdout=subprocess.DEVNULL,
                                              stderr=open(os.path.join(case_dir, f"serve-{index}.log"), "w")))
        for port in ports:
            wait_ready(port, 60)
        deadline = time.time() + 20
        while time.time() < deadline and not all(metric(port, "hookpipe_rate_limit_fleet_members") == n for port in ports):
            time.sleep(0.05)
        # Seen is not yet counted by all: a few heartbeats more, so each case starts settled.
        time.sleep(1)
        log(f"N = {n}, {name}: loading for {args.duration} s")
        run = load(ports, weights, args.duration, args.senders)
        t = run["elapsed_s"]
        allowed = args.capacity + args.rate * t
        accepted = sum(run["accepted"])
        row = {
            "instances": n,
            "distribution": name if n > 1 else "-",
            "weights": weights,
            "seconds": round(t, 2),
            "sent": sum(run["sent"]),
            "sent_by_instance": run["sent"],
            "accepted": accepted,
            "accepted_by_instance": run["accepted"],
            "allowed": round(allowed),
            "bound": round(allowed + n),
            "accepted_over_allowed": round(accepted / allowed, 3),
            "other_statuses": len(run["other"]),
        }
        log(json.dumps(row))
        return row
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        tansu.send_signal(signal.SIGTERM)
        try:
            tansu.wait(timeout=10)
        except subprocess.TimeoutExpired:
            tansu.kill()


def write_results(args, rows):
    os.makedirs(args.results, exist_ok=True)
    summary = {
        "command": args.command_line,
        "capacity": args.capacity,
        "rate": args.rate,
        "duration_s": args.duration,
        "senders": args.senders,
        "rows": rows,
    }
    with open(os.path.join(args.results, "fleet_rate_limit.json"), "w") as file:
        json.dump(summary, file, indent=2)
    lines = [
        f"`{args.command_line}`: capacity {args.capacity}, refill {args.rate}/s, {args.duration} s per case, "
        f"{args.senders} closed-loop senders (keep-alive) posting to the instances directly.",
        "",
        "| N | distribution | sent | accepted (by instance) | allowed C + R·t | bound C + R·t + N | accepted / allowed |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['instances']} | {row['distribution']} | {row['sent']} | {row['accepted']} "
            f"({' / '.join(str(value) for value in row['accepted_by_instance'])}) | {row['allowed']} | "
            f"{row['bound']} | {row['accepted_over_allowed']:.3f} |"
        )
    text = "\n".join(lines) + "\n"
    with open(os.path.join(args.results, "fleet_rate_limit.md"), "w") as file:
        file.write(text)
    print(text)


if __name__ == "__main__":
    main()
