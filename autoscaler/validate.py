"""``queuescale validate FILE...``: check ScalingPolicy files before they are applied or simulated."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from autoscaler.policy.loading import parse_policies
from core.errors import ConfigError

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_UNREADABLE = 2


def validate_files(paths: Sequence[str], out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Validate every file; 0 when all are good, 1 when any is invalid, 2 when any cannot be read."""
    # Looked up at call time, so redirected streams (tests, embedding) are honoured.
    out = out or sys.stdout
    err = err or sys.stderr
    status = EXIT_OK
    for name in paths:
        try:
            text = Path(name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
            print(f"{name}: cannot read: {reason}", file=err)
            status = EXIT_UNREADABLE
            continue
        try:
            policies = parse_policies(text, name)
        except ConfigError as exc:
            print(exc, file=err)
            status = max(status, EXIT_INVALID)
            continue
        count = len(policies)
        print(f"{name}: {count} polic{'y' if count == 1 else 'ies'} OK", file=out)
    return status


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
