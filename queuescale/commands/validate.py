"""``queuescale validate FILE...``: check ScalingPolicy files before they are applied or simulated."""

from __future__ import annotations

import argparse

from autoscaler.validate import validate_files

__all__ = ["add_validate_parser", "cmd_validate"]


def add_validate_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "validate",
        help="check ScalingPolicy files (errors name file, line and field)",
        description="Check ScalingPolicy files. Exit 0: all valid; 1: some invalid; 2: some unreadable.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="YAML file with one or more ScalingPolicy")
    parser.set_defaults(func=cmd_validate)


def cmd_validate(args: argparse.Namespace) -> None:
    raise SystemExit(validate_files(args.files))
