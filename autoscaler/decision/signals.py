"""What one pass of the decision loop sees: the observation types :mod:`autoscaler.decision.engine` decides on.

Everything is a frozen value; times are float seconds since the Unix epoch (UTC). The caller reads the
sources, the engine only computes.
"""

from __future__ import annotations

from dataclasses import dataclass

from autoscaler.decision.queueing import GroupLoad
from autoscaler.decision.spark_sizing import AppDemand

__all__ = ["Observation", "SparkSnapshot", "TrinoSnapshot", "ValueReading"]


@dataclass(frozen=True, slots=True)
class ValueReading:
    """The summed value of an External or Prometheus metric; ``None`` when it could not be read.

    ``stale`` marks a value the source last refreshed too long ago: the engine then treats it like a missing
    one (it may scale up on the other metrics, never down).
    """

    value: float | None
    stale: bool = False


@dataclass(frozen=True, slots=True)
class TrinoSnapshot:
    """One poll of a Trino cluster: shared by every QueueWait and RequiredWorkers metric of the policy.

    ``completed_total``/``started_total`` are the monotonic counters when the source has them; without them
    the queue model needs a service time from elsewhere (see :class:`autoscaler.decision.engine.EngineConfig`).
    """

    queued: int
    running: int
    required_workers: int = 0
    groups: tuple[GroupLoad, ...] = ()
    completed_total: float | None = None
    started_total: float | None = None
    stale: bool = False
    #: CPU-seconds of the queries that ended (Trino's QueryManager ConsumedCpuTimeSecs), for sizing on work.
    cpu_seconds_total: float | None = None


@dataclass(frozen=True, slots=True)
class SparkSnapshot:
    """The applications of a Spark pool (or the runs of one spark-operator application) now.

    ``apps`` empty means nothing runs; ``workers_alive`` (pool workers the master lists ALIVE) is only
    reported in reasons.
    """

    apps: tuple[AppDemand, ...] = ()
    workers_alive: int | None = None
    stale: bool = False


@dataclass(frozen=True, slots=True)
class Observation:
    """Everything one loop pass observed.

    ``values[i]`` is the reading of ``policy.spec.metrics[i]`` when that metric is External or Prometheus
    (entries of other metric types are ignored; a missing entry or ``None`` is a missing metric).
    ``trino``/``spark`` feed the QueueWait/RequiredWorkers and SparkExecutors metrics (``None``: missing).
    ``ready_replicas`` defaults to ``current_replicas`` (the HPA's ready pods for Value targets).
    """

    now: float
    current_replicas: int
    values: tuple[ValueReading | None, ...] = ()
    trino: TrinoSnapshot | None = None
    spark: SparkSnapshot | None = None
    ready_replicas: int | None = None
