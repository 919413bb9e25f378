"""The controller dashboard: decisions and their reasons, scale actions, drains, errors, leadership."""

from __future__ import annotations

from autoscaler.dashboards.parts import (
    Board,
    Query,
    controller,
    desired_vs_current,
    max_by,
    namespace_variable,
    or_zero,
    per_minute,
    quantile,
    query_variable,
    selector,
    stat,
    timeseries,
)
from core.catalog import Catalog

UID = "queuescale-controller"
FILTER = {"namespace": "$namespace", "policy": "$policy"}
POLICY = ["namespace", "policy"]


def build(catalog: Catalog) -> Board:
    del catalog  # the controller's series are fixed in autoscaler.controller.metrics

    def series(name: str) -> str:
        return selector(controller(name), **FILTER)

    # Counters labelled by what happened exist only once it has: a 0 for every known policy instead.
    ready = series("queuescale_controller_policy_ready")

    def per_minute_or_zero(labels: list[str], counter: str) -> str:
        return or_zero(per_minute(labels, series(counter)), POLICY, ready)

    board = Board(
        UID,
        "queuescale / controller",
        "Decisions and the signals that won them, scale actions, drains, actuator errors and leadership.",
    )
    board.variable(namespace_variable())
    board.variable(
        query_variable(
            "policy",
            "ScalingPolicy",
            f'label_values({controller("queuescale_controller_policy_ready")}{{namespace=~"$namespace"}}, policy)',
            "ScalingPolicy name.",
        )
    )

    board.panel(
        stat(
            "Leader",
            "1 while a replica holds the leader Lease; 0 means nobody acts.",
            Query(f"max({controller('queuescale_controller_leader')})", "leader"),
            width=4,
        )
    )
    board.panel(
        stat(
            "Policies ready",
            "Valid policies whose target was found.",
            Query(f"sum({max_by(POLICY, ready)})", "ready"),
        )
    )
    board.panel(
        stat(
            "Policies not ready",
            "Invalid policies or missing targets: see the policy's status.",
            Query(f"sum({max_by(POLICY, ready)} == bool 0)", "not ready"),
        )
    )
    board.panel(
        stat(
            "Drains in progress",
            "Workers draining or decommissioning now.",
            Query(f"sum({max_by(POLICY, series('queuescale_controller_drains_in_progress'))})", "draining"),
        )
    )
    board.panel(
        stat(
            "Scale actions / min",
            "Replica changes written to the cluster.",
            Query(
                f"sum({per_minute_or_zero([*POLICY], 'queuescale_controller_scale_actions_total')})",
                "actions",
            ),
            unit="opm",
        )
    )
    board.panel(
        stat(
            "Actuator errors / min",
            "Failed calls to the Kubernetes API, Trino or the Spark master.",
            Query(
                f"sum({per_minute_or_zero([*POLICY], 'queuescale_controller_actuator_errors_total')})",
                "errors",
            ),
            unit="opm",
        )
    )

    board.panel(desired_vs_current(FILTER))
    board.panel(
        timeseries(
            "Decisions by reason",
            "Decisions per minute by direction and the signal that won (queue, Spark backlog, forecast, "
            "schedule, bound...).",
            [
                Query(
                    per_minute(["direction", "signal"], series("queuescale_controller_decisions_total")),
                    "{{direction}} by {{signal}}",
                )
            ],
            unit="opm",
            stack=True,
        )
    )
    board.panel(
        timeseries(
            "Scale actions",
            "Replica changes written to the cluster per minute, by direction.",
            [
                Query(
                    per_minute_or_zero([*POLICY, "direction"], "queuescale_controller_scale_actions_total"),
                    "{{namespace}}/{{policy}} {{direction}}",
                )
            ],
            unit="opm",
        )
    )
    board.panel(
        timeseries(
            "Decisions clamped",
            "1 when the last decision was clamped by a bound, a schedule or a behavior policy.",
            [
                Query(
                    max_by(POLICY, series("queuescale_controller_scaling_limited")),
                    "{{namespace}}/{{policy}}",
                )
            ],
        )
    )
    board.panel(
        timeseries(
            "Drains in progress",
            "Trino workers draining or Spark workers decommissioning, per policy.",
            [
                Query(
                    max_by(POLICY, series("queuescale_controller_drains_in_progress")),
                    "{{namespace}}/{{policy}}",
                )
            ],
            axis_label="workers",
        )
    )
    board.panel(
        timeseries(
            "Drains started and ended",
            "Per minute; ended by outcome: completed, aborted (load came back), timeout_removed, "
            "timeout_kept, failed.",
            [
                Query(
                    per_minute_or_zero([*POLICY], "queuescale_controller_drains_started_total"),
                    "{{namespace}}/{{policy}} started",
                ),
                Query(
                    per_minute_or_zero([*POLICY, "outcome"], "queuescale_controller_drains_finished_total"),
                    "{{namespace}}/{{policy}} {{outcome}}",
                ),
            ],
            unit="opm",
        )
    )
    drain = controller("queuescale_controller_drain_duration_seconds")
    board.panel(
        timeseries(
            "Drain duration",
            "From drain start to its end, whatever the outcome, over the last hour of drains.",
            [
                Query(quantile(0.5, POLICY, drain, FILTER, "1h"), "{{namespace}}/{{policy}} p50"),
                Query(quantile(0.95, POLICY, drain, FILTER, "1h"), "{{namespace}}/{{policy}} p95"),
            ],
            unit="s",
        )
    )
    board.panel(
        timeseries(
            "Actuator errors",
            "Failed calls per minute, by what failed.",
            [
                Query(
                    per_minute_or_zero([*POLICY, "operation"], "queuescale_controller_actuator_errors_total"),
                    "{{namespace}}/{{policy}} {{operation}}",
                )
            ],
            unit="opm",
        )
    )
    board.panel(
        timeseries(
            "Policy ready",
            "0: the policy is invalid or its target was not found (see its status).",
            [Query(max_by(POLICY, ready), "{{namespace}}/{{policy}}")],
        )
    )
    loop = controller("queuescale_controller_loop_duration_seconds")
    board.panel(
        timeseries(
            "Reconcile loop duration",
            "Time one pass over every policy took, per controller replica.",
            [
                Query(quantile(0.5, ["instance"], loop), "{{instance}} p50"),
                Query(quantile(0.99, ["instance"], loop), "{{instance}} p99"),
            ],
            unit="s",
        )
    )
    board.panel(
        timeseries(
            "Leader",
            "1 on the replica holding the leader Lease. Exactly one should.",
            [Query(max_by(["instance"], controller("queuescale_controller_leader")), "{{instance}}")],
        )
    )
    return board
