"""Which actuator carries out a policy: the row of its target kind in the table of targets, all sharing
one set of Kubernetes clients."""

from __future__ import annotations

from pathlib import Path

import kubernetes.client

from autoscaler.controller.actuator import Actuator
from autoscaler.controller.kube_ops import KubeOps
from autoscaler.controller.targets import TargetContext, actuator_for
from autoscaler.policy.models import ScalingPolicy

__all__ = ["ActuatorFactoryImpl"]


class ActuatorFactoryImpl:
    """``factory(policy)`` builds the actuator for the policy's target kind
    (:data:`autoscaler.controller.targets.TARGETS`).

    Trino credentials: with ``password_dir`` the password of ``credentialsSecret`` is read from
    ``<password_dir>/<secret name>/<key>`` (the Secret mounted as a volume, re-read on every use so a
    rotation applies without a restart). ``cache``: read pods and workloads from informers (see
    :class:`~autoscaler.controller.kube_ops.KubeOps`).
    """

    def __init__(
        self, api: kubernetes.client.ApiClient, *, password_dir: Path | None = None, cache: bool = False
    ) -> None:
        self.ops = KubeOps(api, cache=cache)
        self.password_dir = password_dir

    def __call__(self, policy: ScalingPolicy) -> Actuator:
        return actuator_for(policy, TargetContext(self.ops, self.password_dir))
