"""The TrinoWorkers actuator: scale a Deployment or StatefulSet of Trino workers without killing queries.

Each pass reads the scale subresource and the workload's pods (by the scale's selector), asks every
running pod's Trino worker for its state and its tasks, lets :func:`~autoscaler.controller.targets.trino_workers.plan.plan_drain`
decide, then carries the plan out: annotations before a drain starts (so a restart resumes it), Trino
state changes, and the replica count last. Up is one write of the scale subresource; down happens over
several passes as the leavers drain.

A worker is reached at ``<scheme>://<status.podIP>:<port>``: the scheme of the coordinator URL and the
container port named ``http`` (``https`` for an https coordinator), 8080/8443 when none is named. The
state changes are sent as the policy's ``user`` (``X-Trino-User``), with Basic credentials when the
policy names a Secret (read with the official client on every pass, so a rotated password takes effect
at once) or when ``password_file`` is given (a mounted Secret; it wins over the Secret reference).
"""

from __future__ import annotations

import asyncio
import logging
import math
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp

from autoscaler.controller.actuator import (
    DRAIN_STARTED_ANNOTATION,
    POD_DELETION_COST,
    ActuatorError,
    ActuatorEvent,
    DrainEnd,
    Outcome,
    TargetState,
    parse_time,
    spread_interval,
)
from autoscaler.controller.kube_ops import KubeOps, WorkloadKind
from autoscaler.controller.pods import PodView, pod_view
from autoscaler.controller.targets.trino_workers.plan import (
    DRAIN_KEPT_ANNOTATION,
    DrainPlan,
    DrainSettings,
    Ended,
    PodChange,
    WorkerView,
    plan_drain,
)
from autoscaler.controller.targets.trino_workers.worker_api import TrinoWorkerClient, auth_headers
from autoscaler.policy.models import Drain, ScalingPolicy, TrinoTarget, TrinoWorkerTls, WorkloadRef

__all__ = ["CREDENTIALS_CHECK_SECONDS", "TrinoWorkersActuator", "pod_ordinal", "worker_url", "worker_view"]

log = logging.getLogger(__name__)


#: How often (at least; see ``spread_interval``) a steady target's Trino credentials are re-read to report
#: a missing or broken Secret.
CREDENTIALS_CHECK_SECONDS = 60.0

#: Annotations this actuator writes: a pod carrying one is part of a drain in flight or just finished.
_OURS = frozenset({DRAIN_STARTED_ANNOTATION, DRAIN_KEPT_ANNOTATION, POD_DELETION_COST})


def pod_ordinal(pod_name: str, set_name: str) -> int | None:
    """The StatefulSet ordinal in ``<set>-<n>``; None for another name."""
    prefix = set_name + "-"
    tail = pod_name[len(prefix) :] if pod_name.startswith(prefix) else ""
    return int(tail) if tail.isdigit() and (tail == "0" or not tail.startswith("0")) else None


def worker_url(pod: PodView, scheme: str = "http") -> str | None:
    """The worker's base URL from the pod (its port named ``http``/``https``, else Trino's default), None
    while it has no IP."""
    if not pod.ip:
        return None
    port_name, default = ("https", 8443) if scheme == "https" else ("http", 8080)
    port = pod.ports.get(port_name, default)
    host = f"[{pod.ip}]" if ":" in pod.ip else pod.ip
    return f"{scheme}://{host}:{port}"


def _cost(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def worker_view(
    pod: PodView, state: str | None, work: int | None, ordinal: int | None, now: float
) -> WorkerView:
    """What the planner needs of one pod; an unreadable drain-started time counts from ``now``."""
    notes = pod.annotations
    raw_started = notes.get(DRAIN_STARTED_ANNOTATION)
    started = parse_time(raw_started)
    invalid = raw_started is not None and started is None
    running = pod.running
    return WorkerView(
        pod=pod.name,
        ordinal=ordinal,
        running=running,
        ready=pod.ready,
        state=state if running else None,
        work=work if running else 0,
        drain_started=now if invalid else started,
        started_invalid=invalid,
        deletion_cost=_cost(notes.get(POD_DELETION_COST)),
        kept_at=parse_time(notes.get(DRAIN_KEPT_ANNOTATION)),
    )


@dataclass(frozen=True, slots=True)
class _Pass:
    """What one pass saw: the scale, the pods in play (JSON form) and the planner's view of them."""

    replicas: int
    selector: str
    pods: dict[str, PodView]
    views: tuple[WorkerView, ...]
    headers: dict[str, str]
    credentials_error: ActuatorError | None
    client: TrinoWorkerClient


class TrinoWorkersActuator:
    """Implements :class:`~autoscaler.controller.actuator.Actuator` for a TrinoWorkers target."""

    def __init__(
        self,
        kube: KubeOps,
        *,
        namespace: str,
        workload: WorkloadRef,
        trino: TrinoTarget,
        drain: Drain,
        password_file: Path | None = None,
        request_timeout_seconds: float = 5.0,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.kind: WorkloadKind = workload.kind
        self.name = workload.name
        self.trino = trino
        self.settings = DrainSettings.of(drain)
        self.password_file = password_file
        self.scheme = "https" if trino.coordinator_url.startswith("https://") else "http"
        self._timeout = request_timeout_seconds
        self._session: aiohttp.ClientSession | None = None
        self._ssl_context: tuple[str, ssl.SSLContext] | None = None
        self._observed: tuple[float, int, list[PodView]] | None = None
        self._credentials_checked_at = -math.inf
        self._credentials_every = spread_interval(CREDENTIALS_CHECK_SECONDS, namespace, workload.name)

    @classmethod
    def for_policy(cls, policy: ScalingPolicy, kube: KubeOps, **kwargs: Any) -> TrinoWorkersActuator:
        target = policy.spec.target
        if target.workload is None or target.trino is None:
            raise ValueError(f"policy {policy.metadata.name} is not a TrinoWorkers target")
        return cls(
            kube,
            namespace=policy.metadata.namespace,
            workload=target.workload,
            trino=target.trino,
            drain=policy.spec.drain,
            **kwargs,
        )

    # ------------------------------------------------------------------ Actuator

    async def observe(self, now: float) -> TargetState:
        self._observed = None
        scale = await self.kube.get_scale(self.kind, self.namespace, self.name)
        if scale is None:
            return TargetState(
                0, 0, found=False, reason=f"{self.kind} {self.namespace}/{self.name} not found"
            )
        pods = [p for p in await self._pods(scale.selector) if p.in_play]
        self._observed = (now, scale.replicas, pods)
        return TargetState(
            replicas=scale.replicas,
            ready=sum(1 for p in pods if p.ready),
            draining=sum(1 for p in pods if DRAIN_STARTED_ANNOTATION in p.annotations),
            selector=scale.selector,
        )

    async def apply(self, desired: int, now: float, *, dry_run: bool = False) -> Outcome:
        observed, self._observed = self._observed, None
        # Steady state in the same pass as observe(): nothing to add, nothing of ours in flight (no drain,
        # kept or deletion-cost annotation), so the workers need no probe. This is most passes of most
        # policies; a worker someone else drained is noticed at the next change of size.
        if (
            observed is not None
            and observed[0] == now
            and desired == observed[1]
            and not any(_OURS.intersection(p.annotations) for p in observed[2])
        ):
            # Credentials are still checked now and then, so a missing Secret is reported before the
            # first drain needs it rather than at that moment.
            if now - self._credentials_checked_at >= self._credentials_every:
                self._credentials_checked_at = now
                try:
                    await self._headers()
                except ActuatorError as exc:
                    return Outcome(errors=(exc,), detail=str(exc))
            return Outcome()
        try:
            seen = await self._see(now)
        except ActuatorError as exc:
            return Outcome(errors=(exc,), detail=str(exc))
        if seen is None:
            return Outcome(detail=f"{self.kind} {self.namespace}/{self.name} not found")
        plan = plan_drain(
            seen.views,
            desired=desired,
            replicas=seen.replicas,
            kind=self.kind,
            version=self.trino.version,
            settings=self.settings,
            now=now,
        )
        if seen.credentials_error is not None:
            up = plan.replicas if plan.replicas is not None and plan.replicas > seen.replicas else None
            notes = (*plan.notes, "no Trino credentials: only a scale-up is carried out")
            leaving = tuple(v.pod for v in seen.views if v.leaving)
            plan = DrainPlan(replicas=up, leavers=leaving, notes=notes)
        if dry_run:
            return Outcome(
                draining=len(plan.leavers), detail="dry run: would " + _describe(plan, seen.replicas)
            )
        outcome = await self._carry_out(plan, seen, now)
        if seen.credentials_error is not None:
            outcome = replace(outcome, errors=(seen.credentials_error, *outcome.errors))
        return outcome

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ------------------------------------------------------------------ reading

    async def _pods(self, selector: str, *, fresh: bool = False) -> list[PodView]:
        if not selector:
            raise ActuatorError("list_pods", f"{self.kind} {self.namespace}/{self.name} has no selector")
        return [pod_view(p) for p in await self.kube.list_pods_json(self.namespace, selector, fresh=fresh)]

    async def _headers(self) -> dict[str, str]:
        password: str | None = None
        if self.password_file is not None:
            try:
                password = self.password_file.read_text().strip()
            except OSError as exc:
                raise ActuatorError(
                    "read_secret", f"cannot read {self.password_file}: {exc.strerror}"
                ) from exc
        elif self.trino.credentials_secret is not None:
            ref = self.trino.credentials_secret
            password = await self.kube.read_secret_value(self.namespace, ref.name, ref.key)
        return auth_headers(self.trino.user, password)

    async def _client(self) -> TrinoWorkerClient:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout))
        tls = self.trino.worker_tls
        if self.scheme != "https" or tls is None:
            return TrinoWorkerClient(self._session)
        return TrinoWorkerClient(self._session, ssl=await self._ssl(tls), server_hostname=tls.server_name)

    async def _ssl(self, tls: TrinoWorkerTls) -> ssl.SSLContext | bool:
        """The context that checks HTTPS workers; the CA Secret is read every pass (it may rotate)."""
        if tls.insecure_skip_verify:
            return False
        if tls.ca_secret is None:
            return True
        pem = await self.kube.read_secret_value(self.namespace, tls.ca_secret.name, tls.ca_secret.key)
        if self._ssl_context is None or self._ssl_context[0] != pem:
            try:
                context = ssl.create_default_context(cadata=pem)
            except (ssl.SSLError, ValueError) as exc:
                raise ActuatorError(
                    "read_secret",
                    f"Secret {self.namespace}/{tls.ca_secret.name} key {tls.ca_secret.key} "
                    f"is not a PEM CA bundle: {exc}",
                ) from exc
            self._ssl_context = (pem, context)
        return self._ssl_context[1]

    async def _see(self, now: float) -> _Pass | None:
        # About to act: read fresh, not from a watch cache that may trail a burst of pod changes.
        scale = await self.kube.get_scale(self.kind, self.namespace, self.name, fresh=True)
        if scale is None:
            return None
        pods: dict[str, PodView] = {}
        ordinals: dict[str, int | None] = {}
        for pod in await self._pods(scale.selector, fresh=True):
            name = pod.name
            ordinal = pod_ordinal(name, self.name) if self.kind == "StatefulSet" else None
            if not pod.in_play:
                continue
            # The StatefulSet controller removes ordinals at or above replicas on its own.
            if self.kind == "StatefulSet" and (ordinal is None or ordinal >= scale.replicas):
                continue
            pods[name] = pod
            ordinals[name] = ordinal
        credentials_error: ActuatorError | None = None
        try:
            headers = await self._headers()
        except ActuatorError as exc:
            # The states are public; without credentials the pass may still scale up, nothing else.
            credentials_error = exc
            headers = auth_headers(self.trino.user, None)
        client = await self._client()

        async def probe(pod: PodView) -> tuple[str | None, int | None]:
            url = worker_url(pod, self.scheme)
            if url is None or not pod.running:
                return None, 0
            state, tasks = await asyncio.gather(client.state(url, headers), client.tasks(url, headers))
            return state, tasks

        probes = await asyncio.gather(*(probe(p) for p in pods.values()))
        views = tuple(
            worker_view(pod, state, work, ordinals[name], now)
            for (name, pod), (state, work) in zip(pods.items(), probes, strict=True)
        )
        return _Pass(scale.replicas, scale.selector, pods, views, headers, credentials_error, client)

    # ------------------------------------------------------------------ writing

    async def _carry_out(self, plan: DrainPlan, seen: _Pass, now: float) -> Outcome:
        headers = seen.headers
        client = seen.client
        written: dict[str, object] = {}
        errors: list[ActuatorError] = []
        ended: list[Ended] = []
        started: list[PodChange] = []

        async def run(change: PodChange) -> None:
            try:
                await self._change(change, seen, client, headers, written)
            except ActuatorError as exc:
                errors.append(exc)
            else:
                if change.ended is not None:
                    ended.append(change.ended)
            # A drain exists once its pod is marked, even if Trino refused: the next pass asks again.
            if change.kind == "start" and f"pod {change.pod} (start)" in written:
                started.append(change)

        await asyncio.gather(*(run(c) for c in plan.changes))
        replicas: int | None = None
        if plan.replicas is not None:
            try:
                scale = await self.kube.set_replicas(self.kind, self.namespace, self.name, plan.replicas)
            except ActuatorError as exc:
                errors.append(exc)
            else:
                replicas = scale.replicas
                written["scale"] = scale.obj
                ended.extend(plan.removed)
        not_started = {c.pod for c in plan.changes if c.kind == "start"} - {c.pod for c in started}
        still_there = {e.pod for e in plan.removed} if replicas is None else set()
        leavers = (set(plan.leavers) - not_started) | still_there
        events = _events(started, ended, seen.replicas, replicas, plan, self.trino.version)
        return Outcome(
            replicas=replicas,
            draining=len(leavers),
            drains_started=len(started),
            drains_ended=tuple(DrainEnd(e.outcome, e.seconds) for e in ended),
            events=tuple(events),
            errors=tuple(errors),
            detail="; ".join(plan.notes),
            written=written,
        )

    async def _change(
        self,
        change: PodChange,
        seen: _Pass,
        client: TrinoWorkerClient,
        headers: Mapping[str, str],
        written: dict[str, object],
    ) -> None:
        url = worker_url(seen.pods[change.pod], self.scheme) or ""

        async def annotate() -> None:
            if change.annotations:
                patch = {"metadata": {"annotations": dict(change.annotations)}}
                pod = await self.kube.patch_pod(self.namespace, change.pod, patch)
                written[f"pod {change.pod} ({change.kind})"] = pod

        async def put() -> None:
            if change.state is not None:
                await client.put_state(url, change.state, headers, change.pod)

        if change.kind == "undrain":
            # Back to work first: a cleared annotation with the worker still draining would be lost.
            await put()
            await annotate()
        else:
            # Mark first: a crash before the PUT leaves a marked ACTIVE worker the next pass asks again.
            await annotate()
            await put()


def _names(changes: Sequence[PodChange] | Sequence[Ended]) -> str:
    return ", ".join(sorted(c.pod for c in changes))


def _describe(plan: DrainPlan, current: int) -> str:
    parts = [f"{c.kind} {c.pod}" + (f" ({c.state})" if c.state else "") for c in plan.changes]
    if plan.replicas is not None:
        parts.append(f"write replicas {current} -> {plan.replicas}")
    text = "; ".join(parts) or "change nothing"
    return text + ("; " + "; ".join(plan.notes) if plan.notes else "")


def _events(
    started: Sequence[PodChange],
    ended: Sequence[Ended],
    before: int,
    after: int | None,
    plan: DrainPlan,
    version: int,
) -> list[ActuatorEvent]:
    out: list[ActuatorEvent] = []
    if started:
        state = next((c.state for c in started if c.state), "leaving")
        out.append(ActuatorEvent("DrainStarted", f"{_names(started)}: {state} (Trino {version})"))
    aborted = [e for e in ended if e.outcome == "aborted"]
    if aborted:
        out.append(ActuatorEvent("DrainAborted", f"{_names(aborted)}: back to work, the load returned"))
    for e in ended:
        if e.outcome == "timeout_kept":
            out.append(
                ActuatorEvent(
                    "DrainTimedOut",
                    f"{e.pod}: not drained after {e.seconds:.0f}s ({_tasks(e.work)} left); kept (onTimeout: Abort)",
                    "Warning",
                )
            )
        elif e.outcome == "timeout_removed":
            out.append(
                ActuatorEvent(
                    "DrainTimedOut",
                    f"{e.pod}: not drained after {e.seconds:.0f}s; removed, killing {_tasks(e.work)} "
                    "(onTimeout: Force)",
                    "Warning",
                )
            )
    if after is not None and after != before:
        if after > before:
            out.append(ActuatorEvent("ScaledUp", f"{before} → {after}" + _why(plan)))
        else:
            gone = [e for e in ended if e.outcome in ("completed", "timeout_removed")]
            out.append(
                ActuatorEvent("ScaledDown", f"{before} → {after}: {_names(gone) or 'pods not started'}")
            )
    return out


def _why(plan: DrainPlan) -> str:
    return f" ({'; '.join(plan.notes)})" if plan.notes else ""


def _tasks(work: int | None) -> str:
    return "an unknown number of tasks" if work is None else f"{work} task(s)"
