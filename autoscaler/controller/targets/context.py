"""What every target's ``build`` is given: the shared Kubernetes operations and where Secrets are mounted."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from autoscaler.controller.kube_ops import KubeOps

__all__ = ["TargetContext"]


@dataclass(frozen=True, slots=True)
class TargetContext:
    """``ops``: one set of Kubernetes clients for every actuator. ``password_dir``: Secrets mounted as
    volumes, ``<password_dir>/<secret name>/<key>`` (None: none mounted)."""

    ops: KubeOps
    password_dir: Path | None = None
