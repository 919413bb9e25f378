"""Turn the dashboard builders into committed JSON files or ConfigMaps for Grafana's sidecar."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from autoscaler.dashboards import adapter_health, controller, spark, trino
from autoscaler.dashboards.parts import Board
from core.catalog import DEFAULT_CATALOG, Catalog

# The label Grafana's dashboard sidecar (kiwigrid/k8s-sidecar, the Grafana chart's default) watches for.
SIDECAR_LABEL = {"grafana_dashboard": "1"}


@dataclass(frozen=True)
class DashboardDef:
    name: str
    build: Callable[[Catalog], Board]

    @property
    def filename(self) -> str:
        return f"{self.name}.json"


DASHBOARDS = (
    DashboardDef("trino-capacity", trino.build),
    DashboardDef("spark-backlog", spark.build),
    DashboardDef("controller", controller.build),
    DashboardDef("adapter", adapter_health.build),
)


def render(definition: DashboardDef, catalog: Catalog = DEFAULT_CATALOG) -> str:
    """The dashboard as stable, diff-friendly JSON text."""
    built = definition.build(catalog).builder.build()
    return JSONEncoder(sort_keys=True, indent=2).encode(built) + "\n"


def render_all(catalog: Catalog = DEFAULT_CATALOG) -> dict[str, str]:
    """File name to JSON text, for every dashboard."""
    return {d.filename: render(d, catalog) for d in DASHBOARDS}


def configmap(definition: DashboardDef, text: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"queuescale-dashboard-{definition.name}",
            "namespace": namespace,
            "labels": {**SIDECAR_LABEL, "app.kubernetes.io/part-of": "queuescale"},
        },
        "data": {definition.filename: text},
    }


def write_json(out: Path, catalog: Catalog = DEFAULT_CATALOG) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_all(catalog).items():
        path = out / name
        path.write_text(text)
        written.append(path)
    return written


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, so the dashboard JSON in a ConfigMap stays readable."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str)


def configmap_yaml(doc: dict[str, Any]) -> str:
    return yaml.dump(doc, Dumper=_BlockDumper, sort_keys=False, width=1_000_000)


def write_configmaps(out: Path, namespace: str, catalog: Catalog = DEFAULT_CATALOG) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for definition in DASHBOARDS:
        doc = configmap(definition, render(definition, catalog), namespace)
        path = out / f"{definition.name}.configmap.yaml"
        path.write_text(configmap_yaml(doc))
        written.append(path)
    return written


def stale_files(directory: Path, catalog: Catalog = DEFAULT_CATALOG) -> list[str]:
    """Names of committed dashboards that differ from what the builders make now (or are missing)."""
    stale = []
    for name, text in render_all(catalog).items():
        path = directory / name
        if not path.exists() or path.read_text() != text:
            stale.append(name)
    return stale
