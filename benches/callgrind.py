#!/usr/bin/env python3
"""Instruction counts per request (valgrind's callgrind): what one request costs in user-space
instructions, stable on a busy machine where wall-clock and CPU-time figures are noise.

Each scenario starts a fresh server under `valgrind --tool=callgrind` (instrumentation off
until it is warm), opens CONNECTIONS keep-alive connections, sends a warm-up, zeroes the
counters (`callgrind_control -z`), sends exactly --requests requests, dumps (`-d`) and reads the
total. Everything the process does in that window counts: HTTP threads, librdkafka and the
embedded cluster's threads, timers. The kernel's share (system calls, TCP) is not counted.

  A    1 KB JSON, HMAC-SHA256, accepted (the `bench` listener of benches/load.toml)
  F    1 KB JSON to the `limited` listener with its bucket emptied: 429s (capacity and refill
       are set to 1 by environment overrides so that almost nothing is accepted; the 2xx that
       slip through are counted and reported)
  J16  16 KB JSON, accepted        X16  16 KB XML, accepted
  CE   the bare actix-web ceiling (benches/ceiling.rs) answering 204 to the 1 KB JSON body

Caveats: valgrind's CPU does not report SHA extensions, so HMAC-SHA256 runs sha2's portable code
here (several times the instructions of the SHA-NI code a real run uses); the kernel's work is
not counted at all (most of a 429's CPU in `benches/load.sh --profile rejected`).

  python3 benches/callgrind.py --hookpipe target/release/hookpipe \\
      --ceiling "$(ls target/release/deps/ceiling-* | grep -v '\\.d$' | head -1)" \\
      --scenarios A,F,J16,X16,CE --out /tmp/callgrind

Payloads are benches/load.py's. Writes one callgrind file per scenario and a summary table
(markdown) to --out; `callgrind_annotate --inclusive=yes FILE` shows where the instructions went.
"""

import argparse
import importlib.util
import os
import re
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("load", os.path.join(HERE, "load.py"))
load = importlib.util.module_from_spec(spec)
spec.loader.exec_module(load)

SCENARIOS = {
    # name: (server, listener, payload, default request count, connections)
    "A": ("hookpipe", "bench", "json-1KB", 2000, 64),
    "F": ("hookpipe", "limited", "json-1KB", 4000, 64),
    "J16": ("hookpipe", "bench", "json-16KB", 600, 64),
    # Fewer connections: 64 requests of 16 KB XML queued under valgrind outlast the read deadline.
    "X16": ("hookpipe", "bench", "xml-16KB", 300, 16),
    "CE": ("ceiling", "bench", "json-1KB", 4000, 64),
}


def request_bytes(path, payload):
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(payload.body)}"]
    head += [f"{k}: {v}" for k, v in payload.headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + payload.body


class Connection:
    """One keep-alive connection sending a request and reading its whole answer, in turn."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=300)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def exchange(self, request):
        self.sock.sendall(request)
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status = int(head.split(b" ", 2)[1])
        length = 0
        match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        if match:
            length = int(match.group(1))
        while len(self.buffer) < length:
            self._fill()
        self.buffer = self.buffer[length:]
        return status

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed by the server")
        self.buffer += chunk


def send_all(connections, request, count):
    """`count` requests spread over the connections, each connection one at a time (closed loop)."""
    statuses = {}
    lock = threading.Lock()
    remaining = [count]
    errors = []

    def worker(connection):
        try:
            while True:
                with lock:
                    if remaining[0] == 0:
                        return
                    remaining[0] -= 1
                status = connection.exchange(request)
                with lock:
                    statuses[status] = statuses.get(status, 0) + 1
        except Exception as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(c,)) for c in connections]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"client errors: {errors[:3]}")
    return statuses


def callgrind_control(pid, *flags):
    out = subprocess.run(["callgrind_control", *flags, str(pid)], capture_output=True, text=True, timeout=300)
    if "OK" not in out.stdout:
        raise RuntimeError(f"callgrind_control {flags}: {out.stdout} {out.stderr}")


def total_instructions(path):
    with open(path) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def run(args, name, logdir):
    kind, listener, payload_name, default_count, default_connections = SCENARIOS[name]
    count = args.requests or default_count
    connections_count = args.connections or default_connections
    payload = args.payloads[payload_name]
    port = load.free_port()
    out_base = os.path.join(args.out, f"callgrind.{name}")
    for stale in [p for p in os.listdir(args.out) if p.startswith(f"callgrind.{name}")]:
        os.remove(os.path.join(args.out, stale))
    valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out_base}"]
    env = dict(os.environ)
    if kind == "hookpipe":
        env.update({
            "HOOKPIPE_SERVER__LISTEN": f"127.0.0.1:{port}",
            "HOOKPIPE_KAFKA__BROKERS": "",
            "HOOKPIPE_LOG": "info",
            "HOOKPIPE_LISTENERS__LIMITED__RATE_LIMIT__CAPACITY": "1",
            "HOOKPIPE_LISTENERS__LIMITED__RATE_LIMIT__REFILL_PER_SEC": "1",
        })
        argv = valgrind + [args.hookpipe, "serve", "--config", os.path.join(args.repo, "benches/load.toml")]
    else:
        argv = valgrind + [args.ceiling, "serve", "--listen", f"127.0.0.1:{port}"]
    process = load.Process(f"cg-{name}", argv, env=env, cwd=args.repo, logdir=logdir).start()
    try:
        if kind == "hookpipe":
            match = process.wait_for_line(rf"^listener\s+{listener}\s+(\S+)", 600)
            path = "/" + match.group(1).split("/", 3)[3]
            deadline = time.time() + 600
            while load.http_status(f"http://127.0.0.1:{port}/readyz", timeout=30) != 200:
                if time.time() > deadline or not process.alive():
                    raise RuntimeError(f"hookpipe not ready; see {process.log_path}")
                time.sleep(0.5)
        else:
            process.wait_for_line(r"^ceiling listening", 300)
            path = "/hooks/ceiling"
        request = request_bytes(path, payload)
        connections = [Connection(port) for _ in range(connections_count)]
        callgrind_control(process.pid, "-i", "on")
        warm = send_all(connections, request, args.warmup)
        callgrind_control(process.pid, "-z")
        started = time.time()
        statuses = send_all(connections, request, count)
        elapsed = time.time() - started
        callgrind_control(process.pid, "-d")
        for connection in connections:
            connection.sock.close()
    finally:
        process.stop()
    dumps = sorted(p for p in os.listdir(args.out) if p.startswith(f"callgrind.{name}."))
    dump = os.path.join(args.out, dumps[0])
    final = os.path.join(args.out, f"callgrind.{name}")
    os.replace(dump, final)
    for rest in dumps[1:]:
        os.remove(os.path.join(args.out, rest))
    instructions = total_instructions(final)
    result = {
        "scenario": name, "server": kind, "payload": payload_name, "requests": count,
        "statuses": statuses, "warmup_statuses": warm, "instructions": instructions,
        "per_request": instructions / count, "window_s": elapsed, "file": final, "connections": connections_count,
    }
    load.log(f"{name}: {instructions / count:,.0f} instructions per request "
             f"({count} requests, statuses {statuses}, {elapsed:.1f} s under valgrind)")
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", default=os.path.dirname(HERE))
    parser.add_argument("--hookpipe", default="target/release/hookpipe")
    parser.add_argument("--ceiling")
    parser.add_argument("--scenarios", default="A,F,J16,X16,CE")
    parser.add_argument("--requests", type=int, help="requests measured per scenario (default: per scenario)")
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--connections", type=int, help="keep-alive connections (default: per scenario)")
    parser.add_argument("--out", default="/tmp/callgrind")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    args.payloads = {
        name: load.Payload(name, ctype, body, args.out)
        for name, ctype, body in [
            ("json-1KB", "application/json", load.json_body(1024)),
            ("json-16KB", "application/json", load.json_body(16 * 1024)),
            ("xml-16KB", "application/xml", load.xml_body(16 * 1024)),
        ]
    }
    results = []
    try:
        for name in [s.strip().upper() for s in args.scenarios.split(",") if s.strip()]:
            results.append(run(args, name, args.out))
    finally:
        load.stop_all()
    commit = subprocess.run(["git", "-C", args.repo, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    lines = [f"callgrind, commit {commit}, warm-up {args.warmup}", "",
             "| scenario | payload | connections | requests | statuses | instructions / request | window s |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['scenario']} ({r['server']}) | {r['payload']} | {r['connections']} | {r['requests']} | "
                     f"{r['statuses']} | {r['per_request']:,.0f} | {r['window_s']:.1f} |")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
