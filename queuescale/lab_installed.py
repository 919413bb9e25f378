"""Whether the test world (:mod:`lab`: the sandbox and the demo) is installed: a source install has it, the
controller/adapter image leaves it out. Commands that need it say so in one line instead of a traceback."""

from __future__ import annotations

import importlib.util
import sys

__all__ = ["lab_installed", "lab_or_exit"]


def lab_installed() -> bool:
    return importlib.util.find_spec("lab") is not None


def lab_or_exit(what: str) -> None:
    """Exit 2 with one line on stderr when :mod:`lab` is missing; ``what`` names what needed it."""
    if not lab_installed():
        print(
            f"queuescale: {what} is not installed in this image (the lab package: sandbox and demo ship with "
            "a source install, pip install -e .)",
            file=sys.stderr,
        )
        raise SystemExit(2)
