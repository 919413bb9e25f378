"""The Spark source against the emulated pool over real HTTP, and its arithmetic on its own."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from adapter.sources.spark import (
    APP_METRICS,
    POOL_METRICS,
    AllocationConf,
    SparkKubernetesDiscovery,
    SparkSource,
    allocation_conf,
    app_figures,
)
from core.catalog import DEFAULT_CATALOG
from core.errors import SourceError
from lab.sandbox.kube import KubeSandbox, client_for
from lab.sandbox.serve import serve
from lab.sandbox.spark import AppSpec, DynamicAllocation, SparkPool, SparkSandbox, StageSpec
from tests.helpers.spark import (
    Fault,
    Front,
    app_names,
    by_app,
    closed_port,
    pool_series,
    serving,
    settings,
)


@dataclass
class World:
    pool: SparkPool
    sandbox: SparkSandbox
    ids: dict[str, str]  # application name -> id

    def driver(self, name: str) -> str:
        return self.sandbox.driver_urls[self.ids[name]]


def build_pool() -> tuple[SparkPool, dict[str, str]]:
    """Two 4-core workers and four applications; the figures the tests expect are derived in comments."""
    pool = SparkPool(decommission_enabled=True)
    pool.add_worker(4, host="10.3.0.1")
    pool.add_worker(4, host="10.3.0.2")
    ids = {}
    # etl: 2-core executors, ratio 0.5, [1, 3]: wants ceil(20 x 0.5 / 2) = 5, gets 3 -> 6 slots.
    ids["etl"] = pool.submit(
        AppSpec(
            "etl",
            executor_cores=2,
            dynamic_allocation=DynamicAllocation(
                min_executors=1, max_executors=3, executor_allocation_ratio=0.5
            ),
        ),
        [[StageSpec(20, 10.0), StageSpec(6, 1.0)]],
    ).app_id
    # adhoc: static, spark.cores.max=2 of 1-core executors -> the last 2 free cores.
    ids["adhoc"] = pool.submit(AppSpec("adhoc", max_cores=2), [[StageSpec(5, 4.0)]]).app_id
    # late: no core left -> WAITING with no executor.
    ids["late"] = pool.submit(AppSpec("late", max_cores=1), [[StageSpec(3, 1.0)]]).app_id
    # notebook: local[2], the driver is the executor; the master never hears of it.
    ids["notebook"] = pool.submit(AppSpec("notebook", local_cores=2), [[StageSpec(3, 1.0)]]).app_id
    return pool, ids


@pytest.fixture
async def world() -> AsyncIterator[World]:
    pool, ids = build_pool()
    async with SparkSandbox(pool, wall_clock=False) as sb:
        yield World(pool, sb, ids)


async def collect(source: SparkSource) -> list[Any]:
    try:
        return await source.collect(0.0)
    finally:
        await source.close()


M = (
    "spark_remaining_tasks",
    "spark_running_tasks",
    "spark_pending_tasks",
    "spark_next_wave_tasks",
    "spark_task_slots",
    "spark_executors",
    "spark_executors_needed",
)


def row(*values: int) -> dict[str, float]:
    return {m: float(v) for m, v in zip(M, values, strict=True)}


# At t=0: remaining, running, pending, next wave, slots, executors, needed; no task has finished, so
# no application has a spark_task_seconds.
AT_0 = {
    # 20 tasks on 6 slots; 6 more in the waiting stage; the clamp holds it at 3 (not 5).
    "etl": row(20, 6, 14, 6, 6, 3, 3),
    # 5 tasks on 2 slots; no dynamic allocation -> ceil(5 / 1) unclamped.
    "adhoc": row(5, 2, 3, 0, 2, 2, 5),
    # nothing runs; the driver row has no slots.
    "late": row(3, 0, 3, 0, 0, 0, 3),
    # local[2]: the driver row's 2 slots, counted as one executor.
    "notebook": row(3, 2, 1, 0, 2, 1, 3),
}
# At t=10: etl finished its first wave of 6 and started the next; adhoc ran 2 waves of 4 s.
AT_10 = {
    # ceil(14 x 0.5 / 2) = 4, still clamped to 3; 6 tasks of 10 s finished.
    "etl": row(14, 6, 8, 6, 6, 3, 3) | {"spark_task_seconds": 10.0},
    "adhoc": row(1, 1, 0, 0, 2, 2, 1) | {"spark_task_seconds": 4.0},  # 4 tasks of 4 s finished
    "late": row(3, 0, 3, 0, 0, 0, 3),
    # Its job is done and the application stays; with no active stage it has no task time.
    "notebook": row(0, 0, 0, 0, 2, 1, 0),
}


def named(world: World, samples: list[Any]) -> dict[str, dict[str, float]]:
    names = {v: k for k, v in world.ids.items()}
    return {names[app]: values for app, values in by_app(samples).items()}


async def test_direct_driver_urls_give_the_model_figures(world: World) -> None:
    urls = [world.driver(n) for n in ("etl", "adhoc", "late", "notebook")]
    source = SparkSource(settings(driver_urls=urls))
    try:
        first = await source.collect(0.0)
        world.pool.advance(10.0)
        later = await source.collect(10.0)
    finally:
        await source.close()
    assert named(world, first) == AT_0
    assert named(world, later) == AT_10
    assert app_names(first) == {world.ids[n]: n for n in AT_0}
    # Without a master, no pool series.
    assert pool_series(first) == {}
    assert all(s.labels["pool"] == "pool-a" and s.is_valid() for s in first)
    assert all(s.metric in DEFAULT_CATALOG for s in first)


async def test_the_reverse_proxy_reaches_every_cluster_application(world: World) -> None:
    source = SparkSource(settings(master=world.sandbox.master_url, reverse_proxy=True))
    samples = await collect(source)
    # The local notebook never registered with the master, so only the three cluster apps are seen.
    assert named(world, samples) == {k: v for k, v in AT_0.items() if k != "notebook"}
    assert pool_series(samples) == {
        ("spark_pool_workers", "alive"): 2,
        ("spark_pool_workers", "dead"): 0,
        ("spark_pool_workers", "decommissioned"): 0,
        ("spark_pool_workers", "unknown"): 0,
        ("spark_pool_cores", ""): 8,
        ("spark_pool_cores_used", ""): 8,
        ("spark_waiting_apps", ""): 1,
    }


async def test_pool_series_follow_a_decommission(world: World) -> None:
    world.pool.decommission_hosts(["10.3.0.2"])
    source = SparkSource(settings(master=world.sandbox.master_url))
    samples = await collect(source)
    pool = pool_series(samples)
    assert pool[("spark_pool_workers", "alive")] == 1
    assert pool[("spark_pool_workers", "decommissioned")] == 1
    # The master counts the cores of alive workers only.
    assert pool[("spark_pool_cores", "")] == 4
    # Without reverse_proxy and driver URLs the master gives pool series only.
    assert by_app(samples) == {}


async def test_an_application_reached_twice_is_reported_once(world: World) -> None:
    source = SparkSource(
        settings(
            master=world.sandbox.master_url,
            reverse_proxy=True,
            driver_urls=[world.driver("etl"), world.driver("notebook")],
        )
    )
    samples = await collect(source)
    assert set(named(world, samples)) == {"etl", "adhoc", "late", "notebook"}
    per_app = [s for s in samples if "app" in s.labels]
    # Every per-application metric but spark_task_seconds: no task has finished yet.
    assert len(per_app) == 4 * (len(APP_METRICS) - 1)


async def test_served_metrics_are_catalogued() -> None:
    with_master = SparkSource(settings(master="http://127.0.0.1:1"))
    drivers_only = SparkSource(settings(driver_urls=["http://127.0.0.1:1"]))
    assert set(with_master.served_metrics()) == set(APP_METRICS + POOL_METRICS)
    assert set(drivers_only.served_metrics()) == set(APP_METRICS)
    assert all(m in DEFAULT_CATALOG for m in with_master.served_metrics())
    assert with_master.identity() == {"pool": "pool-a"}


async def test_environment_is_read_once_per_application(world: World) -> None:
    front = Front(world.driver("etl"))
    async with serving(front) as url:
        source = SparkSource(settings(driver_urls=[url]))
        try:
            await source.collect(0.0)
            front.fail(r"/environment", Fault(500))
            again = await source.collect(1.0)
        finally:
            await source.close()
        fresh = SparkSource(settings(driver_urls=[url]))
        with pytest.raises(SourceError, match="HTTP 500"):
            await collect(fresh)
    env_path = f"/api/v1/applications/{world.ids['etl']}/environment"
    assert front.hits[env_path] == 2  # once per source, not once per poll
    assert named(world, again)["etl"] == AT_0["etl"]


def stage_doc(**fields: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "numTasks": 4,
        "numActiveTasks": 1,
        "numCompleteTasks": 1,
        "numCompletedIndices": 1,
        "executorRunTime": 2500,
    }
    doc.update(fields)
    return doc


# Each case: (regex on path?query, the fault the front answers, what the source must do).
FAILURES = [
    # the application list is not JSON
    (r"/api/v1/applications$", Fault(200, "<html>hello</html>", "text/html"), "error"),
    # the application list is JSON but not a list
    (r"/api/v1/applications$", Fault(200, '{"id": "x"}'), "error"),
    # an application without an id
    (r"/api/v1/applications$", Fault(200, '[{"name": "x"}]'), "error"),
    # a fixed driver answering 404 at once is misconfigured, not finished
    (r"/api/v1/applications$", Fault(404, "nope", "text/plain"), "error"),
    # the driver fails
    (r"status=active", Fault(500, "boom", "text/plain"), "error"),
    # a stage count that is not a count
    (r"status=active", Fault(200, json.dumps([stage_doc(numTasks="ten")])), "error"),
    # a negative count
    (r"status=active", Fault(200, json.dumps([stage_doc(numCompletedIndices=-1)])), "error"),
    # executors that are not a list of objects
    (r"/executors", Fault(200, "[1, 2]"), "error"),
    # an environment without properties
    (r"/environment", Fault(200, '{"runtime": {}}'), "error"),
    # a property that is not a number
    (r"/environment", Fault(200, json.dumps({"sparkProperties": [["spark.task.cpus", "x"]]})), "error"),
    # the driver hangs past the timeout
    (r"/executors", Fault(hang=True), "error"),
    # the application vanished after the listing: skipped
    (r"status=pending", Fault(404, "no such app: x", "text/plain"), "skip"),
    # the same, seen on the environment
    (r"/environment", Fault(404, "no such app: x", "text/plain"), "skip"),
]


@pytest.mark.parametrize(("pattern", "fault", "expect"), FAILURES)
async def test_driver_failures(world: World, pattern: str, fault: Fault, expect: str) -> None:
    front = Front(world.driver("etl"))
    front.fail(pattern, fault)
    async with serving(front) as url:
        source = SparkSource(settings(driver_urls=[url, world.driver("adhoc")], timeout_seconds=0.5))
        if expect == "error":
            with pytest.raises(SourceError):
                await collect(source)
            return
        samples = await collect(source)
    # The healthy driver's application is still reported in full.
    assert named(world, samples) == {"adhoc": AT_0["adhoc"]}


async def test_a_completed_attempt_is_not_reported(world: World) -> None:
    front = Front(world.driver("etl"))
    listing = [{"id": world.ids["etl"], "name": "etl", "attempts": [{"completed": True, "sparkUser": "x"}]}]
    front.answer_json(r"/api/v1/applications$", listing)
    async with serving(front) as url:
        samples = await collect(SparkSource(settings(driver_urls=[url])))
    assert samples == []


async def test_a_fixed_driver_that_refuses_is_an_error() -> None:
    source = SparkSource(settings(driver_urls=[f"http://127.0.0.1:{closed_port()}"]))
    with pytest.raises(SourceError, match="failed"):
        await collect(source)


@pytest.mark.parametrize(
    "fault",
    [
        Fault(500, "boom", "text/plain"),  # the master fails
        Fault(200, "<html/>", "text/html"),  # the master answers its HTML page
        Fault(200, '{"workers": []}'),  # the master's document lacks the core counts
        Fault(200, '{"workers": [{"state": 1}], "cores": 1, "coresused": 0, "activeapps": []}'),
        Fault(hang=True),  # the master hangs
    ],
)
async def test_master_failures_fail_the_poll(world: World, fault: Fault) -> None:
    front = Front(world.sandbox.master_url)
    front.fail(r"^/json/", fault)
    async with serving(front) as url:
        source = SparkSource(
            settings(master=url, reverse_proxy=True, driver_urls=[world.driver("etl")], timeout_seconds=0.5)
        )
        with pytest.raises(SourceError):
            await collect(source)


async def test_a_master_that_refuses_fails_the_poll() -> None:
    source = SparkSource(settings(master=f"http://127.0.0.1:{closed_port()}"))
    with pytest.raises(SourceError):
        await collect(source)


async def test_an_application_finished_behind_the_proxy_is_skipped(world: World) -> None:
    # The master listed "adhoc", then it finished before the source reached it through the proxy.
    front = Front(world.sandbox.master_url)
    async with serving(front) as url:
        stale = json.loads(
            await _text(world.sandbox.master_url + "/json/"),
        )
        front.answer_json(r"^/json/", stale)
        world.pool.finish_app(world.ids["adhoc"])
        await world.sandbox.sync()
        samples = await collect(SparkSource(settings(master=url, reverse_proxy=True)))
    assert set(named(world, samples)) == {"etl", "late"}


async def test_a_listed_driver_that_stopped_is_skipped(world: World) -> None:
    # A driver that answered its listing, then exited before the details were read.
    front = Front(world.driver("adhoc"))
    front.fail(r"status=active", Fault(404, f"no such app: {world.ids['adhoc']}", "text/plain"))
    async with serving(front) as url:
        samples = await collect(SparkSource(settings(driver_urls=[url, world.driver("late")])))
    assert set(named(world, samples)) == {"late"}


async def _text(url: str) -> str:
    import aiohttp

    async with aiohttp.ClientSession() as s, s.get(url) as r:
        return await r.text()


async def test_many_applications_are_read_concurrently_within_the_timeout() -> None:
    pool = SparkPool()
    pool.add_worker(64)
    apps = [pool.submit(AppSpec(f"a{i}", max_cores=2), [[StageSpec(3 + i, 1.0)]]).app_id for i in range(20)]
    async with SparkSandbox(pool, wall_clock=False) as sb:
        source = SparkSource(settings(master=sb.master_url, reverse_proxy=True, timeout_seconds=5))
        samples = await collect(source)
    remaining = {a: v["spark_remaining_tasks"] for a, v in by_app(samples).items()}
    assert remaining == {app: float(3 + i) for i, app in enumerate(apps)}


# ---------------------------------------------------------------------- the arithmetic alone

DEFAULTS = settings(driver_urls=["http://x:4040"])


@pytest.mark.parametrize(
    ("props", "overrides", "expected"),
    [
        # nothing set: Spark's defaults (1 core, 1 cpu, ratio 1, no dynamic allocation)
        ({}, {}, AllocationConf(1, 1.0, False, 0, None)),
        # the operator's fallbacks apply when the application is silent
        ({}, {"executor_cores": 4, "task_cpus": 2}, AllocationConf(2, 1.0, False, 0, None)),
        # the application's own settings win over the fallbacks
        (
            {"spark.executor.cores": "6", "spark.task.cpus": "4"},
            {"executor_cores": 8},
            AllocationConf(1, 1.0, False, 0, None),
        ),
        # dynamic allocation with bounds and a ratio
        (
            {
                "spark.master": "spark://m:7077",
                "spark.dynamicAllocation.enabled": "true",
                "spark.dynamicAllocation.minExecutors": "2",
                "spark.dynamicAllocation.maxExecutors": "9",
                "spark.dynamicAllocation.executorAllocationRatio": "0.25",
            },
            {},
            AllocationConf(1, 0.25, True, 2, 9),
        ),
        # Spark ignores dynamic allocation in local mode
        (
            {"spark.master": "local[4]", "spark.dynamicAllocation.enabled": "true"},
            {},
            AllocationConf(1, 1.0, False, 0, None),
        ),
        # ... unless testing it
        (
            {
                "spark.master": "local[4]",
                "spark.dynamicAllocation.enabled": "true",
                "spark.dynamicAllocation.testing": "true",
            },
            {},
            AllocationConf(1, 1.0, True, 0, None),
        ),
        # local-cluster is not local mode
        (
            {"spark.master": "local-cluster[2,1,1024]", "spark.dynamicAllocation.enabled": "TRUE"},
            {},
            AllocationConf(1, 1.0, True, 0, None),
        ),
    ],
)
def test_allocation_conf(
    props: Mapping[str, str], overrides: Mapping[str, Any], expected: AllocationConf
) -> None:
    conf = DEFAULTS.model_copy(update=dict(overrides))
    assert allocation_conf(props, conf) == expected


@pytest.mark.parametrize(
    "props",
    [
        {"spark.executor.cores": "two"},  # not an integer
        {"spark.task.cpus": "0"},  # not positive
        {"spark.dynamicAllocation.executorAllocationRatio": "nan"},  # not a finite ratio
        {"spark.dynamicAllocation.executorAllocationRatio": "x"},  # not a number
    ],
)
def test_allocation_conf_rejects_garbage(props: Mapping[str, str]) -> None:
    with pytest.raises(SourceError):
        allocation_conf(props, DEFAULTS)


@pytest.mark.parametrize(
    ("conf", "remaining", "needed"),
    [
        (AllocationConf(2, 0.5, False, 0, None), 7, 2),  # ceil(7 x 0.5 / 2) = ceil(1.75)
        (AllocationConf(1, 1.0, False, 0, None), 0, 0),  # idle, no floor without dynamic allocation
        (AllocationConf(1, 1.0, True, 2, None), 0, 2),  # minExecutors is a floor
        (AllocationConf(4, 1.0, True, 0, 3), 100, 3),  # maxExecutors is a ceiling
        (AllocationConf(4, 1.0, False, 0, 3), 100, 25),  # bounds do not apply without it
        (AllocationConf(3, 0.1, True, 0, None), 31, 2),  # ceil(1.0333...)
    ],
)
def test_executors_needed(conf: AllocationConf, remaining: int, needed: int) -> None:
    assert conf.executors_needed(remaining) == needed


def executor(ident: str, max_tasks: int, active: bool = True) -> dict[str, object]:
    return {"id": ident, "maxTasks": max_tasks, "isActive": active}


@pytest.mark.parametrize(
    ("executors", "slots", "count"),
    [
        # cluster mode: the driver row has no slots and does not count
        ([executor("driver", 0), executor("0", 4), executor("1", 4)], 8, 2),
        # local mode: the driver is the only executor
        ([executor("driver", 4)], 4, 1),
        # cluster mode before any executor registered
        ([executor("driver", 0)], 0, 0),
        # a removed executor is not capacity
        ([executor("driver", 0), executor("0", 2), executor("1", 2, active=False)], 2, 1),
    ],
)
def test_slots_and_executors(executors: list[dict[str, object]], slots: int, count: int) -> None:
    conf = AllocationConf(1, 1.0, False, 0, None)
    figures = app_figures("app-1", "x", [], [], executors, conf)
    assert (figures.slots, figures.executors) == (slots, count)


NO_DA = AllocationConf(1, 1.0, False, 0, None)


def test_remaining_counts_completed_indices_not_attempts() -> None:
    # A retried task counts once: 10 tasks, 6 indices done though 8 attempts completed.
    active = [stage_doc(numTasks=10, numActiveTasks=5, numCompleteTasks=8, numCompletedIndices=6)]
    figures = app_figures("app-1", "x", active, [], [], NO_DA)
    assert (figures.remaining, figures.running, figures.pending) == (4, 5, 0)


def test_task_seconds_is_the_run_time_per_finished_task_over_active_stages() -> None:
    active = [
        stage_doc(numCompleteTasks=4, executorRunTime=10_000),
        stage_doc(numCompleteTasks=1, executorRunTime=5_000),
    ]
    # Pending stages do not count: with this one the mean would be 105 s / 8 = 13.125 s.
    pending = [stage_doc(numCompleteTasks=3, executorRunTime=90_000)]
    figures = app_figures("app-1", "x", active, pending, [], NO_DA)
    # 15 s over 5 tasks, weighted by tasks: not the mean of the stages' means (3.75 s).
    assert figures.task_seconds == 3.0


def test_task_seconds_counts_attempts_not_indices() -> None:
    # 8 attempts ran 1 s each for 6 indices: a task takes 1 s, not 8/6 s.
    active = [stage_doc(numTasks=10, numCompleteTasks=8, numCompletedIndices=6, executorRunTime=8_000)]
    assert app_figures("app-1", "x", active, [], [], NO_DA).task_seconds == 1.0


@pytest.mark.parametrize(
    "active",
    [
        [],  # no active stage
        [stage_doc(numCompleteTasks=0, numCompletedIndices=0, executorRunTime=0)] * 2,  # none finished
    ],
)
def test_task_seconds_is_none_until_a_task_finishes(active: list[dict[str, object]]) -> None:
    assert app_figures("app-1", "x", active, [], [], NO_DA).task_seconds is None


@pytest.mark.parametrize("field", ["numCompleteTasks", "executorRunTime"])
@pytest.mark.parametrize(
    "value", [None, -1, "12", 1.5, True], ids=["missing", "negative", "string", "fraction", "bool"]
)
def test_a_malformed_task_time_field_is_an_error(field: str, value: object) -> None:
    doc = stage_doc()
    if value is None:
        del doc[field]
    else:
        doc[field] = value
    # The well-formed first stage shows that every active stage is checked, not only the first.
    with pytest.raises(SourceError, match=f"'{field}'"):
        app_figures("app-1", "x", [stage_doc(), doc], [], [], NO_DA)


def test_settings_need_somewhere_to_look() -> None:
    with pytest.raises(ValueError, match="at least one"):
        settings()
    with pytest.raises(ValueError, match="reverse_proxy needs master"):
        settings(driver_urls=["http://x:4040"], reverse_proxy=True)


# ---------------------------------------------------------------------- Kubernetes discovery


@pytest.fixture
async def kube_world(world: World) -> AsyncIterator[tuple[World, KubeSandbox, str]]:
    """The pool, a Kubernetes API listing its drivers, and the API's URL.

    Every driver pod shares one UI port, so the etl driver's port is the pod port; a server on [::1] at
    that same port answers 500 to anything, so fetching a pod that should have been left out fails the
    poll instead of passing unnoticed.
    """
    etl_port = int(world.driver("etl").rsplit(":", 1)[1])
    poison = Front("http://127.0.0.1:1")
    poison.fail(".", Fault(500, "not a driver you should read", "text/plain"))
    trap = await serve(poison.app(), host="::1", port=etl_port)
    kube = KubeSandbox()
    driver = {"spark-role": "driver"}
    kube.add_pod("spark", "etl-driver", driver, "127.0.0.1")
    kube.add_pod("spark", "etl-exec-1", {"spark-role": "executor"}, "::1")  # not a driver
    kube.add_pod("spark", "next-driver", driver, "::1", phase="Pending")  # not running yet
    kube.add_pod("elsewhere", "foreign-driver", driver, "::1")  # outside the watched namespace
    adhoc_address = world.driver("adhoc").removeprefix("http://")
    for name, state, address in [
        ("adhoc", "RUNNING", adhoc_address),
        ("yesterday", "COMPLETED", f"[::1]:{etl_port}"),
        ("starting", "SUBMITTED", f"[::1]:{etl_port}"),
    ]:
        kube.put_object(
            "sparkoperator.k8s.io",
            "v1beta2",
            "sparkapplications",
            "spark",
            {
                "metadata": {"name": name},
                "spec": {"type": "Python", "mode": "cluster"},
                "status": {
                    "applicationState": {"state": state},
                    "driverInfo": {"webUIAddress": address, "podName": f"{name}-driver"},
                },
            },
        )
    api = await serve(kube.app())
    try:
        yield world, kube, api.url
    finally:
        await api.stop()
        await trap.stop()


def kube_settings(port: int, **discovery: Any) -> Any:
    return settings(kubernetes=SparkKubernetesDiscovery(ui_port=port, **discovery))


@pytest.mark.parametrize(
    ("discovery", "expected"),
    [
        # driver pods in the watched namespace only
        ({"namespaces": ["spark"]}, {"etl"}),
        # and the operator's RUNNING applications
        ({"namespaces": ["spark"], "spark_operator": True}, {"etl", "adhoc"}),
    ],
)
async def test_kubernetes_discovery(
    kube_world: tuple[World, KubeSandbox, str], discovery: dict[str, Any], expected: set[str]
) -> None:
    world, _, url = kube_world
    port = int(world.driver("etl").rsplit(":", 1)[1])
    client = client_for(url)
    try:
        samples = await collect(SparkSource(kube_settings(port, **discovery), kube=client))
    finally:
        client.close()
    got = named(world, samples)
    assert set(got) == expected
    assert all(got[name] == AT_0[name] for name in expected)


async def test_kubernetes_discovery_in_all_namespaces_reaches_every_driver_pod(
    kube_world: tuple[World, KubeSandbox, str],
) -> None:
    # The pod in "elsewhere" is now watched and points at the server that answers 500.
    world, _, url = kube_world
    port = int(world.driver("etl").rsplit(":", 1)[1])
    client = client_for(url)
    try:
        with pytest.raises(SourceError, match="HTTP 500"):
            await collect(SparkSource(kube_settings(port), kube=client))
    finally:
        client.close()


async def test_kubernetes_api_failure_fails_the_poll() -> None:
    client = client_for(f"http://127.0.0.1:{closed_port()}")
    try:
        with pytest.raises(SourceError, match="Kubernetes"):
            await collect(SparkSource(kube_settings(4040, namespaces=["spark"]), kube=client))
    finally:
        client.close()
