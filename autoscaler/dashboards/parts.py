"""Shared pieces of the generated dashboards: variables, panels, PromQL helpers and catalog rows.

Every query reads Prometheus through the ``$datasource`` variable. Figures the adapter exports are taken
with ``max by (...)``: each adapter replica exports the same cache, so a sum would count it once per replica.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders.dashboard import (
    AnnotationQuery,
    Dashboard,
    DashboardLink,
    DatasourceVariable,
    QueryVariable,
    Row,
)
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.builders.stat import Panel as StatPanel
from grafana_foundation_sdk.builders.timeseries import Panel as TimeseriesPanel
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DashboardLinkType,
    DataSourceRef,
    VariableRefresh,
    VariableSort,
)

from adapter.exported import exported_name
from autoscaler.controller.metrics import METRIC_NAMES as CONTROLLER_METRICS
from core.catalog import Catalog, MetricSpec

TAG = "queuescale"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
RATE = "$__rate_interval"

# Catalog units that Grafana knows by another name; any other unit is a count shown with its name.
_GRAFANA_UNITS = {"bytes": "bytes", "bool": "bool", "seconds": "s"}


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


class MissingMetric(LookupError):
    """A curated panel names a metric the catalog no longer has: the dashboards must be revisited."""


def metric(catalog: Catalog, name: str) -> str:
    """The exported Prometheus name of catalog metric ``name``; fails if the catalog lacks it."""
    if name not in catalog:
        raise MissingMetric(f"the dashboards use {name!r}, which is not in the metric catalog")
    return exported_name(name)


def controller(name: str) -> str:
    """A controller series name (``_total`` for counters, the base name for histograms), checked."""
    if name not in CONTROLLER_METRICS:
        raise MissingMetric(f"the dashboards use {name!r}, which the controller does not export")
    return name


def selector(name: str, **matchers: str) -> str:
    """``name{label=~"$var", label="value"}``: variables are regex-formatted by Grafana, values are exact."""
    inner = ", ".join(
        f'{label}{"=~" if value.startswith("$") else "="}"{value}"' for label, value in matchers.items()
    )
    return f"{name}{{{inner}}}" if inner else name


def max_by(labels: Sequence[str], expr: str) -> str:
    return f"max by ({', '.join(labels)}) ({expr})" if labels else f"max({expr})"


def sum_by(labels: Sequence[str], expr: str) -> str:
    return f"sum by ({', '.join(labels)}) ({expr})" if labels else f"sum({expr})"


def per_minute(labels: Sequence[str], counter: str) -> str:
    return f"60 * {sum_by(labels, f'rate({counter}[{RATE}])')}"


def or_zero(expr: str, on: Sequence[str], base: str) -> str:
    """``expr``, plus a 0 for every ``on`` group of ``base`` it has no series for.

    A counter labelled by outcome exists only once something happened; without this a healthy system
    shows "no data" where it should show 0.
    """
    return f"{expr} or on ({', '.join(on)}) (0 * {max_by(on, base)})"


def quantile(
    q: float, labels: Sequence[str], histogram: str, filters: dict[str, str] | None = None, window: str = RATE
) -> str:
    buckets = selector(f"{histogram}_bucket", **(filters or {}))
    inner = sum_by(["le", *labels], f"rate({buckets}[{window}])")
    return f"histogram_quantile({q}, {inner})"


def desired_vs_current(filters: dict[str, str]) -> TimeseriesPanel:
    policy = ["namespace", "policy"]
    desired = selector(controller("queuescale_controller_desired_replicas"), **filters)
    current = selector(controller("queuescale_controller_current_replicas"), **filters)
    return timeseries(
        "Desired vs current replicas",
        "What the controller's last decision asked for, and what the target had then, per ScalingPolicy "
        "(workers, or executors for a Spark application).",
        [
            Query(max_by(policy, desired), "{{namespace}}/{{policy}} desired"),
            Query(max_by(policy, current), "{{namespace}}/{{policy}} current"),
        ],
        axis_label="replicas",
    )


def legend(labels: Iterable[str], suffix: str = "") -> str:
    text = " ".join(f"{{{{{label}}}}}" for label in labels)
    return f"{text} {suffix}".strip()


def datasource_variable() -> DatasourceVariable:
    return DatasourceVariable("datasource").label("Data source").type("prometheus")


def query_variable(name: str, label: str, query: str, description: str) -> QueryVariable:
    """A multi-value variable whose "All" is ``.*``, which also matches series without the label."""
    return (
        QueryVariable(name)
        .label(label)
        .description(description)
        .datasource(DATASOURCE)
        .query(query)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
    )


def namespace_variable() -> QueryVariable:
    return query_variable(
        "namespace",
        "Namespace",
        f"label_values({controller('queuescale_controller_policy_ready')}, namespace)",
        "Namespace of the ScalingPolicy (controller series).",
    )


def _legend_options() -> common_builders.VizLegendOptions:
    return (
        common_builders.VizLegendOptions()
        .display_mode(common.LegendDisplayMode.LIST)
        .placement(common.LegendPlacement.BOTTOM)
        .show_legend(True)
    )


def timeseries(
    title: str,
    description: str,
    queries: Sequence[Query],
    *,
    unit: str = "short",
    stack: bool = False,
    width: int = 12,
    axis_label: str = "",
) -> TimeseriesPanel:
    panel = (
        TimeseriesPanel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .min(0)
        .span(width)
        .height(8)
        .fill_opacity(40 if stack else 10)
        .legend(_legend_options())
        .tooltip(
            common_builders.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
    )
    if axis_label:
        panel = panel.axis_label(axis_label)
    if stack:
        panel = panel.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    for ref, query in zip("ABCDEFGHIJ", queries, strict=False):
        panel = panel.with_target(Dataquery().expr(query.expr).legend_format(query.legend).ref_id(ref))
    return panel


def stat(title: str, description: str, query: Query, *, unit: str = "short", width: int = 4) -> StatPanel:
    return (
        StatPanel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(4)
        .graph_mode(common.BigValueGraphMode.AREA)
        .color_mode(common.BigValueColorMode.VALUE)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
        .with_target(Dataquery().expr(query.expr).legend_format(query.legend).ref_id("A"))
    )


def catalog_panel(spec: MetricSpec, filters: dict[str, str]) -> TimeseriesPanel:
    """One panel for one catalog metric: every label it is served with, filtered by the variables."""
    matchers = {label: value for label, value in filters.items() if label in spec.labels}
    expr = max_by(spec.labels, selector(exported_name(spec.name), **matchers))
    unit = _GRAFANA_UNITS.get(spec.unit, "short")
    return timeseries(
        spec.name,
        spec.help,
        [Query(expr, legend(spec.labels) or spec.name)],
        unit=unit,
        width=8,
        axis_label="" if spec.unit in _GRAFANA_UNITS else spec.unit,
    )


def catalog_row(title: str, specs: Iterable[MetricSpec], filters: dict[str, str]) -> Row:
    """A collapsed row with a panel per metric, so a metric added to the catalog appears unedited."""
    row = Row(title).collapsed(True)
    for spec in specs:
        row = row.with_panel(catalog_panel(spec, filters))
    return row


def _builtin_annotations() -> AnnotationQuery:
    """Grafana's own "Annotations & Alerts", which every dashboard it saves carries."""
    return (
        AnnotationQuery()
        .name("Annotations & Alerts")
        .datasource(DataSourceRef(type_val="grafana", uid="-- Grafana --"))
        .built_in(1)
        .enable(True)
        .hide(True)
        .icon_color("rgba(0, 211, 255, 1)")
        .type("dashboard")
    )


class Board:
    """A dashboard under construction: numbers panels and rows in the order they are added."""

    def __init__(self, uid: str, title: str, description: str) -> None:
        self._next_id = 0
        self.builder = (
            Dashboard(title)
            .uid(uid)
            .description(description)
            .tags([TAG])
            .editable()
            .tooltip(DashboardCursorSync.CROSSHAIR)
            .time("now-3h", "now")
            .refresh("30s")
            .timezone("browser")
            .link(
                DashboardLink("queuescale")
                .type(DashboardLinkType.DASHBOARDS)
                .icon("external link")
                .tags([TAG])
                .as_dropdown(True)
                .include_vars(True)
                .keep_time(True)
            )
            .annotation(_builtin_annotations())
            .with_variable(datasource_variable())
        )

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    def variable(self, variable: QueryVariable) -> None:
        self.builder = self.builder.with_variable(variable)

    def panel(self, panel: TimeseriesPanel | StatPanel) -> None:
        self.builder = self.builder.with_panel(panel.id(self._id()))

    def row(self, row: Row) -> None:
        built = row.build()
        row = row.id(self._id())
        for panel in built.panels:
            panel.id_val = self._id()
        self.builder = self.builder.with_row(row)
