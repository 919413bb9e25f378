"""The reconcile loop: every period, for every policy, observe → decide → act → report.

One bad policy or target never stops the loop: every step's failure is caught at the policy's boundary,
counted, and reported in that policy's status. While this replica is not the leader it still observes
and decides (so its engine history is warm when it takes over) but writes nothing: no scale, no drain,
no status, no Event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kubernetes.client

from autoscaler.controller.actuator import (
    Actuator,
    ActuatorError,
    ActuatorEvent,
    Outcome,
    TargetState,
    spread_interval,
)
from autoscaler.controller.kube_api import KubeError
from autoscaler.controller.kube_api import call as kube_call
from autoscaler.controller.metrics import ControllerMetrics
from autoscaler.controller.observe import observe, reads_of
from autoscaler.controller.policies import PolicyEntry, PolicyKey, PolicySource
from autoscaler.controller.readings import MetricReader, PassReads
from autoscaler.controller.status import Cond, EventRecorder, StatusWriter, build_status, status_changed
from autoscaler.decision.engine import DEFAULT_CONFIG, Decision, EngineConfig, EngineState, decide
from autoscaler.policy.models import ScalingPolicy

__all__ = ["ActuatorFactory", "Controller", "HpaIndex", "PassReport"]

log = logging.getLogger(__name__)

ActuatorFactory = Callable[[ScalingPolicy], Actuator]

BACKOFF_BASE_SECONDS = 15.0
BACKOFF_MAX_SECONDS = 300.0


def target_identity(policy: ScalingPolicy) -> tuple[str, ...]:
    """What the actuator is bound to: a change here means a new actuator and a fresh engine history."""
    t = policy.spec.target
    ref = (
        t.workload.kind + "/" + t.workload.name
        if t.workload
        else ""
        if t.application is None
        else t.application.name
    )
    return (policy.metadata.namespace or "default", t.kind, ref)


@dataclass(slots=True)
class _Runtime:
    policy: ScalingPolicy
    actuator: Actuator
    identity: tuple[str, ...]
    engine: EngineState = field(default_factory=EngineState)
    status: dict[str, Any] | None = None
    logged: tuple[int, int] | None = None
    failures: int = 0
    retry_at: float = -math.inf

    def failed(self, now: float) -> None:
        """Back off a target that cannot be read: 15 s, 30 s, ... up to 5 minutes between tries."""
        self.failures += 1
        self.retry_at = now + min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (self.failures - 1))

    def succeeded(self) -> None:
        self.failures, self.retry_at = 0, -math.inf


@dataclass(frozen=True, slots=True)
class PassReport:
    """What one pass did for one policy (for tests, the demo's live view and logs)."""

    key: PolicyKey
    skipped: str = ""
    target: TargetState | None = None
    decision: Decision | None = None
    outcome: Outcome | None = None
    acted: bool = False
    problems: tuple[str, ...] = ()


class HpaIndex:
    """The workloads HorizontalPodAutoscalers target, read once per pass (autoscaling/v2)."""

    def __init__(self, api: kubernetes.client.ApiClient) -> None:
        self.v2 = kubernetes.client.AutoscalingV2Api(api)

    async def targets(self) -> dict[tuple[str, str, str], str]:
        """``{(namespace, kind, name): hpa name}``; empty when the list fails (logged)."""
        try:
            result = await kube_call(self.v2.list_horizontal_pod_autoscaler_for_all_namespaces)
        except KubeError as exc:
            log.warning("listing HorizontalPodAutoscalers failed: %s", exc.brief)
            return {}
        out: dict[tuple[str, str, str], str] = {}
        for hpa in result.items or []:
            ref = hpa.spec.scale_target_ref if hpa.spec is not None else None
            if ref is None or hpa.metadata is None:
                continue
            out[(hpa.metadata.namespace or "default", ref.kind, ref.name)] = hpa.metadata.name or ""
        return out


def _direction(decision: Decision) -> str:
    if decision.replicas > decision.current:
        return "up"
    if decision.replicas < decision.current:
        return "down"
    return "none"


class Controller:
    def __init__(
        self,
        *,
        source: PolicySource,
        reader: MetricReader,
        make_actuator: ActuatorFactory,
        metrics: ControllerMetrics | None = None,
        events: EventRecorder | None = None,
        status: StatusWriter | None = None,
        hpas: HpaIndex | None = None,
        dry_run: bool = False,
        is_leader: Callable[[], bool] | None = None,
        engine_config: EngineConfig = DEFAULT_CONFIG,
        concurrency: int = 16,
        status_refresh_seconds: float = 300.0,
        on_pass_start: Callable[[], None] | None = None,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.source = source
        self.reader = reader
        self.make_actuator = make_actuator
        self.metrics = metrics or ControllerMetrics()
        self.events = events or EventRecorder(None)
        self.status = status
        self.hpas = hpas
        self.dry_run = dry_run
        self.is_leader = is_leader or (lambda: True)
        self.engine_config = engine_config
        self.status_refresh = status_refresh_seconds
        #: Called at the start of every pass (e.g. ``KubeOps.begin_pass`` to share one pod list per namespace).
        self.on_pass_start = on_pass_start
        #: Awaited by :meth:`close` after the actuators (e.g. ``KubeOps.close`` to stop its watches).
        self.on_close = on_close
        self._limit = asyncio.Semaphore(concurrency)
        self._runtimes: dict[PolicyKey, _Runtime] = {}
        self._reported: dict[PolicyKey, str] = {}
        self.last: dict[PolicyKey, PassReport] = {}

    # ------------------------------------------------------------------ one pass

    async def reconcile(self, now: float) -> dict[PolicyKey, PassReport]:
        started = time.perf_counter()
        if self.on_pass_start is not None:
            self.on_pass_start()
        entries = self.source.snapshot()
        for key in [k for k in self._runtimes if k not in entries]:
            await self._forget(key)
        hpa_targets = await self.hpas.targets() if self.hpas is not None else {}
        reader = PassReads(self.reader)
        await reader.prefetch(
            (
                read
                for entry in entries.values()
                if entry.policy is not None
                for read in reads_of(entry.policy)
            ),
            now,
        )
        reports = await asyncio.gather(
            *(self._guarded(entry, now, hpa_targets, reader) for entry in entries.values())
        )
        self.last = {r.key: r for r in reports}
        self.metrics.loop_duration.observe(time.perf_counter() - started)
        return self.last

    async def run(
        self, stop: asyncio.Event, *, period_seconds: float = 15.0, clock: Callable[[], float] = time.time
    ) -> None:
        """Pass after pass until ``stop`` is set; a pass that raises is logged and the loop goes on."""
        while not stop.is_set():
            begun = time.monotonic()
            try:
                await self.reconcile(clock())
            except Exception:
                log.exception("reconcile pass failed")
            remaining = period_seconds - (time.monotonic() - begun)
            if remaining > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), remaining)

    async def close(self) -> None:
        for key in list(self._runtimes):
            await self._forget(key)
        self.source.close()
        if self.on_close is not None:
            await self.on_close()

    async def _forget(self, key: PolicyKey) -> None:
        runtime = self._runtimes.pop(key, None)
        self._reported.pop(key, None)
        if runtime is not None:
            try:
                await runtime.actuator.close()
            except Exception:
                log.exception("closing the actuator of %s/%s failed", *key)
        self.metrics.forget(*key)

    async def _guarded(
        self,
        entry: PolicyEntry,
        now: float,
        hpa_targets: Mapping[tuple[str, str, str], str],
        reader: MetricReader,
    ) -> PassReport:
        async with self._limit:
            try:
                return await self._one(entry, now, hpa_targets, reader)
            except Exception as exc:
                log.exception("policy %s/%s: pass failed", *entry.key)
                self.metrics.actuator_errors.labels(*entry.key, "bug").inc()
                return PassReport(entry.key, skipped=f"internal error: {exc}")

    async def _one(
        self,
        entry: PolicyEntry,
        now: float,
        hpa_targets: Mapping[tuple[str, str, str], str],
        reader: MetricReader,
    ) -> PassReport:
        key = entry.key
        leader = self.is_leader()
        if entry.policy is None:
            self.metrics.policy_ready.labels(*key).set(0)
            if leader:
                await self._report_once(entry, now, "InvalidPolicy", entry.error)
                await self._write_status(
                    entry, None, now, [Cond("Ready", "False", "InvalidPolicy", entry.error)]
                )
            return PassReport(key, skipped=f"invalid policy: {entry.error}")
        policy = entry.policy
        runtime = self._runtime(entry, policy)
        spec = policy.spec
        if spec.target.workload is not None:
            hpa = hpa_targets.get((key[0], spec.target.workload.kind, spec.target.workload.name))
            if hpa is not None:
                why = (
                    f"HorizontalPodAutoscaler {hpa} already scales {spec.target.workload.kind} "
                    f"{spec.target.workload.name}: not acting, to avoid fighting it"
                )
                self.metrics.policy_ready.labels(*key).set(0)
                if leader:
                    await self._report_once(entry, now, "ConflictingHPA", why)
                    await self._write_status(
                        entry,
                        runtime,
                        now,
                        [
                            Cond("Ready", "True", "Valid"),
                            Cond("ScalingActive", "False", "ConflictingHPA", why),
                        ],
                    )
                return PassReport(key, skipped=why)
        if now < runtime.retry_at:
            return PassReport(
                key,
                skipped=f"backing off after {runtime.failures} failed passes until {runtime.retry_at:.0f}",
            )
        try:
            target = await runtime.actuator.observe(now)
        except ActuatorError as exc:
            runtime.failed(now)
            self.metrics.actuator_errors.labels(*key, exc.operation).inc()
            if leader:
                await self._write_status(
                    entry,
                    runtime,
                    now,
                    [
                        Cond("Ready", "True", "Valid"),
                        Cond("ScalingActive", "False", "FailedGetTarget", str(exc)),
                    ],
                )
            return PassReport(key, skipped=f"target unreadable: {exc}")
        if not target.found:
            self.metrics.policy_ready.labels(*key).set(0)
            if leader:
                await self._report_once(entry, now, "TargetNotFound", target.reason)
                await self._write_status(
                    entry, runtime, now, [Cond("Ready", "False", "TargetNotFound", target.reason)]
                )
            return PassReport(key, skipped=f"target not found: {target.reason}", target=target)
        # The target could be read: the API answers again. Failures of actions are reported, not backed
        # off, so a missing Secret (a drain cannot start) never delays a scale-up.
        runtime.succeeded()
        self._reported.pop(key, None)
        self.metrics.policy_ready.labels(*key).set(1)
        # Workers being drained are leaving: the engine decides for the ones that stay (as the simulator
        # does), or a scale-down rate limit would read the drained count as "not yet removed" and undo it.
        staying = max(0, target.replicas - target.draining)
        observed = await observe(policy, reader, now, staying, min(target.ready, staying))
        decision, runtime.engine = decide(policy, observed.observation, runtime.engine, self.engine_config)
        self.metrics.decisions.labels(*key, _direction(decision), decision.winner or "held").inc()
        self.metrics.desired.labels(*key).set(decision.replicas)
        self.metrics.current.labels(*key).set(target.replicas)
        self.metrics.limited.labels(*key).set(1 if decision.clamped_by else 0)
        dry = self.dry_run or decision.dry_run
        if runtime.logged != (target.replicas, decision.replicas):
            # One line per change of the decision, not per pass: a log a person can follow.
            runtime.logged = (target.replicas, decision.replicas)
            log.info(
                "%s/%s: %d → %d: %s",
                *key,
                target.replicas,
                decision.replicas,
                "; ".join(decision.reasons),
                extra={
                    "policy": f"{key[0]}/{key[1]}",
                    "current": target.replicas,
                    "desired": decision.replicas,
                    "winner": decision.winner or "held",
                    "dry_run": dry,
                    "leader": leader,
                },
            )
        if not leader:
            return PassReport(key, target=target, decision=decision, problems=observed.problems)
        outcome = await runtime.actuator.apply(decision.replicas, now, dry_run=dry)
        self._count(key, target, outcome)
        events = list(outcome.events)
        if outcome.replicas is not None and outcome.replicas != target.replicas:
            up = outcome.replicas > target.replicas
            if not any(e.reason.startswith("Scaled") for e in events):
                events.append(
                    ActuatorEvent(
                        "ScaledUp" if up else "ScaledDown",
                        f"{target.replicas} → {outcome.replicas}: {decision.reasons[0] if decision.reasons else ''}",
                    )
                )
        for err in outcome.errors:
            events.append(ActuatorEvent("ActuatorError", f"{err.operation}: {err}", "Warning"))
        for event in events:
            await self.events.record(entry, event, now)
        conditions = [
            Cond("Ready", "True", "Valid"),
            Cond(
                "ScalingActive",
                "False" if decision.winner is None else "True",
                "DryRun" if dry else ("MetricsUnavailable" if decision.winner is None else "ValidMetrics"),
                "; ".join(observed.problems) if decision.winner is None else "",
            ),
            Cond(
                "ScalingLimited",
                "True" if decision.clamped_by else "False",
                _reason_word(decision.hpa_reason) if decision.clamped_by else "DesiredWithinRange",
                f"clamped by {decision.clamped_by}" if decision.clamped_by else "",
            ),
            Cond(
                "Draining",
                "True" if outcome.draining else "False",
                "DrainInProgress" if outcome.draining else "NoDrain",
                outcome.detail if outcome.draining else "",
            ),
        ]
        await self._write_status(
            entry,
            runtime,
            now,
            conditions,
            current=target.replicas,
            desired=decision.replicas,
            reason="; ".join(decision.reasons),
            scaled=outcome.replicas is not None and outcome.replicas != target.replicas,
        )
        return PassReport(
            key, target=target, decision=decision, outcome=outcome, acted=True, problems=observed.problems
        )

    # ------------------------------------------------------------------ helpers

    def _runtime(self, entry: PolicyEntry, policy: ScalingPolicy) -> _Runtime:
        identity = target_identity(policy)
        runtime = self._runtimes.get(entry.key)
        if runtime is not None and runtime.identity == identity:
            if runtime.policy.spec != policy.spec:
                # Same target, new settings (drain timeouts, decommission...): a fresh actuator reads them.
                # Drains in flight survive it: their progress lives in pod annotations, not in the actuator.
                asyncio.get_running_loop().create_task(runtime.actuator.close())
                runtime.actuator = self.make_actuator(policy)
            runtime.policy = policy
            return runtime
        if runtime is not None:
            # A new target: the old actuator's drains and the engine's history belong to the old one.
            asyncio.get_running_loop().create_task(runtime.actuator.close())
        runtime = _Runtime(policy, self.make_actuator(policy), identity)
        self._runtimes[entry.key] = runtime
        return runtime

    def _count(self, key: PolicyKey, target: TargetState, outcome: Outcome) -> None:
        m = self.metrics
        if outcome.replicas is not None and outcome.replicas != target.replicas:
            m.scale_actions.labels(*key, "up" if outcome.replicas > target.replicas else "down").inc()
        if outcome.drains_started:
            m.drains_started.labels(*key).inc(outcome.drains_started)
        for end in outcome.drains_ended:
            m.drains_finished.labels(*key, end.outcome).inc()
            m.drain_duration.labels(*key).observe(end.seconds)
        m.drains_in_progress.labels(*key).set(outcome.draining)
        for err in outcome.errors:
            m.actuator_errors.labels(*key, err.operation).inc()

    async def _report_once(self, entry: PolicyEntry, now: float, reason: str, message: str) -> None:
        """One Warning Event per distinct problem, not one per pass."""
        stamp = f"{entry.generation}:{reason}:{message}"
        if self._reported.get(entry.key) == stamp:
            return
        self._reported[entry.key] = stamp
        await self.events.record(entry, ActuatorEvent(reason, message, "Warning"), now)

    async def _write_status(
        self,
        entry: PolicyEntry,
        runtime: _Runtime | None,
        now: float,
        conditions: list[Cond],
        **fields: Any,
    ) -> None:
        if self.status is None or not entry.from_cluster:
            return
        previous = runtime.status if runtime is not None else None
        status = build_status(previous, conditions, now, generation=entry.generation or None, **fields)
        # Spread per policy, so the refreshes of policies written in one pass do not all fall in another.
        refresh = spread_interval(self.status_refresh, *entry.key)
        if not status_changed(previous, status, now, refresh):
            return
        if await self.status.write(entry, status) and runtime is not None:
            runtime.status = status


def _reason_word(hpa_reason: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in hpa_reason.replace("-", " ").split()) or "Limited"
