"""Which actuator carries out a policy: one per target kind, sharing one set of Kubernetes clients."""

from __future__ import annotations

from pathlib import Path

import kubernetes.client

from autoscaler.controller.actuator import Actuator
from autoscaler.controller.kube_ops import KubeOps
from autoscaler.controller.spark_app_actuator import SparkApplicationActuator
from autoscaler.controller.spark_pool_actuator import SparkPoolActuator
from autoscaler.controller.trino_actuator import TrinoWorkersActuator
from autoscaler.policy_models import ScalingPolicy

__all__ = ["ActuatorFactoryImpl"]


class ActuatorFactoryImpl:
    """``factory(policy)`` builds the actuator for the policy's target kind.

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
        target = policy.spec.target
        namespace = policy.metadata.namespace or "default"
        if target.kind == "TrinoWorkers":
            assert target.workload is not None
            assert target.trino is not None
            secret = target.trino.credentials_secret
            password = (
                self.password_dir / secret.name / secret.key
                if secret is not None and self.password_dir is not None
                else None
            )
            return TrinoWorkersActuator(
                self.ops,
                namespace=namespace,
                workload=target.workload,
                trino=target.trino,
                drain=policy.spec.drain,
                password_file=password,
            )
        if target.kind == "SparkWorkerPool":
            return SparkPoolActuator(policy, self.ops)
        return SparkApplicationActuator(policy, self.ops)
