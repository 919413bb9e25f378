"""The table of targets: for each ScalingPolicy target kind, the folder that carries it out.

Each folder is one kind of target: its pure planner (``plan``), the I/O around it (``actuator``, and a
client of the target's own API where it has one) and a ``build(policy, context)`` that makes its actuator.
Adding a target is one folder and one row in :data:`TARGETS`; ``tests/autoscaler/controller/test_controller_targets.py`` checks
the table covers every kind the policy model accepts, and import-linter keeps the folders independent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from autoscaler.controller.actuator import Actuator
from autoscaler.controller.targets import spark_application, spark_pool, trino_workers
from autoscaler.controller.targets.context import TargetContext
from autoscaler.policy.models import ScalingPolicy, TargetKind

__all__ = ["TARGETS", "Build", "TargetContext", "actuator_for"]

Build = Callable[[ScalingPolicy, TargetContext], Actuator]

TARGETS: Mapping[TargetKind, Build] = MappingProxyType(
    {
        "TrinoWorkers": trino_workers.build,
        "SparkWorkerPool": spark_pool.build,
        "SparkApplication": spark_application.build,
        "ScheduledSparkApplication": spark_application.build,
    }
)


def actuator_for(policy: ScalingPolicy, context: TargetContext) -> Actuator:
    """The actuator of ``policy``'s target; a kind without a row is a programming error, said plainly."""
    kind = policy.spec.target.kind
    build = TARGETS.get(kind)
    if build is None:
        raise LookupError(f"no target in autoscaler.controller.targets.TARGETS for kind {kind!r}")
    return build(policy, context)
