"""The ``ScalingPolicy`` document (``queuescale.io/v1alpha1``) as pydantic models.

One document serves as a file, as a custom resource and as ``simulate`` input, so the models are the single
source of truth: the JSON Schema and the CRD are generated from them (:mod:`autoscaler.policy.schema`).
YAML keys are camelCase like Kubernetes objects; Python attributes are snake_case. Unknown keys are errors and
values are taken strictly (``"5"`` is not an integer), because the API server would take them that way.

Cross-field problems are raised as a :class:`pydantic.ValidationError` whose locations point at the offending
field, so ``file:line: spec.metrics[1].queueWait: ...`` names the line to fix rather than the whole spec.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    Strict,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import InitErrorDetails, PydanticCustomError

from core.catalog import DEFAULT_CATALOG
from core.quantity import format_quantity, parse_quantity
from core.selectors import (
    LabelSelectorError,
    Requirement,
    Selector,
    validate_label_key,
    validate_label_value,
)

API_VERSION = "queuescale.io/v1alpha1"
KIND = "ScalingPolicy"
GROUP = "queuescale.io"
VERSION = "v1alpha1"
PLURAL = "scalingpolicies"
SPARK_OPERATOR_API_VERSION = "sparkoperator.k8s.io/v1beta2"

TargetKind = Literal["TrinoWorkers", "SparkWorkerPool", "SparkApplication", "ScheduledSparkApplication"]
MetricType = Literal["External", "QueueWait", "RequiredWorkers", "SparkExecutors", "Prometheus"]
TRINO_KINDS: frozenset[str] = frozenset({"TrinoWorkers"})
SPARK_KINDS: frozenset[str] = frozenset({"SparkWorkerPool", "SparkApplication", "ScheduledSparkApplication"})
SPARK_APPLICATION_KINDS: frozenset[str] = frozenset({"SparkApplication", "ScheduledSparkApplication"})
#: Which target kinds each metric type can size; absent types work for every kind.
METRIC_TARGET_KINDS: dict[str, frozenset[str]] = {
    "QueueWait": TRINO_KINDS,
    "RequiredWorkers": TRINO_KINDS,
    "SparkExecutors": SPARK_KINDS,
}
#: The section of a metric entry that goes with each ``type``, by its YAML key.
METRIC_SECTIONS: dict[str, str] = {
    "External": "external",
    "QueueWait": "queueWait",
    "RequiredWorkers": "requiredWorkers",
    "SparkExecutors": "sparkExecutors",
    "Prometheus": "prometheus",
}

# Upstream bounds (k8s.io/kubernetes pkg/apis/autoscaling/validation) for the HPA-shaped behavior.
MAX_STABILIZATION_WINDOW_SECONDS = 3600
MAX_PERIOD_SECONDS = 1800

DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
#: Plain-words explanations of the patterns above, used when a value does not match.
PATTERN_RULES: dict[str, str] = {
    DNS1123_SUBDOMAIN: "must be a DNS-1123 name: lowercase letters, digits, '-' and '.', "
    "starting and ending with a letter or digit",
    DNS1123_LABEL: "must be a DNS-1123 label: lowercase letters, digits and '-', "
    "starting and ending with a letter or digit, at most 63 characters",
}

Loc = tuple[str | int, ...]


class Problem:
    """A problem found by a cross-field check, before it becomes a line of a ValidationError."""

    __slots__ = ("input", "loc", "message", "missing")

    def __init__(self, loc: Loc, message: str, value: Any = None, *, missing: bool = False) -> None:
        self.loc = loc
        self.message = message
        self.input = value
        self.missing = missing


def raise_problems(title: str, problems: Iterable[Problem]) -> None:
    """Raise every problem at once, each at its own location (pydantic prefixes the parents' path)."""
    details: list[InitErrorDetails] = []
    for p in problems:
        kind: Any = "missing" if p.missing else PydanticCustomError("policy", p.message.replace("{", "{{"))
        details.append(InitErrorDetails(type=kind, loc=p.loc, input=p.input))
    if details:
        raise ValidationError.from_exception_data(title, details)


def _fail(message: str) -> NoReturn:
    # Braces would be read as template fields by pydantic-core.
    raise PydanticCustomError("policy", message.replace("{", "{{").replace("}", "}}"))


# --- quantities -----------------------------------------------------------------------------------------


def _to_quantity(value: object) -> Decimal:
    # Floats are refused although a file could carry them: the CRD types quantities as int-or-string, so a
    # fraction written as a YAML number would pass here and then be refused by the API server.
    if isinstance(value, bool):
        _fail('must be a quantity (a whole number or a string such as "500m" or "1.5"), not true/false')
    if isinstance(value, float):
        _fail(f'write a fractional quantity as a string, e.g. "{value!r}" or "{int(value * 1000)}m"')
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        return value
    if isinstance(value, str):
        try:
            return parse_quantity(value.strip())
        except ValueError:
            _fail(f'"{value}" is not a Kubernetes quantity (write e.g. 4, "500m", "1.5" or "2k")')
    _fail('must be a quantity (a whole number or a string such as "500m" or "1.5")')


def _positive(value: Decimal) -> Decimal:
    if value <= 0:
        _fail("must be greater than zero")
    return value


def _fraction(value: Decimal) -> Decimal:
    if not 0 <= value <= 1:
        _fail('must be between 0 and 1 (a fraction such as "0.1" or "100m")')
    return value


_QUANTITY_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "integer"}, {"type": "string"}],
    "x-kubernetes-int-or-string": True,
}

#: A Kubernetes quantity read into an exact Decimal; written back in canonical form.
Quantity = Annotated[
    Decimal,
    BeforeValidator(_to_quantity),
    PlainSerializer(format_quantity, return_type=str),
    WithJsonSchema(_QUANTITY_SCHEMA),
]
PositiveQuantity = Annotated[Quantity, AfterValidator(_positive)]
FractionQuantity = Annotated[Quantity, AfterValidator(_fraction)]

DnsSubdomain = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS1123_SUBDOMAIN)]
DnsLabel = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS1123_LABEL)]
NonEmpty = Annotated[str, Field(min_length=1)]


class Model(BaseModel):
    """Base of every policy model: camelCase keys, no unknown keys, strict types, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        strict=True,
        frozen=True,
        allow_inf_nan=False,
    )


# --- metadata -------------------------------------------------------------------------------------------


class ObjectMeta(Model):
    """The subset of Kubernetes object metadata a policy carries."""

    name: DnsSubdomain = Field(description="Name of the policy, unique in its namespace.")
    namespace: DnsLabel = Field(
        default="default", description="Namespace of the policy and of the workload it scales."
    )
    labels: dict[str, str] = Field(default_factory=dict, description="Kubernetes labels.")
    annotations: dict[str, str] = Field(default_factory=dict, description="Kubernetes annotations.")


# --- target ---------------------------------------------------------------------------------------------


class WorkloadRef(Model):
    """The Kubernetes workload whose scale subresource is set."""

    api_version: Literal["apps/v1"] = Field(default="apps/v1", description="API version of the workload.")
    kind: Literal["Deployment", "StatefulSet"] = Field(
        description="Deployment or StatefulSet (a SparkWorkerPool must be a StatefulSet)."
    )
    name: DnsSubdomain = Field(description="Name of the workload, in the policy's namespace.")


class ApplicationRef(Model):
    """The spark-operator application whose executors are sized."""

    api_version: Literal["sparkoperator.k8s.io/v1beta2"] = Field(
        default="sparkoperator.k8s.io/v1beta2", description="API version of the spark-operator resource."
    )
    name: DnsSubdomain = Field(description="Name of the SparkApplication or ScheduledSparkApplication.")


class SecretKeyRef(Model):
    """A key of a Secret in the policy's namespace."""

    name: DnsSubdomain = Field(description="Name of the Secret.")
    key: NonEmpty = Field(description="Key within the Secret.")


class TrinoWorkerTls(Model):
    """How the controller checks the certificates of HTTPS workers it reaches by pod IP."""

    ca_secret: SecretKeyRef | None = Field(
        default=None,
        description="Secret key holding the PEM bundle that signs the workers' certificates; unset: the "
        "system trust store. The controller's Role in the policy's namespace must name this Secret.",
    )
    server_name: str | None = Field(
        default=None,
        min_length=1,
        description="Name the workers' certificates are checked against, and sent as SNI, e.g. "
        "trino-worker.trino.svc; unset: the pod IP, which a certificate must then name.",
    )
    insecure_skip_verify: bool = Field(
        default=False, description="Do not check the workers' certificates (testing only)."
    )


class TrinoTarget(Model):
    """How to reach and size a Trino cluster."""

    cluster: NonEmpty = Field(description="Value of the `cluster` label of the adapter's trino_* metrics.")
    coordinator_url: Annotated[str, Field(pattern=r"^https?://.+")] = Field(
        description="Base URL of the coordinator, e.g. http://trino:8080."
    )
    version: int = Field(
        ge=1,
        description="Trino version of the workers; from 468 on, drains go ACTIVE -> DRAINING -> DRAINED "
        "and can be undone, before it only SHUTTING_DOWN exists.",
    )
    slots_per_worker: int = Field(
        default=4,
        ge=1,
        description="Queries one worker runs at once (servers per worker in the queue model).",
    )
    cores_per_worker: int | None = Field(
        default=None,
        ge=1,
        description="Cores of one worker; required by QueueWait with sizing Work, which sizes on the "
        "CPU-seconds queries bring.",
    )
    credentials_secret: SecretKeyRef | None = Field(
        default=None, description="Secret holding the password of `user`, if the cluster needs one."
    )
    user: NonEmpty = Field(
        default="admin",
        description="User that changes worker states; it needs 'write system information' on every worker.",
    )
    worker_tls: TrinoWorkerTls | None = Field(
        default=None,
        description="Certificate checks for workers reached over HTTPS (an https coordinatorUrl). Trino "
        "takes passwords only over HTTPS, so a cluster with credentials is reached this way.",
    )


class SparkTarget(Model):
    """How to reach and size Spark."""

    pool: NonEmpty = Field(description="Value of the `pool` label of the adapter's spark_* metrics.")
    master_url: Annotated[str, Field(pattern=r"^https?://.+")] | None = Field(
        default=None,
        description="Web UI URL of the standalone master, e.g. http://spark-master:8080; "
        "required for a SparkWorkerPool.",
    )
    cores_per_worker: int | None = Field(
        default=None, ge=1, description="Cores of one pool worker; required for a SparkWorkerPool."
    )
    executor_cores: int = Field(default=1, ge=1, description="Cores of one executor (spark.executor.cores).")
    decommission: bool = Field(
        default=False,
        description="Decommission pool workers on the master before removing them "
        "(needs spark.decommission.enabled=true); SparkWorkerPool only.",
    )


class Target(Model):
    """What is scaled."""

    kind: TargetKind = Field(
        description="TrinoWorkers (a Deployment or StatefulSet of Trino workers), SparkWorkerPool (a "
        "StatefulSet of standalone workers), SparkApplication or ScheduledSparkApplication (executor "
        "count of the next run)."
    )
    workload: WorkloadRef | None = Field(
        default=None, description="The Deployment or StatefulSet; TrinoWorkers and SparkWorkerPool only."
    )
    application: ApplicationRef | None = Field(
        default=None, description="The spark-operator resource; SparkApplication kinds only."
    )
    trino: TrinoTarget | None = Field(default=None, description="Trino settings; TrinoWorkers only.")
    spark: SparkTarget | None = Field(default=None, description="Spark settings; Spark kinds only.")
    startup_seconds: int = Field(
        default=60,
        ge=0,
        description="Seconds from adding a replica until it takes work (Trino ACTIVE, executor registered); "
        "the forecast's lead time and the simulator's start-up delay.",
    )

    @model_validator(mode="after")
    def _sections_match_kind(self) -> Target:
        problems: list[Problem] = []
        kind = self.kind

        def need(section: str, present: bool) -> None:
            if not present:
                problems.append(Problem((section,), "", missing=True))

        def forbid(section: str, present: bool, allowed: str) -> None:
            if present:
                problems.append(Problem((section,), f"not allowed for target kind {kind}; {allowed}"))

        if kind == "TrinoWorkers":
            need("workload", self.workload is not None)
            need("trino", self.trino is not None)
            forbid("application", self.application is not None, "only for SparkApplication kinds")
            forbid("spark", self.spark is not None, "only for Spark kinds")
        elif kind == "SparkWorkerPool":
            need("workload", self.workload is not None)
            need("spark", self.spark is not None)
            forbid("application", self.application is not None, "only for SparkApplication kinds")
            forbid("trino", self.trino is not None, "only for TrinoWorkers")
            if self.workload is not None and self.workload.kind != "StatefulSet":
                problems.append(
                    Problem(
                        ("workload", "kind"),
                        "a SparkWorkerPool must be a StatefulSet (workers leave highest ordinal first)",
                        self.workload.kind,
                    )
                )
            if self.spark is not None:
                if self.spark.master_url is None:
                    problems.append(Problem(("spark", "masterUrl"), "", missing=True))
                if self.spark.cores_per_worker is None:
                    problems.append(Problem(("spark", "coresPerWorker"), "", missing=True))
                elif self.spark.executor_cores > self.spark.cores_per_worker:
                    problems.append(
                        Problem(
                            ("spark", "executorCores"),
                            f"must not exceed coresPerWorker ({self.spark.cores_per_worker}): "
                            "no executor would fit on a worker",
                            self.spark.executor_cores,
                        )
                    )
        else:
            need("application", self.application is not None)
            forbid(
                "workload",
                self.workload is not None,
                "the spark-operator resource is named by `application`",
            )
            forbid("trino", self.trino is not None, "only for TrinoWorkers")
            if self.spark is not None and self.spark.decommission:
                problems.append(
                    Problem(
                        ("spark", "decommission"),
                        "only for a SparkWorkerPool: spark-operator applications are resized on their next run",
                        True,
                    )
                )
        raise_problems("Target", problems)
        return self

    @property
    def name(self) -> str:
        """The name of the scaled object, whatever its kind."""
        if self.workload is not None:
            return self.workload.name
        assert self.application is not None
        return self.application.name


# --- metrics --------------------------------------------------------------------------------------------


class LabelSelectorRequirement(Model):
    """A set-based label requirement (metav1.LabelSelectorRequirement)."""

    key: NonEmpty = Field(description="Label key.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="In, NotIn, Exists or DoesNotExist."
    )
    values: list[str] = Field(
        default_factory=list, description="Values for In and NotIn; empty for Exists and DoesNotExist."
    )


_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


class LabelSelector(Model):
    """A label selector over the metric's series (metav1.LabelSelector)."""

    match_labels: dict[str, str] = Field(default_factory=dict, description="Labels that must equal these.")
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=list, description="Set-based requirements, all of which must hold."
    )

    @model_validator(mode="after")
    def _valid(self) -> LabelSelector:
        problems: list[Problem] = []
        for key, value in self.match_labels.items():
            why = [f"key: {e}" for e in validate_label_key(key)]
            why += [f"value: {e}" for e in validate_label_value(value)]
            if why:
                problems.append(Problem(("matchLabels", key), "; ".join(why), value))
        for index, expr in enumerate(self.match_expressions):
            try:
                Requirement(expr.key, _OPERATORS[expr.operator], tuple(expr.values))
            except LabelSelectorError as exc:
                problems.append(Problem(("matchExpressions", index), str(exc), expr.key))
        raise_problems("LabelSelector", problems)
        return self

    def keys(self) -> list[tuple[Loc, str]]:
        """Every label key the selector names, with its location."""
        out: list[tuple[Loc, str]] = [(("matchLabels", k), k) for k in self.match_labels]
        out += [(("matchExpressions", i, "key"), e.key) for i, e in enumerate(self.match_expressions)]
        return out

    def to_selector(self) -> Selector:
        """The selector as :mod:`core.selectors` evaluates it."""
        reqs = [Requirement(k, "=", (v,)) for k, v in self.match_labels.items()]
        reqs += [Requirement(e.key, _OPERATORS[e.operator], tuple(e.values)) for e in self.match_expressions]
        return Selector(tuple(reqs))


class MetricIdentifier(Model):
    """A metric name and a selector of its series (autoscaling/v2 MetricIdentifier)."""

    name: NonEmpty = Field(description="Metric name, from queuescale's catalog unless `custom` is true.")
    selector: LabelSelector | None = Field(default=None, description="Which series of the metric to sum.")


class MetricTarget(Model):
    """The figure to keep a metric at (autoscaling/v2 MetricTarget, Value and AverageValue only)."""

    type: Literal["Value", "AverageValue"] = Field(
        description="Value: the total over all replicas; AverageValue: the amount per replica."
    )
    value: PositiveQuantity | None = Field(default=None, description="Target total (type Value).")
    average_value: PositiveQuantity | None = Field(
        default=None, description="Target per replica (type AverageValue)."
    )

    @model_validator(mode="after")
    def _one_value(self) -> MetricTarget:
        problems: list[Problem] = []
        if self.type == "Value":
            if self.value is None:
                problems.append(Problem(("value",), "", missing=True))
            if self.average_value is not None:
                problems.append(Problem(("averageValue",), "only used with type AverageValue"))
        else:
            if self.average_value is None:
                problems.append(Problem(("averageValue",), "", missing=True))
            if self.value is not None:
                problems.append(Problem(("value",), "only used with type Value"))
        raise_problems("MetricTarget", problems)
        return self

    @property
    def amount(self) -> Decimal:
        """The target figure, whichever type it is."""
        amount = self.value if self.type == "Value" else self.average_value
        assert amount is not None
        return amount


class ExternalMetric(Model):
    """A metric served by the adapter on external.metrics.k8s.io, with an HPA-style target."""

    metric: MetricIdentifier = Field(description="The metric and the series to sum.")
    target: MetricTarget = Field(description="The figure to keep the metric at.")
    custom: bool = Field(
        default=False,
        description="True for a metric outside queuescale's catalog (e.g. from the Prometheus source's "
        "operator-defined metrics); its name and labels are then not checked.",
    )

    @model_validator(mode="after")
    def _in_catalog(self) -> ExternalMetric:
        if self.custom:
            return self
        spec = DEFAULT_CATALOG.get(self.metric.name)
        if spec is None:
            _raise_at(
                ("metric", "name"),
                f"unknown metric '{self.metric.name}': not in queuescale's catalog "
                "(set custom: true for a metric the catalog does not list)",
                self.metric.name,
            )
        problems = [
            Problem(
                ("metric", "selector", *loc),
                f"'{key}' is not a label of {spec.name} (its labels: {', '.join(spec.labels)})",
                key,
            )
            for loc, key in (self.metric.selector.keys() if self.metric.selector else [])
            if key not in spec.labels
        ]
        raise_problems("ExternalMetric", problems)
        return self


class QueueWaitMetric(Model):
    """Queue-aware Trino sizing: the fewest workers that keep the queue wait under a target (Erlang C)."""

    target_seconds: float = Field(gt=0, description="Queue wait to stay under, at `percentile`, in seconds.")
    percentile: float = Field(
        default=95, gt=0, lt=100, description="Percentile of the queue wait the target applies to."
    )
    slo_seconds: float | None = Field(
        default=None,
        gt=0,
        description="Queue wait counted as an SLO miss in reports, in seconds; at least targetSeconds.",
    )
    sizing: Literal["Slots", "Work"] = Field(
        default="Slots",
        description="Slots: Erlang C over slotsPerWorker query slots per worker, queries of a measured "
        "service time. Work: the CPU-seconds arriving (trino_consumed_cpu_seconds_total) shared by "
        "coresPerWorker cores per worker, queries finishing sooner on a bigger cluster, queued by the "
        "resource groups' concurrency limits (autoscaler/decision/work_sizing.py).",
    )

    @model_validator(mode="after")
    def _slo_above_target(self) -> QueueWaitMetric:
        if self.slo_seconds is not None and self.slo_seconds < self.target_seconds:
            _raise_at(
                ("sloSeconds",),
                f"must be at least targetSeconds ({self.target_seconds:g})",
                self.slo_seconds,
            )
        return self


class RequiredWorkersMetric(Model):
    """Scale to trino_required_workers so queries waiting for a minimum cluster size can start."""


class SparkExecutorsMetric(Model):
    """Executors needed (Spark's dynamic-allocation formula), turned into replicas of the target."""

    executors_per_worker: int | None = Field(
        default=None,
        ge=1,
        description="Executors one pool worker hosts; default coresPerWorker / executorCores. "
        "SparkWorkerPool only (for applications a replica is an executor).",
    )
    allocation_ratio: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description="spark.dynamicAllocation.executorAllocationRatio: the share of the full demand to provide.",
    )
    backlog_seconds: int | None = Field(
        default=None,
        ge=1,
        description="Size the pool on the work waiting: add only the workers needed to finish the "
        "applications' remaining tasks (their count times their mean run time) within this many seconds "
        "of the new workers being ready, counting what the ready workers do during target.startupSeconds. "
        "Never more than executors needed asks for. Unset: every remaining task gets a slot at once "
        "(Spark's own rule). SparkWorkerPool only.",
    )


class PrometheusMetric(Model):
    """A PromQL query with a target, for teams that already scrape the figures."""

    query: NonEmpty = Field(description="Instant PromQL query returning one value (or a sum of series).")
    target: MetricTarget = Field(description="The figure to keep the query's value at.")


class MetricSpec(Model):
    """One scaling signal; several signals combine by their maximum."""

    type: MetricType = Field(
        description="External (a catalog metric with a target), QueueWait (queue-aware Trino sizing), "
        "RequiredWorkers (Trino scale from zero), SparkExecutors (executors needed) or Prometheus (PromQL)."
    )
    external: ExternalMetric | None = Field(default=None, description="For type External.")
    queue_wait: QueueWaitMetric | None = Field(default=None, description="For type QueueWait.")
    required_workers: RequiredWorkersMetric | None = Field(
        default=None, description="For type RequiredWorkers (no settings: write {})."
    )
    spark_executors: SparkExecutorsMetric | None = Field(default=None, description="For type SparkExecutors.")
    prometheus: PrometheusMetric | None = Field(default=None, description="For type Prometheus.")

    @model_validator(mode="after")
    def _section_matches_type(self) -> MetricSpec:
        problems: list[Problem] = []
        for metric_type, key in METRIC_SECTIONS.items():
            present = getattr(self, _snake(key)) is not None
            if metric_type == self.type and not present:
                problems.append(Problem((key,), "", missing=True))
            elif metric_type != self.type and present:
                problems.append(
                    Problem((key,), f"only used with type {metric_type} (this metric is {self.type})")
                )
        raise_problems("MetricSpec", problems)
        return self


def _snake(key: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), key)


def _raise_at(loc: Loc, message: str, value: Any) -> NoReturn:
    raise_problems("ScalingPolicy", [Problem(loc, message, value)])
    raise AssertionError("unreachable")


# --- behavior (exactly autoscaling/v2 HorizontalPodAutoscalerBehavior) ----------------------------------


class HPAScalingPolicy(Model):
    """A rate limit: change by at most `value` pods or percent per `periodSeconds` (HPAScalingPolicy)."""

    type: Literal["Pods", "Percent"] = Field(description="Pods (a count) or Percent (of the replicas).")
    value: int = Field(gt=0, description="The allowed change; greater than zero.")
    period_seconds: int = Field(
        gt=0, le=MAX_PERIOD_SECONDS, description="Window the change is counted over, 1 to 1800 seconds."
    )


class HPAScalingRules(Model):
    """Rules for one direction (HPAScalingRules); unset fields take the HPA's defaults."""

    stabilization_window_seconds: int | None = Field(
        default=None,
        ge=0,
        le=MAX_STABILIZATION_WINDOW_SECONDS,
        description="Recommendations of the last this many seconds are considered (0 to 3600; default 0 "
        "up, 300 down): up takes their minimum, down their maximum.",
    )
    select_policy: Literal["Max", "Min", "Disabled"] | None = Field(
        default=None,
        description="Max: the policy allowing the biggest change; Min: the smallest; Disabled: never scale "
        "in this direction (default Max).",
    )
    policies: Annotated[list[HPAScalingPolicy], Field(min_length=1)] | None = Field(
        default=None,
        description="Rate limits (default up: 4 pods or 100% per 15 s; down: 100% per 15 s).",
    )
    tolerance: FractionQuantity | None = Field(
        default=None,
        description="No change while the usage ratio is within this fraction of 1 (KEP-4951; default the "
        'controller\'s 0.1). A quantity: write "0.05" or "50m".',
    )


class HPABehavior(Model):
    """The HPA's stabilization and rate limits (HorizontalPodAutoscalerBehavior): same fields, same maths."""

    scale_up: HPAScalingRules | None = Field(default=None, description="Rules for scaling up.")
    scale_down: HPAScalingRules | None = Field(default=None, description="Rules for scaling down.")


# --- schedules, forecast, drain -------------------------------------------------------------------------


class Schedule(Model):
    """Bounds that replace minReplicas/maxReplicas while a cron window is open."""

    name: DnsLabel = Field(description="Name of the schedule, unique in the policy; shown in decisions.")
    cron: NonEmpty = Field(
        description="Five-field cron expression (minute hour day-of-month month day-of-week) opening the window."
    )
    duration_seconds: int = Field(gt=0, description="How long the window stays open after each start.")
    time_zone: NonEmpty = Field(default="UTC", description="IANA time zone of the cron, e.g. Europe/Berlin.")
    min_replicas: int | None = Field(
        default=None, ge=0, description="Floor while open (default: the policy's minReplicas)."
    )
    max_replicas: int | None = Field(
        default=None, ge=0, description="Ceiling while open (default: the policy's maxReplicas)."
    )

    @model_validator(mode="after")
    def _valid(self) -> Schedule:
        problems: list[Problem] = []
        zone: ZoneInfo | None = None
        try:
            zone = ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(
                Problem(
                    ("timeZone",),
                    f"unknown time zone '{self.time_zone}' (use an IANA name such as Europe/Berlin or UTC)",
                    self.time_zone,
                )
            )
        try:
            CronSim(self.cron, datetime(2000, 1, 1, tzinfo=zone))
        except CronSimError as exc:
            problems.append(
                Problem(
                    ("cron",),
                    f"not a valid cron expression ({str(exc).lower()}); "
                    "five fields: minute hour day-of-month month day-of-week",
                    self.cron,
                )
            )
        if self.min_replicas is None and self.max_replicas is None:
            problems.append(
                Problem(("minReplicas",), "a schedule needs minReplicas, maxReplicas or both", None)
            )
        if (
            self.min_replicas is not None
            and self.max_replicas is not None
            and self.min_replicas > self.max_replicas
        ):
            problems.append(
                Problem(
                    ("minReplicas",),
                    f"must not exceed the schedule's maxReplicas ({self.max_replicas})",
                    self.min_replicas,
                )
            )
        raise_problems("Schedule", problems)
        return self

    def last_start(self, now: datetime) -> datetime:
        """The latest cron firing at or before ``now`` (an aware datetime), in the schedule's zone."""
        local = now.astimezone(ZoneInfo(self.time_zone)).replace(microsecond=0)
        # cronsim's reverse iterator starts strictly before its start time; a firing exactly at now counts.
        return next(CronSim(self.cron, local + timedelta(seconds=1), reverse=True))

    def is_active(self, now: datetime) -> bool:
        """Whether the window is open at ``now`` (an aware datetime)."""
        start = self.last_start(now)
        return now < start + timedelta(seconds=self.duration_seconds)


class Forecast(Model):
    """Scale up ahead of predictable rises, learnt from the history of the signals."""

    enabled: bool = Field(default=False, description="Use the forecast (never to go below reactive signals).")
    method: Literal["holt-winters", "fft"] = Field(
        default="holt-winters", description="holt-winters (seasonal exponential smoothing) or fft."
    )
    horizon_seconds: int = Field(default=900, gt=0, description="How far ahead to forecast, in seconds.")
    season_seconds: int = Field(
        default=86400, gt=0, description="Length of the cycle to learn (86400 daily, 604800 weekly)."
    )
    history_seconds: int = Field(
        default=1209600, gt=0, description="History the forecast learns from; at least two seasons."
    )

    @model_validator(mode="after")
    def _two_seasons(self) -> Forecast:
        if self.history_seconds < 2 * self.season_seconds:
            _raise_at(
                ("historySeconds",),
                f"must be at least two seasons ({2 * self.season_seconds} s) to learn a cycle",
                self.history_seconds,
            )
        return self


class Drain(Model):
    """Safe scale-down: a leaving replica finishes its work first."""

    grace_period_seconds: int = Field(
        default=120,
        ge=0,
        description="Wait after draining starts before checking for idleness (Trino grace).",
    )
    timeout_seconds: int = Field(
        default=3600, gt=0, description="Longest wait for a drain; at least gracePeriodSeconds."
    )
    on_timeout: Literal["Abort", "Force"] = Field(
        default="Abort",
        description="Abort: put the replica back to ACTIVE and keep it; Force: remove it anyway and report "
        "the work killed.",
    )

    @model_validator(mode="after")
    def _timeout_covers_grace(self) -> Drain:
        if self.timeout_seconds < self.grace_period_seconds:
            _raise_at(
                ("timeoutSeconds",),
                f"must be at least gracePeriodSeconds ({self.grace_period_seconds})",
                self.timeout_seconds,
            )
        return self


# --- spec, status, document -----------------------------------------------------------------------------


class ScalingPolicySpec(Model):
    """What to scale, on which signals, within which bounds and how fast."""

    target: Target = Field(description="What is scaled.")
    min_replicas: int = Field(
        default=1,
        ge=0,
        description="Fewest replicas (workers, or executors for SparkApplication kinds); 0 allows scale "
        "from zero on RequiredWorkers.",
    )
    max_replicas: int = Field(ge=1, description="Most replicas; at least minReplicas.")
    metrics: Annotated[list[MetricSpec], Field(min_length=1)] = Field(
        description="Signals; the largest replica count any of them asks for wins."
    )
    behavior: HPABehavior | None = Field(
        default=None,
        description="Stabilization and rate limits with the HPA's exact semantics; absent: the HPA's "
        "behavior without `behavior` (300 s down-stabilization, up at most max(2x, 4)).",
    )
    schedules: list[Schedule] = Field(default_factory=list, description="Cron windows with their own bounds.")
    forecast: Forecast = Field(default_factory=Forecast, description="Predictive scale-up.")
    drain: Drain = Field(default_factory=Drain, description="Safe scale-down.")
    dry_run: bool = Field(default=False, description="Decide and report, but never change the target.")

    @model_validator(mode="after")
    def _consistent(self) -> ScalingPolicySpec:
        problems: list[Problem] = []
        if self.min_replicas > self.max_replicas:
            problems.append(
                Problem(
                    ("minReplicas",), f"must not exceed maxReplicas ({self.max_replicas})", self.min_replicas
                )
            )
        kind = self.target.kind
        for index, metric in enumerate(self.metrics):
            allowed = METRIC_TARGET_KINDS.get(metric.type)
            if allowed is not None and kind not in allowed:
                problems.append(
                    Problem(
                        ("metrics", index, "type"),
                        f"{metric.type} needs a target of kind {' or '.join(sorted(allowed))}, not {kind}",
                        metric.type,
                    )
                )
            trino = self.target.trino
            if (
                metric.queue_wait is not None
                and metric.queue_wait.sizing == "Work"
                and trino is not None
                and trino.cores_per_worker is None
            ):
                problems.append(
                    Problem(
                        ("metrics", index, "queueWait", "sizing"),
                        "Work needs target.trino.coresPerWorker (the cores of one worker)",
                        metric.queue_wait.sizing,
                    )
                )
            section = metric.spark_executors
            if section is not None and kind != "SparkWorkerPool":
                pool_only = (
                    (
                        "backlogSeconds",
                        section.backlog_seconds,
                        "an application's executors are sized for its next run",
                    ),
                    (
                        "executorsPerWorker",
                        section.executors_per_worker,
                        "for an application a replica is an executor",
                    ),
                )
                for field_name, value, why in pool_only:
                    if value is not None:
                        problems.append(
                            Problem(
                                ("metrics", index, "sparkExecutors", field_name),
                                f"only for a SparkWorkerPool ({why})",
                                value,
                            )
                        )
        seen: set[str] = set()
        for index, schedule in enumerate(self.schedules):
            if schedule.name in seen:
                problems.append(
                    Problem(("schedules", index, "name"), f"duplicate schedule name '{schedule.name}'", None)
                )
            seen.add(schedule.name)
            floor = schedule.min_replicas if schedule.min_replicas is not None else self.min_replicas
            ceiling = schedule.max_replicas if schedule.max_replicas is not None else self.max_replicas
            if floor > ceiling:
                which = "minReplicas" if schedule.min_replicas is not None else "maxReplicas"
                problems.append(
                    Problem(
                        ("schedules", index, which),
                        f"the window's floor ({floor}) would exceed its ceiling ({ceiling})",
                        None,
                    )
                )
        raise_problems("ScalingPolicySpec", problems)
        return self


class Condition(Model):
    """A standard condition (metav1.Condition)."""

    type: NonEmpty = Field(description="Kind of condition, e.g. Ready, ScalingActive, ScalingLimited.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: NonEmpty = Field(description="Machine-readable CamelCase reason of the last transition.")
    message: str = Field(default="", description="Human-readable detail.")
    last_transition_time: Annotated[datetime, Strict(False)] = Field(
        description="When the status last changed (RFC 3339)."
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation the condition was set for."
    )


class LastDecision(Model):
    """The last decision the controller took and why."""

    reason: str = Field(description="Which signal won and which limit clamped it.")
    at: Annotated[datetime, Strict(False)] = Field(description="When it was taken (RFC 3339).")


class ScalingPolicyStatus(Model):
    """What the controller last observed and did (written by the controller only)."""

    observed_generation: int | None = Field(default=None, ge=0, description="Generation last acted on.")
    current_replicas: int | None = Field(default=None, ge=0, description="Replicas of the target now.")
    desired_replicas: int | None = Field(default=None, ge=0, description="Replicas last decided.")
    last_scale_time: Annotated[datetime, Strict(False)] | None = Field(
        default=None, description="When the target's replicas were last changed (RFC 3339)."
    )
    last_decision: LastDecision | None = Field(default=None, description="The last decision and its reason.")
    conditions: list[Condition] = Field(default_factory=list, description="Standard conditions.")


class ScalingPolicy(Model):
    """A ScalingPolicy: how queuescale scales one Trino or Spark target."""

    api_version: Literal["queuescale.io/v1alpha1"] = Field(description="Always queuescale.io/v1alpha1.")
    kind: Literal["ScalingPolicy"] = Field(description="Always ScalingPolicy.")
    metadata: ObjectMeta = Field(description="Name, namespace, labels and annotations.")
    spec: ScalingPolicySpec = Field(description="The policy.")
    status: ScalingPolicyStatus | None = Field(
        default=None, description="Observed state, written by the controller."
    )
