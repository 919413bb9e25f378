"""The three Trino cluster models agree where their assumptions coincide (issue 15).

The project has three models of a Trino cluster:

- the **sandbox model** (:class:`lab.sandbox.trino_model.TrinoCluster`): the emulated coordinator
  and workers behind the sandbox's HTTP faces, for the demo and the contract tests;
- the simulator's **work model** (:class:`autoscaler.sim.trino_work.WorkCluster`), the benchmark's default;
- the simulator's **slot model** (:class:`autoscaler.sim.trino.SlotCluster`), ``--model slots``.

Each is driven here through its own public API on one short hand-made trace, and each query's start and
end must be the same in every model. The settings that make the models mean the same thing:

- a query's work is worker-seconds in the sandbox (one processor at speed 1 for one second) and
  CPU-seconds in the simulator: one processor per worker at speed 1 in the sandbox, one core per worker
  in the simulator;
- the sandbox splits a query's work evenly over the workers it starts on and each worker shares its
  capacity equally among its tasks; the work model gives each of n running queries ``c·W·min(u, 1/n)``,
  so ``query_parallelism`` u = 1 (a query alone may use every core, as in the sandbox);
- the slot model shares a worker's cores among the queries on it (``min(1, cores / n)``); with one worker,
  one core and as many slots as the group's limit, slots never bind before the group does;
- one resource group with ``hardConcurrencyLimit`` 3 and a queue (FIFO), no memory, workers present
  and active from t=0 and never changed.

Tolerance: ``TOLERANCE`` (1 µs). The models agree exactly up to floating-point rounding (measured:
at most 3e-14 s on these traces). There is no systematic difference to allow for:

- the sandbox coordinator re-reads worker states every ``node_refresh_seconds`` (5 s, upstream's
  default, kept here) and only schedules on workers it has read, but it reads the workers it is built
  with at once, so a worker present from t=0 is schedulable from t=0 (a worker *added* later would only
  take work at the next refresh; the simulator has no refresh);
- the sandbox admits a queued query and starts it (``admitted_at`` then ``running_since``) at the same
  instant as the completion that frees its place, with no dispatch step, like the simulator (which
  handles completions before arrivals at one instant);
- the sandbox moves its clock by at least ``_MIN_STEP`` (1 µs) per completion step and counts work under
  1e-9 as done: completions less than 1 µs apart may be rounded by up to 1 µs there. That rounding is the
  only one a model does on purpose, so it is the tolerance.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from autoscaler.sim import ClusterConfig, Load, SlotCluster, WorkCluster, WorkConfig
from autoscaler.sim.trino import DRAIN
from lab.sandbox.trino_model import QueryState, ResourceGroupSpec
from lab.sandbox.trino_model import TrinoCluster as SandboxCluster

#: Seconds two models' start or end of one query may differ by (see the module docstring).
TOLERANCE = 1e-6
#: The group's hardConcurrencyLimit in every model.
LIMIT = 3
GROUP = "global"

# Fourteen queries over two and a half minutes: bursts that overlap (so processor sharing changes the
# rates all the time) and fill the group (so queries queue), quiet spells, a lone query at the end.
# Neither arrivals nor work are round numbers, so no result is exact by luck.
ARRIVALS = [0.0, 1.3, 2.9, 4.1, 6.7, 18.2, 19.9, 40.0, 41.1, 42.6, 43.4, 95.0, 96.5, 150.0]
WORK = [12.4, 7.1, 20.3, 3.7, 9.2, 15.8, 4.4, 30.5, 6.1, 5.9, 10.3, 8.6, 2.3, 5.0]
#: Long enough for every query to finish in every model.
HORIZON = 1_000.0

Times = tuple[list[float], list[float]]


def _load() -> Load:
    n = len(ARRIVALS)
    return Load(
        np.asarray(ARRIVALS, dtype=np.float64),
        np.asarray(WORK, dtype=np.float64),
        np.zeros(n, dtype=np.int64),
        duration=HORIZON,
    )


def run_sandbox(workers: int, limit: int = LIMIT) -> Times:
    """Each query's start (``running_since``) and end in the sandbox model: ``workers`` workers of one
    processor at speed 1, one leaf group with the limit, queries submitted at their arrival instants."""
    cluster = SandboxCluster(
        478,
        workers=workers,
        worker_processors=1,
        worker_speed=1.0,
        node_refresh_seconds=5.0,
        required_workers=1,
        groups=[ResourceGroupSpec(GROUP, hard_concurrency_limit=limit, max_queued=100)],
    )
    queries = [cluster.submit(GROUP, work, at) for at, work in zip(ARRIVALS, WORK, strict=True)]
    cluster.advance(HORIZON)
    starts: list[float] = []
    ends: list[float] = []
    for query in queries:
        assert query.state is QueryState.FINISHED, query
        assert query.admitted_at is not None
        assert query.running_since is not None
        assert query.ended_at is not None
        # With the workers active, a query admitted by its group starts RUNNING at the same instant: the
        # sandbox's admission is the simulator's start (it has no WAITING_FOR_RESOURCES here).
        assert query.running_since == query.admitted_at
        starts.append(query.running_since)
        ends.append(query.ended_at)
    return starts, ends


def run_work_model(workers: int, limit: int = LIMIT) -> Times:
    """The work model with ``workers`` active workers of one core; a query may use them all (u = 1)."""
    config = WorkConfig(
        cores_per_worker=1.0, query_parallelism=1.0, group_limits=(limit,), required_workers=1
    )
    cluster = WorkCluster(_load(), config)
    cluster.set_replicas(workers, 0.0, DRAIN, initial=True)
    cluster.advance(HORIZON)
    assert cluster.completed == len(ARRIVALS)
    return list(cluster.start), list(cluster.end)


def run_slot_model(workers: int, limit: int = LIMIT) -> Times:
    """The slot model with ``workers`` active workers of one core and ``limit`` slots each."""
    config = ClusterConfig(
        slots_per_worker=limit, cores_per_worker=1.0, group_limits=(limit,), startup_seconds=0.0
    )
    cluster = SlotCluster(_load(), config)
    cluster.set_replicas(workers, 0.0, DRAIN, initial=True)
    cluster.advance(HORIZON)
    assert cluster.completed == len(ARRIVALS)
    return list(cluster.start), list(cluster.end)


def _assert_agree(expected: Times, actual: Times, name: str) -> None:
    (expected_starts, expected_ends), (starts, ends) = expected, actual
    assert all(math.isfinite(t) for t in (*starts, *ends)), f"{name}: a query did not run to its end"
    assert starts == pytest.approx(expected_starts, abs=TOLERANCE, rel=0), f"{name}: starts differ"
    assert ends == pytest.approx(expected_ends, abs=TOLERANCE, rel=0), f"{name}: ends differ"


def test_one_worker_all_three_models_agree() -> None:
    """One worker of one core, a group limit of 3: the sandbox, the work model and the slot model give
    every query the same start and end."""
    sandbox = run_sandbox(workers=1)
    _assert_agree(sandbox, run_work_model(workers=1), "work model vs sandbox")
    _assert_agree(sandbox, run_slot_model(workers=1), "slot model vs sandbox")
    starts, ends = sandbox
    # Anchors worked out by hand, so three models cannot agree on a wrong answer. Queries 0-2 share the
    # core: query 0 runs alone for 1.3 s, with query 1 for 1.6 s, then all three share it, so query 1's
    # remaining 6.3 s of work take 18.9 s: it ends at 21.8, where query 3 (queued behind the limit
    # since 4.1) starts.
    assert ends[1] == pytest.approx(21.8, abs=TOLERANCE)
    assert starts[3] == pytest.approx(21.8, abs=TOLERANCE)
    # Queries queue: query 4 arrives at 6.7 and waits until 32.9.
    assert starts[4] == pytest.approx(32.9, abs=TOLERANCE)
    # The last query runs alone at the worker's full speed.
    assert (starts[-1], ends[-1]) == pytest.approx((150.0, 155.0), abs=TOLERANCE)


def test_two_workers_the_sandbox_and_the_work_model_agree() -> None:
    """Two workers of one core, a group limit of 3: the sandbox and the work model agree.

    Both spread a query over every active worker: the sandbox splits its work evenly over the two
    workers, each sharing its core among its tasks, so every running query has one task on each worker
    and progresses at 2/n worker-seconds per second, which is the work model's ``c·W·min(u, 1/n)`` with
    c = 1, W = 2, u = 1.

    The slot model is left out on purpose: it places a query on one worker (the one with the most free
    slots), where it runs at most at one core's speed. On this trace it differs by up to 10 s: the lone
    last query takes 5 s there, 2.5 s in the other two models; query 0 ends at 21.9 there, 15.2 in the
    other two; query 3 starts at 8.4 there, 11.15 in the other two.
    """
    sandbox = run_sandbox(workers=2)
    _assert_agree(sandbox, run_work_model(workers=2), "work model vs sandbox")
    starts, ends = sandbox
    # The second worker halves a lone query's time (anchors worked out by hand, as above).
    assert (starts[-1], ends[-1]) == pytest.approx((150.0, 152.5), abs=TOLERANCE)
    # Query 3 still queues behind the limit: queries 0-2 run, and query 1 ends first, at 11.15.
    assert starts[3] == pytest.approx(11.15, abs=TOLERANCE)
