#!/usr/bin/env python3
"""Hostile traffic for the soak (benches/soak.py starts it; Python 3 stdlib: selectors).

  hostile.py slowloris --port P --path /hooks/ID --count 2000 --interval 5 --secs S [--mode mixed]
  hostile.py mix --port P --path /hooks/ID --rate R --secs S

slowloris: COUNT connections, each sending one byte every INTERVAL seconds: `headers` mode
sends the request head itself one byte at a time (it never completes), `body` mode sends a
complete head with `Content-Length: 4096` at once and then the body one byte at a time,
`mixed` (default) does each on half of the connections. A connection the server closes (or
answers) is counted with its lifetime and the status it got, and reopened at once, so COUNT
connections stay open for the whole run as a real slowloris keeps them. One thread and one
epoll loop drive them all (the asyncio version it replaces spent a full core for ~0.3 s every
10 s reopening 1,000 connections at once, and 0.1 core on average: docs/benchmarks.md#soak).

mix: hostile requests at RATE per second, each on its own connection, from a fixed set of
kinds (bad signature, oversized body, malformed JSON, bad Content-Encoding, slow body, ...),
each with the 4xx it must get. Anything else (2xx, 5xx, no answer) is counted as unexpected.
One thread and one epoll loop as well.

Both print `tick {json}` once a second and `summary {json}` at the end. Loopback only.
"""

import argparse
import errno
import gzip
import heapq
import hashlib
import hmac
import json
import random
import resource
import selectors
import socket
import time

SECRET = b"bench-secret"
ANSWER_TIMEOUT_S = 30.0


def log_line(kind, value):
    print(f"{kind} {json.dumps(value, separators=(',', ':'))}", flush=True)


def percentile(values, share):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


# ----------------------------------------------------------------------------- slowloris


class Slowloris:
    """One thread, one epoll (selectors) loop and one timer heap for every connection: the
    attack costs the machine what it costs the server, not hundreds of coroutine wake-ups.

    A connection's life: a non-blocking connect at its start time; when it completes, the
    first write (`body` mode: the whole head and one body byte; `headers` mode: the first
    byte of the head), then one byte every --interval seconds; the server's answer or close
    ends it (its lifetime and status are counted) and it is reopened at once (after 0.1 s if
    it lived less than a second, so a server that answers at once does not turn this into a
    connect flood). The first connects are spread evenly over --ramp seconds (default: the
    interval), so the server's deadlines, which start at accept, end them spread out too
    instead of in waves of a thousand connections reopened in the same millisecond."""

    def __init__(self, args):
        self.args = args
        self.open = 0
        self.opened = 0
        self.failed_connects = 0
        self.bytes_sent = 0
        self.events = 0
        # Per mode: the lifetime of each connection the server ended, and how it ended.
        self.lifetimes = {"headers": [], "body": []}
        self.endings = {"headers": {}, "body": {}}
        self.selector = selectors.DefaultSelector()
        self.timers = []  # (when, sequence, connection, generation)
        self.sequence = 0
        host = f"127.0.0.1:{args.port}"
        self.heads = {
            # Never complete: after the first lines, an endless header value.
            "headers": f"POST {args.path} HTTP/1.1\r\nHost: {host}\r\nX-Slow: ".encode(),
            "body": (f"POST {args.path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: 4096\r\nX-Signature: sha256={'0' * 64}\r\n\r\n").encode(),
        }

    def head(self, mode):
        return self.heads[mode]

    def at(self, when, conn):
        self.sequence += 1
        heapq.heappush(self.timers, (when, self.sequence, conn, conn["generation"]))

    def connect(self, conn, now):
        conn["generation"] += 1
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        code = sock.connect_ex(("127.0.0.1", self.args.port))
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            self.failed_connects += 1
            self.at(now + 0.2, conn)
            return
        conn.update(sock=sock, connecting=True, opened_at=now, sent=0, answer=b"")
        self.selector.register(sock, selectors.EVENT_WRITE, conn)
        # A connect that does not complete in 5 s is a failed connect (as before).
        self.at(now + 5, conn)

    def connected(self, conn, now):
        sock = conn["sock"]
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code != 0:
            self.selector.unregister(sock)
            sock.close()
            conn["sock"] = None
            self.failed_connects += 1
            conn["generation"] += 1
            self.at(now + 0.2, conn)
            return
        conn["connecting"] = False
        self.open += 1
        self.opened += 1
        conn["opened_at"] = now
        conn["generation"] += 1
        self.selector.modify(sock, selectors.EVENT_READ, conn)
        self.send(conn, now)

    def send(self, conn, now):
        mode = conn["mode"]
        if conn["sent"] == 0 and mode == "body":
            data = self.heads["body"] + b"x"
        elif mode == "headers" and conn["sent"] < len(self.heads["headers"]):
            data = self.heads["headers"][conn["sent"] : conn["sent"] + 1]
        else:
            data = b"x" if mode == "body" else b"a"
        try:
            written = conn["sock"].send(data)
        except BlockingIOError:
            written = 0
        except OSError:
            self.end(conn, now, "reset")
            return
        conn["sent"] += written
        self.bytes_sent += written
        self.at(now + self.args.interval, conn)

    def readable(self, conn, now):
        try:
            data = conn["sock"].recv(4096)
        except BlockingIOError:
            return
        except OSError:
            self.end(conn, now, "reset")
            return
        if data:
            conn["answer"] += data
            if b"\n" not in conn["answer"] and len(conn["answer"]) < 4096:
                return
        self.end(conn, now, status_of(conn["answer"]))

    def end(self, conn, now, ending):
        lifetime = now - conn["opened_at"]
        self.selector.unregister(conn["sock"])
        conn["sock"].close()
        conn["sock"] = None
        self.open -= 1
        mode = conn["mode"]
        self.lifetimes[mode].append(lifetime)
        self.endings[mode][ending] = self.endings[mode].get(ending, 0) + 1
        conn["generation"] += 1
        self.at(now + (0.1 if lifetime < 1 else 0), conn)

    def timer(self, conn, now):
        if conn["sock"] is None:
            self.connect(conn, now)
        elif conn["connecting"]:
            self.selector.unregister(conn["sock"])
            conn["sock"].close()
            conn["sock"] = None
            self.failed_connects += 1
            conn["generation"] += 1
            self.at(now + 0.2, conn)
        else:
            self.send(conn, now)

    def summary(self):
        out = {
            "target": self.args.count,
            "mode": self.args.mode,
            "interval_s": self.args.interval,
            "opened": self.opened,
            "failed_connects": self.failed_connects,
            "bytes_sent": self.bytes_sent,
            "open_at_end": self.open,
            "events": self.events,
            "cpu_s": round(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]), 2),
        }
        for mode, lifetimes in self.lifetimes.items():
            out[mode] = {
                "ended_by_server": len(lifetimes),
                "endings": self.endings[mode],
                "lifetime_p50_s": percentile(lifetimes, 0.5),
                "lifetime_p99_s": percentile(lifetimes, 0.99),
                "lifetime_max_s": max(lifetimes) if lifetimes else None,
            }
        return out

    def run(self):
        args = self.args
        started = time.monotonic()
        deadline = started + args.secs
        ramp = args.interval if args.ramp is None else args.ramp
        conns = []
        for index in range(args.count):
            mode = args.mode if args.mode != "mixed" else ("headers" if index % 2 == 0 else "body")
            conn = {"index": index, "mode": mode, "sock": None, "generation": 0, "connecting": False}
            conns.append(conn)
            self.at(started + ramp * index / max(args.count, 1), conn)
        ready_reported = False
        min_open = None
        next_tick = started + 1
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            while self.timers and self.timers[0][0] <= now:
                _, _, conn, generation = heapq.heappop(self.timers)
                if generation == conn["generation"]:
                    self.events += 1
                    self.timer(conn, now)
            if now >= next_tick:
                next_tick += 1
                if not ready_reported and self.open >= args.count * 0.99:
                    ready_reported = True
                    log_line("ready", {"open": self.open, "after_s": round(now - started, 1)})
                if ready_reported and now < deadline - 2:
                    min_open = self.open if min_open is None else min(min_open, self.open)
                log_line("tick", {"open": self.open, "opened": self.opened, "failed_connects": self.failed_connects})
            wake = min(next_tick, deadline, self.timers[0][0] if self.timers else deadline)
            for key, mask in self.selector.select(max(wake - time.monotonic(), 0)):
                conn = key.data
                now = time.monotonic()
                self.events += 1
                if conn["connecting"]:
                    self.connected(conn, now)
                else:
                    self.readable(conn, now)
        for conn in conns:
            if conn["sock"] is not None:
                conn["sock"].close()
        summary = self.summary()
        summary["min_open_after_ready"] = min_open
        log_line("summary", summary)


def status_of(answer):
    """The status code of the first response line, `eof` or `garbage`."""
    if not answer:
        return "eof"
    parts = answer.split(b"\n", 1)[0].split()
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/"):
        return parts[1].decode(errors="replace")
    return "garbage"


# ----------------------------------------------------------------------------- hostile mix


def signature(body):
    return "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()


def request(method, path, headers, body=b""):
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if "Content-Length" not in headers and "Transfer-Encoding" not in headers:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def kinds(path):
    """(name, weight, expected statuses, bytes sent at once, bytes then sent one per second)."""
    good = json.dumps({"id": "evt_1", "type": "order.created", "items": [{"sku": "A", "qty": 1}]}).encode()
    malformed = b'{"id": "evt_1", "items": [1, 2,'
    deep = b"[" * 200 + b"]" * 200
    doctype = b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xx">]><a>&x;</a>'
    bomb = gzip.compress(b"\0" * (16 * 1024 * 1024), compresslevel=9)
    json_headers = lambda body: {"Content-Type": "application/json", "X-Signature": signature(body)}
    slow_body = b'{"id":"' + b"s" * 1000 + b'"}'
    return [
        ("bad_signature", 1, {"401"}, request("POST", path, {"Content-Type": "application/json",
                                                            "X-Signature": "sha256=" + "ab" * 32}, good), b""),
        ("no_signature", 1, {"401"}, request("POST", path, {"Content-Type": "application/json"}, good), b""),
        ("malformed_json", 1, {"400"}, request("POST", path, json_headers(malformed), malformed), b""),
        ("too_deep_json", 1, {"400"}, request("POST", path, json_headers(deep), deep), b""),
        ("xml_doctype", 1, {"400"}, request("POST", path, {"Content-Type": "application/xml",
                                                          "X-Signature": signature(doctype)}, doctype), b""),
        ("unsupported_media_type", 1, {"415"}, request("POST", path, {"Content-Type": "text/plain",
                                                                     "X-Signature": signature(good)}, good), b""),
        ("unsupported_encoding", 1, {"415"}, request("POST", path, dict(json_headers(good), **{"Content-Encoding": "br"}),
                                                     good), b""),
        ("corrupt_gzip", 1, {"400"}, request("POST", path, dict(json_headers(good), **{"Content-Encoding": "gzip"}),
                                             good), b""),
        # 16 MB of zeros in 16 KB: decoding stops at the 10 MB body limit. Costs the server ~10-20 ms
        # of CPU each, so it is rarer than the others.
        ("gzip_bomb", 0.2, {"413"}, request("POST", path, {"Content-Type": "application/json",
                                                          "Content-Encoding": "gzip", "X-Signature": "sha256=00"}, bomb), b""),
        # Announces 11 MB, sends the head and 16 KB, then waits for the answer.
        ("oversized_declared", 1, {"413"}, request("POST", path, {"Content-Type": "application/json",
                                                                 "Content-Length": str(11 * 1024 * 1024)}) + b"x" * 16384, b""),
        # A complete head, 10 bytes of body, then one byte a second: the body read deadline answers.
        ("slow_body", 1, {"408"}, request("POST", path, dict(json_headers(slow_body),
                                                             **{"Content-Length": str(len(slow_body))}))
         + slow_body[:10], slow_body[10:]),
        ("unknown_listener", 1, {"404"}, request("POST", "/hooks/no-such-listener-0000", json_headers(good), good), b""),
        ("wrong_method", 1, {"405"}, request("DELETE", path, {}), b""),
        ("garbage_request_line", 1, {"400"}, b"\x16\x03\x01 NOT HTTP AT ALL\r\n\r\n", b""),
        ("huge_header", 1, {"431", "400"}, request("POST", path, dict(json_headers(good), **{"X-Big": "h" * 200_000}),
                                                   good), b""),
    ]


class Mix:
    """One thread and one epoll (selectors) loop with a timer heap, like the slowloris: each
    hostile request is a non-blocking connect, its bytes written as the socket takes them, a
    slow body's remaining bytes one a second, and the first line of the answer read. (The
    asyncio version it replaces cost ~0.1 core per 50 requests/s on the 2 shared cores: a
    coroutine, a stream pair and a 5 ms scheduling loop per request.)"""

    def __init__(self, args):
        self.args = args
        self.kinds = kinds(args.path)
        self.counts = {name: {} for name, *_ in self.kinds}
        self.unexpected = {}
        self.in_flight = 0
        self.skipped = 0
        self.sent = 0
        self.selector = selectors.DefaultSelector()
        # (when, sequence, request, what): what is "deadline" (valid while the request's
        # deadline_id matches) or "byte" (the next byte of a slow body).
        self.timers = []
        self.sequence = 0

    def at(self, when, req, what):
        self.sequence += 1
        heapq.heappush(self.timers, (when, self.sequence, req, what))

    def deadline(self, req, when):
        req["deadline_id"] = self.sequence + 1
        self.at(when, req, ("deadline", req["deadline_id"]))

    def start(self, kind, now):
        _, _, _, first, trickle = kind
        req = {"kind": kind, "pending": first, "trickle": trickle, "answer": b"", "connecting": True, "sock": None}
        self.in_flight += 1
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        code = sock.connect_ex(("127.0.0.1", self.args.port))
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            self.finish(req, "connect_failed")
            return
        req["sock"] = sock
        self.selector.register(sock, selectors.EVENT_WRITE, req)
        # As before: a connect that does not complete in 5 s is a failed connect.
        self.deadline(req, now + 5)

    def watch(self, req):
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if req["pending"] else 0)
        self.selector.modify(req["sock"], events, req)

    def writable(self, req, now):
        sock = req["sock"]
        if req["connecting"]:
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                self.finish(req, "connect_failed")
                return
            req["connecting"] = False
            self.deadline(req, now + ANSWER_TIMEOUT_S)
            if req["trickle"]:
                self.at(now + 1.0, req, "byte")
        try:
            written = sock.send(req["pending"])
        except BlockingIOError:
            written = 0
        except OSError:
            # The server may have answered and closed before taking every byte: read what it said.
            req["pending"] = b""
            self.readable(req, now)
            return
        req["pending"] = req["pending"][written:]
        self.watch(req)

    def readable(self, req, now):
        try:
            data = req["sock"].recv(4096)
        except BlockingIOError:
            return
        except OSError:
            self.finish(req, status_of(req["answer"]) if b"\n" in req["answer"] else "reset")
            return
        req["answer"] += data
        if data and b"\n" not in req["answer"]:
            return
        self.finish(req, status_of(req["answer"]))

    def timer(self, req, what, now):
        if req["sock"] is None:
            return  # already finished
        if what == "byte":
            # A complete head and 10 bytes went first; the rest of the body one byte a second.
            req["pending"] += req["trickle"][:1]
            req["trickle"] = req["trickle"][1:]
            if req["trickle"]:
                self.at(now + 1.0, req, "byte")
            self.watch(req)
        elif what[1] == req["deadline_id"]:
            self.finish(req, "connect_failed" if req["connecting"] else "timeout")

    def finish(self, req, status):
        if req["sock"] is not None:
            self.selector.unregister(req["sock"])
            req["sock"].close()
            req["sock"] = None
        self.in_flight -= 1
        name, _, expected, *_ = req["kind"]
        self.counts[name][status] = self.counts[name].get(status, 0) + 1
        if status not in expected:
            key = f"{name}:{status}"
            self.unexpected[key] = self.unexpected.get(key, 0) + 1

    def run(self):
        rng = random.Random(7)
        names = [kind for kind in self.kinds]
        weights = [kind[1] for kind in self.kinds]
        rate = self.args.rate
        started = time.monotonic()
        deadline = started + self.args.secs
        # After the deadline, the requests in flight get their answer's timeout (+ 10 s) to end.
        drain_until = deadline + ANSWER_TIMEOUT_S + 10
        next_tick = started + 1
        sent = 0
        while True:
            now = time.monotonic()
            if now >= deadline and (self.in_flight == 0 or now >= drain_until):
                break
            if now < deadline:
                # Open loop: as many requests as the schedule says by now.
                due = int((now - started) * rate) - sent
                for _ in range(max(due, 0)):
                    sent += 1
                    if self.in_flight >= self.args.max_in_flight:
                        self.skipped += 1
                        continue
                    self.start(rng.choices(names, weights)[0], now)
                self.sent = sent - self.skipped
            while self.timers and self.timers[0][0] <= now:
                _, _, req, what = heapq.heappop(self.timers)
                self.timer(req, what, now)
            if now >= next_tick:
                next_tick += 1
                log_line("tick", {"sent": self.sent, "in_flight": self.in_flight,
                                  "unexpected": sum(self.unexpected.values())})
            # Sleep until the next scheduled request, timer or tick, or a socket's event.
            wake = min(next_tick, drain_until, self.timers[0][0] if self.timers else drain_until)
            if now < deadline and rate > 0:
                wake = min(wake, started + (sent + 1) / rate)
            for key, mask in self.selector.select(max(wake - time.monotonic(), 0)):
                req = key.data
                now = time.monotonic()
                if req["sock"] is not None and mask & selectors.EVENT_WRITE:
                    self.writable(req, now)
                if req["sock"] is not None and mask & selectors.EVENT_READ and not req["connecting"]:
                    self.readable(req, now)
        for req in [key.data for key in self.selector.get_map().values()]:
            self.finish(req, "timeout")
        log_line("summary", {
            "rate": rate,
            "sent": self.sent,
            "skipped_over_max_in_flight": self.skipped,
            "by_kind": self.counts,
            "expected": {name: sorted(expected) for name, _, expected, *_ in self.kinds},
            "weights": {name: weight for name, weight, *_ in self.kinds},
            "unexpected": self.unexpected,
            "status_counts": self.status_counts(),
            "cpu_s": round(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]), 2),
        })

    def status_counts(self):
        total = {}
        for counts in self.counts.values():
            for status, n in counts.items():
                total[status] = total.get(status, 0) + n
        return total


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("slowloris", "mix"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--secs", type=float, required=True)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--mode", choices=("headers", "body", "mixed"), default="mixed")
    parser.add_argument("--ramp", type=float, help="slowloris: seconds over which the first connects are spread "
                        "(default: the interval)")
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--max-in-flight", type=int, default=2000)
    args = parser.parse_args()
    if args.what == "slowloris":
        Slowloris(args).run()
    else:
        Mix(args).run()


if __name__ == "__main__":
    main()
