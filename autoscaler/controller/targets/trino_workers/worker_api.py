"""What the controller asks one Trino worker: its state, the tasks it runs, and a new state.

- ``GET /v1/info/state`` (public): a JSON string such as ``"ACTIVE"``.
- ``PUT /v1/info/state`` (needs "write system information"): body a JSON string; 200 on success and
  when the state is already the one asked, 400 on an invalid transition.
- Running work: a worker's task list (``/v1/task``) is for Trino's internal communication only, so the
  tasks are read from the worker's ``/metrics`` (needs "read system information"): the ``Tasks`` gauge of
  the task executor in use — ``ThreadPerDriverTaskExecutor`` (domain ``executor.dedicated``), the default
  since 438 (``TaskManagerConfig``, ``ServerMainModule``; a real 476 exports it: tests/peers/TRINO_FACTS.md),
  ``TimeSharingTaskExecutor`` when configured or from 424 to 437, ``TaskExecutor`` before 424 — or, when a
  build exports only split gauges, its splits.
"""

from __future__ import annotations

import base64
import json
import ssl as ssl_module
from collections.abc import Mapping
from typing import Any

import aiohttp

from autoscaler.controller.actuator import ActuatorError

__all__ = ["TASK_METRICS", "TrinoWorkerClient", "auth_headers", "parse_tasks"]

#: Each executor's prefix and the split gauges that add up to its started splits.
_EXECUTORS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("trino_execution_executor_dedicated_name_ThreadPerDriverTaskExecutor_", ("TotalRunningSplits",)),
    (
        "trino_execution_executor_timesharing_name_TimeSharingTaskExecutor_",
        ("RunningSplits", "BlockedSplits", "WaitingSplits"),
    ),
    ("trino_execution_executor_name_TaskExecutor_", ("RunningSplits", "BlockedSplits", "WaitingSplits")),
)
#: Every family the task count may come from, asked for by name so a worker sends only these.
TASK_METRICS = tuple(prefix + attr for prefix, splits in _EXECUTORS for attr in ("Tasks", *splits))


def auth_headers(user: str, password: str | None) -> dict[str, str]:
    """``X-Trino-User``, plus Basic credentials when the cluster has a password for the user."""
    headers = {"X-Trino-User": user}
    if password is not None:
        pair = f"{user}:{password}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    return headers


def _values(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, rest = line.partition(" ")
        name = name.split("{", 1)[0]
        value = rest.split()[0] if rest.split() else ""
        try:
            out[name] = out.get(name, 0.0) + float(value)
        except ValueError:
            continue
    return out


def parse_tasks(text: str) -> int | None:
    """Tasks on a worker from its OpenMetrics text; None when no task-executor gauge is there.

    An executor that is not in use may still export its gauges (at zero), so the largest count wins."""
    values = _values(text)
    tasks = [values[prefix + "Tasks"] for prefix, _ in _EXECUTORS if prefix + "Tasks" in values]
    if tasks:
        return max(0, round(max(tasks)))
    splits = [
        sum(values[prefix + attr] for attr in names if prefix + attr in values)
        for prefix, names in _EXECUTORS
        if any(prefix + attr in values for attr in names)
    ]
    return max(0, round(max(splits))) if splits else None


class TrinoWorkerClient:
    """Calls on workers by base URL; the caller owns ``session`` and passes the credentials per call.

    ``ssl`` and ``server_hostname`` apply to HTTPS workers: a worker reached by pod IP presents a
    certificate for a name, which ``server_hostname`` gives (and sends as SNI)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        ssl: ssl_module.SSLContext | bool = True,
        server_hostname: str | None = None,
    ) -> None:
        self.session = session
        self._tls: dict[str, Any] = {"ssl": ssl}
        if server_hostname is not None:
            self._tls["server_hostname"] = server_hostname

    async def state(self, base: str, headers: Mapping[str, str]) -> str | None:
        """The worker's state, None when it does not answer with one."""
        try:
            async with self.session.get(f"{base}/v1/info/state", headers=headers, **self._tls) as resp:
                if resp.status != 200:
                    return None
                value = json.loads(await resp.text())
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None
        return value if isinstance(value, str) else None

    async def tasks(self, base: str, headers: Mapping[str, str]) -> int | None:
        """Tasks the worker runs, None when its metrics cannot be read."""
        params = [("name[]", name) for name in TASK_METRICS]
        try:
            async with self.session.get(
                f"{base}/metrics", headers=headers, params=params, **self._tls
            ) as resp:
                if resp.status != 200:
                    return None
                text = await resp.text()
        except (aiohttp.ClientError, TimeoutError):
            return None
        return parse_tasks(text)

    async def put_state(self, base: str, state: str, headers: Mapping[str, str], pod: str) -> None:
        """Ask the worker for ``state``; anything but 200 is an :class:`ActuatorError`."""
        body = json.dumps(state)
        send = {**headers, "Content-Type": "application/json"}
        try:
            async with self.session.put(
                f"{base}/v1/info/state", data=body, headers=send, **self._tls
            ) as resp:
                if resp.status == 200:
                    return
                detail = (await resp.text()).strip()[:200]
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ActuatorError(
                "trino_state", f"PUT {state} on {pod} ({base}): {exc.__class__.__name__}: {exc}"
            ) from exc
        raise ActuatorError("trino_state", f"PUT {state} on {pod} ({base}): HTTP {resp.status} {detail}")
