"""The standalone master's and workers' web UI, as the pool actuator uses them.

``GET <master>/json/`` lists the workers; ``POST <master>/workers/kill/?host=<host>`` decommissions every
worker on that host. The master answers that POST 200 when it matched a worker, 404 when none, and 405
when it does not offer it: ``spark.decommission.enabled`` is off on the master, or the request comes from
another machine while ``spark.master.ui.decommission.allow.mode`` is ``LOCAL`` (its default; set ``ALLOW``
for a controller in another pod). ``GET <worker web UI>/json/`` lists the executors a worker runs.
"""

from __future__ import annotations

import enum
import json
from typing import Any

import aiohttp

from autoscaler.controller.actuator import ActuatorError
from autoscaler.controller.targets.spark_pool.plan import (
    MasterWorker,
    WorkerLoad,
    parse_master_workers,
    parse_worker_load,
)

__all__ = ["Decommission", "SparkMasterClient"]


class Decommission(enum.Enum):
    """The master's answer to a decommission request."""

    ACCEPTED = "accepted"
    NO_WORKER = "no worker on that host"
    REFUSED = "refused (405)"


class SparkMasterClient:
    """Talks to one master and its workers over HTTP; owns its session unless one is given."""

    def __init__(
        self,
        url: str,
        *,
        timeout_seconds: float = 5.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session = session
        self._own = session is None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._own and self._session is not None:
            await self._session.close()
        self._session = None

    async def workers(self) -> tuple[MasterWorker, ...]:
        doc = await self._get_json(self.url + "/json/", "spark_master")
        try:
            return parse_master_workers(doc)
        except ValueError as exc:
            raise ActuatorError("spark_master", f"{self.url}/json/: {exc}") from exc

    async def decommission(self, host: str) -> Decommission:
        url = self.url + "/workers/kill/"
        try:
            async with self._http().post(url, params={"host": host}, timeout=self._timeout) as resp:
                status = resp.status
                await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ActuatorError("spark_decommission", f"POST {url}?host={host}: {_describe(exc)}") from exc
        if status == 200:
            return Decommission.ACCEPTED
        if status == 404:
            return Decommission.NO_WORKER
        if status == 405:
            return Decommission.REFUSED
        raise ActuatorError("spark_decommission", f"POST {url}?host={host} answered HTTP {status}")

    async def worker_load(self, webui: str) -> WorkerLoad:
        """What the worker whose web UI is at ``webui`` runs now."""
        url = webui.rstrip("/") + "/json/"
        doc = await self._get_json(url, "spark_worker")
        try:
            return parse_worker_load(doc)
        except ValueError as exc:
            raise ActuatorError("spark_worker", f"{url}: {exc}") from exc

    async def _get_json(self, url: str, operation: str) -> Any:
        try:
            async with self._http().get(url, timeout=self._timeout) as resp:
                body = await resp.text(errors="replace")
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ActuatorError(operation, f"GET {url}: {_describe(exc)}") from exc
        if status != 200:
            raise ActuatorError(operation, f"GET {url} answered HTTP {status}")
        try:
            return json.loads(body)
        except ValueError as exc:
            raise ActuatorError(operation, f"GET {url} answered something that is not JSON") from exc


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{exc.__class__.__name__}: {exc}"
