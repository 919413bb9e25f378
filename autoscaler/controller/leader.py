"""Leader election on a ``coordination.k8s.io/v1`` Lease: one replica acts, the others stand by.

The semantics are client-go's ``tools/leaderelection``: the holder renews ``spec.renewTime`` every retry
period; a candidate takes the Lease only after it has seen the same record, unchanged, for the record's
``leaseDurationSeconds`` by its *own* clock (the remote timestamps are never compared with the local
clock, so clock skew between replicas cannot hand the Lease over early); every write carries the
``resourceVersion`` that was read, so of two candidates racing for one record the API server lets one
win and answers 409 to the other; a clean shutdown releases the Lease (empty holder,
``leaseDurationSeconds: 1``) so a standby takes over at its next retry.

Acting is bounded more tightly than holding: :meth:`LeaseElector.is_leader` is true only until
``renew_deadline`` after the *start* of the last successful write. A standby's clock for the record
starts after that write landed and runs ``leaseDurationSeconds > renew_deadline``, so a leader cut off
from the API server stops acting before anyone else can start.

The official client's ``kubernetes.leaderelection`` is not used: its lock talks through the global
default client rather than a given ``ApiClient``; it blocks in ``time.sleep`` and runs the leading
callback in a thread; it cannot say whether this replica may act *now* (only callbacks at transitions);
it has no release, never writes ``leaseTransitions``, measures durations on the wall clock, rejects
retry periods under a second, exits the process on a bad setting and converts times through naive
local datetimes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import signal
import socket
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TextIO

import kubernetes.client
import urllib3.exceptions
from prometheus_client import Gauge

from autoscaler.controller.kube_api import Conflict, KubeError, NotFound, call_here
from autoscaler.controller.kube_api import call as kube_call

__all__ = [
    "LeaseDecision",
    "LeaseElector",
    "LeaseRecord",
    "Observed",
    "check_durations",
    "decide",
    "default_identity",
    "holds",
    "lease_body",
    "micro_time",
    "observe",
    "record_of",
    "released",
]

log = logging.getLogger(__name__)

#: client-go's ``JitterFactor``: a candidate waits between one and 2.2 retry periods between tries.
JITTER_FACTOR = 1.2

Action = Literal["create", "acquire", "renew", "wait"]

#: Failures of one round trip that the next retry may not meet (API errors, connection, bad body).
_TRANSIENT = (KubeError, urllib3.exceptions.HTTPError, OSError, ValueError)


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """A Lease's ``spec``: who holds it, for how long, and how often it changed hands."""

    holder: str
    """``holderIdentity``; "" when nobody holds it (released)."""
    lease_seconds: int
    acquire_time: datetime | None
    renew_time: datetime | None
    transitions: int


@dataclass(frozen=True, slots=True)
class Observed:
    """The record as last read, and the local time from which it has been seen unchanged."""

    record: LeaseRecord | None
    """None when the Lease does not exist."""
    resource_version: str
    since: float


@dataclass(frozen=True, slots=True)
class LeaseDecision:
    action: Action
    record: LeaseRecord | None
    """What to write (None for ``wait``)."""
    reason: str


def check_durations(lease_seconds: int, renew_deadline: float, retry_period: float) -> None:
    """Reject settings under which two replicas could act at once or a leader could never renew."""
    if lease_seconds < 1:
        raise ValueError("lease_seconds must be at least 1 (the Lease stores whole seconds)")
    if lease_seconds <= renew_deadline:
        raise ValueError("lease_seconds must be greater than renew_deadline")
    if renew_deadline <= JITTER_FACTOR * retry_period:
        raise ValueError(f"renew_deadline must be greater than retry_period x {JITTER_FACTOR}")
    if retry_period <= 0:
        raise ValueError("retry_period must be positive")


def observe(
    previous: Observed | None, record: LeaseRecord | None, resource_version: str, now: float
) -> Observed:
    """Fold one read into the observation; the expiry clock restarts whenever the Lease was written.

    client-go compares the record alone; a new ``resourceVersion`` also counts here, so even a holder
    that rewrote an identical record (a wall clock stepped back) is seen as alive.
    """
    if previous is not None and previous.record == record and previous.resource_version == resource_version:
        return previous
    return Observed(record, resource_version, now)


def decide(
    observed: Observed, identity: str, now: float, wall: datetime, lease_seconds: int
) -> LeaseDecision:
    """What a candidate does with what it read: create, acquire or renew the Lease, or wait.

    ``now`` is the local (monotonic) clock ``observed.since`` was taken on; ``wall`` is only written.
    """
    record = observed.record
    if record is None:
        return LeaseDecision("create", LeaseRecord(identity, lease_seconds, wall, wall, 0), "no Lease yet")
    if record.holder == identity:
        renewed = LeaseRecord(identity, lease_seconds, record.acquire_time or wall, wall, record.transitions)
        return LeaseDecision("renew", renewed, "held by this replica")
    taken = LeaseRecord(identity, lease_seconds, wall, wall, record.transitions + 1)
    if not record.holder:
        return LeaseDecision("acquire", taken, "released")
    # A record without a duration is malformed; waiting our own duration is the safe reading of it.
    duration = record.lease_seconds if record.lease_seconds > 0 else lease_seconds
    left = observed.since + duration - now
    if left > 0:
        return LeaseDecision(
            "wait", None, f"held by {record.holder}, unchanged for another {left:.1f}s at most"
        )
    return LeaseDecision("acquire", taken, f"{record.holder} has not renewed for {duration}s")


def holds(renewed_at: float | None, now: float, renew_deadline: float) -> bool:
    """Whether a replica whose last successful write started at ``renewed_at`` may still act."""
    return renewed_at is not None and renewed_at <= now < renewed_at + renew_deadline


def released(record: LeaseRecord, wall: datetime) -> LeaseRecord:
    """The record a leader writes when it steps down: nobody holds it, and it expires in a second."""
    return LeaseRecord("", 1, wall, wall, record.transitions)


def micro_time(at: datetime) -> str:
    """``metav1.MicroTime`` text: RFC 3339 in UTC with exactly six fractional digits."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _wire_time(at: datetime) -> datetime:
    # The API server parses MicroTime with exactly six fractional digits, and newer official clients
    # re-serialize a body's times with isoformat(), which drops the fraction when it is zero.
    at = at.astimezone(UTC)
    return at if at.microsecond else at + timedelta(microseconds=1)


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def record_of(lease: Mapping[str, Any]) -> LeaseRecord:
    """The election record in a Lease document (JSON as the API server sends it)."""
    spec = lease.get("spec") or {}
    holder = spec.get("holderIdentity")
    seconds = spec.get("leaseDurationSeconds")
    transitions = spec.get("leaseTransitions")
    return LeaseRecord(
        holder=holder if isinstance(holder, str) else "",
        lease_seconds=seconds if isinstance(seconds, int) else 0,
        acquire_time=_parse_time(spec.get("acquireTime")),
        renew_time=_parse_time(spec.get("renewTime")),
        transitions=transitions if isinstance(transitions, int) else 0,
    )


def lease_body(
    namespace: str, name: str, record: LeaseRecord, metadata: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The Lease to create, or to replace when given the ``metadata`` that was read.

    The read metadata carries the ``resourceVersion`` the write is conditional on, and keeps labels and
    annotations others put on the Lease.
    """
    meta: dict[str, Any] = dict(metadata or {})
    meta.update(name=name, namespace=namespace)
    spec: dict[str, Any] = {
        "holderIdentity": record.holder,
        "leaseDurationSeconds": record.lease_seconds,
        "leaseTransitions": record.transitions,
    }
    if record.acquire_time is not None:
        spec["acquireTime"] = micro_time(_wire_time(record.acquire_time))
    if record.renew_time is not None:
        spec["renewTime"] = micro_time(_wire_time(record.renew_time))
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta, "spec": spec}


def default_identity() -> str:
    """Host name plus a random suffix, as client-go's callers do: a restarted replica is a new candidate."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


def _utc_now() -> datetime:
    return datetime.now(UTC)


class LeaseElector:
    """Holds or waits for one Lease; ask :meth:`is_leader` before every action.

    ``clock`` is a monotonic clock in seconds (durations are measured on it); ``wall_clock`` gives the
    times written into the Lease. ``on_change`` is called on the event loop with True when this replica
    starts leading and False when it stops; ``leading`` is set while it leads and ``gauge`` (e.g.
    ``ControllerMetrics.is_leader``) reads 1 while it leads.
    """

    def __init__(
        self,
        api: kubernetes.client.ApiClient,
        namespace: str,
        name: str,
        identity: str,
        *,
        lease_seconds: int = 15,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = _utc_now,
        on_change: Callable[[bool], None] | None = None,
        gauge: Gauge | None = None,
    ) -> None:
        check_durations(lease_seconds, renew_deadline, retry_period)
        if not identity:
            raise ValueError("identity must not be empty")
        self.coordination = kubernetes.client.CoordinationV1Api(api)
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_seconds = lease_seconds
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.clock = clock
        self.wall_clock = wall_clock
        self.on_change = on_change
        self.gauge = gauge
        self.leading = asyncio.Event()
        self.observed: Observed | None = None
        self._metadata: Mapping[str, Any] | None = None
        self._renewed_at: float | None = None
        self._reported = False
        self._closed = False
        self._lock = asyncio.Lock()
        self._deadline_timer: asyncio.TimerHandle | None = None
        if gauge is not None:
            gauge.set(0)

    @property
    def holder(self) -> str | None:
        """The holder last seen in the Lease ("" when released, None before the first read)."""
        if self.observed is None or self.observed.record is None:
            return None
        return self.observed.record.holder

    def is_leader(self, now: float | None = None) -> bool:
        """True only within ``renew_deadline`` of the start of the last successful write."""
        return holds(self._renewed_at, self.clock() if now is None else now, self.renew_deadline)

    async def run(self, stop: asyncio.Event) -> None:
        """Campaign and renew until ``stop`` is set; call :meth:`release` afterwards to hand over."""
        try:
            while not stop.is_set() and not self._closed:
                try:
                    await self.step()
                except _TRANSIENT as exc:
                    # The deadline alone ends a leadership that cannot be renewed; keep trying.
                    log.warning("Lease %s/%s: %s", self.namespace, self.name, _describe(exc))
                self._report()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._pause())
        finally:
            self._report()

    async def step(self) -> LeaseDecision:
        """One read and, when the decision says so, one write."""
        await self.observe()
        return await self.act()

    async def observe(self) -> Observed:
        """Read the Lease and fold it into what this replica has seen."""
        lease = await kube_call(self._read)
        # Taken after the answer arrived, hence after the holder's write: expiry never starts early.
        return self._fold(lease, self.clock())

    async def act(self) -> LeaseDecision:
        """Decide on the last observation and write; a 409 means another replica wrote first."""
        if self.observed is None:
            raise RuntimeError("act() before observe()")
        decision = decide(self.observed, self.identity, self.clock(), self.wall_clock(), self.lease_seconds)
        if decision.record is None:
            return decision
        async with self._lock:
            if self._closed:
                return LeaseDecision("wait", None, "released")
            body = lease_body(self.namespace, self.name, decision.record, self._metadata)
            started = self.clock()
            try:
                if decision.action == "create":
                    written = await kube_call(self._create, body)
                else:
                    written = await kube_call(self._replace, body)
            except Conflict as exc:
                log.info(
                    "Lease %s/%s: %s lost a race (%s)", self.namespace, self.name, self.identity, exc.reason
                )
                return LeaseDecision("wait", None, "conflict: another replica wrote first")
            self._renewed_at = started
            self._fold(written, self.clock())
        self._report()
        return decision

    async def release(self) -> bool:
        """Stop leading for good and, if this replica holds the Lease, hand it over; True when released.

        Call it once the work the Lease guards has stopped: a standby may start at its next retry.
        """
        async with self._lock:
            self._closed = True
            self._renewed_at = None
            self._report()
            deadline = self.clock() + self.renew_deadline
            while self.clock() < deadline:
                try:
                    lease = await kube_call(self._read)
                    if lease is None or record_of(lease).holder != self.identity:
                        return False
                    record = released(record_of(lease), self.wall_clock())
                    body = lease_body(self.namespace, self.name, record, lease.get("metadata"))
                    await kube_call(self._replace, body)
                    log.info("Lease %s/%s released by %s", self.namespace, self.name, self.identity)
                    return True
                except Conflict:
                    # A renew whose task was cancelled mid-request can still land: read again.
                    continue
                except _TRANSIENT as exc:
                    log.warning("releasing Lease %s/%s: %s", self.namespace, self.name, _describe(exc))
                    return False
            return False

    # ----- internals -----

    def _fold(self, lease: Mapping[str, Any] | None, now: float) -> Observed:
        metadata = (lease or {}).get("metadata") or {}
        self._metadata = metadata if lease is not None else None
        record = record_of(lease) if lease is not None else None
        self.observed = observe(self.observed, record, str(metadata.get("resourceVersion") or ""), now)
        return self.observed

    def _pause(self) -> float:
        if self.is_leader():
            return self.retry_period
        return self.retry_period * (1 + random.random() * JITTER_FACTOR)

    def _report(self) -> None:
        """Tell listeners about a change, and wake up at the deadline to tell them about its end."""
        now = self.clock()
        leading = self.is_leader(now)
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None
        if leading and self._renewed_at is not None:
            delay = self._renewed_at + self.renew_deadline - now
            self._deadline_timer = asyncio.get_running_loop().call_later(delay, self._report)
        if leading == self._reported:
            return
        self._reported = leading
        if leading:
            self.leading.set()
        else:
            self.leading.clear()
        if self.gauge is not None:
            self.gauge.set(1 if leading else 0)
        log.info(
            "%s %s Lease %s/%s",
            self.identity,
            "holds" if leading else "no longer holds",
            self.namespace,
            self.name,
        )
        if self.on_change is not None:
            self.on_change(leading)

    def _read(self) -> dict[str, Any] | None:
        try:
            resp = call_here(
                self.coordination.read_namespaced_lease,
                self.name,
                self.namespace,
                _preload_content=False,
                _request_timeout=self.renew_deadline,
            )
        except NotFound:
            return None
        return _json_of(resp)

    # The bodies are plain JSON documents (exact MicroTime text); the typed signature asks for V1Lease.
    def _create(self, body: Any) -> dict[str, Any]:
        resp = self.coordination.create_namespaced_lease(
            self.namespace, body, _preload_content=False, _request_timeout=self.renew_deadline
        )
        return _json_of(resp)

    def _replace(self, body: Any) -> dict[str, Any]:
        resp = self.coordination.replace_namespaced_lease(
            self.name, self.namespace, body, _preload_content=False, _request_timeout=self.renew_deadline
        )
        return _json_of(resp)


def _json_of(resp: Any) -> dict[str, Any]:
    try:
        doc = json.loads(resp.data)
    finally:
        resp.release_conn()
    if not isinstance(doc, dict):
        raise ValueError("the API server answered a Lease request with something that is not an object")
    return doc


def _describe(exc: Exception) -> str:
    if isinstance(exc, KubeError):
        return exc.brief
    return f"{type(exc).__name__}: {exc}"


# ----- demo: one elector that logs when it acts (used by the tests' multi-process checks) -----


async def _demo(args: argparse.Namespace, out: TextIO) -> None:
    cfg = kubernetes.client.Configuration(host=args.host.rstrip("/"))
    api = kubernetes.client.ApiClient(configuration=cfg)
    elector = LeaseElector(
        api,
        args.namespace,
        args.name,
        args.identity,
        lease_seconds=args.lease_seconds,
        renew_deadline=args.renew_deadline,
        retry_period=args.retry_period,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    campaign = asyncio.create_task(elector.run(stop))
    term = 0
    was_leading = False
    while not stop.is_set() and not campaign.done():
        # Both clocks read together: the logged wall time is a moment is_leader() said yes.
        wall, mono = time.time(), time.monotonic()
        leading = elector.is_leader(mono)
        if leading and not was_leading:
            term += 1
        was_leading = leading
        if leading:
            out.write(f"{args.identity} {term} {wall:.6f}\n")
            out.flush()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), args.tick)
    await campaign
    await elector.release()
    api.close()  # type: ignore[no-untyped-call]


def main(argv: list[str] | None = None) -> int:
    """``python -m autoscaler.controller.leader``: campaign for a Lease and log each moment of acting."""
    from autoscaler.controller.api_calls import DEFAULT_LEASE_NAME

    parser = argparse.ArgumentParser(prog="python -m autoscaler.controller.leader", description=main.__doc__)
    parser.add_argument("--host", required=True, help="API server URL (no credentials are sent)")
    parser.add_argument("--identity", default=default_identity())
    parser.add_argument(
        "--log", required=True, help="file to append '<identity> <term> <unix time>' lines to"
    )
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--name", default=DEFAULT_LEASE_NAME)
    parser.add_argument("--lease-seconds", type=int, default=15)
    parser.add_argument("--renew-deadline", type=float, default=10.0)
    parser.add_argument("--retry-period", type=float, default=2.0)
    parser.add_argument("--tick", type=float, default=0.02, help="seconds between acting checks")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    with open(args.log, "a", encoding="utf-8") as out:
        asyncio.run(_demo(args, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
