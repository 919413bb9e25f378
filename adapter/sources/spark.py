"""Spark: backlog and capacity of applications, read from their drivers' REST API.

Drivers are found in any combination of three ways: fixed URLs, the standalone master's reverse proxy
(``spark.ui.reverseProxy=true``: every active application's driver at ``<master>/proxy/<app-id>``),
and Kubernetes (driver pods by label; optionally the Spark operator's ``SparkApplication`` objects).

Per application (labels ``pool``, ``app``, ``app_name``), from ``/api/v1/applications/<id>/...``:

- ``spark_remaining_tasks`` = Σ over active stages of ``numTasks − numCompletedIndices`` (Spark's own
  demand figure: pending plus running); ``spark_running_tasks`` = Σ ``numActiveTasks``;
  ``spark_pending_tasks`` = ``max(0, remaining − running)``;
- ``spark_next_wave_tasks`` = the same remaining count over pending stages (submitted, waiting on their
  parents). Spark lists every stage of a running job this way, including stages it will skip because
  their shuffle output exists, so this figure can over-state the next wave;
- ``spark_task_seconds`` = Σ ``executorRunTime`` / Σ ``numCompleteTasks`` over active stages, in seconds:
  the mean run time of a finished task, absent while no task of an active stage has finished (0 would
  read as free work). Spark adds a task's run time when it ends, failed attempts included, so failures
  push the figure up;
- ``spark_task_slots`` = Σ ``maxTasks`` and ``spark_executors`` = count of active executors, the
  ``driver`` row excluded, except in local mode where the driver is the only executor and counts as one;
- ``spark_executors_needed`` = ``ceil(remaining × executorAllocationRatio / tasksPerExecutor)`` with
  ``tasksPerExecutor = spark.executor.cores // spark.task.cpus``, clamped to
  [``minExecutors``, ``maxExecutors``] when dynamic allocation is on — the figure Spark's
  ExecutorAllocationManager aims for. Settings come from the application's ``/environment``
  (read once per application id) and fall back to :class:`SparkSettings`.

With a master: ``spark_pool_workers{state}`` (lower-case; ``alive``, ``dead``, ``decommissioned`` and
``unknown`` are always present), ``spark_pool_cores`` and ``spark_pool_cores_used`` (alive workers, as
the master counts them) and ``spark_waiting_apps`` (active applications in state ``WAITING``).

Failures. A poll either returns every application it found or fails as a whole, so a partial sum never
reads as less demand. The exception is a driver that is *gone*: it was listed (by the master, by
Kubernetes, or by its own ``/applications`` earlier in the same poll) and then refuses connections,
answers 404 for its application, or the master's proxy answers 403 (the master no longer knows the
application). Its application finished between the listing and the fetch, so it is skipped. A fixed
driver URL that refuses connections or answers 404 at the first request of a poll is a failure, not a
finished application. Everything else — the master or the Kubernetes API failing, a timeout, an HTTP
error status, a document that is not what Spark sends — raises :class:`~core.errors.SourceError`.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import kubernetes.client
from pydantic import BaseModel, ConfigDict, Field, model_validator

from adapter.kube import KubeSettings, api_client
from adapter.samples import Sample
from adapter.sources.base import SourceSettings
from adapter.sources.http import (
    HttpEndpoint,
    get_json,
    new_session,
    off_loop,
    parse_json,
    read_capped,
)
from core.errors import SourceError
from core.metric_names import (
    SPARK_EXECUTORS,
    SPARK_EXECUTORS_NEEDED,
    SPARK_NEXT_WAVE_TASKS,
    SPARK_PENDING_TASKS,
    SPARK_POOL_CORES,
    SPARK_POOL_CORES_USED,
    SPARK_POOL_WORKERS,
    SPARK_REMAINING_TASKS,
    SPARK_RUNNING_TASKS,
    SPARK_TASK_SECONDS,
    SPARK_TASK_SLOTS,
    SPARK_WAITING_APPS,
)
from core.spark_executors import executors_needed, max_executors_needed

log = logging.getLogger(__name__)
T = TypeVar("T")

APP_METRICS = (
    SPARK_REMAINING_TASKS,
    SPARK_PENDING_TASKS,
    SPARK_RUNNING_TASKS,
    SPARK_NEXT_WAVE_TASKS,
    SPARK_TASK_SECONDS,
    SPARK_TASK_SLOTS,
    SPARK_EXECUTORS,
    SPARK_EXECUTORS_NEEDED,
)
POOL_METRICS = (SPARK_POOL_WORKERS, SPARK_POOL_CORES, SPARK_POOL_CORES_USED, SPARK_WAITING_APPS)
WORKER_STATES = ("alive", "dead", "decommissioned", "unknown")

OPERATOR_GROUP = "sparkoperator.k8s.io"
OPERATOR_VERSION = "v1beta2"
OPERATOR_PLURAL = "sparkapplications"

_PARALLEL_REQUESTS = 8
_DRIVER_ID = "driver"


class SparkKubernetesDiscovery(BaseModel):
    """Find drivers through the Kubernetes API (the adapter's service account must list pods)."""

    model_config = ConfigDict(extra="forbid")

    namespaces: list[str] = Field(
        default_factory=list,
        description="Namespaces to look in; empty means all namespaces (needs cluster-wide list).",
    )
    label_selector: str = Field(
        "spark-role=driver",
        description="Selects driver pods; Spark on Kubernetes labels them spark-role=driver.",
    )
    ui_port: int = Field(
        4040, ge=1, le=65535, description="Port of the driver's UI and REST API on the pod (spark.ui.port)."
    )
    spark_operator: bool = Field(
        False,
        description=(
            "Also read kubeflow spark-operator SparkApplications (sparkoperator.k8s.io/v1beta2) and use "
            "status.driverInfo.webUIAddress of those in state RUNNING."
        ),
    )


class SparkSettings(SourceSettings):
    """One pool of Spark applications; ``name`` becomes the ``pool`` label.

    Drivers found by the master's proxy or by Kubernetes are read over plain HTTP without credentials
    (the Spark UI's default); drivers behind TLS or authentication go in ``driver_urls``.
    """

    driver_urls: list[HttpEndpoint] = Field(
        default_factory=list,
        description="Drivers at fixed addresses (the UI port, e.g. http://driver:4040).",
    )
    master: HttpEndpoint | None = Field(
        None,
        description=(
            "The standalone master's web UI (e.g. http://spark-master:8080): pool metrics from /json/, "
            "and the drivers through its proxy when reverse_proxy is set."
        ),
    )
    reverse_proxy: bool = Field(
        False,
        description=(
            "Reach the driver of every active application at <master>/proxy/<app-id> "
            "(needs spark.ui.reverseProxy=true on the master and the applications)."
        ),
    )
    kubernetes: SparkKubernetesDiscovery | None = Field(
        None, description="Find drivers through the Kubernetes API."
    )
    executor_cores: int = Field(
        1,
        ge=1,
        description=(
            "Cores per executor when an application does not set spark.executor.cores (Spark's "
            "allocation manager assumes 1; on standalone an executor then takes a whole worker)."
        ),
    )
    task_cpus: int = Field(1, ge=1, description="Cores per task when spark.task.cpus is not set.")
    executor_allocation_ratio: float = Field(
        1.0,
        gt=0,
        le=1,
        description="spark.dynamicAllocation.executorAllocationRatio when an application does not set it.",
    )

    @model_validator(mode="after")
    def _somewhere_to_look(self) -> SparkSettings:
        if not self.driver_urls and self.master is None and self.kubernetes is None:
            raise ValueError("set at least one of driver_urls, master or kubernetes")
        if self.reverse_proxy and self.master is None:
            raise ValueError("reverse_proxy needs master")
        return self


@dataclass(frozen=True, slots=True)
class AllocationConf:
    """What an application's environment says about sizing (Spark's names in the docstrings)."""

    tasks_per_executor: int
    ratio: float
    dynamic: bool
    min_executors: int
    max_executors: int | None

    def executors_needed(self, remaining: int) -> int:
        """ExecutorAllocationManager's maxNumExecutorsNeeded, clamped to [min, max] under dynamic allocation
        (:func:`core.spark_executors.executors_needed`; an executor here is ``tasks_per_executor`` one-CPU
        slots, and the speculative and excluded-executor terms are 0: the REST API reports neither)."""
        if not self.dynamic:
            return max_executors_needed(remaining, self.tasks_per_executor, 1, self.ratio)
        return executors_needed(
            remaining, self.tasks_per_executor, 1, self.ratio, self.min_executors, self.max_executors
        )


def allocation_conf(properties: Mapping[str, str], settings: SparkSettings) -> AllocationConf:
    """Read ``spark.executor.cores``, ``spark.task.cpus`` and ``spark.dynamicAllocation.*``."""

    def number(key: str, default: int) -> int:
        raw = properties.get(key)
        if raw is None:
            return default
        try:
            return int(raw.strip())
        except ValueError:
            raise SourceError(f"{key}={raw!r} is not an integer") from None

    cores = number("spark.executor.cores", settings.executor_cores)
    cpus = number("spark.task.cpus", settings.task_cpus)
    if cores < 1 or cpus < 1:
        raise SourceError(f"spark.executor.cores={cores} and spark.task.cpus={cpus} must be positive")
    raw_ratio = properties.get("spark.dynamicAllocation.executorAllocationRatio")
    try:
        ratio = float(raw_ratio) if raw_ratio is not None else settings.executor_allocation_ratio
    except ValueError:
        raise SourceError(f"executorAllocationRatio={raw_ratio!r} is not a number") from None
    if not (math.isfinite(ratio) and 0 < ratio <= 1):
        raise SourceError(f"executorAllocationRatio={ratio} must be in (0, 1], as Spark requires")
    master = properties.get("spark.master", "")
    # Spark ignores dynamic allocation in local mode unless testing it (Utils.isDynamicAllocationEnabled).
    local = master == "local" or master.startswith("local[")
    enabled = properties.get("spark.dynamicAllocation.enabled", "false").strip().lower() == "true"
    testing = properties.get("spark.dynamicAllocation.testing", "false").strip().lower() == "true"
    max_raw = number("spark.dynamicAllocation.maxExecutors", -1)
    min_executors = max(0, number("spark.dynamicAllocation.minExecutors", 0))
    if 0 <= max_raw < min_executors:
        raise SourceError(
            f"minExecutors={min_executors} is above maxExecutors={max_raw}, which Spark refuses"
        )
    return AllocationConf(
        # Spark refuses executor cores below task cpus; a floor of 1 keeps the division defined anyway.
        tasks_per_executor=max(1, cores // cpus),
        ratio=ratio,
        dynamic=enabled and (not local or testing),
        min_executors=min_executors,
        max_executors=None if max_raw < 0 else max_raw,
    )


@dataclass(frozen=True, slots=True)
class AppFigures:
    """One application's figures, before they become samples."""

    app_id: str
    name: str
    remaining: int
    running: int
    next_wave: int
    slots: int
    executors: int
    executors_needed: int
    task_seconds: float | None  # None until a task of an active stage has finished

    @property
    def pending(self) -> int:
        return max(0, self.remaining - self.running)


def app_figures(
    app_id: str,
    name: str,
    active_stages: Sequence[Mapping[str, Any]],
    pending_stages: Sequence[Mapping[str, Any]],
    executors: Sequence[Mapping[str, Any]],
    conf: AllocationConf,
) -> AppFigures:
    """The arithmetic, apart from any I/O; raises SourceError on a document Spark would not send."""
    remaining = sum(max(0, _int(s, "numTasks") - _int(s, "numCompletedIndices")) for s in active_stages)
    running = sum(_int(s, "numActiveTasks") for s in active_stages)
    next_wave = sum(max(0, _int(s, "numTasks") - _int(s, "numCompletedIndices")) for s in pending_stages)
    # Attempts, not indices: run time is summed per attempt, so a retried task must count once per attempt.
    finished = sum(_int(s, "numCompleteTasks") for s in active_stages)
    run_ms = sum(_int(s, "executorRunTime") for s in active_stages)
    live = [e for e in executors if e.get("isActive", True) is not False]
    workers = [e for e in live if _str(e, "id") != _DRIVER_ID]
    if workers:
        slots, count = sum(_int(e, "maxTasks") for e in workers), len(workers)
    else:
        # Local mode: the driver row carries the slots; in cluster mode it has none.
        slots = sum(_int(e, "maxTasks") for e in live)
        count = 1 if slots > 0 else 0
    return AppFigures(
        app_id=app_id,
        name=name,
        remaining=remaining,
        running=running,
        next_wave=next_wave,
        slots=slots,
        executors=count,
        executors_needed=conf.executors_needed(remaining),
        task_seconds=run_ms / finished / 1000 if finished > 0 else None,
    )


@dataclass(frozen=True, slots=True)
class PoolFigures:
    workers_by_state: Mapping[str, int]
    cores: int
    cores_used: int
    waiting_apps: int
    active_apps: tuple[tuple[str, str, str], ...]  # (id, name, state)


def pool_figures(doc: Any) -> PoolFigures:
    """Read the master's ``/json/`` document."""
    if not isinstance(doc, dict):
        raise SourceError("the master's /json/ is not an object")
    states = dict.fromkeys(WORKER_STATES, 0)
    for worker in _list(doc, "workers"):
        state = _str(worker, "state").lower()
        states[state] = states.get(state, 0) + 1
    apps = tuple((_str(a, "id"), str(a.get("name", "")), _str(a, "state")) for a in _list(doc, "activeapps"))
    return PoolFigures(
        workers_by_state=states,
        cores=_int(doc, "cores"),
        cores_used=_int(doc, "coresused"),
        waiting_apps=sum(state == "WAITING" for _, _, state in apps),
        active_apps=apps,
    )


def _int(doc: Mapping[str, Any], key: str) -> int:
    value = doc.get(key) if isinstance(doc, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SourceError(f"field {key!r} is missing or not a count: {value!r}")
    return value


def _str(doc: Mapping[str, Any], key: str) -> str:
    value = doc.get(key) if isinstance(doc, Mapping) else None
    if not isinstance(value, str):
        raise SourceError(f"field {key!r} is missing or not a string: {value!r}")
    return value


def _list(doc: Any, key: str | None = None) -> list[Mapping[str, Any]]:
    value = doc.get(key) if key is not None and isinstance(doc, Mapping) else doc
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise SourceError(f"{key or 'document'} is not a list of objects")
    return value


class DriverGone(SourceError):
    """The driver or its application is no longer there (finished between listing and fetch)."""


@dataclass(frozen=True, slots=True)
class _Driver:
    """Where one driver's REST API is and how to treat its failures."""

    base: str
    session_key: str
    headers: Mapping[str, str]
    listed: bool  # found by the master or Kubernetes: refusing connections means it finished
    gone_statuses: frozenset[int]


class SparkSource:
    """The Source protocol for one pool of Spark applications."""

    def __init__(self, settings: SparkSettings, kube: kubernetes.client.ApiClient | None = None) -> None:
        """Without ``kube``, Kubernetes discovery uses the pod's service account or the kubeconfig
        (:func:`adapter.kube.api_client`) and closes that client in :meth:`close`."""
        self._settings = settings
        self._kube = kube
        self._own_kube = False
        if settings.kubernetes is not None and kube is None:
            self._kube = api_client(KubeSettings.model_validate({}))
            self._own_kube = True
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self._conf: dict[str, AllocationConf] = {}
        self._limit = asyncio.Semaphore(_PARALLEL_REQUESTS)

    @property
    def settings(self) -> SparkSettings:
        return self._settings

    def identity(self) -> Mapping[str, str]:
        return {"pool": self._settings.name}

    def served_metrics(self) -> Sequence[str]:
        return APP_METRICS + (POOL_METRICS if self._settings.master is not None else ())

    async def close(self) -> None:
        sessions, self._sessions = self._sessions, {}
        for session in sessions.values():
            await session.close()
        if self._own_kube and self._kube is not None:
            await asyncio.to_thread(self._kube.close)
            self._kube = None

    async def collect(self, now: float) -> list[Sample]:
        timeout = self._settings.timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                return await self._collect()
        except TimeoutError as exc:
            raise SourceError(f"spark pool {self._settings.name}: poll took longer than {timeout}s") from exc

    # ------------------------------------------------------------------ one poll

    async def _collect(self) -> list[Sample]:
        s = self._settings
        pool: PoolFigures | None = None
        if s.master is not None:
            master_doc = await get_json(
                self._session("master", s.master),
                s.master.base() + "/json/",
                s.max_response_bytes,
                s.master.auth_headers(),
            )
            pool = pool_figures(master_doc)
        drivers = self._static_drivers()
        if s.kubernetes is not None:
            drivers += await self._kubernetes_drivers(s.kubernetes)
        if pool is not None and s.reverse_proxy and s.master is not None:
            headers = s.master.auth_headers()
            drivers += [
                _Driver(f"{s.master.base()}/proxy/{app_id}", "master", headers, True, frozenset({403, 404}))
                for app_id, _, _ in pool.active_apps
            ]
        listings = await _all(self._applications(d) for d in drivers)
        claimed: dict[str, tuple[_Driver, str]] = {}
        for driver, apps in zip(drivers, listings, strict=True):
            for app_id, name in apps:
                claimed.setdefault(app_id, (driver, name))
        results = await _all(self._app(driver, app_id, name) for app_id, (driver, name) in claimed.items())
        figures = [r for r in results if r is not None]
        self._conf = {k: v for k, v in self._conf.items() if k in claimed}
        return self._samples(figures, pool)

    def _samples(self, apps: Iterable[AppFigures], pool: PoolFigures | None) -> list[Sample]:
        name = self._settings.name
        out: list[Sample] = []
        for f in sorted(apps, key=lambda f: f.app_id):
            labels = {"pool": name, "app": f.app_id, "app_name": f.name}
            out += [
                Sample(SPARK_REMAINING_TASKS, labels, float(f.remaining)),
                Sample(SPARK_PENDING_TASKS, labels, float(f.pending)),
                Sample(SPARK_RUNNING_TASKS, labels, float(f.running)),
                Sample(SPARK_NEXT_WAVE_TASKS, labels, float(f.next_wave)),
                Sample(SPARK_TASK_SLOTS, labels, float(f.slots)),
                Sample(SPARK_EXECUTORS, labels, float(f.executors)),
                Sample(SPARK_EXECUTORS_NEEDED, labels, float(f.executors_needed)),
            ]
            if f.task_seconds is not None:
                out.append(Sample(SPARK_TASK_SECONDS, labels, f.task_seconds))
        if pool is not None:
            for state, count in sorted(pool.workers_by_state.items()):
                out.append(Sample(SPARK_POOL_WORKERS, {"pool": name, "state": state}, float(count)))
            out += [
                Sample(SPARK_POOL_CORES, {"pool": name}, float(pool.cores)),
                Sample(SPARK_POOL_CORES_USED, {"pool": name}, float(pool.cores_used)),
                Sample(SPARK_WAITING_APPS, {"pool": name}, float(pool.waiting_apps)),
            ]
        return out

    async def _applications(self, driver: _Driver) -> list[tuple[str, str]]:
        try:
            doc = await self._get(driver, "/api/v1/applications", first=True)
        except DriverGone as exc:
            log.info("skipping a finished driver: %s", exc)
            return []
        apps = []
        for app in _list(doc):
            attempts = app.get("attempts") or [{}]
            last = attempts[-1] if isinstance(attempts, list) else {}
            if isinstance(last, Mapping) and last.get("completed") is True:
                continue
            apps.append((_str(app, "id"), str(app.get("name", ""))))
        return apps

    async def _app(self, driver: _Driver, app_id: str, name: str) -> AppFigures | None:
        prefix = f"/api/v1/applications/{app_id}"
        try:
            conf = self._conf.get(app_id)
            active, pending, executors, env = await asyncio.gather(
                self._get(driver, prefix + "/stages?status=active"),
                self._get(driver, prefix + "/stages?status=pending"),
                self._get(driver, prefix + "/executors"),
                self._get(driver, prefix + "/environment") if conf is None else _none(),
            )
        except DriverGone as exc:
            log.info("skipping application %s, finished during the poll: %s", app_id, exc)
            return None
        try:
            if conf is None:
                conf = allocation_conf(_properties(env), self._settings)
                self._conf[app_id] = conf
            return app_figures(app_id, name, _list(active), _list(pending), _list(executors), conf)
        except SourceError as exc:
            raise SourceError(f"{driver.base}{prefix}: {exc}") from exc

    async def _get(self, driver: _Driver, path: str, *, first: bool = False) -> Any:
        url = driver.base + path
        session = self._sessions[driver.session_key]
        async with self._limit:
            try:
                async with session.get(url, headers=dict(driver.headers)) as resp:
                    status = resp.status
                    body = await read_capped(resp, url, self._settings.max_response_bytes)
            except TimeoutError as exc:
                raise SourceError(f"{url} timed out") from exc
            except aiohttp.ClientConnectorError as exc:
                if isinstance(exc.os_error, ConnectionRefusedError) and (driver.listed or not first):
                    raise DriverGone(f"{url} refused the connection") from exc
                raise SourceError(f"{url} failed: {exc.__class__.__name__}: {exc}") from exc
            except aiohttp.ClientError as exc:
                raise SourceError(f"{url} failed: {exc.__class__.__name__}: {exc}") from exc
        # Only a driver seen alive (listed, or answering earlier in this poll) can have finished since.
        if status in driver.gone_statuses and (driver.listed or not first):
            raise DriverGone(f"{url} answered HTTP {status}")
        if status != 200:
            raise SourceError(f"{url} answered HTTP {status}")
        return await off_loop(len(body), lambda: parse_json(url, body))

    # ------------------------------------------------------------------ discovery

    def _session(self, key: str, endpoint: HttpEndpoint | None) -> aiohttp.ClientSession:
        session = self._sessions.get(key)
        if session is None:
            timeout = self._settings.timeout_seconds
            if endpoint is not None:
                session = new_session(endpoint, timeout)
            else:
                session = aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=16),
                    timeout=aiohttp.ClientTimeout(total=timeout),
                )
            self._sessions[key] = session
        return session

    def _static_drivers(self) -> list[_Driver]:
        drivers = []
        for i, endpoint in enumerate(self._settings.driver_urls):
            key = f"driver-{i}"
            self._session(key, endpoint)
            drivers.append(_Driver(endpoint.base(), key, endpoint.auth_headers(), False, frozenset({404})))
        return drivers

    async def _kubernetes_drivers(self, k: SparkKubernetesDiscovery) -> list[_Driver]:
        self._session("discovered", None)
        try:
            bases = await asyncio.to_thread(
                _list_kubernetes_drivers, self._kube, k, self._settings.timeout_seconds
            )
        except Exception as exc:  # the client raises ApiException, urllib3 and socket errors alike
            raise SourceError(f"listing Spark drivers in Kubernetes failed: {_kube_error(exc)}") from exc
        return [_Driver(base, "discovered", {}, True, frozenset({404})) for base in bases]


def _list_kubernetes_drivers(
    api: kubernetes.client.ApiClient | None, k: SparkKubernetesDiscovery, timeout: float
) -> list[str]:
    """Driver base URLs from running driver pods and RUNNING SparkApplications (blocking)."""
    core = kubernetes.client.CoreV1Api(api)
    pods: list[Any] = []
    if k.namespaces:
        for ns in k.namespaces:
            pods += core.list_namespaced_pod(
                ns, label_selector=k.label_selector, _request_timeout=timeout
            ).items
    else:
        pods = core.list_pod_for_all_namespaces(
            label_selector=k.label_selector, _request_timeout=timeout
        ).items
    bases = []
    for pod in pods:
        status = pod.status
        if status is None or status.phase != "Running" or not status.pod_ip:
            continue
        bases.append(f"http://{_host(status.pod_ip)}:{k.ui_port}")
    if k.spark_operator:
        custom = kubernetes.client.CustomObjectsApi(api)
        docs: list[Any] = []
        args = (OPERATOR_GROUP, OPERATOR_VERSION)
        if k.namespaces:
            for ns in k.namespaces:
                docs.append(
                    custom.list_namespaced_custom_object(*args, ns, OPERATOR_PLURAL, _request_timeout=timeout)
                )
        else:
            docs.append(custom.list_cluster_custom_object(*args, OPERATOR_PLURAL, _request_timeout=timeout))
        for doc in docs:
            for item in doc.get("items", []) if isinstance(doc, dict) else []:
                status = item.get("status") or {}
                state = (status.get("applicationState") or {}).get("state")
                address = (status.get("driverInfo") or {}).get("webUIAddress")
                if state == "RUNNING" and isinstance(address, str) and address:
                    # The operator writes "<service-ip>:<port>", without a scheme.
                    bases.append(address.rstrip("/") if "://" in address else f"http://{address}")
    return bases


def _host(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


def _kube_error(exc: Exception) -> str:
    status = getattr(exc, "status", None)
    reason = getattr(exc, "reason", None)
    if status is not None:
        return f"HTTP {status} {reason or ''}".strip()
    return f"{exc.__class__.__name__}: {exc}"


def _properties(env: Any) -> dict[str, str]:
    if not isinstance(env, Mapping):
        raise SourceError("the environment is not an object")
    pairs = env.get("sparkProperties")
    if not isinstance(pairs, list):
        raise SourceError("environment.sparkProperties is not a list")
    out = {}
    for pair in pairs:
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
            raise SourceError(f"environment.sparkProperties has a malformed pair: {pair!r}")
        out[pair[0]] = pair[1]
    return out


async def _none() -> None:
    return None


async def _all(coros: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """Like gather, but the first failure cancels the rest instead of leaving them running."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        raise
