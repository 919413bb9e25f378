"""``queuescale validate``: exit codes, what goes to stdout and stderr, over the examples and bad files."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from autoscaler.validate import validate_files
from queuescale.cli import main

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))

BAD = """\
apiVersion: queuescale.io/v1alpha1
kind: ScalingPolicy
metadata: {name: bad}
spec:
  target:
    kind: SparkWorkerPool
    workload: {kind: StatefulSet, name: spark-worker}
    spark: {pool: etl, masterUrl: "http://m:8080", coresPerWorker: 4}
  minReplicas: 5
  maxReplicas: 3
  metrics:
    - type: RequiredWorkers
      requiredWorkers: {}
"""


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "queuescale", "validate", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_examples_validate_through_the_command() -> None:
    names = [str(p.relative_to(ROOT)) for p in EXAMPLES]
    done = run_cli(*names)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"{name}: 1 policy OK" for name in names]
    assert done.stderr == ""


def test_bad_file_exits_1_with_the_problems_on_stderr(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    done = run_cli(str(bad), str(EXAMPLES[0]))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"{bad}:9: spec.minReplicas: must not exceed maxReplicas (3)",
        f"{bad}:12: spec.metrics[0].type: RequiredWorkers needs a target of kind TrinoWorkers, not SparkWorkerPool",
    ]
    # The good file is still reported.
    assert done.stdout == f"{EXAMPLES[0]}: 1 policy OK\n"


def test_missing_file_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    done = run_cli(str(missing))
    assert done.returncode == 2
    assert done.stderr == f"{missing}: cannot read: No such file or directory\n"


@pytest.mark.parametrize(
    ("content", "code", "stderr"),
    [
        # Several documents, all good: counted.
        (
            (ROOT / "examples" / "hpa-equivalent.yaml").read_text()
            + "---\n"
            + (ROOT / "examples" / "spark-worker-pool.yaml").read_text(),
            0,
            "",
        ),
        # Broken YAML: invalid, not unreadable.
        ("spec: [unclosed\n", 1, "{path}:2: invalid YAML: expected ',' or ']', but got '<stream end>'\n"),
        # A file with comments only holds no policy.
        ("# nothing here\n", 1, "{path}: no ScalingPolicy document in the file\n"),
        # Not UTF-8 text.
        (b"\xff\xfe\x00", 2, "{path}: cannot read: not UTF-8 text\n"),
    ],
)
def test_validate_files_exit_codes(tmp_path: Path, content: str | bytes, code: int, stderr: str) -> None:
    path = tmp_path / "policy.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    out, err = io.StringIO(), io.StringIO()
    assert validate_files([str(path)], out, err) == code
    assert err.getvalue() == stderr.format(path=path)
    assert out.getvalue() == ("" if code else f"{path}: 2 policies OK\n")


def test_worst_outcome_wins(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    out, err = io.StringIO(), io.StringIO()
    assert validate_files([str(tmp_path / "missing.yaml"), str(bad)], out, err) == 2
    assert validate_files([str(bad), str(tmp_path / "missing.yaml")], out, err) == 2


def test_queuescale_main_registers_validate(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["validate", str(EXAMPLES[0])])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"{EXAMPLES[0]}: 1 policy OK\n"
