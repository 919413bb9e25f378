"""``queuescale adapter``: serve Trino and Spark backlog metrics on ``external.metrics.k8s.io``.

The settings are a YAML file (``--config``) with ``QUEUESCALE_*`` environment variables and the flags on top
(:func:`load_or_exit`, also used by the commands that read an adapter's settings). ``--sandbox`` polls the
embedded sandbox instead (from :mod:`lab`, which a source install has and the image does not) and prints
what the adapter serves, read over HTTP as the HPA reads it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import aiohttp

from adapter.runtime import run_until_stopped, start_adapter
from adapter.settings import Settings, load_settings
from core.errors import ConfigError
from core.metric_names import (
    SPARK_EXECUTORS_NEEDED,
    SPARK_REMAINING_TASKS,
    TRINO_NODES,
    TRINO_QUEUED_QUERIES,
    TRINO_RUNNING_QUERIES,
)
from core.quantity import milli_value
from queuescale.lab_installed import lab_or_exit
from queuescale.logs import configure_logging
from queuescale.signals import run_with_signals

__all__ = [
    "add_adapter_arguments",
    "add_adapter_parser",
    "cmd_adapter",
    "load_or_exit",
    "overrides_from_args",
]

BASE = "/apis/external.metrics.k8s.io/v1beta1"
SHOWN = (
    (TRINO_QUEUED_QUERIES, "queued"),
    (TRINO_RUNNING_QUERIES, "running"),
    (TRINO_NODES, "trino nodes"),
    (SPARK_REMAINING_TASKS, "spark remaining tasks"),
    (SPARK_EXECUTORS_NEEDED, "executors needed"),
)


def add_adapter_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML settings file (see README: Configuration)")
    parser.add_argument("--listen", help="host:port to serve on (overrides server.listen)")
    parser.add_argument(
        "--insecure-http",
        action="store_true",
        help="plain HTTP without authentication, loopback only (development)",
    )
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"])


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    server: dict[str, Any] = {}
    if args.listen:
        server["listen"] = args.listen
    if args.insecure_http:
        server["insecure_http"] = True
        overrides["auth"] = {"mode": "none"}
    if server:
        overrides["server"] = server
    if args.log_level:
        overrides["log_level"] = args.log_level
    return overrides


def load_or_exit(path: Path | None, overrides: dict[str, Any]) -> Settings:
    try:
        return load_settings(path, overrides)
    except ConfigError as exc:
        print(f"queuescale: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc


async def _served_value(session: aiohttp.ClientSession, url: str, metric: str) -> str:
    async with session.get(f"{url}{BASE}/namespaces/default/{metric}") as resp:
        body = await resp.json()
        if resp.status != 200:
            return f"{resp.status} {body.get('reason', '')}"
        total = sum(milli_value(item["value"]) for item in body["items"]) / 1000
        return f"{total:g}"


async def _show_answers(url: str, stop: asyncio.Event, every: float) -> None:
    """Print what the adapter serves, read over HTTP like the HPA reads it."""
    async with aiohttp.ClientSession() as session:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
            if stop.is_set():
                return
            try:
                figures = [f"{label}={await _served_value(session, url, m)}" for m, label in SHOWN]
            except (aiohttp.ClientError, json.JSONDecodeError) as exc:
                figures = [f"adapter unreachable: {exc}"]
            print("served: " + "  ".join(figures), flush=True)


def _print_urls(url: str) -> None:
    print(
        f"""
queuescale adapter on the sandbox: {url}
  curl {url}{BASE}
  curl '{url}{BASE}/namespaces/default/trino_queued_queries?labelSelector=cluster%3Dsandbox'
  kubectl --server={url} get --raw {BASE}/namespaces/default/spark_remaining_tasks
  curl {url}/metrics        # the adapter's own metrics
Ctrl-C stops.
""",
        flush=True,
    )


async def _adapter_on_sandbox(
    args: argparse.Namespace, overrides: dict[str, Any], stop: asyncio.Event
) -> None:
    from lab.sandbox.world import running_world

    async with running_world(seed=args.seed) as world:
        try:
            settings = load_or_exit(args.config, {**world.source_settings(), **overrides})
        except SystemExit:
            stop.set()
            raise
        async with start_adapter(settings) as running:
            _print_urls(running.url)
            await _show_answers(running.url, stop, args.show_every)


def cmd_adapter(args: argparse.Namespace) -> None:
    overrides = overrides_from_args(args)
    if args.sandbox:
        if not args.insecure_http:
            # The sandbox has no kube-apiserver to front-proxy for it: it is a loopback development world.
            print(
                "queuescale: --sandbox needs --insecure-http (the sandbox has no kube-apiserver)",
                file=sys.stderr,
            )
            raise SystemExit(2)
        lab_or_exit("the sandbox (--sandbox)")
        configure_logging(args.log_level or "warning")
        run_with_signals(lambda stop: _adapter_on_sandbox(args, overrides, stop))
        return
    settings: Settings = load_or_exit(args.config, overrides)
    configure_logging(settings.log_level)
    run_with_signals(lambda stop: run_until_stopped(settings, stop))


def add_adapter_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    adapter = sub.add_parser(
        "adapter", help="serve Trino and Spark backlog metrics on external.metrics.k8s.io"
    )
    add_adapter_arguments(adapter)
    adapter.add_argument(
        "--sandbox",
        action="store_true",
        help="poll the embedded sandbox (emulated Trino cluster and Spark pool under moving load)",
    )
    adapter.add_argument("--seed", type=int, default=0, help="seed of the sandbox load (with --sandbox)")
    adapter.add_argument(
        "--show-every", type=float, default=5.0, help="seconds between printed answers (with --sandbox)"
    )
    adapter.set_defaults(func=cmd_adapter)
