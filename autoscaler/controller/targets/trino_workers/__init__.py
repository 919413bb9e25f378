"""Target ``TrinoWorkers``: a Deployment or StatefulSet of Trino workers, scaled down by draining.

``plan`` decides (pure: which workers drain, when a pod may go); ``worker_api`` asks one worker its
state and running tasks and sets a new state; ``actuator`` reads the pods and workers, runs the plan and
writes replicas and annotations.
"""

from __future__ import annotations

from autoscaler.controller.targets.context import TargetContext
from autoscaler.controller.targets.trino_workers.actuator import TrinoWorkersActuator
from autoscaler.policy.models import ScalingPolicy

__all__ = ["build"]


def build(policy: ScalingPolicy, context: TargetContext) -> TrinoWorkersActuator:
    """The actuator for ``policy``; Trino credentials come from the mounted Secret when there is one
    (re-read on every use, so a rotation applies without a restart)."""
    target = policy.spec.target
    assert target.workload is not None  # the model requires both for this kind
    assert target.trino is not None
    secret = target.trino.credentials_secret
    password = (
        context.password_dir / secret.name / secret.key
        if secret is not None and context.password_dir is not None
        else None
    )
    return TrinoWorkersActuator(
        context.ops,
        namespace=policy.metadata.namespace or "default",
        workload=target.workload,
        trino=target.trino,
        drain=policy.spec.drain,
        password_file=password,
    )
