#!/usr/bin/env python3
"""What the slowloris of the soak costs, alone: one `hookpipe serve` (release build,
benches/load.toml, embedded Kafka), no other load, `benches/hostile.py slowloris` against it
for --secs; the CPU of the server and of the generator sampled every --tick seconds from
/proc (utime + stime, so 10 ms resolution). Prints the mean and the peaks of each, so a
generator that is cheap on average but bursty (a thousand reconnects in the same
millisecond) shows. --idle-first measures the server alone for the same time first.

  python3 benches/slowloris_cpu.py --hookpipe target/release/hookpipe
  python3 benches/slowloris_cpu.py --hookpipe target/release/hookpipe --mode body
  git show 127fdfc:benches/hostile.py > /tmp/hostile-asyncio.py    # the generator before
  python3 benches/slowloris_cpu.py --hookpipe target/release/hookpipe --hostile /tmp/hostile-asyncio.py

Loopback only; raise `ulimit -n` above 2 × --count first.
"""

import argparse
import json
import os
import sys
import time
import types

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import load  # noqa: E402


def sample(server, process, secs, tick):
    rows, previous, t0 = [], None, time.time()
    while time.time() - t0 < secs and (process is None or process.alive()):
        now = time.time()
        cpu = (load.cpu_seconds(server.pid), load.cpu_seconds(process.pid) if process else 0.0)
        if previous:
            dt = now - previous[0]
            rows.append((now - t0, (cpu[0] - previous[1][0]) / dt, (cpu[1] - previous[1][1]) / dt))
        previous = (now, cpu)
        time.sleep(tick)
    return rows


def stats(rows, index, skip):
    values = sorted(r[index] for r in rows if r[0] >= skip)
    if not values:
        return {}
    return {"mean": round(sum(values) / len(values), 3), "p99": round(values[int(0.99 * (len(values) - 1))], 2),
            "max": round(values[-1], 2), "windows_over_half_a_core": sum(v > 0.5 for v in values)}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hookpipe", required=True)
    parser.add_argument("--hostile", default=os.path.join(here, "hostile.py"))
    parser.add_argument("--secs", type=float, default=40)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--interval", type=float, default=5)
    parser.add_argument("--mode", choices=("headers", "body", "mixed"), default="mixed")
    parser.add_argument("--tick", type=float, default=0.1)
    parser.add_argument("--skip", type=float, default=12, help="seconds left out of the figures (the first connects)")
    parser.add_argument("--idle-first", action="store_true")
    a = parser.parse_args()
    args = types.SimpleNamespace(hookpipe=a.hookpipe, config=os.path.join(here, "load.toml"),
                                 repo=os.path.dirname(here), hookpipe_log="info")
    logdir = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"hookpipe-slowloris-cpu-{os.getpid()}")
    os.makedirs(logdir, exist_ok=True)
    out = {"generator": os.path.relpath(a.hostile), "count": a.count, "mode": a.mode, "secs": a.secs, "tick_s": a.tick}
    try:
        server = load.Server("hookpipe", args, logdir).start()
        path = "/" + server.urls["bench"].split("/", 3)[3]
        time.sleep(2)
        if a.idle_first:
            out["server_idle_cores"] = stats(sample(server, None, a.secs, a.tick), 1, 0)
        generator = load.Process("slowloris", [
            sys.executable, a.hostile, "slowloris", "--port", str(server.port), "--path", path, "--count", str(a.count),
            "--interval", str(a.interval), "--secs", str(a.secs), "--mode", a.mode], logdir=logdir).start()
        rows = sample(server, generator, a.secs, a.tick)
        out["server_cores"] = stats(rows, 1, a.skip)
        out["generator_cores"] = stats(rows, 2, a.skip)
        generator.wait_for_line(r"^summary ", 30)
        summary = json.loads([line for line in generator.lines if line.startswith("summary ")][-1][8:])
        out["opened"] = summary["opened"]
        out["reopened_per_s"] = round(summary["opened"] / a.secs, 1)
        out["lifetime_p50_s"] = {mode: (summary.get(mode) or {}).get("lifetime_p50_s") for mode in ("headers", "body")}
    finally:
        load.stop_all()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
