"""Helpers for the Spark tests: a fault-injecting HTTP front, sample lookup, and real-Spark fixtures."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from adapter.samples import Sample
from adapter.sources.http import HttpEndpoint
from adapter.sources.spark import SparkSettings
from lab.sandbox.serve import serve


def settings(name: str = "pool-a", **fields: Any) -> SparkSettings:
    """SparkSettings with a short timeout; ``driver_urls`` and ``master`` may be given as strings."""
    urls = fields.pop("driver_urls", [])
    fields["driver_urls"] = [HttpEndpoint(url=u) if isinstance(u, str) else u for u in urls]
    master = fields.pop("master", None)
    fields["master"] = HttpEndpoint(url=master) if isinstance(master, str) else master
    fields.setdefault("timeout_seconds", 2.0)
    return SparkSettings(name=name, **fields)


def by_app(samples: Sequence[Sample]) -> dict[str, dict[str, float]]:
    """``{app id: {metric: value}}`` for the per-application series."""
    out: dict[str, dict[str, float]] = {}
    for s in samples:
        if "app" in s.labels:
            out.setdefault(s.labels["app"], {})[s.metric] = s.value
    return out


def pool_series(samples: Sequence[Sample]) -> dict[tuple[str, str], float]:
    """``{(metric, state or ""): value}`` for the pool-wide series."""
    return {(s.metric, s.labels.get("state", "")): s.value for s in samples if "app" not in s.labels}


def app_names(samples: Sequence[Sample]) -> dict[str, str]:
    return {s.labels["app"]: s.labels["app_name"] for s in samples if "app" in s.labels}


def closed_port() -> int:
    """A loopback port nothing listens on (refuses connections)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


free_port = closed_port


@dataclass
class Fault:
    """What the front answers instead of forwarding: a status with a body, or a hang."""

    status: int = 200
    body: str = ""
    content_type: str = "application/json"
    hang: bool = False


@dataclass
class Front:
    """An HTTP server that forwards to ``target`` except where a rule (a regex on path?query) says
    otherwise; it counts every request by path. It stands in for a misbehaving backend.

    Serve it with :func:`serving`, which releases hanging requests before stopping the server.
    """

    target: str
    rules: list[tuple[re.Pattern[str], Fault]] = field(default_factory=list)
    hits: Counter[str] = field(default_factory=Counter)
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    def fail(self, pattern: str, fault: Fault) -> None:
        self.rules.insert(0, (re.compile(pattern), fault))

    def answer_json(self, pattern: str, doc: Any) -> None:
        self.fail(pattern, Fault(200, json.dumps(doc)))

    def app(self) -> web.Application:
        session_key = web.AppKey("session", aiohttp.ClientSession)

        async def handle(request: web.Request) -> web.StreamResponse:
            self.hits[request.path] += 1
            where = request.path_qs
            for pattern, fault in self.rules:
                if pattern.search(where):
                    if fault.hang:
                        await self._release.wait()
                    return web.Response(status=fault.status, text=fault.body, content_type=fault.content_type)
            async with request.app[session_key].get(self.target + where) as upstream:
                return web.Response(
                    status=upstream.status,
                    body=await upstream.read(),
                    content_type=upstream.content_type,
                )

        async def session_ctx(app: web.Application) -> AsyncIterator[None]:
            app[session_key] = aiohttp.ClientSession()
            yield
            await app[session_key].close()

        app = web.Application()
        app.cleanup_ctx.append(session_ctx)
        app.router.add_route("*", "/{tail:.*}", handle)
        return app


@contextlib.asynccontextmanager
async def serving(front: Front) -> AsyncIterator[str]:
    """Serve ``front`` on loopback and yield its URL."""
    served = await serve(front.app())
    try:
        yield served.url
    finally:
        front._release.set()
        await served.stop()


# ---------------------------------------------------------------------- real Spark


def java_available() -> bool:
    import shutil

    return shutil.which("java") is not None or bool(os.environ.get("JAVA_HOME"))


@contextlib.contextmanager
def spark_session(master: str, app_name: str, conf: Mapping[str, str], tmp: Path) -> Iterator[Any]:
    """A SparkSession on loopback with a small footprint; stopped on exit."""
    from pyspark.sql import SparkSession

    # Read when the JVM starts: keeps Spark off the machine's outward address.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.memory", "512m")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.worker.dir", str(tmp / "work"))
        .config("spark.eventLog.enabled", "false")
    )
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        jvm = session.sparkContext._jvm
        keys = list(session.sparkContext.getConf().getAll())
        session.stop()
        # Options given to a builder become Java system properties of the one JVM pyspark keeps for the
        # process: one test's spark.executor.cores=1 would reach the next test's local[2] (1 slot, not 2).
        for key, _ in keys:
            jvm.java.lang.System.clearProperty(key)


class BackgroundJob:
    """Run ``sc.parallelize(range(tasks), tasks).map(sleep).count()`` in a thread."""

    def __init__(self, sc: Any, tasks: int, task_seconds: float, group: str) -> None:
        self._sc = sc
        self._tasks = tasks
        self._seconds = task_seconds
        self._group = group
        self.error: BaseException | None = None
        self.result: int | None = None
        self._thread = threading.Thread(target=self._run, name=f"spark-job-{group}", daemon=True)

    def _run(self) -> None:
        seconds = self._seconds

        def sleep(x: int) -> int:
            import time

            time.sleep(seconds)
            return x

        try:
            self._sc.setJobGroup(self._group, self._group, interruptOnCancel=True)
            self.result = self._sc.parallelize(range(self._tasks), self._tasks).map(sleep).count()
        except BaseException as exc:  # a cancelled job lands here; the test decides if it matters
            self.error = exc

    def start(self) -> BackgroundJob:
        self._thread.start()
        return self

    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        if self._thread.is_alive():
            self._sc.cancelJobGroup(self._group)
        self._thread.join(timeout)


@dataclass(frozen=True)
class TrackerReading:
    """What ``sc.statusTracker()`` says about one stage: Spark's own view, read in-process."""

    stage_id: int
    num_tasks: int
    active: int
    completed: int

    @property
    def remaining(self) -> int:
        return self.num_tasks - self.completed


def tracker_reading(sc: Any) -> TrackerReading | None:
    """The one active stage of the job, or None when there is none (or more than one)."""
    tracker = sc.statusTracker()
    ids = tracker.getActiveStageIds()
    if len(ids) != 1:
        return None
    info = tracker.getStageInfo(ids[0])
    if info is None:
        return None
    return TrackerReading(ids[0], info.numTasks, info.numActiveTasks, info.numCompletedTasks)


async def prometheus_gauge(url: str, suffix: str) -> float | None:
    """The value of the first series whose name ends with ``suffix`` in a Prometheus text page."""
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        text = await resp.text()
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name.endswith(suffix):
            return float(line.rsplit(" ", 1)[1])
    return None


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Blocking bounded wait for a condition (used from threads and sync fixtures)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()
