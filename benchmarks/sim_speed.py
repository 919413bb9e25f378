"""Simulator speed: ``queuescale simulate --sweep`` on 90 days of a ``ts,value`` trace, by ``--jobs``.

    python -m benchmarks.sim_speed [--days 90] [--rate 0.3] [--seed 1] [--jobs 2,1] [--trace PATH]

The target: the whole command (the policies, every baseline, the sweep and its refinement runs) in under
10 minutes per seed on a 2-core machine. The trace is built in a temporary directory by tiling ``--trace``
(its ``ts,value`` rows repeated, timestamps continued) to ``--days`` and passed with ``--rate-scale`` set so
the mean is ``--rate`` queries/s, as a user would run it.

Prints one row per ``--jobs`` value: wall seconds, CPU seconds (user + system of the command and its worker
processes: on a shared machine the CPU time is the figure to compare, wall time depends on the other load),
the load average before and after, and each worker process's CPU seconds, busiest first (with idle cores
the busiest worker's is the wall time). ``--jobs 1`` runs everything one after another in one process: the
CPU time of the runs themselves, without parallelism. ``--check`` asserts the result.json files of every
``--jobs`` value are byte for byte the same.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from autoscaler.sim.load import read_shape_csv

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TRACE = "/work/shared/data/traces/crane-input15.csv"
POLICY = ROOT / "benchmarks" / "policies" / "trino-workers.yaml"


def tiled_trace(source: Path, days: float, out: Path) -> float:
    """Write ``source`` repeated to ``days`` as a ``ts,value`` CSV at ``out``; returns its mean value."""
    ts, values = read_shape_csv(source)
    step = float(ts[1] - ts[0]) if len(ts) > 1 else 60.0
    n = round(days * 86_400.0 / step)
    tiled = np.resize(np.asarray(values, dtype=np.float64), n)
    stamps = float(ts[0]) + step * np.arange(n, dtype=np.float64)
    with out.open("w") as handle:
        handle.write("ts,value\n")
        for t, v in zip(stamps, tiled, strict=True):
            handle.write(f"{int(t)},{v:.6f}\n")
    return float(tiled.mean())


def _descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (Linux: /proc/PID/task/TID/children), empty where unreadable."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                children = Path(f"/proc/{parent}/task/{task}/children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                found.append(child)
                todo.append(child)
    return found


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` so far (None once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(args: list[str]) -> tuple[float, float, list[float]]:
    """Wall and CPU seconds (user + system, the command's worker processes included) of one command, and
    the CPU seconds of each worker process, busiest first: with idle cores the busiest worker's is the
    wall time. Workers are read from /proc twice a second, so each misses at most its last half second;
    none are listed where /proc is missing."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    workers: dict[int, float] = {}
    with tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr, text=True)
        while process.poll() is None:
            for pid in _descendants(process.pid):
                seconds = _cpu_seconds(pid)
                if seconds is not None:
                    workers[pid] = max(seconds, workers.get(pid, 0.0))
            time.sleep(0.5)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if process.returncode != 0:
            stderr.seek(0)
            sys.exit(f"{' '.join(args)} failed:\n{stderr.read()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, sorted(workers.values(), reverse=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--days", type=float, default=90.0)
    parser.add_argument("--rate", type=float, default=0.3, help="mean arrivals per second")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", default="2,1", help="comma-separated --jobs values to time, in order")
    parser.add_argument("--trace", type=Path, default=Path(DEFAULT_TRACE))
    parser.add_argument("--policy", type=Path, default=POLICY)
    parser.add_argument("--check", action="store_true", help="assert equal result.json across --jobs")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "trace.csv"
        mean = tiled_trace(args.trace, args.days, trace)
        print(f"trace: {args.trace.name} tiled to {args.days:g} days, rate scale {args.rate / mean:.6g}")
        print(
            f"{'jobs':>4} {'wall s':>8} {'CPU s':>8} {'load before':>12} {'load after':>11}  workers' CPU s",
            flush=True,
        )
        outputs: list[bytes] = []
        for jobs in (int(j) for j in args.jobs.split(",")):
            out = Path(tmp) / f"out-{jobs}"
            load_before = os.getloadavg()[0]
            wall, cpu, workers = run(
                [
                    sys.executable,
                    "-m",
                    "queuescale",
                    "simulate",
                    "--policy",
                    str(args.policy),
                    "--trace",
                    str(trace),
                    "--rate-scale",
                    f"{args.rate / mean!r}",
                    "--seed",
                    str(args.seed),
                    "--sweep",
                    "--no-progress",
                    "--jobs",
                    str(jobs),
                    "--out",
                    str(out),
                ]
            )
            load_after = os.getloadavg()[0]
            split = " + ".join(f"{w:.1f}" for w in workers) or "-"
            print(
                f"{jobs:>4} {wall:>8.1f} {cpu:>8.1f} {load_before:>12.2f} {load_after:>11.2f}  {split}",
                flush=True,
            )
            outputs.append((out / "result.json").read_bytes())
        if args.check:
            assert all(o == outputs[0] for o in outputs), "result.json differs between --jobs values"
            print("result.json identical for every --jobs value")


if __name__ == "__main__":
    main()
