"""The controller's one settings object, in small groups; every duration is in seconds and says so.

``queuescale controller`` builds it from its flags (the flag of each field is named in its description); the
demo and the tests build it directly. What is wired in rather than set (a metric reader reading an in-process
adapter's cache, the engine's loop-level settings) is passed to
:func:`autoscaler.controller.runtime.running_controller` beside it.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from adapter.kube import KubeSettings
from autoscaler.controller.api_calls import DEFAULT_LEASE_NAME

__all__ = [
    "ControllerSettings",
    "CredentialSettings",
    "HealthSettings",
    "LeaderElectionSettings",
    "PolicySettings",
    "ReadingSettings",
    "ReconcileSettings",
]


class PolicySettings(BaseModel):
    """Where the ScalingPolicies come from."""

    model_config = ConfigDict(extra="forbid")

    sources: list[str] = Field(
        ["crd"],
        description="``['crd']``: watch the cluster's ScalingPolicy resources; otherwise policy files or "
        "directories (``--policies``).",
    )
    namespaces: list[str] = Field(
        [],
        description="Namespaces to watch, empty for all (``--namespace``, repeated); policies read from files "
        "belong to the first (default ``default``).",
    )


class ReadingSettings(BaseModel):
    """Where the metric readings come from when no reader is wired in: the adapter behind
    ``external.metrics.k8s.io``."""

    model_config = ConfigDict(extra="forbid")

    adapter_url: str | None = Field(
        None,
        description="Read external metrics straight from the adapter at this URL (its Service), trusting "
        "the Kubernetes client's CA bundle and credentials, instead of kube-apiserver's aggregated path "
        "(``--metrics-url``).",
    )


class LeaderElectionSettings(BaseModel):
    """A coordination.k8s.io Lease held while acting, as client-go's leader election holds one."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(False, description="Act only while holding the Lease (``--leader-elect``).")
    lease_name: str = Field(DEFAULT_LEASE_NAME, description="Name of the Lease (``--lease-name``).")
    lease_namespace: str = Field("default", description="Namespace of the Lease (``--lease-namespace``).")
    identity: str = Field(
        "",
        description="Holder identity written in the Lease; empty: the hostname and a random suffix "
        "(``--identity``).",
    )
    lease_duration_seconds: int = Field(
        15, description="``leaseDurationSeconds`` written in the Lease, s (``--lease-seconds``)."
    )
    renew_deadline_seconds: float = Field(
        10.0, description="Stop acting this long after the last successful renew, s (``--renew-deadline``)."
    )
    retry_period_seconds: float = Field(
        2.0, description="Time between acquire or renew attempts, s (``--retry-period``)."
    )


class ReconcileSettings(BaseModel):
    """The reconcile loop."""

    model_config = ConfigDict(extra="forbid")

    period_seconds: float = Field(
        15.0, description="Time from the start of one reconcile pass to the next, s (``--period``)."
    )
    dry_run: bool = Field(False, description="Decide and report, change nothing (``--dry-run``).")


class HealthSettings(BaseModel):
    """The controller's own HTTP endpoints: ``/metrics``, ``/livez`` (and ``/healthz``), ``/readyz``."""

    model_config = ConfigDict(extra="forbid")

    listen: str | None = Field(
        "0.0.0.0:9090",
        description="host:port they are served on; None or empty: not served (``--listen-metrics``).",
    )


class CredentialSettings(BaseModel):
    """Secrets the actuators need."""

    model_config = ConfigDict(extra="forbid")

    trino_password_dir: Path | None = Field(
        None,
        description="Mounted Secret files, read as ``<dir>/<secret>/<key>``; without it the Trino password "
        "Secret is read through the Kubernetes API (``--trino-password-dir``).",
    )


class ControllerSettings(BaseModel):
    """Everything ``queuescale controller`` takes, grouped."""

    model_config = ConfigDict(extra="forbid")

    policies: PolicySettings = Field(default_factory=PolicySettings)
    kube: KubeSettings = Field(
        default_factory=KubeSettings,
        description="Where the Kubernetes API is (``--kubeconfig``, ``--kube-host``).",
    )
    readings: ReadingSettings = Field(default_factory=ReadingSettings)
    leader_election: LeaderElectionSettings = Field(default_factory=LeaderElectionSettings)
    reconcile: ReconcileSettings = Field(default_factory=ReconcileSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    credentials: CredentialSettings = Field(default_factory=CredentialSettings)
