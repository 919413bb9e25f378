"""Every panel query of the generated dashboards, run against a real Prometheus.

One Prometheus serves the module. It scrapes the real adapter polling the sandbox (an emulated Trino
cluster and Spark pool under load, plus one source that cannot be reached) and the real controller
(``running_controller``, as ``queuescale controller`` runs it) acting on the Kubernetes sandbox: a Deployment
of sandbox Trino workers scaled up by bursts of queries and drained down between them, and a second
policy whose credentials Secret is missing, so every series the controller exports comes from what it
really did. Template variables are resolved the way Grafana does, from their own ``label_values`` queries
against the same Prometheus, and each query must parse and return at least one series, with the first
value of every variable and with "All".
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from adapter.exported import exported_name
from adapter.runtime import start_adapter
from adapter.settings import load_settings
from autoscaler.dashboards.render import DASHBOARDS, render
from core.catalog import DEFAULT_CATALOG
from lab.sandbox.world import SPARK_POOL, TRINO_CLUSTER, running_world
from tests.helpers.live_controller import (
    CLUSTER,
    LOCKED_POLICY,
    NAMESPACE,
    POLICY,
    create_policies,
    live_controller,
    live_trino_on_kube,
    query_bursts,
)
from tests.helpers.prometheus import PrometheusServer, running_prometheus
from tests.helpers.trino import refused_url

pytestmark = pytest.mark.prometheus

BROKEN = "unreachable"
# What Grafana puts in $__rate_interval for a 1 s scrape interval is a few seconds; this is a safe width.
RATE_INTERVAL = "10s"
_LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>[a-zA-Z_]\w*)\)$")


class _LiveStack:
    """The sandbox world, the adapter and the real controller on an event loop of their own, for the
    module's lifetime."""

    def __init__(self) -> None:
        self.thread = threading.Thread(target=self._run, name="sandbox-adapter-controller", daemon=True)
        self.ready = threading.Event()
        self.adapter_url = ""
        self.controller_url = ""
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            # Sped-up Trino load so queues and running queries show within seconds.
            async with running_world(seed=3, speedup=10.0) as world, live_trino_on_kube() as kube_world:
                sources = world.source_settings(poll_interval_seconds=0.5)
                sources["trino"].append(
                    {"name": BROKEN, "endpoint": {"url": refused_url()}, "poll_interval_seconds": 0.5}
                )
                sources["trino"].append(kube_world.adapter_source(poll_interval_seconds=0.5))
                settings = load_settings(
                    None,
                    {
                        **sources,
                        "server": {"listen": "127.0.0.1:0", "insecure_http": True},
                        "auth": {"mode": "none"},
                    },
                )
                async with start_adapter(settings) as adapter:
                    await create_policies(kube_world)
                    controller_stop = asyncio.Event()
                    async with live_controller(kube_world, adapter.url, controller_stop) as controller:
                        # Six queries for one worker, then idle: up to three workers, then drains.
                        load = asyncio.create_task(
                            query_bursts(
                                kube_world.cluster, controller_stop, every=8.0, count=6, work_seconds=3.0
                            )
                        )
                        try:
                            assert controller.metrics_url is not None
                            self.adapter_url = adapter.url
                            self.controller_url = controller.metrics_url
                            self.ready.set()
                            await self._stop.wait()
                        finally:
                            controller_stop.set()
                            await load
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            self.ready.set()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(timeout=30)


@pytest.fixture(scope="module")
def stack() -> Iterator[_LiveStack]:
    live = _LiveStack()
    live.thread.start()
    live.ready.wait(timeout=60)
    try:
        if live.error is not None or not live.controller_url:
            raise RuntimeError("the sandbox, adapter and controller did not start") from live.error
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def prometheus(stack: _LiveStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    targets = [url.removeprefix("http://") for url in (stack.adapter_url, stack.controller_url)]
    with running_prometheus(tmp_path_factory.mktemp("prometheus"), targets) as server:
        # One HPA-style read, so the API routes have latencies of their own, not only /metrics.
        api = f"{stack.adapter_url}/apis/external.metrics.k8s.io/v1beta1/namespaces/default"
        with urllib.request.urlopen(
            f"{api}/trino_queued_queries?labelSelector=cluster%3D{TRINO_CLUSTER}",
            timeout=5,
        ) as resp:
            assert resp.status == 200
        yield server


def _get(server: PrometheusServer, path: str, params: list[tuple[str, str]]) -> Any:
    url = f"{server.url}{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        # Prometheus explains a bad query in the body of its 400.
        raise AssertionError(f"{path} {params}: {exc.read().decode(errors='replace')}") from exc


def _regex_literal(value: str) -> str:
    """A value as Grafana formats it into a regex matcher inside a PromQL string."""
    return re.sub(r"([\\^$.|?*+()\[\]{}])", r"\\\\\1", value)


def _substitute(text: str, values: dict[str, str]) -> str:
    text = text.replace("$__rate_interval", RATE_INTERVAL)
    for name, value in sorted(values.items(), key=lambda item: -len(item[0])):
        text = text.replace(f"${{{name}}}", value).replace(f"${name}", value)
    return text


def _resolve(server: PrometheusServer, dashboard: dict[str, Any], *, use_all: bool) -> dict[str, str]:
    """Each variable's value: its first option (as Grafana picks by default) or its All value."""
    values: dict[str, str] = {}
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "datasource":
            continue
        assert variable["type"] == "query", variable
        match = _LABEL_VALUES.match(variable["query"])
        assert match, f"unsupported variable query {variable['query']!r}"
        if use_all:
            values[variable["name"]] = variable["allValue"]
            continue
        selector = _substitute(match["selector"], values)
        body = _get(server, f"/api/v1/label/{match['label']}/values", [("match[]", selector)])
        options = sorted(body["data"])
        assert options, f"variable {variable['name']} has no values for {selector}"
        values[variable["name"]] = _regex_literal(options[0])
    return values


def _targets(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for panel in dashboard["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            for target in inner.get("targets", []):
                yield inner["title"], target["expr"]


@pytest.mark.parametrize("use_all", [False, True], ids=["first-value", "all"])
@pytest.mark.parametrize("definition", DASHBOARDS, ids=[d.name for d in DASHBOARDS])
def test_every_panel_query_returns_series(
    prometheus: PrometheusServer, definition: Any, use_all: bool
) -> None:
    dashboard = json.loads(render(definition))
    values = _resolve(prometheus, dashboard, use_all=use_all)
    targets = list(_targets(dashboard))
    assert targets
    for title, expr in targets:
        promql = _substitute(expr, values)
        assert "$" not in promql, f"{title}: unresolved variable in {promql}"
        _get(prometheus, "/api/v1/query", [("query", promql)])  # a parse error fails here with its message
        prometheus.wait_for(promql, bool, timeout=30)


def test_variables_offer_the_scraped_values(prometheus: PrometheusServer) -> None:
    found: dict[str, set[str]] = {}
    for definition in DASHBOARDS:
        dashboard = json.loads(render(definition))
        for variable in dashboard["templating"]["list"]:
            match = _LABEL_VALUES.match(variable.get("query", ""))
            if match and "$" not in match["selector"]:
                body = _get(
                    prometheus, f"/api/v1/label/{match['label']}/values", [("match[]", match["selector"])]
                )
                found.setdefault(variable["name"], set()).update(body["data"])
    assert found["cluster"] == {TRINO_CLUSTER, CLUSTER}  # the unreachable cluster exports nothing
    assert found["pool"] == {SPARK_POOL}
    assert found["namespace"] == {NAMESPACE}
    assert found["source"] == {TRINO_CLUSTER, SPARK_POOL, BROKEN, CLUSTER}


def test_catalog_is_exported_with_load(prometheus: PrometheusServer) -> None:
    # Every catalog metric the sandbox serves reaches Prometheus under its exported name ...
    for spec in DEFAULT_CATALOG:
        prometheus.wait_for(f"count({exported_name(spec.name)})", bool, timeout=30)
    # ... with real figures from the load, not only idle zeros.
    for expr in (
        f'max({exported_name("trino_running_queries")}{{cluster="{TRINO_CLUSTER}"}}) > 0',
        f'max({exported_name("trino_nodes")}{{cluster="{TRINO_CLUSTER}", state="active"}}) > 0',
        f'max({exported_name("spark_remaining_tasks")}{{pool="{SPARK_POOL}"}}) > 0',
        f'max({exported_name("spark_pool_cores")}{{pool="{SPARK_POOL}"}}) > 0',
    ):
        prometheus.wait_for(expr, bool, timeout=60)
    # The unreachable source is stale: its series are absent, its failure is visible.
    assert prometheus.query(f'{exported_name("trino_queued_queries")}{{cluster="{BROKEN}"}}') == []
    prometheus.wait_for(f'queuescale_adapter_source_up{{source="{BROKEN}"}} == 0', bool)
    prometheus.wait_for(f'queuescale_adapter_source_poll_errors_total{{source="{BROKEN}"}} > 0', bool)


def test_the_controller_series_come_from_what_it_did(prometheus: PrometheusServer) -> None:
    policy = f'namespace="{NAMESPACE}", policy="{POLICY}"'
    locked = f'namespace="{NAMESPACE}", policy="{LOCKED_POLICY}"'
    for expr in (
        "queuescale_controller_leader == 1",
        f"queuescale_controller_policy_ready{{{policy}}} == 1",
        # The bursts took it up to its maximum and the idle spells back down, through drains that ended.
        f"max_over_time(queuescale_controller_desired_replicas{{{policy}}}[1m]) == 3",
        f'queuescale_controller_scale_actions_total{{{policy}, direction="up"}} > 0',
        f'queuescale_controller_scale_actions_total{{{policy}, direction="down"}} > 0',
        f"queuescale_controller_drains_started_total{{{policy}}} > 0",
        f'queuescale_controller_drains_finished_total{{{policy}, outcome="completed"}} > 0',
        f"queuescale_controller_drain_duration_seconds_count{{{policy}}} > 0",
        # The locked policy is valid and its target found, but its Secret cannot be read, and the load
        # asks for more than its one replica.
        f"queuescale_controller_policy_ready{{{locked}}} == 1",
        f'queuescale_controller_actuator_errors_total{{{locked}, operation="read_secret"}} > 0',
        f"max_over_time(queuescale_controller_scaling_limited{{{locked}}}[1m]) == 1",
        "queuescale_controller_loop_duration_seconds_count > 0",
    ):
        prometheus.wait_for(expr, bool, timeout=30)
    # The policy without trouble never failed a call.
    assert prometheus.query(f"queuescale_controller_actuator_errors_total{{{policy}}}") == []
