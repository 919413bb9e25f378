"""Targets ``SparkApplication`` and ``ScheduledSparkApplication`` (kubeflow spark-operator v1beta2).

``plan`` decides (pure: which object may be edited and the merge patch that sizes its next run);
``actuator`` reads the object and writes the patch.
"""

from __future__ import annotations

from autoscaler.controller.targets.context import TargetContext
from autoscaler.controller.targets.spark_application.actuator import SparkApplicationActuator
from autoscaler.policy.models import ScalingPolicy

__all__ = ["build"]


def build(policy: ScalingPolicy, context: TargetContext) -> SparkApplicationActuator:
    return SparkApplicationActuator(policy, context.ops)
