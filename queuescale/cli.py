"""The ``queuescale`` command: one parser with a subcommand per part (:mod:`queuescale.commands`)."""

from __future__ import annotations

import argparse
import sys

from core.errors import ConfigError
from queuescale.commands.adapter import add_adapter_parser
from queuescale.commands.controller import add_controller_parser
from queuescale.commands.dashboards import add_dashboards_parser
from queuescale.commands.demo import add_demo_parser
from queuescale.commands.simulate import add_simulate_parser
from queuescale.commands.validate import add_validate_parser

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="queuescale", description="Scale Trino and Spark on Kubernetes on the work that is waiting."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    add_adapter_parser(sub)
    add_validate_parser(sub)
    add_simulate_parser(sub)
    add_dashboards_parser(sub)
    add_controller_parser(sub)
    add_demo_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except ConfigError as exc:
        print(f"queuescale: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
