"""``queuescale controller``: apply ScalingPolicies to a live cluster (or the sandbox's API).

Policies come from the cluster's ScalingPolicy resources (``--policies crd``, watched) or from files.
Metrics come from the adapter: through ``external.metrics.k8s.io`` (kube-apiserver's aggregated path, or
``--metrics-url`` straight to the adapter's Service), or in-process when ``--adapter-config`` starts the
adapter in this same process. ``/metrics``, ``/livez`` and ``/readyz`` are served on ``--listen-metrics``.
The flags become :class:`~autoscaler.controller.settings.ControllerSettings`; the running controller is
:func:`autoscaler.controller.runtime.running_controller`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path

from adapter.kube import KubeSettings
from adapter.runtime import start_adapter
from autoscaler.controller.api_calls import DEFAULT_LEASE_NAME
from autoscaler.controller.readings import MetricReader, StoreReader
from autoscaler.controller.runtime import running_controller
from autoscaler.controller.settings import (
    ControllerSettings,
    CredentialSettings,
    HealthSettings,
    LeaderElectionSettings,
    PolicySettings,
    ReadingSettings,
    ReconcileSettings,
)
from queuescale.commands.adapter import load_or_exit
from queuescale.logs import configure_json_logging, configure_logging
from queuescale.signals import run_with_signals

__all__ = ["add_controller_parser", "cmd_controller", "settings_from_args"]


def settings_from_args(args: argparse.Namespace) -> ControllerSettings:
    return ControllerSettings(
        policies=PolicySettings(sources=args.policies, namespaces=args.namespace or []),
        kube=KubeSettings(kubeconfig=args.kubeconfig, host=args.kube_host),
        readings=ReadingSettings(adapter_url=args.metrics_url),
        leader_election=LeaderElectionSettings(
            enabled=args.leader_elect,
            lease_name=args.lease_name,
            lease_namespace=args.lease_namespace,
            identity=args.identity or "",
            lease_duration_seconds=args.lease_seconds,
            renew_deadline_seconds=args.renew_deadline,
            retry_period_seconds=args.retry_period,
        ),
        reconcile=ReconcileSettings(period_seconds=args.period, dry_run=args.dry_run),
        health=HealthSettings(listen=args.listen_metrics),
        credentials=CredentialSettings(trino_password_dir=args.trino_password_dir),
    )


async def _main(settings: ControllerSettings, adapter_config: Path | None, stop: asyncio.Event) -> None:
    async with contextlib.AsyncExitStack() as stack:
        reader: MetricReader | None = None
        if adapter_config is not None:
            # The adapter in this same process: the controller reads its cache, no HTTP in between.
            running = await stack.enter_async_context(start_adapter(load_or_exit(adapter_config, {})))
            reader = StoreReader(running.store)
        async with running_controller(settings, stop, reader=reader):
            await stop.wait()


def cmd_controller(args: argparse.Namespace) -> None:
    if args.metrics == "in-process" and args.adapter_config is None:
        print("queuescale controller: --metrics in-process needs --adapter-config", file=sys.stderr)
        raise SystemExit(2)
    if args.log_format == "json":
        configure_json_logging(args.log_level)
    else:
        configure_logging(args.log_level)
    settings = settings_from_args(args)
    adapter_config = args.adapter_config if args.metrics == "in-process" else None
    run_with_signals(lambda stop: _main(settings, adapter_config, stop))


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
