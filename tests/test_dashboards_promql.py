"""Every panel query of the generated dashboards, run against a real Prometheus.

One Prometheus serves the module. It scrapes the real adapter polling the sandbox (an emulated Trino
cluster and Spark pool under load, plus one source that cannot be reached) and the controller's metrics
(a stand-in serving the real ``ControllerMetrics`` registry until the controller runs here). Template
variables are resolved the way Grafana does, from their own ``label_values`` queries against the same
Prometheus, and each query must parse and return at least one series, with the first value of every
variable and with "All".
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

from adapter.catalog import DEFAULT_CATALOG
from adapter.exported import exported_name
from adapter.runtime import start_adapter
from adapter.settings import load_settings
from autoscaler.dashboards.render import DASHBOARDS, render
from autoscaler.sandbox.world import SPARK_POOL, TRINO_CLUSTER, running_world
from tests.helpers.controller_stand_in import POLICIES, stand_in_controller_metrics
from tests.helpers.prometheus import PrometheusServer, running_prometheus
from tests.helpers.trino import refused_url

pytestmark = pytest.mark.prometheus

BROKEN = "unreachable"
# What Grafana puts in $__rate_interval for a 1 s scrape interval is a few seconds; this is a safe width.
RATE_INTERVAL = "10s"
_LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>[a-zA-Z_]\w*)\)$")


class _SandboxAdapter:
    """The sandbox world and the adapter on an event loop of their own, for the module's lifetime."""

    def __init__(self) -> None:
        self.thread = threading.Thread(target=self._run, name="sandbox-adapter", daemon=True)
        self.ready = threading.Event()
        self.url = ""
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
            async with running_world(seed=3, speedup=10.0) as world:
                sources = world.source_settings(poll_interval_seconds=0.5)
                sources["trino"].append(
                    {"name": BROKEN, "endpoint": {"url": refused_url()}, "poll_interval_seconds": 0.5}
                )
                settings = load_settings(
                    None,
                    {
                        **sources,
                        "server": {"listen": "127.0.0.1:0", "insecure_http": True},
                        "auth": {"mode": "none"},
                    },
                )
                async with start_adapter(settings) as running:
                    self.url = running.url
                    self.ready.set()
                    await self._stop.wait()
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
def adapter_url() -> Iterator[str]:
    stack = _SandboxAdapter()
    stack.thread.start()
    stack.ready.wait(timeout=60)
    try:
        if stack.error is not None or not stack.url:
            raise RuntimeError("the sandbox adapter did not start") from stack.error
        yield stack.url
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def prometheus(adapter_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    with (
        stand_in_controller_metrics() as controller,
        running_prometheus(
            tmp_path_factory.mktemp("prometheus"), [adapter_url.removeprefix("http://"), controller]
        ) as server,
    ):
        # One HPA-style read, so the API routes have latencies of their own, not only /metrics.
        with urllib.request.urlopen(
            f"{adapter_url}/apis/external.metrics.k8s.io/v1beta1/namespaces/default/trino_queued_queries"
            f"?labelSelector=cluster%3D{TRINO_CLUSTER}",
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
    assert found["cluster"] == {TRINO_CLUSTER}  # the unreachable cluster exports nothing
    assert found["pool"] == {SPARK_POOL}
    assert found["namespace"] == {namespace for namespace, _ in POLICIES}
    assert found["source"] == {TRINO_CLUSTER, SPARK_POOL, BROKEN}


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
