"""Target ``SparkWorkerPool``: a StatefulSet of Spark standalone workers, scaled down by decommission.

``plan`` decides (pure: which workers to decommission, when a pod may go); ``master_api`` talks to the
standalone master's and workers' web UI; ``actuator`` reads the pods and the master, runs the plan and
writes replicas and annotations.
"""

from __future__ import annotations

from autoscaler.controller.targets.context import TargetContext
from autoscaler.controller.targets.spark_pool.actuator import SparkPoolActuator
from autoscaler.policy.models import ScalingPolicy

__all__ = ["build"]


def build(policy: ScalingPolicy, context: TargetContext) -> SparkPoolActuator:
    return SparkPoolActuator(policy, context.ops)
