"""The ScalingPolicy document: good and bad files, errors by file/line/field, HPA behavior, generated schemas."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import all_versions
from packaging.version import Version

from autoscaler.decision.behavior import to_hpa_behavior
from autoscaler.decision.hpa import Behavior, ScalingRules, default_behavior
from autoscaler.decision.hpa_behavior import RatePolicy as HpaPolicy
from autoscaler.decision.hpa_behavior import resolve_behavior
from autoscaler.policy import schema as policy_schema
from autoscaler.policy.loading import from_resource, load_policies, parse_policies
from autoscaler.policy.models import HPABehavior, ScalingPolicy, Schedule
from core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))

# Line numbers of the bad-document table below refer to this document.
TRINO = """\
apiVersion: queuescale.io/v1alpha1
kind: ScalingPolicy
metadata: {name: adhoc}
spec:
  target:
    kind: TrinoWorkers
    workload: {kind: Deployment, name: trino-worker}
    trino: {cluster: adhoc, coordinatorUrl: "http://trino:8080", version: 478}
  minReplicas: 1
  maxReplicas: 10
  metrics:
    - type: External
      external:
        metric:
          name: trino_queued_queries
          selector: {matchLabels: {cluster: adhoc}}
        target: {type: AverageValue, averageValue: "4"}
"""

SPARK_POOL = """\
apiVersion: queuescale.io/v1alpha1
kind: ScalingPolicy
metadata: {name: pool, namespace: spark}
spec:
  target:
    kind: SparkWorkerPool
    workload: {kind: StatefulSet, name: spark-worker}
    spark: {pool: etl, masterUrl: "http://spark-master:8080", coresPerWorker: 4, decommission: true}
  maxReplicas: 8
  metrics:
    - type: SparkExecutors
      sparkExecutors: {executorsPerWorker: 4}
"""

SPARK_APP = """\
apiVersion: queuescale.io/v1alpha1
kind: ScalingPolicy
metadata: {name: app}
spec:
  target:
    kind: SparkApplication
    application: {name: etl}
  minReplicas: 2
  maxReplicas: 30
  metrics:
    - type: SparkExecutors
      sparkExecutors: {}
    - type: Prometheus
      prometheus: {query: "sum(spark_pending_tasks)", target: {type: Value, value: 100}}
"""


def edited(base: str, *changes: tuple[str, str]) -> str:
    text = base
    for old, new in changes:
        assert text.count(old) == 1, f"{old!r} must occur once in the base document"
        text = text.replace(old, new)
    return text


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_policies(text, "bad.yaml")
    return str(caught.value).splitlines()


# --- good documents ---------------------------------------------------------------------------------------


def test_every_example_loads_and_every_target_kind_has_one() -> None:
    kinds = {policy.spec.target.kind for path in EXAMPLES for policy, _ in load_policies(path)}
    assert kinds == {"TrinoWorkers", "SparkWorkerPool", "SparkApplication", "ScheduledSparkApplication"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_starts_with_a_comment_and_round_trips(path: Path) -> None:
    assert path.read_text().startswith("# ")
    for policy, _ in load_policies(path):
        # What the controller would write back as a custom resource reads as the same policy.
        dumped = policy.model_dump(by_alias=True, mode="json", exclude_none=True)
        assert ScalingPolicy.model_validate(dumped) == policy
        assert from_resource(json.loads(json.dumps(dumped))) == policy


def test_trino_document_fields_and_defaults() -> None:
    [(policy, doc)] = parse_policies(TRINO, "trino.yaml")
    spec = policy.spec
    assert policy.metadata.namespace == "default"
    assert spec.target.name == "trino-worker"
    assert spec.target.trino is not None
    assert spec.target.trino.slots_per_worker == 4
    external = spec.metrics[0].external
    assert external is not None
    assert external.target.amount == Decimal(4)
    assert external.metric.selector is not None
    assert external.metric.selector.to_selector().matches({"cluster": "adhoc"})
    assert not external.metric.selector.to_selector().matches({"cluster": "etl"})
    assert spec.drain.on_timeout == "Abort"
    assert spec.forecast.enabled is False
    assert spec.behavior is None
    assert doc.line_of(("spec", "metrics", 0, "external", "target")) == 17


def test_spark_documents() -> None:
    [(pool, _)] = parse_policies(SPARK_POOL, "pool.yaml")
    assert pool.spec.min_replicas == 1
    assert pool.spec.target.spark is not None
    assert pool.spec.target.spark.decommission is True
    [(app, _)] = parse_policies(SPARK_APP, "app.yaml")
    assert app.spec.target.application is not None
    assert app.spec.target.application.api_version == "sparkoperator.k8s.io/v1beta2"
    prometheus = app.spec.metrics[1].prometheus
    assert prometheus is not None
    assert prometheus.target.amount == Decimal(100)


def test_several_documents_in_one_file_and_empty_documents_skipped() -> None:
    text = "---\n" + TRINO + "---\n" + edited(TRINO, ("name: adhoc}", "name: second}")) + "---\n"
    names = [p.metadata.name for p, _ in parse_policies(text, "two.yaml")]
    assert names == ["adhoc", "second"]


def test_quantities_accept_suffixes_and_write_back_canonically() -> None:
    text = edited(TRINO, ('averageValue: "4"', 'averageValue: "1500m"'))
    [(policy, _)] = parse_policies(text, "q.yaml")
    dumped = policy.model_dump(by_alias=True, mode="json")
    assert dumped["spec"]["metrics"][0]["external"]["target"]["averageValue"] == "1500m"
    external = policy.spec.metrics[0].external
    assert external is not None
    assert external.target.amount == Decimal("1.5")


def test_custom_metric_skips_the_catalog() -> None:
    text = edited(
        TRINO,
        ("name: trino_queued_queries", "name: team_backlog"),
        (
            "          selector: {matchLabels: {cluster: adhoc}}\n",
            "          selector: {matchLabels: {team: a}}\n",
        ),
        (
            '        target: {type: AverageValue, averageValue: "4"}',
            "        target: {type: Value, value: 3}\n        custom: true",
        ),
    )
    [(policy, _)] = parse_policies(text, "c.yaml")
    assert policy.spec.metrics[0].external is not None


def test_from_resource_ignores_server_metadata_and_reads_status() -> None:
    [(policy, _)] = parse_policies(TRINO, "trino.yaml")
    resource = policy.model_dump(by_alias=True, mode="json", exclude_none=True)
    resource["metadata"].update(
        uid="0b0e", resourceVersion="42", generation=3, managedFields=[{"manager": "kubectl"}]
    )
    resource["status"] = {
        "observedGeneration": 3,
        "desiredReplicas": 4,
        "lastDecision": {"reason": "QueueWait won", "at": "2024-05-01T10:00:00Z"},
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Scaling",
                "lastTransitionTime": "2024-05-01T10:00:00Z",
            }
        ],
    }
    read = from_resource(resource)
    assert read.spec == policy.spec
    assert read.status is not None
    assert read.status.desired_replicas == 4
    assert read.status.conditions[0].last_transition_time == datetime(2024, 5, 1, 10, tzinfo=UTC)


# --- bad documents: the exact lines a person reads ---------------------------------------------------------

BAD_CASES: list[tuple[str, str, list[str]]] = [
    # An unknown key deep inside a selector (matchLabel instead of matchLabels).
    (
        "unknown-key-deep",
        edited(TRINO, ("{matchLabels: {cluster", "{matchLabel: {cluster")),
        [
            "bad.yaml:16: spec.metrics[0].external.metric.selector.matchLabel: "
            "unknown field (check its spelling and indentation)"
        ],
    ),
    # A number written as a string: the API server would refuse it too.
    (
        "wrong-type",
        edited(TRINO, ("maxReplicas: 10", 'maxReplicas: "10"')),
        ["bad.yaml:10: spec.maxReplicas: must be a whole number, not '10'"],
    ),
    # A required field missing: the line is the nearest parent that exists.
    (
        "missing-required",
        edited(TRINO, ("  maxReplicas: 10\n", "")),
        ["bad.yaml:4: spec.maxReplicas: required field is missing"],
    ),
    # The floor above the ceiling.
    (
        "min-above-max",
        edited(TRINO, ("minReplicas: 1", "minReplicas: 11")),
        ["bad.yaml:9: spec.minReplicas: must not exceed maxReplicas (10)"],
    ),
    # A cron hour that does not exist.
    (
        "bad-cron",
        TRINO + "  schedules:\n    - {name: day, cron: '0 24 * * *', durationSeconds: 60, minReplicas: 2}\n",
        [
            "bad.yaml:19: spec.schedules[0].cron: not a valid cron expression (bad hour); "
            "five fields: minute hour day-of-month month day-of-week"
        ],
    ),
    # A time zone that is not in the IANA database.
    (
        "bad-time-zone",
        TRINO
        + "  schedules:\n    - name: day\n      cron: '0 8 * * *'\n      durationSeconds: 60\n"
        + "      timeZone: Europe/Atlantis\n      minReplicas: 2\n",
        [
            "bad.yaml:22: spec.schedules[0].timeZone: unknown time zone 'Europe/Atlantis' "
            "(use an IANA name such as Europe/Berlin or UTC)"
        ],
    ),
    # A schedule floor above its own ceiling.
    (
        "schedule-min-above-max",
        TRINO
        + "  schedules:\n    - {name: day, cron: '0 8 * * *', durationSeconds: 60, minReplicas: 5, maxReplicas: 3}\n",
        ["bad.yaml:19: spec.schedules[0].minReplicas: must not exceed the schedule's maxReplicas (3)"],
    ),
    # A schedule floor above the policy's ceiling, which it keeps when it sets no ceiling of its own.
    (
        "schedule-floor-above-policy-max",
        TRINO + "  schedules:\n    - {name: day, cron: '0 8 * * *', durationSeconds: 60, minReplicas: 12}\n",
        ["bad.yaml:19: spec.schedules[0].minReplicas: the window's floor (12) would exceed its ceiling (10)"],
    ),
    # Queue-wait sizing is a Trino model; a Spark pool cannot use it.
    (
        "metric-not-for-target",
        SPARK_POOL + "    - type: QueueWait\n      queueWait: {targetSeconds: 5}\n",
        [
            "bad.yaml:13: spec.metrics[1].type: QueueWait needs a target of kind TrinoWorkers, not SparkWorkerPool"
        ],
    ),
    # Spark executors need a Spark target.
    (
        "spark-metric-on-trino",
        TRINO + "    - type: SparkExecutors\n      sparkExecutors: {}\n",
        [
            "bad.yaml:18: spec.metrics[1].type: SparkExecutors needs a target of kind "
            "ScheduledSparkApplication or SparkApplication or SparkWorkerPool, not TrinoWorkers"
        ],
    ),
    # Another API version than the one the models describe.
    (
        "wrong-api-version",
        edited(TRINO, ("queuescale.io/v1alpha1", "queuescale.io/v1")),
        ["bad.yaml:1: apiVersion: must be 'queuescale.io/v1alpha1', not 'queuescale.io/v1'"],
    ),
    # A quantity with a unit Kubernetes does not know.
    (
        "quantity-does-not-parse",
        edited(TRINO, ('averageValue: "4"', 'averageValue: "4 queries"')),
        [
            "bad.yaml:17: spec.metrics[0].external.target.averageValue: "
            '"4 queries" is not a Kubernetes quantity (write e.g. 4, "500m", "1.5" or "2k")'
        ],
    ),
    # A fraction as a YAML number: the CRD (int-or-string) would refuse it, so the file does too.
    (
        "fractional-quantity-as-number",
        edited(TRINO, ('averageValue: "4"', "averageValue: 0.5")),
        [
            "bad.yaml:17: spec.metrics[0].external.target.averageValue: "
            'write a fractional quantity as a string, e.g. "0.5" or "500m"'
        ],
    ),
    # The same key twice: YAML would silently keep the last one.
    (
        "duplicate-key",
        edited(TRINO, ("  maxReplicas: 10\n", "  maxReplicas: 10\n  minReplicas: 2\n")),
        ["bad.yaml:11: invalid YAML: duplicate key 'minReplicas'"],
    ),
    # The section of another metric type, and the own one missing.
    (
        "section-for-another-type",
        edited(TRINO, ("    - type: External\n", "    - type: QueueWait\n")),
        [
            "bad.yaml:12: spec.metrics[0].queueWait: required field is missing",
            "bad.yaml:13: spec.metrics[0].external: only used with type External (this metric is QueueWait)",
        ],
    ),
    # A Trino section on a spark-operator target, and the application missing.
    (
        "sections-do-not-match-kind",
        edited(TRINO, ("kind: TrinoWorkers", "kind: SparkApplication")),
        [
            "bad.yaml:5: spec.target.application: required field is missing",
            "bad.yaml:7: spec.target.workload: not allowed for target kind SparkApplication; "
            "the spark-operator resource is named by `application`",
            "bad.yaml:8: spec.target.trino: not allowed for target kind SparkApplication; only for TrinoWorkers",
        ],
    ),
    # Sizing on the backlog's work concerns a pool; an application's executors are sized for its next run.
    (
        "backlog-on-an-application",
        edited(SPARK_APP, ("sparkExecutors: {}", "sparkExecutors: {backlogSeconds: 120}")),
        [
            "bad.yaml:12: spec.metrics[0].sparkExecutors.backlogSeconds: only for a SparkWorkerPool "
            "(an application's executors are sized for its next run)"
        ],
    ),
    (
        "backlog-zero",
        edited(SPARK_POOL, ("{executorsPerWorker: 4}", "{executorsPerWorker: 4, backlogSeconds: 0}")),
        ["bad.yaml:12: spec.metrics[0].sparkExecutors.backlogSeconds: must be at least 1"],
    ),
    # A worker pool in a Deployment: only a StatefulSet removes workers in a known order.
    (
        "pool-in-a-deployment",
        edited(SPARK_POOL, ("kind: StatefulSet", "kind: Deployment")),
        [
            "bad.yaml:7: spec.target.workload.kind: "
            "a SparkWorkerPool must be a StatefulSet (workers leave highest ordinal first)"
        ],
    ),
    # A metric the catalog does not have, without custom: true.
    (
        "metric-not-in-catalog",
        edited(TRINO, ("name: trino_queued_queries", "name: trino_queue")),
        [
            "bad.yaml:15: spec.metrics[0].external.metric.name: unknown metric 'trino_queue': not in "
            "queuescale's catalog (set custom: true for a metric the catalog does not list)"
        ],
    ),
    # A selector on a label the metric does not carry.
    (
        "label-not-of-metric",
        edited(TRINO, ("{matchLabels: {cluster: adhoc}}", "{matchLabels: {clustre: adhoc}}")),
        [
            "bad.yaml:16: spec.metrics[0].external.metric.selector.matchLabels.clustre: "
            "'clustre' is not a label of trino_queued_queries (its labels: cluster)"
        ],
    ),
    # HPA bounds: a window over an hour, an empty policy list, a tolerance over 1.
    (
        "behavior-out-of-bounds",
        TRINO
        + "  behavior:\n    scaleUp: {stabilizationWindowSeconds: 4000, policies: []}\n"
        + "    scaleDown:\n      tolerance: 2\n      selectPolicy: Maximum\n",
        [
            "bad.yaml:19: spec.behavior.scaleUp.stabilizationWindowSeconds: must be at most 3600",
            "bad.yaml:19: spec.behavior.scaleUp.policies: must have at least 1 item",
            'bad.yaml:21: spec.behavior.scaleDown.tolerance: must be between 0 and 1 (a fraction such as "0.1" or "100m")',
            "bad.yaml:22: spec.behavior.scaleDown.selectPolicy: must be 'Max', 'Min' or 'Disabled', not 'Maximum'",
        ],
    ),
    # A name Kubernetes would refuse.
    (
        "bad-name",
        edited(TRINO, ("{name: adhoc}", "{name: Adhoc_Workers}")),
        [
            "bad.yaml:3: metadata.name: must be a DNS-1123 name: lowercase letters, digits, '-' and '.', "
            "starting and ending with a letter or digit"
        ],
    ),
    # A drain that would time out before its own grace period ends.
    (
        "drain-timeout-below-grace",
        TRINO + "  drain: {gracePeriodSeconds: 300, timeoutSeconds: 60}\n",
        ["bad.yaml:18: spec.drain.timeoutSeconds: must be at least gracePeriodSeconds (300)"],
    ),
    # A document that is a list, not a mapping.
    (
        "not-a-mapping",
        "- apiVersion: queuescale.io/v1alpha1\n",
        ["bad.yaml:1: (document): must be a mapping of fields (indented `key: value` lines)"],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in BAD_CASES], ids=[c[0] for c in BAD_CASES])
def test_bad_document_errors_name_file_line_and_field(text: str, expected: list[str]) -> None:
    assert problems(text) == expected


def test_errors_of_a_later_document_carry_its_own_lines() -> None:
    bad = edited(TRINO, ("maxReplicas: 10", "maxReplicas: -1"))
    lines = problems(TRINO + "---\n" + bad)
    assert lines == ["bad.yaml:28: spec.maxReplicas: must be at least 1"]


def test_a_file_without_policies_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    with pytest.raises(ConfigError, match=r"empty\.yaml: no ScalingPolicy document"):
        load_policies(empty)


# --- behavior for the HPA emulation -----------------------------------------------------------------------


def test_absent_behavior_is_the_hpa_without_behavior() -> None:
    [(policy, _)] = parse_policies(TRINO, "trino.yaml")
    # An HPA whose spec has no behavior is left without one by API defaulting: the legacy path.
    assert to_hpa_behavior(policy.spec.behavior) is None


def test_empty_behavior_resolves_to_the_hpa_defaults() -> None:
    [(policy, _)] = parse_policies(TRINO + "  behavior: {}\n", "trino.yaml")
    behavior = to_hpa_behavior(policy.spec.behavior)
    assert behavior == Behavior()
    assert resolve_behavior(behavior) == resolve_behavior(default_behavior())


def test_behavior_converts_field_by_field() -> None:
    text = TRINO + (
        "  behavior:\n"
        "    scaleUp:\n"
        "      policies: [{type: Pods, value: 100, periodSeconds: 60}, {type: Percent, value: 100, periodSeconds: 60}]\n"
        "    scaleDown:\n"
        "      stabilizationWindowSeconds: 30\n"
        "      selectPolicy: Min\n"
        '      tolerance: "50m"\n'
    )
    [(policy, _)] = parse_policies(text, "trino.yaml")
    assert to_hpa_behavior(policy.spec.behavior) == Behavior(
        scale_up=ScalingRules(policies=(HpaPolicy("Pods", 100, 60), HpaPolicy("Percent", 100, 60))),
        scale_down=ScalingRules(stabilization_window_seconds=30, select_policy="Min", tolerance=0.05),
    )
    up, down = resolve_behavior(to_hpa_behavior(policy.spec.behavior) or Behavior())
    default_up, default_down = resolve_behavior(default_behavior())
    # Unset fields take the upstream defaults of their direction.
    assert up.stabilization_window_seconds == default_up.stabilization_window_seconds
    assert up.select_policy == default_up.select_policy
    assert down.policies == default_down.policies


def test_to_hpa_behavior_of_the_model_default() -> None:
    assert to_hpa_behavior(HPABehavior()) == Behavior(scale_up=None, scale_down=None)


# --- schedules ----------------------------------------------------------------------------------------------

BERLIN_WEEKDAYS = Schedule.model_validate(
    {
        "name": "business-hours",
        "cron": "0 8 * * 1-5",
        "durationSeconds": 36000,
        "timeZone": "Europe/Berlin",
        "minReplicas": 5,
    }
)


@pytest.mark.parametrize(
    ("now", "active"),
    [
        # Monday 07:00 UTC is 09:00 in Berlin (summer time): open since 08:00 local.
        (datetime(2024, 7, 1, 7, 0, tzinfo=UTC), True),
        # 06:00 UTC exactly is 08:00 Berlin: the window opens at that instant.
        (datetime(2024, 7, 1, 6, 0, tzinfo=UTC), True),
        # One second before.
        (datetime(2024, 7, 1, 5, 59, 59, tzinfo=UTC), False),
        # 16:00 UTC is 18:00 Berlin: ten hours after the start, closed.
        (datetime(2024, 7, 1, 16, 0, tzinfo=UTC), False),
        # Saturday noon.
        (datetime(2024, 7, 6, 10, 0, tzinfo=UTC), False),
        # Winter: 07:30 UTC is 08:30 Berlin (UTC+1), open; 06:30 UTC is 07:30 Berlin, not yet.
        (datetime(2024, 1, 8, 7, 30, tzinfo=UTC), True),
        (datetime(2024, 1, 8, 6, 30, tzinfo=UTC), False),
    ],
)
def test_schedule_window_in_its_time_zone(now: datetime, active: bool) -> None:
    assert BERLIN_WEEKDAYS.is_active(now) is active


# --- generated artefacts ------------------------------------------------------------------------------------


def test_generated_files_are_fresh() -> None:
    for path, text in policy_schema.outputs().items():
        assert path.exists(), f"{path} is missing: run python -m autoscaler.policy.schema"
        assert path.read_text() == text, f"{path} is stale: run python -m autoscaler.policy.schema"


def _kube_versions() -> list[str]:
    known = sorted({v for v in all_versions() if Version(v) >= Version("1.30")}, key=Version)
    return [known[0], known[-1]]


@pytest.mark.parametrize("version", _kube_versions())
def test_crd_is_a_valid_custom_resource_definition(version: str) -> None:
    crd = yaml.safe_load(policy_schema.CRD_PATH.read_text())
    kubernetes_validate.validate(crd, version, strict=True)


def _walk(node: dict[str, Any], path: str) -> list[str]:
    found = []
    if "type" not in node and not node.get("x-kubernetes-int-or-string"):
        found.append(f"{path}: untyped")
    for key in ("$ref", "$defs", "const", "default", "title"):
        if key in node:
            found.append(f"{path}: {key}")
    if node.get("additionalProperties") is False:
        found.append(f"{path}: additionalProperties false")
    if node.get("x-kubernetes-preserve-unknown-fields"):
        found.append(f"{path}: preserves unknown fields")
    if "description" not in node and path.count(".") > 1 and not path.endswith("[]"):
        found.append(f"{path}: no description")
    for key, sub in node.get("properties", {}).items():
        found += _walk(sub, f"{path}.{key}")
    if isinstance(node.get("items"), dict):
        found += _walk(node["items"], f"{path}[]")
    return found


def test_crd_schema_is_structural() -> None:
    crd = yaml.safe_load(policy_schema.CRD_PATH.read_text())
    [version] = crd["spec"]["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Target",
        "Min",
        "Max",
        "Desired",
        "Age",
    ]
    assert crd["spec"]["names"]["shortNames"] == ["qsp"]
    schema = version["schema"]["openAPIV3Schema"]
    assert _walk(schema, "openAPIV3Schema") == []
    quantity = schema["properties"]["spec"]["properties"]["metrics"]["items"]["properties"]["external"]
    average = quantity["properties"]["target"]["properties"]["averageValue"]
    assert average["x-kubernetes-int-or-string"] is True
    assert set(schema["properties"]["status"]["properties"]) >= {
        "conditions",
        "currentReplicas",
        "desiredReplicas",
        "lastScaleTime",
        "lastDecision",
    }


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_satisfy_the_json_schema_and_the_crd_schema(path: Path) -> None:
    json_schema = json.loads(policy_schema.SCHEMA_PATH.read_text())
    crd = yaml.safe_load(policy_schema.CRD_PATH.read_text())
    # OpenAPI v3.0 schemas use draft-4 style booleans for exclusiveMinimum.
    crd_validator = jsonschema.Draft4Validator(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    for document in yaml.safe_load_all(path.read_text()):
        jsonschema.Draft202012Validator(json_schema).validate(document)
        crd_validator.validate(document)


def test_json_schema_refuses_what_the_models_refuse() -> None:
    validator = jsonschema.Draft202012Validator(json.loads(policy_schema.SCHEMA_PATH.read_text()))
    good = yaml.safe_load(TRINO)
    assert validator.is_valid(good)
    assert not validator.is_valid(yaml.safe_load(edited(TRINO, ("minReplicas: 1", "minReplica: 1"))))
    assert not validator.is_valid(yaml.safe_load(edited(TRINO, ('averageValue: "4"', "averageValue: 0.5"))))
    assert not validator.is_valid(yaml.safe_load(edited(TRINO, ("kind: TrinoWorkers", "kind: Trino"))))


def test_check_mode_reports_fresh_files() -> None:
    assert policy_schema.main(["--check"]) == 0


def test_every_field_is_described() -> None:
    from autoscaler.policy import models as policy_models

    models = [
        obj
        for obj in vars(policy_models).values()
        if isinstance(obj, type) and issubclass(obj, policy_models.Model) and obj is not policy_models.Model
    ]
    assert len(models) > 20
    undocumented = [
        f"{model.__name__}.{name}"
        for model in models
        for name, field in model.model_fields.items()
        if not field.description
    ]
    assert undocumented == []
