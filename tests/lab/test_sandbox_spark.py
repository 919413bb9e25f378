"""The emulated Spark pool: scheduling, allocation, decommissioning, and the HTTP faces."""

from __future__ import annotations

import json
import math

import aiohttp
import pytest

from lab.sandbox.spark import (
    ALIVE,
    DEAD,
    DECOMMISSIONED,
    FINISHED,
    RUNNING,
    WAITING,
    AppSpec,
    DynamicAllocation,
    MovingLoad,
    SparkPool,
    SparkSandbox,
    StageSpec,
    demo_pool,
    master_json,
)
from lab.sandbox.spark_http import executors_json, stage_json
from tests.helpers.wait import eventually


def one_worker_pool(cores: int = 4, **kw: object) -> SparkPool:
    pool = SparkPool(**kw)  # type: ignore[arg-type]
    pool.add_worker(cores)
    return pool


async def get(url: str, method: str = "GET") -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as s, s.request(method, url, allow_redirects=False) as r:
        return r.status, r.content_type, await r.text()


# ---------------------------------------------------------------------- model


@pytest.mark.parametrize(
    ("tasks", "seconds", "executor_cores", "task_cpus"),
    [
        (10, 1.0, 2, 1),  # 2 executors x 2 slots: waves of 4, 4, 2
        (7, 0.5, 4, 1),  # one executor of 4 slots
        (9, 2.0, 4, 2),  # task.cpus 2: one executor of 4 cores has 2 slots
        (3, 1.5, 1, 1),  # fewer tasks than slots: a single wave
    ],
)
def test_tasks_run_in_waves_of_the_free_slots(
    tasks: int, seconds: float, executor_cores: int, task_cpus: int
) -> None:
    pool = one_worker_pool(4)
    app = pool.submit(
        AppSpec("waves", executor_cores=executor_cores, task_cpus=task_cpus), [[StageSpec(tasks, seconds)]]
    )
    slots = (4 // executor_cores) * (executor_cores // task_cpus)
    stage = app.stages[0]
    assert sum(e.slots for e in app.executors) == slots
    waves = math.ceil(tasks / slots)
    for wave in range(waves):
        pool.advance(wave * seconds)
        done = min(tasks, wave * slots)
        assert (stage.completed, stage.running) == (done, min(slots, tasks - done))
        assert stage.status == "ACTIVE"
        # The adapter's spark_task_seconds divides these: the finished tasks' summed run time by their count.
        doc = stage_json(pool, stage)
        assert (doc["numCompleteTasks"], doc["executorRunTime"]) == (done, round(done * seconds * 1000))
    pool.advance(waves * seconds)
    assert (stage.completed, stage.running, stage.status) == (tasks, 0, "COMPLETE")
    assert app.jobs[0].status == "SUCCEEDED"


def test_stages_of_a_job_run_one_after_another() -> None:
    pool = one_worker_pool(2)
    app = pool.submit(AppSpec("chain"), [[StageSpec(2, 1.0), StageSpec(4, 1.0)]])
    first, second = app.stages
    assert (first.status, second.status) == ("ACTIVE", "PENDING")
    assert second.running == 0
    pool.advance(0.999)
    assert (first.status, second.status) == ("ACTIVE", "PENDING")
    pool.advance(1.0)
    assert (first.status, second.status) == ("COMPLETE", "ACTIVE")
    assert second.submitted_at == 1.0
    assert second.running == 2
    pool.advance(3.0)
    assert second.status == "COMPLETE"


def test_figures_do_not_depend_on_how_often_time_moves() -> None:
    def build() -> SparkPool:
        pool = SparkPool(executor_start_seconds=0.3)
        pool.add_worker(3)
        pool.add_worker(2)
        pool.submit(
            AppSpec("a", executor_cores=1, dynamic_allocation=DynamicAllocation(max_executors=4)),
            [[StageSpec(17, 0.7), StageSpec(5, 1.3)]],
        )
        pool.submit(AppSpec("b", executor_cores=2, max_cores=2), [[StageSpec(9, 0.45)]])
        return pool

    coarse, fine = build(), build()
    coarse.advance(4.0)
    for i in range(1, 41):
        fine.advance(i * 0.1)
    fine.advance(4.0)
    assert master_json(coarse) == master_json(fine)
    for a, b in zip(coarse.apps, fine.apps, strict=True):
        assert [stage_json(coarse, s) for s in a.stages] == [stage_json(fine, s) for s in b.stages]


def test_applications_get_executors_in_submission_order_and_wait_for_cores() -> None:
    pool = one_worker_pool(2)
    first = pool.submit(AppSpec("first"), [[StageSpec(4, 1.0)]])
    second = pool.submit(AppSpec("second"), [[StageSpec(1, 1.0)]])
    # Without spark.cores.max the first application takes every free core, as on a real master.
    assert first.state == RUNNING
    assert first.cores_granted == 2
    assert second.state == WAITING
    assert second.executors == []
    apps = {a["name"]: a for a in master_json(pool)["activeapps"]}
    assert (apps["second"]["state"], apps["second"]["cores"]) == ("WAITING", 0)
    pool.finish_app(first.app_id)
    assert second.state == RUNNING
    assert second.cores_granted == 2
    doc = master_json(pool)
    assert [a["name"] for a in doc["completedapps"]] == ["first"]
    assert doc["completedapps"][0]["state"] == FINISHED


def test_dynamic_allocation_follows_the_backlog_and_releases_idle_executors() -> None:
    pool = one_worker_pool(8)
    da = DynamicAllocation(
        min_executors=1, max_executors=3, executor_allocation_ratio=0.5, executor_idle_timeout_seconds=5
    )
    app = pool.submit(AppSpec("dyn", executor_cores=2, dynamic_allocation=da))
    # Before the first job: initialExecutors defaults to minExecutors.
    assert len(app.executors) == 1
    pool.submit_job(app.app_id, [StageSpec(10, 1.0)])
    # ceil(10 x 0.5 / 2) = 3, within [1, 3].
    assert len(app.executors) == 3
    # Waves of 6 slots: 6 tasks in [0, 1), then 4 in [1, 2) on two executors; the third is idle from 1.
    pool.advance(2.0)
    assert app.remaining_tasks == 0
    assert len(app.executors) == 3  # idle, but not for 5 s yet
    pool.advance(5.999)
    assert len(app.executors) == 3
    pool.advance(6.0)
    assert len(app.executors) == 2
    pool.advance(7.0)
    assert len(app.executors) == 1  # back to minExecutors, not below
    assert app.removed_executors == 2


def test_dynamic_allocation_target_is_clamped_to_max() -> None:
    pool = one_worker_pool(16)
    app = pool.submit(
        AppSpec("dyn", dynamic_allocation=DynamicAllocation(max_executors=5)), [[StageSpec(40, 1.0)]]
    )
    assert app.executors_needed() == 40
    assert app.executor_target() == 5
    assert len(app.executors) == 5


def test_a_decommissioned_worker_drains_then_leaves() -> None:
    pool = SparkPool(decommission_enabled=True)
    doomed = pool.add_worker(2, host="10.1.0.1")
    pool.add_worker(2, host="10.1.0.2")
    app = pool.submit(
        AppSpec("drain", dynamic_allocation=DynamicAllocation(max_executors=4)), [[StageSpec(12, 1.0)]]
    )
    on_doomed = list(doomed.executors)
    assert len(on_doomed) == 2
    assert all(e.running for e in on_doomed)
    pool.advance(0.5)
    assert pool.decommission_hosts(["10.1.0.1"]) == 1
    assert doomed.state == DECOMMISSIONED
    # Running tasks go on; no new executor lands there.
    assert all(e.running for e in on_doomed)
    assert doomed.cores_free == 0
    pool.advance(1.0)
    # The first wave ended: the drained executors left and took no second task; the worker left too.
    assert not any(e in app.executors for e in on_doomed)
    assert doomed not in pool.workers
    assert doomed in pool.departed_workers
    assert all(e.worker is not None and e.worker.host == "10.1.0.2" for e in app.executors)
    pool.advance(6.0)
    assert app.stages[0].status == "COMPLETE"
    # Decommissioning an unknown or already decommissioned host hits nothing.
    assert pool.decommission_hosts(["10.1.0.1", "10.9.9.9"]) == 0


def test_a_killed_worker_loses_its_running_tasks() -> None:
    pool = SparkPool()
    victim = pool.add_worker(2)
    pool.add_worker(2)
    app = pool.submit(AppSpec("crash", max_cores=4), [[StageSpec(6, 2.0)]])
    stage = app.stages[0]
    assert stage.running == 4
    pool.advance(1.0)
    pool.kill_worker(victim.worker_id)
    assert victim.state == DEAD
    assert victim.cores_used == 0
    assert (stage.running, stage.failed, stage.completed) == (2, 2, 0)
    worker_row = next(w for w in master_json(pool)["workers"] if w["id"] == victim.worker_id)
    assert worker_row["state"] == DEAD
    assert stage_json(pool, stage)["numFailedTasks"] == 2
    # A lost executor reports no metrics for its tasks, so their time never reaches the stage.
    assert stage_json(pool, stage)["executorRunTime"] == 0


def test_local_mode_runs_on_the_driver_and_uses_no_worker() -> None:
    pool = one_worker_pool(4)
    app = pool.submit(AppSpec("local", local_cores=3), [[StageSpec(5, 1.0)]])
    assert app.stages[0].running == 3
    assert pool.workers[0].cores_used == 0
    rows = executors_json(pool, app)
    assert [(r["id"], r["maxTasks"], r["activeTasks"]) for r in rows] == [("driver", 3, 3)]
    assert master_json(pool)["activeapps"] == []


def test_time_only_goes_forward() -> None:
    pool = one_worker_pool()
    pool.advance(5.0)
    with pytest.raises(ValueError, match="forward"):
        pool.advance(4.0)


def test_moving_load_is_seeded() -> None:
    def run(seed: int) -> list[tuple[str, int, int]]:
        pool, load = demo_pool(seed)
        for t in range(0, 600, 10):
            load.step(pool, float(t))
            pool.advance(float(t))
        return [(a.spec.name, len(a.jobs), sum(s.num_tasks for s in a.stages)) for a in pool.apps]

    assert run(7) == run(7)
    assert run(7) != run(8)
    jobs = sum(n for _, n, _ in run(7))
    # About 6 jobs a minute over 10 minutes; a generous band keeps this about the shape, not luck.
    assert 20 <= jobs <= 110


def test_moving_load_rate_moves() -> None:
    load = MovingLoad(period_seconds=100, jobs_per_minute=6)
    assert load.rate(25) > load.rate(0) > load.rate(75)


# ---------------------------------------------------------------------- HTTP faces

# Keys a real Spark 4.3 sends (read from pyspark 4.3 on this machine); the sandbox sends at least these.
MASTER_KEYS = {
    "url", "workers", "aliveworkers", "cores", "coresused", "memory", "memoryused", "resources",
    "resourcesused", "activeapps", "completedapps", "activedrivers", "completeddrivers", "status",
}  # fmt: skip
WORKER_KEYS = {
    "id", "host", "port", "webuiaddress", "cores", "coresused", "coresfree", "memory", "memoryused",
    "memoryfree", "resources", "resourcesused", "resourcesfree", "state", "lastheartbeat",
}  # fmt: skip
MASTER_APP_KEYS = {
    "id", "starttime", "name", "cores", "user", "memoryperexecutor", "memoryperslave",
    "resourcesperexecutor", "resourcesperslave", "submitdate", "state", "duration",
}  # fmt: skip
APPLICATION_KEYS = {"id", "name", "attempts"}
ATTEMPT_KEYS = {
    "startTime", "endTime", "lastUpdated", "duration", "sparkUser", "completed", "appSparkVersion",
    "startTimeEpoch", "endTimeEpoch", "lastUpdatedEpoch",
}  # fmt: skip
STAGE_KEYS = {
    "status", "stageId", "attemptId", "numTasks", "numActiveTasks", "numCompleteTasks", "numFailedTasks",
    "numKilledTasks", "numCompletedIndices", "executorRunTime", "name", "schedulingPool", "rddIds",
    "accumulatorUpdates", "killedTasksSummary", "resourceProfileId",
}  # fmt: skip
EXECUTOR_KEYS = {
    "id", "hostPort", "isActive", "rddBlocks", "memoryUsed", "diskUsed", "totalCores", "maxTasks",
    "activeTasks", "failedTasks", "completedTasks", "totalTasks", "totalDuration", "totalGCTime",
    "totalInputBytes", "totalShuffleRead", "totalShuffleWrite", "isBlacklisted", "maxMemory", "addTime",
    "executorLogs", "blacklistedInStages", "attributes", "resources", "resourceProfileId", "isExcluded",
    "excludedInStages",
}  # fmt: skip
JOB_KEYS = {
    "jobId", "name", "submissionTime", "stageIds", "jobTags", "status", "numTasks", "numActiveTasks",
    "numCompletedTasks", "numSkippedTasks", "numFailedTasks", "numKilledTasks", "numCompletedIndices",
    "numActiveStages", "numCompletedStages", "numSkippedStages", "numFailedStages", "killedTasksSummary",
}  # fmt: skip
ENVIRONMENT_KEYS = {
    "runtime", "sparkProperties", "hadoopProperties", "systemProperties", "metricsProperties",
    "classpathEntries", "resourceProfiles",
}  # fmt: skip


def busy_pool(decommission: bool = False) -> tuple[SparkPool, str]:
    pool = SparkPool(decommission_enabled=decommission)
    pool.add_worker(4, host="10.2.0.1")
    pool.add_worker(4, host="10.2.0.2")
    app = pool.submit(
        AppSpec(
            "busy",
            executor_cores=2,
            dynamic_allocation=DynamicAllocation(max_executors=3, executor_allocation_ratio=0.5),
        ),
        [[StageSpec(20, 1.0), StageSpec(6, 1.0)]],
    )
    return pool, app.app_id


async def test_documents_carry_the_upstream_field_names() -> None:
    pool, app_id = busy_pool()
    async with SparkSandbox(pool, wall_clock=False) as sb:
        driver = sb.driver_urls[app_id] + f"/api/v1/applications/{app_id}"
        master = json.loads((await get(sb.master_url + "/json/"))[2])
        apps = json.loads((await get(sb.driver_urls[app_id] + "/api/v1/applications"))[2])
        stages = json.loads((await get(driver + "/stages"))[2])
        executors = json.loads((await get(driver + "/executors"))[2])
        jobs = json.loads((await get(driver + "/jobs"))[2])
        env = json.loads((await get(driver + "/environment"))[2])
    assert master.keys() >= MASTER_KEYS
    assert all(w.keys() >= WORKER_KEYS for w in master["workers"])
    assert master["activeapps"]
    assert all(a.keys() >= MASTER_APP_KEYS for a in master["activeapps"])
    assert apps[0].keys() >= APPLICATION_KEYS
    assert apps[0]["attempts"][0].keys() >= ATTEMPT_KEYS
    assert len(stages) == 2
    assert all(s.keys() >= STAGE_KEYS for s in stages)
    # A pending stage has not been submitted: Spark leaves submissionTime out.
    assert "submissionTime" in stages[1]
    assert "submissionTime" not in stages[0]
    assert {e["id"] for e in executors} == {"driver", "0", "1", "2"}
    assert all(e.keys() >= EXECUTOR_KEYS for e in executors)
    assert jobs
    assert all(j.keys() >= JOB_KEYS for j in jobs)
    assert env.keys() >= ENVIRONMENT_KEYS
    # Properties are [key, value] pairs, as Spark sends tuples.
    props = dict(env["sparkProperties"])
    assert all(isinstance(p, list) and len(p) == 2 for p in env["sparkProperties"])
    assert props["spark.executor.cores"] == "2"
    assert props["spark.dynamicAllocation.executorAllocationRatio"] == "0.5"
    assert "spark.task.cpus" not in props  # defaults are not in a real environment either


def test_master_counts_alive_workers_only() -> None:
    pool, _ = busy_pool(decommission=True)
    pool.decommission_hosts(["10.2.0.2"])
    doc = master_json(pool)
    assert doc["aliveworkers"] == 1
    assert doc["cores"] == 4
    assert {w["host"]: w["state"] for w in doc["workers"]} == {"10.2.0.1": ALIVE, "10.2.0.2": DECOMMISSIONED}


@pytest.mark.parametrize(
    ("path", "status", "body_start"),
    [
        # the application list
        ("/api/v1/applications", 200, "["),
        # a trailing slash is the same resource to Jersey
        ("/api/v1/applications/{app}/environment/", 200, "{"),
        # an unknown application id under the list
        ("/api/v1/applications/app-nope/stages", 404, "no such app: app-nope"),
        # an unknown application id alone
        ("/api/v1/applications/app-nope", 404, "unknown app: app-nope"),
        # an unknown resource under a known application reads as an attempt id
        ("/api/v1/applications/{app}/nosuch", 404, "unknown app {app}, attempt nosuch"),
        # a status Spark does not know
        ("/api/v1/applications/{app}/stages?status=bogus", 404, "<html>"),
        # a status Spark knows but the model never has
        ("/api/v1/applications/{app}/stages?status=failed", 200, "[]"),
        # outside the API
        ("/api/v1/nosuch", 404, "<html>"),
    ],
)
async def test_driver_answers_like_spark(path: str, status: int, body_start: str) -> None:
    pool, app_id = busy_pool()
    async with SparkSandbox(pool, wall_clock=False) as sb:
        got = await get(sb.driver_urls[app_id] + path.replace("{app}", app_id))
    assert got[0] == status
    assert got[2].startswith(body_start.replace("{app}", app_id))


async def test_stage_and_job_status_filters() -> None:
    pool, app_id = busy_pool()
    async with SparkSandbox(pool, wall_clock=False) as sb:
        base = sb.driver_urls[app_id] + f"/api/v1/applications/{app_id}"
        active = json.loads((await get(base + "/stages?status=active"))[2])
        pending = json.loads((await get(base + "/stages?status=pending"))[2])
        both = json.loads((await get(base + "/stages?status=active&status=pending"))[2])
        running = json.loads((await get(base + "/jobs?status=running"))[2])
        pool.advance(10.0)
        done = json.loads((await get(base + "/jobs?status=succeeded"))[2])
        running_after = json.loads((await get(base + "/jobs?status=running"))[2])
    assert [s["status"] for s in active] == ["ACTIVE"]
    assert [s["status"] for s in pending] == ["PENDING"]
    assert len(both) == 2
    assert [j["status"] for j in running] == ["RUNNING"]
    assert [j["status"] for j in done] == ["SUCCEEDED"]
    assert running_after == []


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
async def test_driver_refuses_other_methods(method: str) -> None:
    pool, app_id = busy_pool()
    async with SparkSandbox(pool, wall_clock=False) as sb:
        status, _, _ = await get(sb.driver_urls[app_id] + "/api/v1/applications", method)
    assert status == 405


async def test_master_paths() -> None:
    pool, _ = busy_pool()
    async with SparkSandbox(pool, wall_clock=False) as sb:
        redirect = await get(sb.master_url + "/json")
        index = await get(sb.master_url + "/anything/else")
        post_json = await get(sb.master_url + "/json/", "POST")
    assert redirect[0] == 301
    # The real master serves its index page for any other GET.
    assert index[0] == 200
    assert index[1] == "text/html"
    assert post_json[0] == 405


async def test_decommission_is_refused_when_disabled() -> None:
    pool, _ = busy_pool(decommission=False)
    async with SparkSandbox(pool, wall_clock=False) as sb:
        status, _, _ = await get(sb.master_url + "/workers/kill/?host=10.2.0.1", "POST")
    assert status == 405
    assert [w.state for w in pool.workers] == [ALIVE, ALIVE]


async def test_decommission_over_http() -> None:
    pool, app_id = busy_pool(decommission=True)
    async with SparkSandbox(pool, wall_clock=False) as sb:
        unknown = await get(sb.master_url + "/workers/kill/?host=10.9.9.9", "POST")
        hit = await get(sb.master_url + "/workers/kill/?host=10.2.0.2", "POST")
        as_get = await get(sb.master_url + "/workers/kill/?host=10.2.0.2")
        doc = json.loads((await get(sb.master_url + "/json/"))[2])
        states = {w["host"]: w["state"] for w in doc["workers"]}
        pool.advance(1.0)  # the first wave ends; the drained worker leaves
        after = json.loads((await get(sb.master_url + "/json/"))[2])
    assert unknown[0] == 404
    assert hit[0] == 200
    assert as_get[0] == 200
    assert as_get[1] == "text/html"
    assert states == {"10.2.0.1": ALIVE, "10.2.0.2": DECOMMISSIONED}
    assert [w["host"] for w in after["workers"]] == ["10.2.0.1"]
    assert pool.app(app_id).stages[0].completed == 6


async def test_reverse_proxy_reaches_the_driver() -> None:
    pool, app_id = busy_pool()
    other = pool.submit(AppSpec("other", finish_when_idle=True), [[StageSpec(1, 1.0)]])
    async with SparkSandbox(pool, wall_clock=False) as sb:
        path = f"/api/v1/applications/{app_id}/stages?status=active"
        direct = await get(sb.driver_urls[app_id] + path)
        proxied = await get(sb.master_url + f"/proxy/{app_id}" + path)
        unknown = await get(sb.master_url + "/proxy/app-nope/api/v1/applications")
        other_url = sb.driver_urls[other.app_id]
        pool.advance(1.0)  # "other" finishes when its only job ends
        await sb.sync()
        finished = await get(sb.master_url + f"/proxy/{other.app_id}/api/v1/applications")
        with pytest.raises(aiohttp.ClientConnectorError):
            await get(other_url + "/api/v1/applications")
    assert proxied == direct
    assert unknown[0] == 403
    assert finished[0] == 403


async def test_wall_clock_runner_moves_the_model() -> None:
    pool = one_worker_pool(2)
    app = pool.submit(AppSpec("tick"), [[StageSpec(4, 0.1)]])
    async with SparkSandbox(pool, tick_seconds=0.02) as sb:
        url = sb.driver_urls[app.app_id] + f"/api/v1/applications/{app.app_id}/jobs?status=succeeded"

        async def succeeded() -> list[object]:
            result: list[object] = json.loads((await get(url))[2])
            return result

        await eventually(succeeded, timeout=10)
    assert pool.now >= 0.2


async def test_wall_clock_runner_with_load_starts_drivers() -> None:
    pool, _ = demo_pool(3)
    load = MovingLoad(seed=3, jobs_per_minute=600)
    async with SparkSandbox(pool, tick_seconds=0.02, load=load) as sb:

        async def drivers() -> dict[str, str]:
            return sb.driver_urls

        urls = await eventually(drivers, check=lambda d: len(d) >= 2, timeout=10)
        status, _, body = await get(next(iter(urls.values())) + "/api/v1/applications")
    assert status == 200
    assert json.loads(body)[0]["id"] in urls
