"""The HTTP faces of the emulated Spark pool: the standalone master and one driver per application.

Shapes and status codes follow a real Spark 4 (checked against pyspark 4.3 on this machine):

master (``:8080``)
    ``GET /json/`` the cluster document (``/json`` redirects there with 301); ``POST /workers/kill/?host=h``
    decommissions the workers on the hosts: 200 if any, 404 if none, and 405 when
    ``spark.decommission.enabled`` is off (the master then has no such handler and its root page
    refuses POST); ``/proxy/<app-id>/...`` forwards to the driver of an active application
    (``spark.ui.reverseProxy``), 403 for an application the master does not know (Jetty's answer
    when the proxy has no target). Any other GET answers the HTML index page; other methods 405.

driver (``:4040``)
    ``GET /api/v1/applications[/<id>[/stages|executors|allexecutors|jobs|environment]]``;
    ``?status=`` filters stages (active, complete, pending, failed, skipped) and jobs (running,
    succeeded, failed, unknown); an unknown value is 404 as Jersey answers. An unknown application id
    is 404 ``no such app: <id>`` (``unknown app: <id>`` for the bare application). Wrong methods 405.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from lab.sandbox.serve import Served, serve
from lab.sandbox.spark_model import (
    DRIVER_ID,
    FINISHED,
    JOB_RUNNING,
    JOB_SUCCEEDED,
    SPARK_VERSION,
    STAGE_ACTIVE,
    STAGE_COMPLETE,
    STAGE_PENDING,
    Application,
    Executor,
    MovingLoad,
    SparkPool,
    Stage,
    Worker,
)

JsonObj = dict[str, Any]

STAGE_STATUSES = {"active": STAGE_ACTIVE, "complete": STAGE_COMPLETE, "pending": STAGE_PENDING}
JOB_STATUSES = {"running": JOB_RUNNING, "succeeded": JOB_SUCCEEDED}
# Spark knows these too; the model never produces them, but asking for them is not an error.
_OTHER_STAGE_STATUSES = {"failed", "skipped"}
_OTHER_JOB_STATUSES = {"failed", "unknown"}


def spark_date(epoch_seconds: float) -> str:
    """Spark's REST date format, e.g. ``2026-11-23T20:26:18.491GMT``."""
    whole = int(epoch_seconds)
    millis = round((epoch_seconds - whole) * 1000)
    if millis == 1000:
        whole, millis = whole + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}GMT"


def _ms(pool: SparkPool, at: float) -> int:
    return round((pool.epoch + at) * 1000)


# ---------------------------------------------------------------------- master documents


def worker_json(pool: SparkPool, worker: Worker) -> JsonObj:
    return {
        "id": worker.worker_id,
        "host": worker.host,
        "port": worker.port,
        "webuiaddress": f"http://{worker.host}:8081",
        "cores": worker.cores,
        "coresused": worker.cores_used,
        "coresfree": worker.cores - worker.cores_used,
        "memory": worker.memory_mb,
        "memoryused": worker.memory_used_mb,
        "memoryfree": worker.memory_mb - worker.memory_used_mb,
        "resources": {},
        "resourcesused": {},
        "resourcesfree": {},
        "state": worker.state,
        "lastheartbeat": _ms(pool, pool.now),
    }


def master_app_json(pool: SparkPool, app: Application) -> JsonObj:
    end = app.finished_at if app.finished_at is not None else pool.now
    return {
        "id": app.app_id,
        "starttime": _ms(pool, app.submitted_at),
        "name": app.spec.name,
        "cores": app.cores_granted,
        "user": app.spec.user,
        "memoryperexecutor": app.spec.executor_memory_mb,
        "memoryperslave": app.spec.executor_memory_mb,
        "resourcesperexecutor": [],
        "resourcesperslave": [],
        "submitdate": time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(pool.epoch + app.submitted_at)),
        "state": app.state,
        "duration": round((end - app.submitted_at) * 1000),
    }


def master_json(pool: SparkPool) -> JsonObj:
    alive = pool.alive_workers()
    cluster_apps = [a for a in pool.apps if not a.spec.local]
    return {
        "url": pool.url,
        "workers": [worker_json(pool, w) for w in pool.workers],
        "aliveworkers": len(alive),
        "cores": sum(w.cores for w in alive),
        "coresused": sum(w.cores_used for w in alive),
        "memory": sum(w.memory_mb for w in alive),
        "memoryused": sum(w.memory_used_mb for w in alive),
        "resources": [{} for _ in alive],
        "resourcesused": [{} for _ in alive],
        "activeapps": [master_app_json(pool, a) for a in cluster_apps if a.state != FINISHED],
        "completedapps": [master_app_json(pool, a) for a in cluster_apps if a.state == FINISHED],
        "activedrivers": [],
        "completeddrivers": [],
        "status": "ALIVE",
    }


# ---------------------------------------------------------------------- driver documents


def application_json(pool: SparkPool, app: Application) -> JsonObj:
    start = pool.epoch + app.submitted_at
    done = app.state == FINISHED
    end = pool.epoch + app.finished_at if app.finished_at is not None else None
    return {
        "id": app.app_id,
        "name": app.spec.name,
        "attempts": [
            {
                "startTime": spark_date(start),
                "endTime": spark_date(end) if end is not None else "1969-12-31T23:59:59.999GMT",
                "lastUpdated": spark_date(start),
                "duration": round(((end if end is not None else pool.epoch + pool.now) - start) * 1000),
                "sparkUser": app.spec.user,
                "completed": done,
                "appSparkVersion": SPARK_VERSION,
                "startTimeEpoch": round(start * 1000),
                "endTimeEpoch": round(end * 1000) if end is not None else -1,
                "lastUpdatedEpoch": round(start * 1000),
            }
        ],
    }


def stage_json(pool: SparkPool, stage: Stage) -> JsonObj:
    doc: JsonObj = {
        "status": stage.status,
        "stageId": stage.stage_id,
        "attemptId": 0,
        "numTasks": stage.num_tasks,
        "numActiveTasks": stage.running,
        "numCompleteTasks": stage.completed,
        "numFailedTasks": stage.failed,
        "numKilledTasks": 0,
        "numCompletedIndices": stage.completed,
    }
    if stage.submitted_at is not None:
        doc["submissionTime"] = spark_date(pool.epoch + stage.submitted_at)
    if stage.first_launch_at is not None:
        doc["firstTaskLaunchedTime"] = spark_date(pool.epoch + stage.first_launch_at)
    if stage.completed_at is not None:
        doc["completionTime"] = spark_date(pool.epoch + stage.completed_at)
    doc.update(
        {
            "executorRunTime": round(stage.run_seconds * 1000),
            "executorCpuTime": 0,
            "inputBytes": 0,
            "inputRecords": 0,
            "outputBytes": 0,
            "outputRecords": 0,
            "shuffleReadBytes": 0,
            "shuffleReadRecords": 0,
            "shuffleWriteBytes": 0,
            "shuffleWriteRecords": 0,
            "memoryBytesSpilled": 0,
            "diskBytesSpilled": 0,
            "name": stage.name,
            "details": "",
            "schedulingPool": "default",
            "rddIds": [stage.stage_id],
            "accumulatorUpdates": [],
            "killedTasksSummary": {},
            "resourceProfileId": 0,
            "isShufflePushEnabled": False,
            "shuffleMergersCount": 0,
        }
    )
    return doc


def executor_json(pool: SparkPool, app: Application, executor: Executor | None) -> JsonObj:
    """One row of ``/executors``; ``None`` is the driver row of a cluster-mode application."""
    if executor is None:
        ident, host, cores, slots = DRIVER_ID, "127.0.0.1:40000", 0, 0
        active = completed = failed = 0
        added, busy, memory_mb = app.submitted_at, 0.0, 1024
    else:
        ident = executor.executor_id
        port = 40000 if ident == DRIVER_ID else 45000 + int(ident)
        host = f"{executor.host}:{port}"
        cores, slots = executor.cores, executor.slots
        active, completed, failed = len(executor.running), executor.completed_tasks, executor.failed_tasks
        added, busy, memory_mb = executor.added_at, executor.busy_seconds, executor.memory_mb
    return {
        "id": ident,
        "hostPort": host,
        "isActive": True,
        "rddBlocks": 0,
        "memoryUsed": 0,
        "diskUsed": 0,
        "totalCores": cores,
        "maxTasks": slots,
        "activeTasks": active,
        "failedTasks": failed,
        "completedTasks": completed,
        "totalTasks": active + completed + failed,
        "totalDuration": round(busy * 1000),
        "totalGCTime": 0,
        "totalInputBytes": 0,
        "totalShuffleRead": 0,
        "totalShuffleWrite": 0,
        "isBlacklisted": False,
        "maxMemory": memory_mb * 1024 * 1024 * 6 // 10,
        "addTime": spark_date(pool.epoch + added),
        "executorLogs": {},
        "blacklistedInStages": [],
        "attributes": {},
        "resources": {},
        "resourceProfileId": 0,
        "isExcluded": False,
        "excludedInStages": [],
    }


def executors_json(pool: SparkPool, app: Application) -> list[JsonObj]:
    rows = []
    if not app.spec.local:
        rows.append(executor_json(pool, app, None))
    # A starting executor has not registered with the driver yet, so the driver does not list it.
    rows += [executor_json(pool, app, e) for e in app.executors if e.ready(pool.now)]
    return rows


def job_json(pool: SparkPool, app: Application, job_index: int) -> JsonObj:
    job = app.jobs[job_index]
    stages = job.stages
    doc: JsonObj = {
        "jobId": job.job_id,
        "name": job.name,
        "submissionTime": spark_date(pool.epoch + job.submitted_at),
    }
    if job.completed_at is not None:
        doc["completionTime"] = spark_date(pool.epoch + job.completed_at)
    doc.update(
        {
            "stageIds": [s.stage_id for s in stages],
            "jobTags": [],
            "status": job.status,
            "numTasks": sum(s.num_tasks for s in stages),
            "numActiveTasks": sum(s.running for s in stages),
            "numCompletedTasks": sum(s.completed for s in stages),
            "numSkippedTasks": 0,
            "numFailedTasks": sum(s.failed for s in stages),
            "numKilledTasks": 0,
            "numCompletedIndices": sum(s.completed for s in stages),
            "numActiveStages": sum(s.status == STAGE_ACTIVE for s in stages),
            "numCompletedStages": sum(s.status == STAGE_COMPLETE for s in stages),
            "numSkippedStages": 0,
            "numFailedStages": 0,
            "killedTasksSummary": {},
        }
    )
    return doc


def environment_json(pool: SparkPool, app: Application) -> JsonObj:
    props = app.spec.properties(app.app_id, pool.url)
    return {
        "runtime": {
            "javaVersion": "17.0.15 (sandbox)",
            "javaHome": "/usr/lib/jvm/java-17",
            "scalaVersion": "version 2.13.16",
        },
        "sparkProperties": [[k, props[k]] for k in sorted(props)],
        "hadoopProperties": [],
        "systemProperties": [["java.vm.name", "OpenJDK 64-Bit Server VM"]],
        "metricsProperties": [],
        "classpathEntries": [],
        "resourceProfiles": [
            {
                "id": 0,
                "executorResources": {
                    "cores": {
                        "resourceName": "cores",
                        "amount": app.spec.executor_cores,
                        "discoveryScript": "",
                        "vendor": "",
                    },
                    "memory": {
                        "resourceName": "memory",
                        "amount": app.spec.executor_memory_mb,
                        "discoveryScript": "",
                        "vendor": "",
                    },
                },
                "taskResources": {"cpus": {"resourceName": "cpus", "amount": float(app.spec.task_cpus)}},
            }
        ],
    }


# ---------------------------------------------------------------------- aiohttp applications


def _json(doc: object) -> web.Response:
    return web.Response(text=json.dumps(doc, indent=2), content_type="application/json")


def _jetty_error(status: int, reason: str, path: str) -> web.Response:
    body = (
        f"<html>\n<head>\n<title>Error {status} {reason}</title>\n</head>\n<body>\n"
        f"<h2>HTTP ERROR {status} {reason}</h2>\n<table>\n<tr><th>URI:</th><td>{path}</td></tr>\n"
        "</table>\n</body>\n</html>\n"
    )
    return web.Response(status=status, text=body, content_type="text/html")


class _Reply(Exception):
    """Answer this response now (raised from deep inside a handler)."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


@web.middleware
async def _jetty_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except _Reply as reply:
        return reply.response
    except web.HTTPMethodNotAllowed:
        return _jetty_error(405, "Method Not Allowed", request.path)
    except web.HTTPNotFound:
        return _jetty_error(404, "Not Found", request.path)


def _statuses(request: web.Request, known: dict[str, str], other: set[str]) -> set[str] | None:
    """The ``status`` filter as model states; 404 on a value Spark does not know, as Jersey answers."""
    values = request.query.getall("status", [])
    if not values:
        return None
    wanted = set()
    for value in values:
        key = value.lower()
        if key in known:
            wanted.add(known[key])
        elif key not in other:
            raise _Reply(_jetty_error(404, "Not Found", request.path))
    return wanted


def driver_app(pool: SparkPool, app_id: str) -> web.Application:
    """The REST API of one application's driver (its Spark UI on port 4040)."""

    def find(request: web.Request, missing: str) -> Application:
        wanted = request.match_info["app_id"]
        if wanted != app_id:
            raise _Reply(web.Response(status=404, text=f"{missing}: {wanted}"))
        return pool.app(app_id)

    async def applications(request: web.Request) -> web.Response:
        return _json([application_json(pool, pool.app(app_id))])

    async def application(request: web.Request) -> web.Response:
        return _json(application_json(pool, find(request, "unknown app")))

    async def stages(request: web.Request) -> web.Response:
        app = find(request, "no such app")
        wanted = _statuses(request, STAGE_STATUSES, _OTHER_STAGE_STATUSES)
        rows = [s for s in app.stages if wanted is None or s.status in wanted]
        return _json([stage_json(pool, s) for s in sorted(rows, key=lambda s: -s.stage_id)])

    async def executors(request: web.Request) -> web.Response:
        return _json(executors_json(pool, find(request, "no such app")))

    async def jobs(request: web.Request) -> web.Response:
        app = find(request, "no such app")
        wanted = _statuses(request, JOB_STATUSES, _OTHER_JOB_STATUSES)
        rows = [i for i, j in enumerate(app.jobs) if wanted is None or j.status in wanted]
        return _json([job_json(pool, app, i) for i in reversed(rows)])

    async def environment(request: web.Request) -> web.Response:
        return _json(environment_json(pool, find(request, "no such app")))

    async def unknown_attempt(request: web.Request) -> web.Response:
        # Spark reads the segment after the id as an attempt id it does not have.
        find(request, "no such app")
        attempt = request.match_info["rest"].split("/")[0]
        return web.Response(status=404, text=f"unknown app {app_id}, attempt {attempt}")

    base = "/api/v1/applications"
    # Jersey matches a trailing slash like none.
    routes = [
        (base + "{slash:/?}", applications),
        (base + "/{app_id}{slash:/?}", application),
        (base + "/{app_id}/stages{slash:/?}", stages),
        (base + "/{app_id}/executors{slash:/?}", executors),
        (base + "/{app_id}/allexecutors{slash:/?}", executors),
        (base + "/{app_id}/jobs{slash:/?}", jobs),
        (base + "/{app_id}/environment{slash:/?}", environment),
        (base + "/{app_id}/{rest:.+}", unknown_attempt),
    ]
    app = web.Application(middlewares=[_jetty_errors])
    for path, handler in routes:
        app.router.add_get(path, handler, allow_head=False)
    return app


DriverLookup = Callable[[str], "str | None"]
_PROXY_SESSION = web.AppKey("proxy_session", aiohttp.ClientSession)


def master_app(pool: SparkPool, driver_url: DriverLookup) -> web.Application:
    """The standalone master's web UI; ``driver_url(app_id)`` is where that application's driver listens."""

    async def cluster(request: web.Request) -> web.Response:
        return _json(master_json(pool))

    async def to_slash(request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently(request.path + "/")

    async def kill_workers(request: web.Request) -> web.Response:
        if not pool.decommission_enabled:
            return _jetty_error(405, "HTTP method POST is not supported by this URL", request.path)
        if pool.decommission_hosts(request.query.getall("host", [])) > 0:
            return web.Response(status=200)
        return _jetty_error(404, "Not Found", request.path)

    async def proxy(request: web.Request) -> web.StreamResponse:
        app_id = request.match_info["app_id"]
        known = any(a.app_id == app_id and a.state != FINISHED for a in pool.apps)
        target = driver_url(app_id) if known else None
        if target is None:
            return _jetty_error(403, "Forbidden", request.path)
        url = target + "/" + request.match_info["rest"]
        session = request.app[_PROXY_SESSION]
        try:
            async with session.request(
                request.method, url, params=request.query, data=await request.read()
            ) as upstream:
                body = await upstream.read()
                return web.Response(status=upstream.status, body=body, content_type=upstream.content_type)
        except aiohttp.ClientError:
            return _jetty_error(502, "Bad Gateway", request.path)

    async def index(request: web.Request) -> web.Response:
        if request.method != "GET":
            return _jetty_error(
                405, f"HTTP method {request.method} is not supported by this URL", request.path
            )
        return web.Response(
            text=f"<html><head><title>Spark Master at {pool.url}</title></head><body></body></html>",
            content_type="text/html",
        )

    async def proxy_session(app: web.Application) -> AsyncIterator[None]:
        app[_PROXY_SESSION] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        yield
        await app[_PROXY_SESSION].close()

    app = web.Application()
    app.cleanup_ctx.append(proxy_session)
    app.router.add_get("/json/", cluster)
    app.router.add_get("/json", to_slash)
    app.router.add_post("/workers/kill/", kill_workers)
    app.router.add_route("*", "/proxy/{app_id}/{rest:.*}", proxy)
    app.router.add_route("*", "/{tail:.*}", index)
    return app


# ---------------------------------------------------------------------- the runner


class SparkSandbox:
    """Serve a pool's master and one driver per active application on loopback.

    With ``wall_clock`` (the default) a background task advances the model every ``tick_seconds`` by
    the wall time that passed, calls ``load.step`` first if a load is given, and starts and stops
    driver servers as applications come and go (a finished application's driver stops listening,
    as the real one exits). Without it the test moves time with ``pool.advance`` and calls
    :meth:`sync` after submitting or finishing applications.
    """

    def __init__(
        self,
        pool: SparkPool,
        *,
        wall_clock: bool = True,
        tick_seconds: float = 0.1,
        load: MovingLoad | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pool = pool
        self._wall_clock = wall_clock
        self._tick = tick_seconds
        self._load = load
        self._clock = clock
        self._master: Served | None = None
        self._drivers: dict[str, Served] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def master_url(self) -> str:
        assert self._master is not None, "the sandbox is not running"
        return self._master.url

    @property
    def driver_urls(self) -> dict[str, str]:
        """Driver base URL by application id, for the applications running now."""
        return {app_id: served.url for app_id, served in self._drivers.items()}

    def _driver_url(self, app_id: str) -> str | None:
        served = self._drivers.get(app_id)
        return served.url if served is not None else None

    async def __aenter__(self) -> SparkSandbox:
        self._master = await serve(master_app(self.pool, self._driver_url))
        await self.sync()
        if self._wall_clock:
            self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        servers = [*self._drivers.values(), *([self._master] if self._master is not None else [])]
        self._drivers.clear()
        self._master = None
        await asyncio.gather(*(s.stop() for s in servers))

    async def sync(self) -> None:
        """Start drivers of new applications and stop those of finished ones."""
        active = {a.app_id for a in self.pool.active_apps()}
        for app_id in [a for a in self._drivers if a not in active]:
            await self._drivers.pop(app_id).stop()
        for app_id in sorted(active - set(self._drivers)):
            self._drivers[app_id] = await serve(driver_app(self.pool, app_id))

    async def _run(self) -> None:
        origin, start = self.pool.now, self._clock()
        while True:
            now = origin + (self._clock() - start)
            if self._load is not None:
                self._load.step(self.pool, now)
            self.pool.advance(max(now, self.pool.now))
            await self.sync()
            await asyncio.sleep(self._tick)
