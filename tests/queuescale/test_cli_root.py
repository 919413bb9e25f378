"""The composition root and the test world's place: ``queuescale`` builds every subcommand without
:mod:`lab` (as in the image), says in one line that the demo is missing there, and the image copies the
product and the CLI but not the test world."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from autoscaler.controller.settings import ControllerSettings
from queuescale.cli import build_parser
from queuescale.commands.controller import settings_from_args

ROOT = Path(__file__).resolve().parents[2]

WITHOUT_LAB = "import sys; sys.modules['lab'] = None\nfrom queuescale.cli import main\nmain(sys.argv[1:])\n"


def run_without_lab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_LAB, *args], capture_output=True, text=True, timeout=120, cwd=ROOT
    )


@pytest.mark.parametrize("command", ["adapter", "controller", "simulate", "dashboards", "validate"])
def test_every_product_subcommand_builds_without_the_lab(command: str) -> None:
    proc = run_without_lab(command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: queuescale {command}")


@pytest.mark.parametrize("args", [(), ("--no-ui", "--speed", "100"), ("--help",)])
def test_demo_without_the_lab_says_so_in_one_line(args: tuple[str, ...]) -> None:
    proc = run_without_lab("demo", *args)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert "the demo is not installed in this image" in proc.stderr


def test_adapter_on_the_sandbox_without_the_lab_says_so_in_one_line() -> None:
    proc = run_without_lab("adapter", "--sandbox", "--insecure-http")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "not installed in this image" in proc.stderr


def test_the_image_copies_the_product_and_the_cli_but_not_the_lab() -> None:
    text = (ROOT / "Dockerfile").read_text()
    copied = {m.group(1) for m in re.finditer(r"^COPY (\w+) \./\1$", text, re.MULTILINE)}
    assert copied == {"adapter", "autoscaler", "core", "queuescale"}
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert "!lab/" not in ignore
    assert "!lab" not in ignore


def test_controller_flags_default_to_the_settings_defaults() -> None:
    # The flags keep their names and defaults; the grouped settings must mean the same with none given.
    args = build_parser().parse_args(["controller"])
    assert settings_from_args(args) == ControllerSettings()


def test_no_library_module_imports_the_cli_or_the_lab() -> None:
    # lint-imports checks this too; here the failure names the line.
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for package in ("adapter", "autoscaler", "core")
        for path in sorted((ROOT / package).rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.match(r"\s*(from|import) (lab|queuescale)\b", line)
    ]
    assert offenders == []
