"""The controller as a running service: the controller wired to a cluster (status, Events, HPA conflicts,
the actuators, watch caches), leader election, the reconcile loop on a period, and ``/metrics``, ``/livez``
and ``/readyz``.

Policies come from the cluster's ScalingPolicy resources (watched) or from files. Metrics come from the
adapter through ``external.metrics.k8s.io`` (kube-apiserver's aggregated path, or straight to the adapter's
Service), or from whatever reader the caller wires in (``queuescale controller --metrics in-process`` passes
one reading the cache of an adapter started in the same process). The command line, logging and signals
are the composition root's (:mod:`queuescale`); the settings are :mod:`autoscaler.controller.settings`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import kubernetes.client
from aiohttp import web

from adapter.kube import api_client
from adapter.listen import listen
from adapter.runtime import tune_gc
from adapter.settings import split_host_port
from autoscaler.controller.factory import ActuatorFactoryImpl
from autoscaler.controller.leader import LeaseElector, default_identity
from autoscaler.controller.loop import Controller, HpaIndex
from autoscaler.controller.metrics import ControllerMetrics
from autoscaler.controller.policies import CrdPolicySource, FilePolicySource, PolicySource
from autoscaler.controller.readings import ExternalApiReader, MetricReader
from autoscaler.controller.settings import ControllerSettings, PolicySettings, ReadingSettings
from autoscaler.controller.status import EventRecorder, StatusWriter
from autoscaler.decision.engine import DEFAULT_CONFIG, EngineConfig

__all__ = ["RunningController", "cluster_controller", "running_controller"]

log = logging.getLogger(__name__)


def _source(settings: PolicySettings, api: kubernetes.client.ApiClient) -> PolicySource:
    if list(settings.sources) == ["crd"]:
        return CrdPolicySource(api, settings.namespaces)
    return FilePolicySource([Path(p) for p in settings.sources], (settings.namespaces or ["default"])[0])


def _external_reader(settings: ReadingSettings, api: kubernetes.client.ApiClient) -> ExternalApiReader:
    if settings.adapter_url is None:
        return ExternalApiReader(api)
    config = kubernetes.client.Configuration()
    config.host = settings.adapter_url.rstrip("/")
    # Straight to the adapter's Service: trust what kube-apiserver trusts (the same CA bundle) if given.
    config.ssl_ca_cert = api.configuration.ssl_ca_cert
    config.api_key = dict(api.configuration.api_key)
    config.api_key_prefix = dict(api.configuration.api_key_prefix)
    return ExternalApiReader(kubernetes.client.ApiClient(config))


def cluster_controller(
    api: kubernetes.client.ApiClient,
    source: PolicySource,
    reader: MetricReader,
    *,
    metrics: ControllerMetrics | None = None,
    identity: str = "",
    password_dir: Path | None = None,
    dry_run: bool = False,
    engine_config: EngineConfig = DEFAULT_CONFIG,
    is_leader: Callable[[], bool] | None = None,
) -> Controller:
    """The controller wired to a cluster as ``queuescale controller`` runs it: status, Events, HPA
    conflicts, the actuators, pods and workloads read from watch caches."""
    factory = ActuatorFactoryImpl(api, password_dir=password_dir, cache=True)
    return Controller(
        source=source,
        reader=reader,
        make_actuator=factory,
        metrics=metrics,
        events=EventRecorder(api, identity or None),
        status=StatusWriter(api),
        hpas=HpaIndex(api),
        dry_run=dry_run,
        engine_config=engine_config,
        on_pass_start=factory.ops.begin_pass,
        on_close=factory.ops.close,
        is_leader=is_leader,
    )


def _health_app(controller: Controller, metrics: ControllerMetrics, ready: asyncio.Event) -> web.Application:
    app = web.Application()

    async def metrics_handler(_: web.Request) -> web.Response:
        return web.Response(body=metrics.exposition(), content_type="text/plain", charset="utf-8")

    async def livez(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(_: web.Request) -> web.Response:
        if not ready.is_set():
            return web.Response(status=503, text="first reconcile pass not done")
        return web.Response(text="ok")

    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/livez", livez)
    app.router.add_get("/healthz", livez)
    app.router.add_get("/readyz", readyz)
    return app


@dataclass
class RunningController:
    controller: Controller
    metrics: ControllerMetrics
    elector: LeaseElector | None
    metrics_url: str | None
    events: EventRecorder


@contextlib.asynccontextmanager
async def running_controller(
    settings: ControllerSettings,
    stop: asyncio.Event,
    *,
    reader: MetricReader | None = None,
    engine_config: EngineConfig = DEFAULT_CONFIG,
) -> AsyncIterator[RunningController]:
    """Start the controller; stop it on exit or when ``stop`` is set.

    ``reader`` replaces the external metrics API as the source of readings (an in-process adapter's cache);
    ``engine_config`` holds the loop-level engine settings (rate window, forecast steps)."""
    # A pass over a thousand policies allocates ~10^5 short-lived objects: with CPython's default
    # thresholds the collector took ~20% of a pass's CPU (benchmarks/controller_loop.py).
    tune_gc()
    api = api_client(settings.kube)
    metrics = ControllerMetrics()
    election = settings.leader_election
    async with contextlib.AsyncExitStack() as stack:
        if reader is None:
            external = _external_reader(settings.readings, api)
            stack.push_async_callback(external.close)
            reader = external
        identity = election.identity or default_identity()
        elector: LeaseElector | None = None
        if election.enabled:
            elector = LeaseElector(
                api,
                election.lease_namespace,
                election.lease_name,
                identity,
                lease_seconds=election.lease_duration_seconds,
                renew_deadline=election.renew_deadline_seconds,
                retry_period=election.retry_period_seconds,
                gauge=metrics.is_leader,
            )
        else:
            metrics.is_leader.set(1)
        controller = cluster_controller(
            api,
            _source(settings.policies, api),
            reader,
            metrics=metrics,
            identity=identity,
            password_dir=settings.credentials.trino_password_dir,
            dry_run=settings.reconcile.dry_run,
            engine_config=engine_config,
            is_leader=(lambda: elector.is_leader()) if elector is not None else None,
        )
        events = controller.events
        ready = asyncio.Event()
        metrics_url: str | None = None
        if settings.health.listen:
            host, port = split_host_port(settings.health.listen)
            served = await listen(_health_app(controller, metrics, ready), host, port)
            stack.push_async_callback(served.stop)
            metrics_url = served.url
        tasks: list[asyncio.Task[None]] = []
        if elector is not None:
            tasks.append(asyncio.create_task(elector.run(stop), name="leader-election"))

        async def loop() -> None:
            while not stop.is_set():
                begun = time.monotonic()
                try:
                    await controller.reconcile(time.time())
                except Exception:
                    log.exception("reconcile pass failed")
                ready.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        stop.wait(), max(0.0, settings.reconcile.period_seconds - (time.monotonic() - begun))
                    )

        tasks.append(asyncio.create_task(loop(), name="reconcile"))
        try:
            yield RunningController(controller, metrics, elector, metrics_url, events)
        finally:
            stop.set()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if elector is not None:
                await elector.release()
            await controller.close()
