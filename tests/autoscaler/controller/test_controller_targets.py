"""The table of targets (autoscaler.controller.targets): one row per target kind, each building its own
actuator."""

from __future__ import annotations

from typing import get_args

import kubernetes.client
import pytest

from autoscaler.controller.factory import ActuatorFactoryImpl
from autoscaler.controller.targets import TARGETS, TargetContext, actuator_for
from autoscaler.controller.targets.spark_application.actuator import SparkApplicationActuator
from autoscaler.controller.targets.spark_pool.actuator import SparkPoolActuator
from autoscaler.controller.targets.trino_workers.actuator import TrinoWorkersActuator
from autoscaler.policy.loading import parse_policies
from autoscaler.policy.models import ScalingPolicy, TargetKind

TARGETS_YAML = {
    "TrinoWorkers": """
  target:
    kind: TrinoWorkers
    workload: {kind: Deployment, name: trino-worker}
    trino: {cluster: adhoc, coordinatorUrl: "http://trino:8080", version: 476}
  metrics:
  - type: External
    external:
      metric: {name: trino_queued_queries}
      target: {type: AverageValue, averageValue: "2"}
""",
    "SparkWorkerPool": """
  target:
    kind: SparkWorkerPool
    workload: {kind: StatefulSet, name: spark-worker}
    spark: {pool: etl, masterUrl: "http://spark-master:8080", coresPerWorker: 4}
  metrics:
  - type: SparkExecutors
    sparkExecutors: {}
""",
    "SparkApplication": """
  target:
    kind: SparkApplication
    application: {name: nightly}
  metrics:
  - type: SparkExecutors
    sparkExecutors: {}
""",
    "ScheduledSparkApplication": """
  target:
    kind: ScheduledSparkApplication
    application: {name: nightly}
  metrics:
  - type: SparkExecutors
    sparkExecutors: {}
""",
}
EXPECTED: dict[str, type] = {
    "TrinoWorkers": TrinoWorkersActuator,
    "SparkWorkerPool": SparkPoolActuator,
    "SparkApplication": SparkApplicationActuator,
    "ScheduledSparkApplication": SparkApplicationActuator,
}


def _policy(kind: str) -> ScalingPolicy:
    text = (
        "apiVersion: queuescale.io/v1alpha1\nkind: ScalingPolicy\nmetadata: {name: p, namespace: ns}\nspec:\n"
        + "  minReplicas: 0\n  maxReplicas: 10\n"
        + TARGETS_YAML[kind]
    )
    return parse_policies(text, "policy.yaml")[0][0]


def test_the_table_has_a_row_for_every_target_kind() -> None:
    assert set(TARGETS) == set(get_args(TargetKind))
    assert set(TARGETS_YAML) == set(get_args(TargetKind))


@pytest.mark.parametrize("kind", sorted(get_args(TargetKind)))
def test_each_row_builds_its_own_actuator(kind: str) -> None:
    factory = ActuatorFactoryImpl(kubernetes.client.ApiClient())
    policy = _policy(kind)
    assert policy.spec.target.kind == kind
    actuator = factory(policy)
    assert type(actuator) is EXPECTED[kind]
    assert type(actuator_for(policy, TargetContext(factory.ops))) is EXPECTED[kind]
