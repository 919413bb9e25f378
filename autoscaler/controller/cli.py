"""``queuescale controller``: apply ScalingPolicies to a live cluster (or the sandbox's API).

Policies come from the cluster's ScalingPolicy resources (``--policies crd``, watched) or from files.
Metrics come from the adapter: through ``external.metrics.k8s.io`` (kube-apiserver's aggregated path, or
``--metrics-url`` straight to the adapter's Service), or in-process when ``--adapter-config`` starts the
adapter in this same process. ``/metrics``, ``/livez`` and ``/readyz`` are served on ``--listen-metrics``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes.client
from aiohttp import web

from adapter.cli import configure_logging, load_or_exit, run_with_signals
from adapter.kube import KubeSettings, api_client
from adapter.listen import listen
from adapter.runtime import tune_gc
from adapter.settings import split_host_port
from autoscaler.controller.api_calls import DEFAULT_LEASE_NAME
from autoscaler.controller.factory import ActuatorFactoryImpl
from autoscaler.controller.leader import LeaseElector, default_identity
from autoscaler.controller.loop import Controller, HpaIndex
from autoscaler.controller.metrics import ControllerMetrics
from autoscaler.controller.policies import CrdPolicySource, FilePolicySource, PolicySource
from autoscaler.controller.readings import ExternalApiReader, MetricReader, StoreReader
from autoscaler.controller.status import EventRecorder, StatusWriter
from autoscaler.decision.engine import DEFAULT_CONFIG, EngineConfig

__all__ = ["ControllerOptions", "add_controller_parser", "cluster_controller", "running_controller"]

log = logging.getLogger(__name__)


@dataclass
class ControllerOptions:
    """Everything ``queuescale controller`` takes, as the demo and tests build it without a command line."""

    policies: Sequence[str] = ("crd",)
    namespaces: Sequence[str] = ()
    kube: KubeSettings = field(default_factory=KubeSettings)
    metrics_url: str | None = None
    adapter_config: Path | None = None
    reader: MetricReader | None = None
    leader_elect: bool = False
    lease_name: str = DEFAULT_LEASE_NAME
    lease_namespace: str = "default"
    identity: str = ""
    dry_run: bool = False
    listen_metrics: str | None = "0.0.0.0:9090"
    period_seconds: float = 15.0
    lease_seconds: int = 15
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    trino_password_dir: Path | None = None
    engine_config: EngineConfig = DEFAULT_CONFIG
    """Loop-level engine settings (rate window, forecast steps); the demo scales them to its compressed time."""


class _JsonFormatter(logging.Formatter):
    """One JSON object per line, with the ``extra`` fields a log call passed (policy, reason, ...)."""

    _STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in self._STANDARD and not key.startswith("_"):
                doc[key] = (
                    value if isinstance(value, str | int | float | bool) or value is None else str(value)
                )
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def configure_json_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper()))


def _source(options: ControllerOptions, api: kubernetes.client.ApiClient) -> PolicySource:
    if list(options.policies) == ["crd"]:
        return CrdPolicySource(api, options.namespaces)
    return FilePolicySource([Path(p) for p in options.policies], (options.namespaces or ["default"])[0])


def _external_reader(options: ControllerOptions, api: kubernetes.client.ApiClient) -> ExternalApiReader:
    if options.metrics_url is None:
        return ExternalApiReader(api)
    config = kubernetes.client.Configuration()
    config.host = options.metrics_url.rstrip("/")
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
    options: ControllerOptions, stop: asyncio.Event
) -> AsyncIterator[RunningController]:
    """Start the controller (and, with ``adapter_config``, the adapter in-process); stop both on exit."""
    # A pass over a thousand policies allocates ~10^5 short-lived objects: with CPython's default
    # thresholds the collector took ~20% of a pass's CPU (benchmarks/controller_loop.py).
    tune_gc()
    api = api_client(options.kube)
    metrics = ControllerMetrics()
    async with contextlib.AsyncExitStack() as stack:
        reader: MetricReader
        if options.reader is not None:
            reader = options.reader
        elif options.adapter_config is not None:
            from adapter.runtime import start_adapter

            running = await stack.enter_async_context(start_adapter(load_or_exit(options.adapter_config, {})))
            reader = StoreReader(running.store)
        else:
            external = _external_reader(options, api)
            stack.push_async_callback(external.close)
            reader = external
        identity = options.identity or default_identity()
        elector: LeaseElector | None = None
        if options.leader_elect:
            elector = LeaseElector(
                api,
                options.lease_namespace,
                options.lease_name,
                identity,
                lease_seconds=options.lease_seconds,
                renew_deadline=options.renew_deadline,
                retry_period=options.retry_period,
                gauge=metrics.is_leader,
            )
        else:
            metrics.is_leader.set(1)
        controller = cluster_controller(
            api,
            _source(options, api),
            reader,
            metrics=metrics,
            identity=identity,
            password_dir=options.trino_password_dir,
            dry_run=options.dry_run,
            engine_config=options.engine_config,
            is_leader=(lambda: elector.is_leader()) if elector is not None else None,
        )
        events = controller.events
        ready = asyncio.Event()
        metrics_url: str | None = None
        if options.listen_metrics:
            host, port = split_host_port(options.listen_metrics)
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
                        stop.wait(), max(0.0, options.period_seconds - (time.monotonic() - begun))
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


async def _main(options: ControllerOptions, stop: asyncio.Event) -> None:
    async with running_controller(options, stop):
        await stop.wait()


def options_from_args(args: argparse.Namespace) -> ControllerOptions:
    kube = KubeSettings(kubeconfig=args.kubeconfig, host=args.kube_host)
    return ControllerOptions(
        policies=args.policies,
        namespaces=args.namespace or (),
        kube=kube,
        metrics_url=args.metrics_url,
        adapter_config=args.adapter_config if args.metrics == "in-process" else None,
        leader_elect=args.leader_elect,
        lease_name=args.lease_name,
        lease_namespace=args.lease_namespace,
        identity=args.identity or "",
        dry_run=args.dry_run,
        listen_metrics=args.listen_metrics,
        period_seconds=args.period,
        lease_seconds=args.lease_seconds,
        renew_deadline=args.renew_deadline,
        retry_period=args.retry_period,
        trino_password_dir=args.trino_password_dir,
    )


def cmd_controller(args: argparse.Namespace) -> None:
    if args.metrics == "in-process" and args.adapter_config is None:
        print("queuescale controller: --metrics in-process needs --adapter-config", file=sys.stderr)
        raise SystemExit(2)
    if args.log_format == "json":
        configure_json_logging(args.log_level)
    else:
        configure_logging(args.log_level)
    options = options_from_args(args)
    run_with_signals(lambda stop: _main(options, stop))


def add_controller_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("controller", help="apply ScalingPolicies: scale, drain and decommission safely")
    p.add_argument(
        "--policies",
        nargs="+",
        default=["crd"],
        metavar="crd|PATH",
        help="'crd' (watch ScalingPolicy resources) or policy files/directories (default: crd)",
    )
    p.add_argument("--namespace", action="append", help="namespace to watch (repeat; default: all)")
    p.add_argument("--metrics", choices=["external-api", "in-process"], default="external-api")
    p.add_argument("--metrics-url", help="read external metrics straight from the adapter at this URL")
    p.add_argument("--adapter-config", type=Path, help="adapter settings (with --metrics in-process)")
    p.add_argument("--kubeconfig", type=Path, help="kubeconfig (default: in-cluster, then ~/.kube/config)")
    p.add_argument("--kube-host", help="explicit API server URL (e.g. the sandbox's)")
    p.add_argument("--leader-elect", action="store_true", help="act only while holding the Lease")
    p.add_argument("--lease-name", default=DEFAULT_LEASE_NAME)
    p.add_argument("--lease-namespace", default="default")
    p.add_argument("--lease-seconds", type=int, default=15, help="leaseDurationSeconds written in the Lease")
    p.add_argument(
        "--renew-deadline", type=float, default=10.0, help="stop acting this long after the last renew"
    )
    p.add_argument("--retry-period", type=float, default=2.0, help="seconds between acquire/renew attempts")
    p.add_argument("--identity", help="leader-election identity (default: hostname and a random suffix)")
    p.add_argument("--dry-run", action="store_true", help="decide and report, change nothing")
    p.add_argument("--listen-metrics", default="0.0.0.0:9090", help="host:port for /metrics, /livez, /readyz")
    p.add_argument("--period", type=float, default=15.0, help="seconds between reconcile passes")
    p.add_argument("--trino-password-dir", type=Path, help="mounted Secret files: <dir>/<secret>/<key>")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--log-format", default="json", choices=["json", "text"])
    p.set_defaults(func=cmd_controller)
