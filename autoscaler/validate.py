"""Check ScalingPolicy files before they are applied or simulated (``queuescale validate FILE...``)."""

from __future__ import annotations

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
