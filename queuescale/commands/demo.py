"""``queuescale demo``: the whole system on the embedded sandbox in one command.

A busy day of a real trace drives an emulated Trino cluster and Spark pool; the real adapter serves their
metrics over HTTP; the real controller scales them through the sandbox's Kubernetes API, draining Trino
workers and decommissioning Spark workers as load falls. A live view shows it; at the end (or on Ctrl-C)
a report folder holds the simulator's run of the same arrivals beside the live one.

The demo is :mod:`lab.demo`, imported only here and only when it is installed: the controller/adapter image
leaves :mod:`lab` out, and there ``queuescale demo`` says so in one line.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from core.errors import ConfigError
from queuescale.lab_installed import lab_installed, lab_or_exit
from queuescale.signals import run_with_signals

if TYPE_CHECKING:
    from lab.demo.run import DemoOptions, Urls

__all__ = ["add_demo_parser", "cmd_demo", "options_from_args"]

LOG_FILE = "demo.log"


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {text}")
    return value


def _not_installed(args: argparse.Namespace) -> None:
    lab_or_exit("the demo")


def add_demo_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    if not lab_installed():
        # Whatever follows, flags included, is taken as it is: the command only says the demo is missing.
        missing = sub.add_parser(
            "demo",
            help="run everything on the embedded sandbox (not installed in this image)",
            add_help=False,
            prefix_chars="\0",
        )
        missing.add_argument("rest", nargs="*")
        missing.set_defaults(func=_not_installed)
        return
    from lab.demo.policies import DEFAULT_SPARK_POLICY, DEFAULT_TRINO_POLICY
    from lab.demo.scenario import DEFAULT_CLUSTER_SPEED, DEFAULT_SPEED, DEFAULT_TRACE

    p = sub.add_parser(
        "demo",
        help="run everything on the embedded sandbox: a replayed trace, the adapter, the controller",
        description="Replay a busy day of a trace against an emulated Trino cluster and Spark pool on a "
        "sandbox Kubernetes API, with the real adapter and controller; show it live and write a report "
        "(the simulator on the same arrivals, plots, the URLs served). Ctrl-C stops and still reports.",
    )
    p.add_argument(
        "--trace",
        type=Path,
        default=DEFAULT_TRACE,
        help="ts,value load-shape CSV; its busiest quiet-started day is replayed (default: a bundled day "
        "of crane-input0)",
    )
    p.add_argument(
        "--speed",
        type=_positive,
        default=DEFAULT_SPEED,
        help=f"trace seconds per wall second (default {DEFAULT_SPEED:g}: a day in 90 s)",
    )
    p.add_argument(
        "--cluster-speed",
        type=_positive,
        default=DEFAULT_CLUSTER_SPEED,
        help="cluster seconds per wall second: how much faster than real time queries, pod start-ups and "
        f"controller passes run (default {DEFAULT_CLUSTER_SPEED:g}); the trace is compressed into cluster "
        "time by speed / cluster-speed",
    )
    p.add_argument(
        "--policy",
        type=Path,
        default=DEFAULT_TRINO_POLICY,
        help="TrinoWorkers ScalingPolicy, durations in cluster seconds (default: the demo's)",
    )
    p.add_argument(
        "--spark-policy",
        type=Path,
        default=DEFAULT_SPARK_POLICY,
        help="SparkWorkerPool ScalingPolicy, durations in cluster seconds (default: the demo's)",
    )
    p.add_argument(
        "--duration",
        type=_positive,
        help="stop after this many wall seconds (default: when the replayed day ends)",
    )
    p.add_argument("--no-ui", action="store_true", help="plain progress lines instead of the live view")
    p.add_argument("--out", type=Path, help="report folder (default ./queuescale-demo-<time>)")
    p.add_argument("--seed", type=int, default=0, help="seed of the arrivals (default 0)")
    p.set_defaults(func=cmd_demo)


def options_from_args(args: argparse.Namespace, *, ui: bool) -> DemoOptions:
    from lab.demo.run import DemoOptions
    from lab.demo.scenario import LoadSettings, TimeScale

    try:
        scale = TimeScale(speed=args.speed, cluster_speed=args.cluster_speed)
    except ValueError as exc:
        raise ConfigError(f"demo: {exc}") from exc
    return DemoOptions(
        trace=args.trace,
        scale=scale,
        trino_policy=args.policy,
        spark_policy=args.spark_policy,
        duration=args.duration,
        ui=ui,
        seed=args.seed,
        load=LoadSettings(),
    )


def _print_urls(stream: TextIO, urls: Urls, out: Path) -> None:
    base = "/apis/external.metrics.k8s.io/v1beta1"
    stream.write(
        f"""queuescale demo: serving on loopback (plain HTTP, no authentication) until it ends
  Kubernetes API   {urls.kube}      kubectl --server={urls.kube} get deployments,statefulsets,pods -A
                                              kubectl --server={urls.kube} get scalingpolicies -A -o yaml
  adapter          {urls.adapter}      kubectl --server={urls.adapter} get --raw {base}/namespaces/{urls.trino_namespace}/trino_queued_queries
  controller       {urls.controller_metrics}/metrics
  Trino            {urls.coordinator}      Spark master {urls.spark_master}
  report and log   {out}/  (Ctrl-C stops early and still writes the report)

"""
    )
    stream.flush()


def cmd_demo(args: argparse.Namespace) -> None:
    from lab.demo.report import write_report
    from lab.demo.run import run_demo

    stream = sys.stdout
    ui = not args.no_ui and stream.isatty()
    options = options_from_args(args, ui=ui)
    out: Path = args.out or Path(f"queuescale-demo-{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    # Logs go to a file: the terminal belongs to the live view.
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        filename=str(out / LOG_FILE),
        force=True,
    )

    async def main(stop: asyncio.Event) -> None:
        run = await run_demo(options, stop, stream, on_urls=lambda urls: _print_urls(stream, urls, out))
        stream.write("\nwriting the report (simulating the same arrivals)…\n")
        stream.flush()
        written = write_report(run, out)
        ups = run.counter("queuescale_controller_scale_actions_total", run.trino_key, direction="up")
        stream.write(
            f"done in {run.wall_seconds:.0f} s: {len(run.queries)} queries ({run.killed_queries} killed); "
            f"Trino scale-ups {ups:.0f}, workers drained {len(run.trino_drained)}; Spark workers "
            f"decommissioned {len(run.spark_decommissioned)}; adapter answers checked {run.truth.checks}, "
            f"mismatches {run.truth.mismatch_count}\n"
        )
        for path in written:
            stream.write(f"  {path}\n")
        stream.flush()

    run_with_signals(main)
