"""A stand-in for the controller's ``/metrics`` until the real controller runs in these tests.

It is the real :class:`ControllerMetrics` registry (so the names and labels are the controller's own),
given values for two ScalingPolicies and advanced on a timer the way a working controller would, served
by prometheus_client's HTTP server on loopback. Swap :func:`stand_in_controller_metrics` for a running
controller when one exists; the tests only need the ``host:port`` Prometheus scrapes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import start_http_server

from autoscaler.controller.metrics import DRAIN_OUTCOMES, ControllerMetrics

POLICIES = (("trino", "adhoc-workers"), ("spark", "etl-pool"))


def _seed(metrics: ControllerMetrics) -> None:
    metrics.is_leader.set(1)
    for (namespace, policy), (desired, current) in zip(POLICIES, ((5, 4), (3, 3)), strict=True):
        metrics.desired.labels(namespace, policy).set(desired)
        metrics.current.labels(namespace, policy).set(current)
        metrics.limited.labels(namespace, policy).set(0)
        metrics.policy_ready.labels(namespace, policy).set(1)
        metrics.drains_in_progress.labels(namespace, policy).set(1)


def _tick(metrics: ControllerMetrics, step: int) -> None:
    """One reconcile pass: a decision per policy, now and then a scale action, a drain, an error."""
    metrics.loop_duration.observe(0.002 + 0.001 * (step % 5))
    for namespace, policy in POLICIES:
        direction = ("up", "down", "none")[step % 3]
        metrics.decisions.labels(namespace, policy, direction, ("queue", "forecast")[step % 2]).inc()
        metrics.scale_actions.labels(namespace, policy, ("up", "down")[step % 2]).inc()
        metrics.drains_started.labels(namespace, policy).inc()
        metrics.drains_finished.labels(namespace, policy, DRAIN_OUTCOMES[step % len(DRAIN_OUTCOMES)]).inc()
        metrics.drain_duration.labels(namespace, policy).observe(30.0 + 20 * (step % 4))
        metrics.actuator_errors.labels(namespace, policy, "patch_scale").inc()


@contextmanager
def stand_in_controller_metrics(tick_seconds: float = 0.25) -> Iterator[str]:
    """Serve the stand-in's metrics; yields the ``host:port`` to scrape."""
    metrics = ControllerMetrics()
    _seed(metrics)
    server, serving = start_http_server(0, addr="127.0.0.1", registry=metrics.registry)
    stop = threading.Event()

    def run() -> None:
        step = 0
        while not stop.wait(tick_seconds):
            _tick(metrics, step)
            step += 1

    ticker = threading.Thread(target=run, name="controller-stand-in", daemon=True)
    ticker.start()
    try:
        yield f"127.0.0.1:{server.server_port}"
    finally:
        stop.set()
        ticker.join(timeout=10)
        server.shutdown()
        server.server_close()
        serving.join(timeout=10)
