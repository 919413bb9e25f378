"""The Prometheus recording and alerting rules, checked and unit-tested by the real promtool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.metric_names import SERIES_NAME, known_names
from tests.helpers.prometheus import DEBIAN_PACKAGE

pytestmark = pytest.mark.prometheus

RULES_DIR = Path(__file__).resolve().parents[3] / "deploy" / "prometheus"
RULES = RULES_DIR / "rules.yaml"
RULES_TEST = RULES_DIR / "rules_test.yaml"


def _promtool() -> str:
    found = shutil.which("promtool") or ("/usr/bin/promtool" if Path("/usr/bin/promtool").exists() else None)
    if found is None:
        raise RuntimeError(f"promtool is missing: install the Debian package {DEBIAN_PACKAGE!r}")
    return found


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_promtool_check_rules() -> None:
    result = _run("check", "rules", RULES.name, cwd=RULES_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in result.stdout


def test_promtool_test_rules() -> None:
    result = _run("test", "rules", RULES_TEST.name, cwd=RULES_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_unit_tests_catch_a_broken_alert(tmp_path: Path) -> None:
    # The same tests against a rule that no longer waits: they must fail, naming the alert.
    stale = "expr: queuescale_adapter_source_up == 0\n        for: 5m"
    broken = RULES.read_text().replace(stale, stale.replace("5m", "0m"))
    assert broken != RULES.read_text()
    (tmp_path / RULES.name).write_text(broken)
    shutil.copy(RULES_TEST, tmp_path / RULES_TEST.name)
    result = _run("test", "rules", RULES_TEST.name, cwd=tmp_path)
    assert result.returncode != 0
    assert "QueuescaleSourceStale" in result.stdout + result.stderr


def test_every_rule_is_unit_tested() -> None:
    doc = yaml.safe_load(RULES_TEST.read_text())
    firing: set[str] = set()
    quiet: set[str] = set()
    recorded: set[str] = set()
    for case in doc["tests"]:
        for alert in case.get("alert_rule_test", []):
            (firing if alert["exp_alerts"] else quiet).add(alert["alertname"])
        recorded.update(expr["expr"] for expr in case.get("promql_expr_test", []))
    alerts = {rule["alert"] for rule in _rules() if "alert" in rule}
    records = {rule["record"] for rule in _rules() if "record" in rule}
    assert alerts - firing == set(), "alerts never seen firing"
    assert alerts - quiet == set(), "alerts never seen staying quiet"
    assert records - recorded == set(), "recording rules without a test"


def test_rules_name_only_series_that_exist() -> None:
    known = known_names() | {"up"}
    for rule in _rules():
        used = set(SERIES_NAME.findall(rule["expr"]))
        assert used <= known, f"{rule.get('alert') or rule.get('record')}: unknown {sorted(used - known)}"
