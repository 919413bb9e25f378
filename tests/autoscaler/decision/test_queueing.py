"""Erlang C, Little's-law estimation and Trino sizing (autoscaler.decision.queueing)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pytest

from autoscaler.decision.queueing import (
    GroupLoad,
    QueueObservation,
    Rates,
    TrinoLoad,
    WaitTarget,
    erlang_c,
    estimate_rates,
    limit_bound_queued,
    mean_wait,
    servers_for_wait,
    trino_workers_needed,
    wait_exceeds,
    wait_percentile,
)


def erlang_c_factorial(c: int, a: float) -> float:
    """The textbook M/M/c formula with powers and factorials, independent of the recursion."""
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


def erlang_c_log_space(c: int, a: float) -> float:
    logs = [k * math.log(a) - math.lgamma(k + 1) for k in range(c)]
    log_top = c * math.log(a) - math.lgamma(c + 1) + math.log(c / (c - a))
    peak = max(*logs, log_top)
    top = math.exp(log_top - peak)
    return top / (sum(math.exp(v - peak) for v in logs) + top)


# --------------------------------------------------------------------------------------------------------
# Erlang C
# --------------------------------------------------------------------------------------------------------

ERLANG_C_CLOSED_FORMS = [
    # M/M/1: P(wait) is the utilisation.
    (1, 0.3, 0.3),
    (1, 0.7, 0.7),
    (1, 0.95, 0.95),
    # c = 2: C = A² / (2 + A); A = 1 gives the classic 1/3.
    (2, 1.0, 1.0 / 3.0),
    (2, 1.5, 2.25 / 3.5),
    (2, 0.5, 0.25 / 2.5),
    # c = 3, A = 2: 4 / 9 (P0 = 1/9, the three-server example of queueing textbooks).
    (3, 2.0, 4.0 / 9.0),
]


@pytest.mark.parametrize(("servers", "load", "expected"), ERLANG_C_CLOSED_FORMS)
def test_erlang_c_closed_forms(servers: int, load: float, expected: float) -> None:
    assert erlang_c(servers, load) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("servers", [1, 2, 3, 5, 8, 13, 20, 40])
@pytest.mark.parametrize("utilisation", [0.05, 0.3, 0.6, 0.85, 0.99])
def test_erlang_c_matches_factorial_formula(servers: int, utilisation: float) -> None:
    load = servers * utilisation
    assert erlang_c(servers, load) == pytest.approx(erlang_c_factorial(servers, load), rel=1e-9)


ERLANG_C_EDGES = [
    # Offered load at or above the slots: the queue never empties, everyone waits.
    (20, 20.0, 1.0),
    (20, 25.0, 1.0),
    # No load: nobody waits, even with no slot.
    (0, 0.0, 0.0),
    (5, 0.0, 0.0),
    # Load with no slot at all.
    (0, 0.5, 1.0),
]


@pytest.mark.parametrize(("servers", "load", "expected"), ERLANG_C_EDGES)
def test_erlang_c_edges(servers: int, load: float, expected: float) -> None:
    assert erlang_c(servers, load) == expected


def test_erlang_c_is_stable_for_thousands_of_slots() -> None:
    # A^c and c! overflow a double long before c = 2000; the recursion must not.
    # Cross-check against the factorial formula evaluated in log space (lgamma), which does not overflow.
    for servers, load in ((2000, 1950.0), (2100, 1950.0), (5000, 4990.5)):
        assert erlang_c(servers, load) == pytest.approx(erlang_c_log_space(servers, load), rel=1e-7)


def test_erlang_c_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="servers"):
        erlang_c(-1, 1.0)
    with pytest.raises(ValueError, match="offered load"):
        erlang_c(3, math.nan)


def test_erlang_c_monotone_in_servers_and_load() -> None:
    for load in (0.5, 4.0, 20.0, 75.5):
        values = [erlang_c(c, load) for c in range(math.floor(load) + 1, math.floor(load) + 40)]
        assert all(a > b for a, b in itertools.pairwise(values))
    for c in (1, 4, 26):
        values = [erlang_c(c, load) for load in np.linspace(0.01, c - 0.01, 30)]
        assert all(a < b for a, b in itertools.pairwise(values))


# --------------------------------------------------------------------------------------------------------
# Waiting times
# --------------------------------------------------------------------------------------------------------


def test_mm1_mean_wait() -> None:
    # M/M/1: E[Wq] = ρ·S / (1 − ρ).
    assert mean_wait(1, 0.8, 10.0) == pytest.approx(0.8 * 10.0 / 0.2)
    assert mean_wait(4, 5.0, 10.0) == math.inf
    assert mean_wait(4, 0.0, 10.0) == 0.0


@pytest.mark.parametrize(("servers", "load", "service"), [(1, 0.5, 2.0), (7, 5.5, 30.0), (26, 20.0, 40.0)])
def test_wait_tail_and_percentile_agree(servers: int, load: float, service: float) -> None:
    c = erlang_c(servers, load)
    assert wait_exceeds(servers, load, service, 0.0) == pytest.approx(c)
    assert wait_exceeds(servers, load, service, -1.0) == 1.0
    for q in (0.9, 0.95, 0.99):
        t = wait_percentile(servers, load, service, q)
        if c <= 1 - q:
            assert t == 0.0
        else:
            assert t > 0
            assert wait_exceeds(servers, load, service, t) == pytest.approx(1 - q, rel=1e-9)
    # The mean is the integral of the tail: C·S/(c − A).
    assert mean_wait(servers, load, service) == pytest.approx(c * service / (servers - load))


def test_wait_percentile_is_zero_when_most_do_not_wait() -> None:
    # P(wait) = 0.143 at c = 26, A = 20, so p80 of wait is 0 and p95 is not.
    assert wait_percentile(26, 20.0, 40.0, 0.8) == 0.0
    assert wait_percentile(26, 20.0, 40.0, 0.95) > 0.0
    assert wait_percentile(20, 20.0, 40.0, 0.95) == math.inf
    with pytest.raises(ValueError, match=r"0\.95 for p95"):
        wait_percentile(26, 20.0, 40.0, 95)


# --------------------------------------------------------------------------------------------------------
# servers_for_wait
# --------------------------------------------------------------------------------------------------------


def test_reference_worked_example() -> None:
    # REFERENCE.md §6: λ = 0.5/s, S = 40 s → A = 20; P(wait) <= 0.2 needs 26 slots.
    assert erlang_c(25, 20.0) > 0.2 >= erlang_c(26, 20.0)
    assert servers_for_wait(0.5, 40.0, 0.0, 0.8) == 26


SERVERS_FOR_WAIT_CASES = [
    # No arrivals: no slot.
    (0.0, 40.0, 0.0, 0.95),
    # M/M/1-sized load with a loose target.
    (0.01, 10.0, 60.0, 0.95),
    # Integer offered load: the search must start above A (c = A is unstable).
    (1.0, 3.0, 0.0, 0.5),
    # Fractional load just above an integer.
    (2.05, 10.0, 5.0, 0.9),
    # Large load, strict p99 with zero wait.
    (100.0, 9.0, 0.0, 0.99),
    # Long queries, p95 under a minute.
    (0.2, 300.0, 60.0, 0.95),
]


@pytest.mark.parametrize(("rate", "service", "target", "q"), SERVERS_FOR_WAIT_CASES)
def test_servers_for_wait_is_the_smallest_that_meets_the_target(
    rate: float, service: float, target: float, q: float
) -> None:
    c = servers_for_wait(rate, service, target, q)
    load = rate * service
    if load == 0:
        assert c == 0
        return
    assert c > load
    assert wait_percentile(c, load, service, q) <= target
    if c - 1 > load:
        assert wait_percentile(c - 1, load, service, q) > target


def test_servers_for_wait_monotone() -> None:
    rates = [servers_for_wait(r, 40.0, 10.0, 0.95) for r in np.linspace(0.0, 3.0, 31)]
    assert rates == sorted(rates)
    targets = [servers_for_wait(0.5, 40.0, t, 0.95) for t in (0.0, 1.0, 5.0, 20.0, 60.0, 600.0)]
    assert targets == sorted(targets, reverse=True)
    quantiles = [servers_for_wait(0.5, 40.0, 5.0, q) for q in (0.5, 0.8, 0.9, 0.95, 0.99, 0.999)]
    assert quantiles == sorted(quantiles)
    # Square-root staffing: slots above the load grow like √A, far slower than A.
    extra_small = servers_for_wait(1.0, 10.0, 0.0, 0.9) - 10
    extra_large = servers_for_wait(100.0, 10.0, 0.0, 0.9) - 1000
    assert extra_small < extra_large < 100 * extra_small / 3


# --------------------------------------------------------------------------------------------------------
# Monte-Carlo M/M/c
# --------------------------------------------------------------------------------------------------------


@dataclass
class Simulated:
    arrivals: np.ndarray
    starts: np.ndarray
    ends: np.ndarray

    @property
    def waits(self) -> np.ndarray:
        out: np.ndarray = self.starts - self.arrivals
        return out


def simulate_mmc(servers: int, rate: float, service: float, customers: int, seed: int) -> Simulated:
    """FCFS M/M/c: each customer takes the slot that frees first."""
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / rate, customers))
    services = rng.exponential(service, customers)
    free_at = np.zeros(servers)
    starts = np.empty(customers)
    for i in range(customers):
        slot = int(np.argmin(free_at))
        starts[i] = max(arrivals[i], free_at[slot])
        free_at[slot] = starts[i] + services[i]
    return Simulated(arrivals, starts, starts + services)


@pytest.mark.parametrize(("servers", "load"), [(1, 0.6), (3, 2.0), (8, 5.0)])
def test_monte_carlo_agrees_with_erlang_c(servers: int, load: float) -> None:
    service = 10.0
    sim = simulate_mmc(servers, load / service, service, 30_000, seed=7 + servers)
    waits = sim.waits[2_000:]  # drop the start-up from an empty system
    measured = float(np.mean(waits > 1e-12))
    assert measured == pytest.approx(erlang_c(servers, load), abs=0.04)
    assert float(np.mean(waits)) == pytest.approx(mean_wait(servers, load, service), rel=0.25)
    t = 5.0
    assert float(np.mean(waits > t)) == pytest.approx(wait_exceeds(servers, load, service, t), abs=0.04)


# --------------------------------------------------------------------------------------------------------
# estimate_rates
# --------------------------------------------------------------------------------------------------------


def observe(sim: Simulated, times: np.ndarray, *, completed: bool, started: bool) -> list[QueueObservation]:
    arrivals, starts, ends = np.sort(sim.arrivals), np.sort(sim.starts), np.sort(sim.ends)
    out = []
    for t in times:
        n_arr = int(np.searchsorted(arrivals, t, side="right"))
        n_start = int(np.searchsorted(starts, t, side="right"))
        n_end = int(np.searchsorted(ends, t, side="right"))
        out.append(
            QueueObservation(
                at=float(t),
                queued=n_arr - n_start,
                running=n_start - n_end,
                completed_total=float(n_end) if completed else None,
                started_total=float(n_start) if started else None,
            )
        )
    return out


@pytest.mark.parametrize(
    ("completed", "started"),
    [
        # Completion counter (the usual Trino case).
        (True, False),
        # Only a start counter.
        (False, True),
    ],
)
def test_estimate_rates_recovers_a_simulated_load(completed: bool, started: bool) -> None:
    rate, service, servers = 0.5, 40.0, 26
    sim = simulate_mmc(servers, rate, service, 12_000, seed=3)
    now = float(sim.arrivals[-1])
    history = observe(sim, np.arange(now - 12_000.0, now + 1, 15.0), completed=completed, started=started)
    rates = estimate_rates(history, now, 12_000.0)
    assert rates is not None
    assert rates.arrival_rate == pytest.approx(rate, rel=0.1)
    assert rates.service_seconds == pytest.approx(service, rel=0.1)
    assert rates.offered_load == pytest.approx(rate * service, rel=0.15)
    assert rates.samples == len(history)
    assert "Little" in rates.method


def steady(
    n: int, step: float, queued: float, running: float, per_step: float | None
) -> list[QueueObservation]:
    return [
        QueueObservation(
            at=1000.0 + i * step,
            queued=queued,
            running=running,
            completed_total=None if per_step is None else 5000.0 + per_step * i,
        )
        for i in range(n)
    ]


def test_estimate_rates_littles_law_exactly() -> None:
    # 20 running, 7.5 completions per 15 s → X = 0.5/s, S = 20 / 0.5 = 40 s, A = 20.
    history = steady(41, 15.0, 0, 20, 7.5)
    now = history[-1].at
    rates = estimate_rates(history, now, 600.0)
    assert rates is not None
    assert (rates.arrival_rate, rates.service_seconds, rates.offered_load) == pytest.approx((0.5, 40.0, 20.0))
    assert rates.observed_wait_seconds == 0.0


def test_estimate_rates_counts_a_growing_queue_as_arrivals() -> None:
    # Completions at 0.5/s and the queue grows by 60 over 600 s: arrivals are 0.6/s.
    history = [
        QueueObservation(at=float(t), queued=t / 10.0, running=20, completed_total=t * 0.5)
        for t in range(0, 601, 15)
    ]
    rates = estimate_rates(history, 600.0, 600.0)
    assert rates is not None
    assert rates.arrival_rate == pytest.approx(0.6)
    assert rates.service_seconds == pytest.approx(40.0)
    # Little's law on the queue: mean queued 30 over λ = 0.6/s.
    assert rates.observed_wait_seconds == pytest.approx(30.0 / 0.6)


def test_estimate_rates_survives_a_counter_reset() -> None:
    history = steady(41, 15.0, 0, 20, 7.5)
    # The coordinator restarts after sample 20: the counter starts again from 0.
    reset = [
        QueueObservation(
            o.at, o.queued, o.running, completed_total=(i - 20) * 7.5 if i > 20 else o.completed_total
        )
        for i, o in enumerate(history)
    ]
    rates = estimate_rates(reset, history[-1].at, 600.0)
    assert rates is not None
    # As Prometheus' increase(): after a reset the new value is the increase, so no completion is lost and
    # no negative rate appears.
    assert rates.throughput == pytest.approx(0.5)
    assert rates.service_seconds == pytest.approx(40.0)


def test_estimate_rates_start_counter_survives_a_restart() -> None:
    # 0.5 starts/s with 20 running; the coordinator restarts after sample 20 and its counters start from 0.
    history = [
        QueueObservation(
            at=1000.0 + 15.0 * i,
            queued=0,
            running=20,
            started_total=(i - 20) * 7.5 if i > 20 else 9000.0 + 7.5 * i,
            completed_total=(i - 20) * 7.5 if i > 20 else 8980.0 + 7.5 * i,
        )
        for i in range(41)
    ]
    rates = estimate_rates(history, history[-1].at, 600.0)
    assert rates is not None
    assert "start counter" in rates.method
    assert (rates.throughput, rates.service_seconds, rates.arrival_rate) == pytest.approx((0.5, 40.0, 0.5))


def test_estimate_rates_prefers_starts_because_completions_count_rejections() -> None:
    # Trino's CompletedQueries also counts queries that failed in the queue (here 0.25/s rejected when
    # submitted): they never held a slot. 20 run at a time, 0.5/s start, so S = 40 s.
    history = [
        QueueObservation(
            at=15.0 * i, queued=5, running=20, started_total=7.5 * i, completed_total=(7.5 + 3.75) * i
        )
        for i in range(41)
    ]
    both = estimate_rates(history, history[-1].at, 600.0)
    assert both is not None
    assert (both.service_seconds, both.arrival_rate, both.offered_load) == pytest.approx((40.0, 0.5, 20.0))
    completions_only = estimate_rates(
        [QueueObservation(o.at, o.queued, o.running, completed_total=o.completed_total) for o in history],
        history[-1].at,
        600.0,
    )
    assert completions_only is not None
    # The completion counter alone takes the rejections for service: S comes out a third too short.
    assert completions_only.service_seconds == pytest.approx(40.0 / 1.5)


@pytest.mark.parametrize("counter", ["started_total", "completed_total"])
def test_estimate_rates_counter_that_did_not_move_reads_like_counts(counter: str) -> None:
    # 20 queries run through the whole window and none starts or ends (they outlive it): conservation
    # alone would say λ = 0 and size for nothing; with a known S the running count gives the load.
    history = [QueueObservation(at=15.0 * i, queued=2, running=20, **{counter: 500.0}) for i in range(41)]
    rates = estimate_rates(history, history[-1].at, 600.0, service_seconds_hint=40.0)
    assert rates is not None
    assert rates.throughput == 0.0
    assert (rates.arrival_rate, rates.service_seconds, rates.offered_load) == pytest.approx((0.5, 40.0, 20.0))
    assert "configured service time" in rates.method
    blind = estimate_rates(history, history[-1].at, 600.0)
    assert blind is not None
    assert blind.service_seconds is None
    assert blind.offered_load == pytest.approx(20.0)


def test_estimate_rates_counts_only() -> None:
    history = steady(41, 15.0, 4, 20, None)
    now = history[-1].at
    blind = estimate_rates(history, now, 600.0)
    assert blind is not None
    assert blind.service_seconds is None
    assert blind.offered_load == pytest.approx(20.0)
    hinted = estimate_rates(history, now, 600.0, service_seconds_hint=40.0)
    assert hinted is not None
    assert (hinted.arrival_rate, hinted.offered_load) == pytest.approx((0.5, 20.0))
    assert "configured service time" in hinted.method


ESTIMATE_NONE_CASES = [
    # No observation at all.
    [],
    # A single observation: no rate can come from one point.
    [QueueObservation(at=990.0, queued=1, running=2, completed_total=3.0)],
    # Two observations 10 s apart: shorter than the minimum span.
    [QueueObservation(at=990.0, queued=1, running=2), QueueObservation(at=1000.0, queued=1, running=2)],
    # Enough points, but all older than the window.
    [QueueObservation(at=float(t), queued=0, running=1) for t in range(0, 300, 15)],
]


@pytest.mark.parametrize("history", ESTIMATE_NONE_CASES)
def test_estimate_rates_too_little_history(history: list[QueueObservation]) -> None:
    assert estimate_rates(history, 1000.0, 600.0) is None


def test_estimate_rates_ignores_the_future_and_no_completions_leave_s_unknown() -> None:
    history = steady(41, 15.0, 0, 3, 0.0)
    future = [QueueObservation(at=5000.0, queued=0, running=3, completed_total=1e9)]
    rates = estimate_rates(history + future, history[-1].at, 600.0)
    assert rates is not None
    # Nothing finished in the window: queries are longer than the window, S is unknown.
    assert rates.throughput == 0.0
    assert rates.service_seconds is None


# --------------------------------------------------------------------------------------------------------
# Trino workers
# --------------------------------------------------------------------------------------------------------


def rates_for(rate: float, service: float) -> Rates:
    return Rates(
        arrival_rate=rate,
        service_seconds=service,
        offered_load=rate * service,
        throughput=rate,
        mean_running=rate * service,
        mean_queued=0.0,
        observed_wait_seconds=0.0,
        span_seconds=600.0,
        samples=41,
        method="test",
    )


def test_trino_worked_example_seven_workers_of_four_slots() -> None:
    sizing = trino_workers_needed(
        TrinoLoad(running=20, queued=0, rates=rates_for(0.5, 40.0)),
        WaitTarget(target_wait_seconds=0.0, percentile=0.8, slots_per_worker=4),
    )
    assert sizing.workers == 7
    assert sizing.slots == 26
    assert sizing.signal == "queue-model"
    assert sizing.offered_load == pytest.approx(20.0)
    assert sizing.p_wait == pytest.approx(erlang_c(28, 20.0))
    assert not sizing.limit_bound
    assert "26 slots" in sizing.reason


TARGET = WaitTarget(target_wait_seconds=10.0, percentile=0.95, slots_per_worker=4, queries_per_worker=4)

TRINO_CASES = [
    # Idle cluster, nothing required: zero workers.
    ("idle", TrinoLoad(running=0, queued=0, rates=rates_for(0.0, 30.0)), 0, "idle", False),
    # Scale from zero: the coordinator waits for 2 workers, no query runs yet.
    ("required", TrinoLoad(running=0, queued=0, required_workers=2), 2, "required-workers", False),
    # No history yet: the capacity signal sizes 10 running + 6 queued at 4 per worker.
    ("no-history", TrinoLoad(running=10, queued=6), 4, "capacity", False),
    # A burst the window has not caught yet: capacity (40 queries → 10 workers) beats the model.
    ("burst", TrinoLoad(running=20, queued=20, rates=rates_for(0.2, 40.0)), 10, "capacity", False),
    # Queued in a group under its limit (memory-bound): those queries count.
    (
        "memory-queue",
        TrinoLoad(
            running=10,
            queued=6,
            groups=(GroupLoad("global", queued=6, running=10, hard_concurrency_limit=50),),
        ),
        4,
        "capacity",
        False,
    ),
    # Queued in a group at its hardConcurrencyLimit: the 30 queued do not count.
    (
        "limit-bound",
        TrinoLoad(
            running=10,
            queued=30,
            groups=(GroupLoad("global", queued=30, running=10, hard_concurrency_limit=10),),
        ),
        3,
        "capacity",
        True,
    ),
    # Required workers floor over a limit-bound queue.
    (
        "limit-bound-required",
        TrinoLoad(
            running=10,
            queued=30,
            required_workers=5,
            groups=(GroupLoad("global", queued=30, running=10, hard_concurrency_limit=10),),
        ),
        5,
        "required-workers",
        True,
    ),
]


@pytest.mark.parametrize(
    ("load", "workers", "signal", "bound"), [c[1:] for c in TRINO_CASES], ids=[c[0] for c in TRINO_CASES]
)
def test_trino_workers_table(load: TrinoLoad, workers: int, signal: str, bound: bool) -> None:
    sizing = trino_workers_needed(load, TARGET)
    assert (sizing.workers, sizing.signal, sizing.limit_bound) == (workers, signal, bound)
    if bound:
        assert "hardConcurrencyLimit" in sizing.reason
        assert "would not start them" in sizing.reason


def test_limit_bound_queue_does_not_scale_the_queue_model() -> None:
    target = WaitTarget(target_wait_seconds=5.0, percentile=0.95, slots_per_worker=4)
    rates = rates_for(0.8, 40.0)  # A = 32, half of it in a group held at 16 running
    groups = (
        GroupLoad("global", queued=20, running=32, hard_concurrency_limit=100),
        GroupLoad("global.etl", queued=20, running=16, hard_concurrency_limit=16),
        GroupLoad("global.adhoc", queued=0, running=16, hard_concurrency_limit=40),
    )
    bound = trino_workers_needed(TrinoLoad(running=32, queued=20, rates=rates, groups=groups), target)
    free = trino_workers_needed(TrinoLoad(running=32, queued=20, rates=rates), target)
    assert bound.limit_bound
    assert not free.limit_bound
    assert bound.limit_bound_queued == 20
    assert bound.limit_bound_slots == 16
    # Without groups the same counts look like a capacity shortage and need more workers.
    assert bound.workers < free.workers
    # The limit-bound group keeps its 16 slots; the rest of the load is sized by Erlang C.
    assert bound.offered_load is not None
    assert bound.offered_load == pytest.approx(32 * 16 / 52)
    assert bound.slots is not None
    expected_free = servers_for_wait(bound.offered_load / 40.0, 40.0, 5.0, 0.95)
    assert bound.slots == 16 + expected_free
    assert bound.workers == math.ceil((16 + expected_free) / 4)
    assert "global.etl" in bound.reason


def test_limit_bound_queued_nested_groups() -> None:
    groups = [
        # The parent is at its limit: its children's queues are held even under their own limits.
        GroupLoad("root", queued=7, running=10, hard_concurrency_limit=10),
        GroupLoad("root.a", queued=4, running=6, hard_concurrency_limit=20),
        GroupLoad("root.b", queued=3, running=4, hard_concurrency_limit=20),
        # A sibling tree under its limit: its queue counts.
        GroupLoad("other", queued=2, running=1, hard_concurrency_limit=5),
    ]
    held, bound = limit_bound_queued(groups)
    assert held == 7
    assert [g.id for g in bound] == ["root"]


def test_trino_target_validation() -> None:
    with pytest.raises(ValueError, match="percentile"):
        WaitTarget(target_wait_seconds=1.0, percentile=1.0, slots_per_worker=4)
    with pytest.raises(ValueError, match="slots per worker"):
        WaitTarget(target_wait_seconds=1.0, percentile=0.9, slots_per_worker=0)


def test_rare_short_queries_leave_the_service_time_unknown_not_zero() -> None:
    # Completions were counted in the window but no sample caught a query running: Little's law has
    # nothing to divide, so the service time is unknown (it used to come out as 0 and raise).
    history = [
        QueueObservation(at=0.0, queued=0, running=0, completed_total=10),
        QueueObservation(at=60.0, queued=0, running=0, completed_total=12),
    ]
    rates = estimate_rates(history, now=60.0, window_seconds=300)
    assert rates is not None
    assert rates.service_seconds is None
