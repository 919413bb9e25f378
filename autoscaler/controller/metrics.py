"""The controller's own Prometheus metrics, in a registry of its own (no process-global state).

Every series is labelled with the policy's ``namespace`` and ``policy`` name so a dashboard can follow one
target; names are fixed here so the dashboards and alerting rules are generated from the same list.
"""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["DRAIN_OUTCOMES", "METRIC_NAMES", "ControllerMetrics"]

_LOOP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_DRAIN_BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0)

#: How a drain (Trino) or decommission (Spark) ended: the workers left idle, load came back and they were
#: put back to work, or the policy's timeout ran out (``timeout_removed``: removed anyway,
#: ``timeout_kept``: kept serving).
DRAIN_OUTCOMES = ("completed", "aborted", "timeout_removed", "timeout_kept", "failed")

_POLICY = ["namespace", "policy"]


class ControllerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.decisions = Counter(
            "queuescale_controller_decisions",
            "Decisions taken, by direction (up, down, none) and the signal that won.",
            [*_POLICY, "direction", "signal"],
            registry=r,
        )
        self.desired = Gauge(
            "queuescale_controller_desired_replicas",
            "Replicas (workers, or executors for Spark applications) the last decision asked for.",
            _POLICY,
            registry=r,
        )
        self.current = Gauge(
            "queuescale_controller_current_replicas",
            "Replicas the target had when the last decision was taken.",
            _POLICY,
            registry=r,
        )
        self.limited = Gauge(
            "queuescale_controller_scaling_limited",
            "1 when the last decision was clamped by a bound, a schedule or a behavior policy.",
            _POLICY,
            registry=r,
        )
        self.scale_actions = Counter(
            "queuescale_controller_scale_actions",
            "Replica changes written to the cluster, by direction (up, down).",
            [*_POLICY, "direction"],
            registry=r,
        )
        self.drains_started = Counter(
            "queuescale_controller_drains_started",
            "Workers put into DRAINING / SHUTTING_DOWN (Trino) or decommissioned (Spark).",
            _POLICY,
            registry=r,
        )
        self.drains_finished = Counter(
            "queuescale_controller_drains_finished",
            "Drains or decommissions that ended, by outcome.",
            [*_POLICY, "outcome"],
            registry=r,
        )
        self.drains_in_progress = Gauge(
            "queuescale_controller_drains_in_progress",
            "Workers draining or decommissioning now.",
            _POLICY,
            registry=r,
        )
        self.drain_duration = Histogram(
            "queuescale_controller_drain_duration_seconds",
            "From drain start to its end, whatever the outcome.",
            _POLICY,
            buckets=_DRAIN_BUCKETS,
            registry=r,
        )
        self.actuator_errors = Counter(
            "queuescale_controller_actuator_errors",
            "Failed calls to the Kubernetes API, Trino or the Spark master, by what failed.",
            [*_POLICY, "operation"],
            registry=r,
        )
        self.policy_ready = Gauge(
            "queuescale_controller_policy_ready",
            "1 when the policy is valid and its target was found; 0 otherwise (see its status).",
            _POLICY,
            registry=r,
        )
        self.loop_duration = Histogram(
            "queuescale_controller_loop_duration_seconds",
            "Time one reconcile pass over every policy took.",
            buckets=_LOOP_BUCKETS,
            registry=r,
        )
        self.is_leader = Gauge(
            "queuescale_controller_leader",
            "1 while this replica holds the leader Lease and acts; 0 while it stands by.",
            registry=r,
        )

    def forget(self, namespace: str, policy: str) -> None:
        """Drop a deleted policy's gauges so dashboards do not show a ghost target."""
        for gauge in (self.desired, self.current, self.limited, self.drains_in_progress, self.policy_ready):
            with contextlib.suppress(KeyError):
                gauge.remove(namespace, policy)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


#: Every metric family the controller exports (counters with their ``_total`` sample suffix as scraped).
METRIC_NAMES = (
    "queuescale_controller_decisions_total",
    "queuescale_controller_desired_replicas",
    "queuescale_controller_current_replicas",
    "queuescale_controller_scaling_limited",
    "queuescale_controller_scale_actions_total",
    "queuescale_controller_drains_started_total",
    "queuescale_controller_drains_finished_total",
    "queuescale_controller_drains_in_progress",
    "queuescale_controller_drain_duration_seconds",
    "queuescale_controller_actuator_errors_total",
    "queuescale_controller_policy_ready",
    "queuescale_controller_loop_duration_seconds",
    "queuescale_controller_leader",
)
