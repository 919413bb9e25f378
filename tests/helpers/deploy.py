"""Rendering ``deploy/`` with the real ``kubectl kustomize``, in a scratch copy that has serving certificates."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
DEPLOY = ROOT / "deploy"
CERT_SCRIPT = ROOT / "scripts" / "make-serving-cert.sh"
KUBECTL = shutil.which("kubectl")
SELF_SIGNED_CERTS = Path("overlays/self-signed/certs")

Obj = dict[str, Any]


def run_cert_script(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(CERT_SCRIPT), "--out", str(out), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def scratch_deploy(dst: Path) -> Path:
    """A copy of ``deploy/`` whose self-signed overlay has its certificates, as a user would have it."""
    copy = dst / "deploy"
    shutil.copytree(DEPLOY, copy, ignore=shutil.ignore_patterns("certs"))
    made = run_cert_script(copy / SELF_SIGNED_CERTS)
    assert made.returncode == 0, made.stderr
    return copy


def render(path: Path) -> list[Obj]:
    """``kubectl kustomize path`` as objects; a failure shows kustomize's own message."""
    assert KUBECTL is not None, "kubectl is required (Debian package kubernetes-client)"
    done = subprocess.run([KUBECTL, "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"kubectl kustomize {path} failed:\n{done.stderr}"
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def kustomization_dirs(root: Path, kind: str = "Kustomization") -> list[Path]:
    """Folders under ``root`` holding a kustomization of ``kind`` (Kustomization or Component)."""
    found = []
    for path in sorted(root.rglob("kustomization.yaml")):
        doc = yaml.safe_load(path.read_text()) or {}
        if doc.get("kind", "Kustomization") == kind:
            found.append(path.parent)
    return found


def of_kind(objs: Iterable[Obj], kind: str) -> list[Obj]:
    return [o for o in objs if o.get("kind") == kind]


def one(objs: Iterable[Obj], kind: str, name: str) -> Obj:
    matches = [o for o in objs if o.get("kind") == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def containers(objs: Iterable[Obj]) -> Iterator[tuple[Obj, Obj]]:
    """(Deployment, container) for every container of every Deployment."""
    for dep in of_kind(objs, "Deployment"):
        for container in dep["spec"]["template"]["spec"]["containers"]:
            yield dep, container
