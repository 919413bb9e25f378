"""``python -m adapter`` and the shared flags of ``queuescale adapter``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from adapter.settings import Settings, load_settings
from core.errors import ConfigError


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


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def run_with_signals(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``main(stop)`` until SIGINT or SIGTERM sets ``stop``."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(runner())


def load_or_exit(path: Path | None, overrides: dict[str, Any]) -> Settings:
    try:
        return load_settings(path, overrides)
    except ConfigError as exc:
        print(f"queuescale: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m adapter",
        description="Serve Trino and Spark backlog metrics on external.metrics.k8s.io.",
    )
    add_adapter_arguments(parser)
    args = parser.parse_args(argv)
    settings = load_or_exit(args.config, overrides_from_args(args))
    configure_logging(settings.log_level)
    from adapter.runtime import run_until_stopped

    try:
        run_with_signals(lambda stop: run_until_stopped(settings, stop))
    except ConfigError as exc:
        print(f"queuescale: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
