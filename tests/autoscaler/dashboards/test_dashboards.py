"""The generated Grafana dashboards: fresh, well-formed, driven by the catalog, and exportable."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard as DashboardModel
from kubernetes_validate.utils import all_versions
from packaging.version import Version

from adapter.exported import exported_name
from autoscaler.dashboards.parts import MissingMetric
from autoscaler.dashboards.render import DASHBOARDS, render, render_all
from core.catalog import BUILTIN, DEFAULT_CATALOG, Catalog, MetricSpec
from queuescale.cli import main
from tests.helpers.metric_names import SERIES_NAME, known_names

ROOT = Path(__file__).resolve().parents[3]
COMMITTED = ROOT / "dashboards"


def _load(catalog: Catalog = DEFAULT_CATALOG) -> dict[str, dict[str, Any]]:
    return {name: json.loads(text) for name, text in render_all(catalog).items()}


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def _exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in _panels(dashboard) for t in p.get("targets", [])]


def test_committed_dashboards_are_fresh() -> None:
    for name, text in render_all().items():
        path = COMMITTED / name
        assert path.exists(), f"{path} is missing: run queuescale dashboards"
        assert path.read_text() == text, f"{path} is stale: run queuescale dashboards"
    assert sorted(p.name for p in COMMITTED.glob("*.json")) == sorted(render_all())


def test_dashboards_round_trip_through_the_sdk_models() -> None:
    # The SDK decodes panels and queries by plugin type: a field it does not know would be lost here.
    register_default_plugins()
    for name, text in render_all().items():
        decoded = DashboardModel.from_json(json.loads(text))
        assert JSONEncoder(sort_keys=True, indent=2).encode(decoded) + "\n" == text, name


def test_dashboards_are_well_formed() -> None:
    uids = set()
    for name, dashboard in _load().items():
        uids.add(dashboard["uid"])
        panels = list(_panels(dashboard))
        ids = [p["id"] for p in panels]
        assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"
        variables = [v["name"] for v in dashboard["templating"]["list"]]
        assert variables[0] == "datasource", name
        for panel in panels:
            if panel["type"] == "row":
                assert panel["collapsed"] is True, "a row's own panels are kept only when it is collapsed"
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            assert panel["description"], panel["title"]
            refs = [t["refId"] for t in panel["targets"]]
            assert refs, panel["title"]
            assert len(refs) == len(set(refs)), panel["title"]
            assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
    assert len(uids) == len(DASHBOARDS)


def test_dashboards_name_only_series_that_exist() -> None:
    known = known_names()
    for name, dashboard in _load().items():
        used = {m for expr in _exprs(dashboard) for m in SERIES_NAME.findall(expr)}
        used |= {
            m for v in dashboard["templating"]["list"] for m in SERIES_NAME.findall(str(v.get("query", "")))
        }
        assert used, name
        assert used <= known, f"{name}: unknown series {sorted(used - known)}"


def test_every_catalog_metric_has_a_panel() -> None:
    exprs = " ".join(expr for dashboard in _load().values() for expr in _exprs(dashboard))
    for spec in DEFAULT_CATALOG:
        assert exported_name(spec.name) + "{" in exprs, spec.name


def test_a_new_catalog_metric_shows_up_without_edits() -> None:
    added = (
        MetricSpec("trino_queued_seconds", "trino", ("cluster", "resource_group"), "seconds", "Oldest wait."),
        MetricSpec("spark_shuffle_bytes", "spark", ("pool", "app", "app_name"), "bytes", "Shuffle held."),
        MetricSpec("gateway_backlog", "custom", ("queue",), "requests", "Requests at the gateway."),
    )
    before = _load()
    after = _load(DEFAULT_CATALOG.extended(added))

    def panel(dashboard: dict[str, Any], title: str) -> dict[str, Any] | None:
        return next((p for p in _panels(dashboard) if p.get("title") == title), None)

    trino = panel(after["trino-capacity.json"], "trino_queued_seconds")
    assert trino is not None
    assert trino["description"] == "Oldest wait."
    assert trino["fieldConfig"]["defaults"]["unit"] == "s"
    assert [t["expr"] for t in trino["targets"]] == [
        'max by (cluster, resource_group) (queuescale_trino_queued_seconds{cluster=~"$cluster"})'
    ]
    spark = panel(after["spark-backlog.json"], "spark_shuffle_bytes")
    assert spark is not None
    assert spark["fieldConfig"]["defaults"]["unit"] == "bytes"
    assert [t["expr"] for t in spark["targets"]] == [
        'max by (pool, app, app_name) (queuescale_spark_shuffle_bytes{pool=~"$pool"})'
    ]
    custom = panel(after["adapter.json"], "gateway_backlog")
    assert custom is not None
    assert [t["expr"] for t in custom["targets"]] == ["max by (queue) (queuescale_gateway_backlog)"]
    assert custom["fieldConfig"]["defaults"]["custom"]["axisLabel"] == "requests"
    for name in ("trino-capacity.json", "spark-backlog.json", "adapter.json"):
        assert len(list(_panels(after[name]))) == len(list(_panels(before[name]))) + (
            2 if name == "adapter.json" else 1  # the adapter dashboard gains the row too
        )
    assert after["controller.json"] == before["controller.json"]


def test_a_curated_metric_missing_from_the_catalog_fails_the_build() -> None:
    shrunk = Catalog(spec for spec in BUILTIN if spec.name != "trino_capacity_queued_queries")
    with pytest.raises(MissingMetric, match="trino_capacity_queued_queries"):
        render(DASHBOARDS[0], shrunk)


# ---------------------------------------------------------------------- the command


def test_generate_writes_the_committed_files_and_check_detects_staleness(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["dashboards", "--out", str(tmp_path)])
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {
        p.name: p.read_text() for p in COMMITTED.glob("*.json")
    }
    main(["dashboards", "--out", str(tmp_path), "--check"])
    assert "up to date" in capsys.readouterr().out

    (tmp_path / "controller.json").write_text("{}\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["dashboards", "--out", str(tmp_path), "--check"])
    assert exit_info.value.code == 1
    assert "controller.json" in capsys.readouterr().err


def test_export_json(tmp_path: Path) -> None:
    main(["dashboards", "export", "--format", "json", "--out", str(tmp_path / "out")])
    assert {p.name: p.read_text() for p in (tmp_path / "out").iterdir()} == render_all()


def _kube_versions() -> list[str]:
    known = sorted({v for v in all_versions() if Version(v) >= Version("1.30")}, key=Version)
    return [known[0], known[-1]]


@pytest.mark.parametrize("version", _kube_versions())
def test_export_configmaps_for_the_grafana_sidecar(tmp_path: Path, version: str) -> None:
    main(
        ["dashboards", "export", "--format", "configmap", "--namespace", "monitoring", "--out", str(tmp_path)]
    )
    files = sorted(tmp_path.iterdir())
    assert len(files) == len(DASHBOARDS)
    expected = render_all()
    for path in files:
        text = path.read_text()
        # kubectl's client-side apply keeps the object in a 256 KiB annotation.
        assert len(text.encode()) < 262_144, path
        doc = yaml.safe_load(text)
        kubernetes_validate.validate(doc, version, strict=True)
        assert doc["kind"] == "ConfigMap"
        assert doc["metadata"]["namespace"] == "monitoring"
        assert doc["metadata"]["labels"]["grafana_dashboard"] == "1"
        [(key, value)] = doc["data"].items()
        assert value == expected[key]


@pytest.mark.parametrize("before_export", [False, True], ids=["after-export", "before-export"])
def test_export_with_an_adapter_config_adds_its_operator_defined_metrics(
    tmp_path: Path, before_export: bool
) -> None:
    config = tmp_path / "adapter.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "server": {"tls_cert_file": "/tls/tls.crt", "tls_key_file": "/tls/tls.key"},
                "prometheus": [
                    {
                        "name": "prom",
                        "endpoint": {"url": "http://prometheus.monitoring.svc:9090"},
                        "queries": [
                            {
                                "metric": "gateway_backlog",
                                "query": "sum by (queue) (gateway_pending_requests)",
                                "labels": ["queue"],
                                "help": "Requests waiting at the gateway.",
                                "unit": "requests",
                            }
                        ],
                    }
                ],
            }
        )
    )
    out = tmp_path / "out"
    option = ["--adapter-config", str(config)]
    export = ["export", "--out", str(out)]
    main(["dashboards", *(option + export if before_export else export + option)])
    adapter = json.loads((out / "adapter.json").read_text())
    assert "max by (queue) (queuescale_gateway_backlog)" in _exprs(adapter)
    assert (out / "trino-capacity.json").read_text() == render_all()["trino-capacity.json"]
