#!/usr/bin/env python3
"""The scaling table of the logs-window job: wall time, CPU seconds and
peak RSS of `log_analysis` at each parallelism, over one JSON-lines file
or generated events.

    cargo build --release --example log_analysis
    cargo run --release -p brook-workload -- gen-logs --events 8000000 --seed 1 --out /tmp/logs.jsonl
    python3 scripts/scaling.py --input /tmp/logs.jsonl
    python3 scripts/scaling.py --events 40000000     # generated events, no JSON

Rounds are interleaved (p=1, 2, 4, ... then again), so that a machine
that slows down or speeds up does so for every parallelism alike; the
table shows medians, and speed-up and CPU are ratios to p=1 within the
same rounds. Wall time is the whole process, start-up and the final SQL
query included (some tens of milliseconds, more at higher parallelism:
more threads to start, more files for the query to read); the rate the
job printed is of the job alone, from its start to its output's commit,
and the table gives the speed-up by it too, and the involuntary context
switches (where cores are fewer than instances, threads are switched
out). Peak RSS is in MiB. Linux only (it
reads `ru_maxrss` as KiB); only the standard library, so that it runs on
a bare machine.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def run_once(binary, source, parallelism, out_root):
    """One run: (wall s, CPU s, peak RSS MiB, the rate the job printed,
    involuntary context switches).
    `source` is the arguments naming the input."""
    out = os.path.join(out_root, f"p{parallelism}")
    shutil.rmtree(out, ignore_errors=True)
    cmd = [
        binary,
        *source,
        "--parallelism", str(parallelism),
        "--out", os.path.join(out, "stats"),
        "--dead-letters", os.path.join(out, "dead"),
    ]
    # Output to a file, not a pipe: a pipe nobody reads while waiting
    # would stop a talkative job.
    with tempfile.TemporaryFile() as log:
        started = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - started
        log.seek(0)
        text = log.read().decode("utf-8", "replace")
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{text}")
    rate = re.search(r"\(([0-9.]+) M events/s\)", text)
    if rate is None or float(rate.group(1)) <= 0:
        sys.exit(f"{' '.join(cmd)} printed no rate (too few events?):\n{text}")
    shutil.rmtree(out, ignore_errors=True)
    # Linux gives ru_maxrss in KiB.
    return (wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, float(rate.group(1)),
            usage.ru_nivcsw)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--input", help="a JSON-lines file of log events")
    what.add_argument("--events", type=int,
                      help="generate this many events instead (no JSON: the runtime's own cost)")
    ap.add_argument("--binary", default="target/release/examples/log_analysis")
    ap.add_argument("--parallelism", default="1,2,4,8,16",
                    help="comma-separated parallelisms (default 1,2,4,8,16)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    levels = [int(p) for p in args.parallelism.split(",")]
    if args.input is not None:
        source, what = ["--input", args.input], args.input
    else:
        source, what = ["--events", str(args.events)], f"{args.events} generated events"
    print(f"{args.binary} over {what}; {os.cpu_count()} cores; "
          f"{args.rounds} rounds", flush=True)
    runs = {p: [] for p in levels}
    with tempfile.TemporaryDirectory(prefix="brook-scaling-") as out_root:
        # A first run, not counted, brings the input file (and the
        # binary) into the page cache.
        run_once(args.binary, source, levels[-1], out_root)
        for r in range(args.rounds):
            for p in levels:
                runs[p].append(run_once(args.binary, source, p, out_root))
                wall, cpu, rss, rate, switched = runs[p][-1]
                print(f"round {r + 1} p={p}: {wall:.2f} s wall, {cpu:.2f} CPU-s, "
                      f"{rss:.0f} MiB, printed {rate:.2f} M events/s, "
                      f"{switched} involuntary switches", flush=True)
    base = levels[0]
    print()
    print(f"| parallelism | wall s | speed-up vs p={base} | CPU-s | CPU vs p={base} "
          "| peak RSS MiB | printed M events/s | speed-up by printed rate "
          "| involuntary switches |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for p in levels:
        # Ratios per round, against the same round's base: then medians.
        speedup = statistics.median(b[0] / x[0] for b, x in zip(runs[base], runs[p]))
        cpu_ratio = statistics.median(x[1] / b[1] for b, x in zip(runs[base], runs[p]))
        rate_ratio = statistics.median(x[3] / b[3] for b, x in zip(runs[base], runs[p]))
        med = [statistics.median(x[i] for x in runs[p]) for i in range(5)]
        print(f"| {p} | {med[0]:.2f} | {speedup:.2f}x | {med[1]:.2f} | {cpu_ratio:.2f}x "
              f"| {med[2]:.0f} | {med[3]:.2f} | {rate_ratio:.2f}x | {med[4]:.0f} |")


if __name__ == "__main__":
    main()
