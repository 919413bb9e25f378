"""Sizing the next run of a spark-operator application: which objects may be edited, and the merge patch.

kubeflow/spark-operator v1beta2 (``api/v1beta2/sparkapplication_types.go``): ``SparkApplicationSpec``
sizes executors with ``executor.instances`` (``ExecutorSpec.Instances``, at least 1) or, when
``dynamicAllocation.enabled`` (``DynamicAllocation``), with ``initialExecutors``/``minExecutors``/
``maxExecutors``; ``ScheduledSparkApplicationSpec.template`` is the ``SparkApplicationSpec`` each run is
created from (a run keeps the spec it was created with).

**Which SparkApplication may change.** The operator's update filter
(``internal/controller/sparkapplication/event_filter.go``) turns *any* spec change other than ``suspend``
and ``timeToLiveSeconds`` into state ``INVALIDATING``, which deletes the driver and executors and reruns
the application. So a SparkApplication is edited only when no run exists and none is lost by a rerun:

- state ``""`` (``ApplicationStateNew``: never submitted, e.g. created while the operator is down);
- ``PENDING_RERUN`` (the operator is about to resubmit it anyway; the edit goes into that run);
- ``SUSPENDED`` with ``spec.suspend: true`` (the operator keeps it suspended through the invalidation).

Every other state (``SUBMITTED``, ``RUNNING``, ``SUCCEEDING``, ``FAILING``, ``COMPLETED``, ``FAILED``,
``SUBMISSION_FAILED``, ``INVALIDATING``, ``SUSPENDING``, ``RESUMING``, ``UNKNOWN``) is left alone: an edit
would kill a running driver or rerun a finished one.

**What is written** for ``n`` executors (at least 1: the CRD refuses ``instances: 0`` and Spark a
``maxExecutors`` of 0): without dynamic allocation ``executor.instances = n``; with it
``maxExecutors = initialExecutors = n`` (the run starts where the last one peaked and may not grow past
it), ``minExecutors`` only lowered to ``n`` when above it (raising it would pin the executors for the whole
run), and ``executor.instances`` lowered to ``n`` when set above it (the operator starts with the larger of
``instances`` and ``initialExecutors``). The patch carries ``metadata.resourceVersion``, so a change made
in between (the operator submitting the application) makes it fail with 409 instead of landing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "EDITABLE_STATES",
    "INT32_MAX",
    "application_patch",
    "application_state",
    "edit_refusal",
    "next_run_executors",
    "scheduled_patch",
    "sizing_fragment",
]

INT32_MAX = 2**31 - 1
#: SparkApplication states in which a spec edit loses no run (``SUSPENDED`` only with ``suspend: true``).
EDITABLE_STATES = frozenset({"", "PENDING_RERUN", "SUSPENDED"})
#: What the next run gets when nothing is set: spark.executor.instances defaults to 2 on Kubernetes.
SPARK_DEFAULT_INSTANCES = 2

Obj = Mapping[str, Any]


def _map(value: Any) -> Obj:
    return value if isinstance(value, Mapping) else {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def application_state(obj: Obj) -> str:
    """``status.applicationState.state``; "" for an application the operator has not seen."""
    state = _map(_map(obj.get("status")).get("applicationState")).get("state")
    return state if isinstance(state, str) else ""


def edit_refusal(obj: Obj) -> str | None:
    """Why this SparkApplication must not be edited now; None when an edit loses no run."""
    state = application_state(obj)
    suspended = _map(obj.get("spec")).get("suspend") is True
    if state in EDITABLE_STATES and (state != "SUSPENDED" or suspended):
        return None
    shown = state or "new"
    return f"it is {shown}, and spark-operator turns any spec edit into INVALIDATING, which " + (
        "reruns a finished application" if state in ("COMPLETED", "FAILED") else "kills and resubmits it"
    )


def _dynamic(spec: Obj) -> Obj | None:
    da = _map(spec.get("dynamicAllocation"))
    return da if da.get("enabled") is True else None


def next_run_executors(spec: Obj) -> int:
    """The executors a run created from ``spec`` gets (dynamic allocation: its ceiling, or its start
    count when unbounded); at least 1 so the count reads as a live target."""
    instances = _int(_map(spec.get("executor")).get("instances"))
    da = _dynamic(spec)
    if da is None:
        return max(1, instances if instances is not None else SPARK_DEFAULT_INSTANCES)
    ceiling = _int(da.get("maxExecutors"))
    if ceiling is not None:
        return max(1, ceiling)
    start = [v for v in (_int(da.get("minExecutors")), _int(da.get("initialExecutors")), instances) if v]
    return max([1, *start])


def sizing_fragment(spec: Obj, executors: int) -> dict[str, Any] | None:
    """The part of a ``SparkApplicationSpec`` to merge for ``executors``; None when it already says so."""
    n = min(max(1, executors), INT32_MAX)
    executor = _map(spec.get("executor"))
    instances = _int(executor.get("instances"))
    da = _dynamic(spec)
    out: dict[str, Any] = {}
    if da is None:
        if instances != n:
            out["executor"] = {"instances": n}
        return out or None
    changes: dict[str, int] = {}
    if _int(da.get("maxExecutors")) != n:
        changes["maxExecutors"] = n
    if _int(da.get("initialExecutors")) != n:
        changes["initialExecutors"] = n
    low = _int(da.get("minExecutors"))
    if low is not None and low > n:
        changes["minExecutors"] = n
    if changes:
        out["dynamicAllocation"] = changes
    if instances is not None and instances > n:
        out["executor"] = {"instances": n}
    return out or None


def _version(obj: Obj) -> dict[str, Any]:
    return {"resourceVersion": str(_map(obj.get("metadata")).get("resourceVersion") or "")}


def application_patch(obj: Obj, executors: int) -> dict[str, Any] | None:
    """The merge patch sizing a SparkApplication (call only when :func:`edit_refusal` is None)."""
    fragment = sizing_fragment(_map(obj.get("spec")), executors)
    if fragment is None:
        return None
    return {"metadata": _version(obj), "spec": fragment}


def scheduled_patch(obj: Obj, executors: int) -> dict[str, Any] | None:
    """The merge patch sizing the template of a ScheduledSparkApplication."""
    fragment = sizing_fragment(_map(_map(obj.get("spec")).get("template")), executors)
    if fragment is None:
        return None
    return {"metadata": _version(obj), "spec": {"template": fragment}}
