"""``queuescale dashboards``: regenerate the committed dashboards, or export them for a Grafana."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from autoscaler.dashboards.render import stale_files, write_configmaps, write_json
from core.catalog import DEFAULT_CATALOG, Catalog
from queuescale.commands.adapter import load_or_exit


def _catalog(args: argparse.Namespace) -> Catalog:
    path: Path | None = getattr(args, "adapter_config", None)
    if path is None:
        return DEFAULT_CATALOG
    from adapter.sources.registry import catalog_for

    return catalog_for(load_or_exit(path, {}))


def cmd_generate(args: argparse.Namespace) -> None:
    out: Path = args.out
    if args.check:
        stale = stale_files(out, _catalog(args))
        if stale:
            print(
                f"queuescale: stale dashboards in {out}: {', '.join(stale)} (run: queuescale dashboards)",
                file=sys.stderr,
            )
            raise SystemExit(1)
        print(f"dashboards in {out} are up to date")
        return
    for path in write_json(out, _catalog(args)):
        print(f"wrote {path}")


def cmd_export(args: argparse.Namespace) -> None:
    catalog = _catalog(args)
    if args.format == "configmap":
        written = write_configmaps(args.out, args.namespace, catalog)
    else:
        written = write_json(args.out, catalog)
    for path in written:
        print(f"wrote {path}")


def _add_catalog_option(parser: argparse.ArgumentParser, default: Any = None) -> None:
    parser.add_argument(
        "--adapter-config",
        type=Path,
        default=default,
        metavar="FILE",
        help="adapter configuration whose operator-defined Prometheus metrics get panels too",
    )


def add_dashboards_parser(subparsers: Any) -> None:
    """Register ``dashboards`` (and its ``export`` subcommand) on the ``queuescale`` parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "dashboards",
        help="generate the Grafana dashboards from the metric catalog",
        description="Write the Grafana dashboards, built from the metric catalog, as JSON.",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("dashboards"),
        help="directory of the JSON files (default: dashboards)",
    )
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 when a file differs from what is built"
    )
    _add_catalog_option(parser)
    parser.set_defaults(func=cmd_generate)
    sub = parser.add_subparsers(dest="dashboards_command")
    export = sub.add_parser(
        "export",
        help="write the dashboards as JSON files or as ConfigMaps for Grafana's sidecar",
        description="Write the dashboards as JSON files, or as ConfigMaps labelled grafana_dashboard=1 "
        "for the Grafana dashboard sidecar.",
    )
    export.add_argument("--format", choices=("json", "configmap"), default="json")
    export.add_argument(
        "--namespace", default="monitoring", help="namespace of the ConfigMaps (default: monitoring)"
    )
    export.add_argument("--out", type=Path, required=True, help="directory to write into")
    # Suppressed default: given before ``export`` it must not be reset by the subcommand's own default.
    _add_catalog_option(export, default=argparse.SUPPRESS)
    export.set_defaults(func=cmd_export)
