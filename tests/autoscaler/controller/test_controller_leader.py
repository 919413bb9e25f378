"""Leader election decisions as data: what a candidate does with the Lease it read, and when it may act."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from autoscaler.controller.leader import (
    LeaseRecord,
    Observed,
    check_durations,
    decide,
    holds,
    lease_body,
    micro_time,
    observe,
    record_of,
    released,
)

ME = "me"
WALL = datetime(2026, 11, 23, 12, 0, 0, 250000, tzinfo=UTC)
EARLIER = WALL - timedelta(minutes=5)


def held(holder: str, *, seconds: int = 15, renew: datetime = EARLIER) -> LeaseRecord:
    return LeaseRecord(holder, seconds, EARLIER, renew, 3)


# What we write when we take the Lease from someone: new term, one more transition.
TAKEN = LeaseRecord(ME, 15, WALL, WALL, 4)

# (observed, local now, expected action, expected record to write)
DECIDE_CASES = {
    # No Lease yet: create it, first term.
    "fresh": (Observed(None, "", 100.0), 100.0, "create", LeaseRecord(ME, 15, WALL, WALL, 0)),
    # Another holder, seen unchanged for 14.9 s of a 15 s lease: wait.
    "held by other and fresh": (Observed(held("other"), "7", 100.0), 114.9, "wait", None),
    # Unchanged for the whole lease by our own clock: take it.
    "expired by local observation": (Observed(held("other"), "7", 100.0), 115.0, "acquire", TAKEN),
    # The remote renewTime is an hour old but we have only just seen it: skew-safe, so wait.
    "stale remote time, fresh sighting": (
        Observed(held("other", renew=WALL - timedelta(hours=1)), "7", 100.0),
        101.0,
        "wait",
        None,
    ),
    # The remote renewTime is in our future (a fast clock there), yet unchanged for a lease: take it.
    "future remote time, old sighting": (
        Observed(held("other", renew=WALL + timedelta(hours=1)), "7", 100.0),
        116.0,
        "acquire",
        TAKEN,
    ),
    # The record's own duration counts: a holder configured with 40 s is still alive after 30 s.
    "holder's longer duration": (Observed(held("other", seconds=40), "7", 100.0), 130.0, "wait", None),
    # A record without a duration is read as our own duration, not as already expired.
    "no duration in the record": (Observed(held("other", seconds=0), "7", 100.0), 110.0, "wait", None),
    # A released Lease (no holder) is taken at once.
    "released": (Observed(held("", seconds=1), "8", 100.0), 100.0, "acquire", TAKEN),
    # Our own record: renew, keeping acquireTime and the transition count.
    "own renew": (Observed(held(ME), "9", 100.0), 100.5, "renew", LeaseRecord(ME, 15, EARLIER, WALL, 3)),
    # Our own record even long after our last sighting (a restart with the same identity): renew.
    "own record, long unseen": (
        Observed(held(ME), "9", 100.0),
        500.0,
        "renew",
        LeaseRecord(ME, 15, EARLIER, WALL, 3),
    ),
}


@pytest.mark.parametrize("case", DECIDE_CASES)
def test_decide(case: str) -> None:
    observed, now, action, record = DECIDE_CASES[case]
    decision = decide(observed, ME, now, WALL, 15)
    assert (decision.action, decision.record) == (action, record), decision.reason


# (previous, record read, version read, expected `since` at now=50)
OBSERVE_CASES = {
    # The first read starts the clock.
    "first read": (None, held("other"), "7", 50.0),
    # Same record, same version: the clock keeps running from the first sighting.
    "unchanged": (Observed(held("other"), "7", 10.0), held("other"), "7", 10.0),
    # The holder renewed: the clock restarts.
    "renewed": (Observed(held("other"), "7", 10.0), held("other", renew=WALL), "8", 50.0),
    # A new version with an identical record (a wall clock stepped back) still counts as a write.
    "rewritten identically": (Observed(held("other"), "7", 10.0), held("other"), "8", 50.0),
    # Still no Lease: the clock is irrelevant but stable.
    "still absent": (Observed(None, "", 10.0), None, "", 10.0),
    # The Lease appeared.
    "created": (Observed(None, "", 10.0), held("other"), "1", 50.0),
}


@pytest.mark.parametrize("case", OBSERVE_CASES)
def test_observe(case: str) -> None:
    previous, record, version, since = OBSERVE_CASES[case]
    seen = observe(previous, record, version, 50.0)
    assert (seen.record, seen.resource_version, seen.since) == (record, version, since)


# (last successful write started at, now, may act) with renew_deadline 10
HOLDS_CASES = {
    "never renewed": (None, 5.0, False),
    "just renewed": (100.0, 100.0, True),
    "within the deadline": (100.0, 109.99, True),
    # Renewals failed until the deadline: stop acting, before any standby's lease (> deadline) can run out.
    "renew failure past the deadline": (100.0, 110.0, False),
    "long after": (100.0, 500.0, False),
    # A clock that reads before the write started is not trusted.
    "clock behind the write": (100.0, 99.0, False),
}


@pytest.mark.parametrize("case", HOLDS_CASES)
def test_holds(case: str) -> None:
    renewed_at, now, expected = HOLDS_CASES[case]
    assert holds(renewed_at, now, 10.0) is expected


def test_release_empties_the_holder_and_keeps_the_count() -> None:
    assert released(held(ME), WALL) == LeaseRecord("", 1, WALL, WALL, 3)


def test_released_record_is_taken_by_the_next_candidate_at_once() -> None:
    decision = decide(Observed(released(held(ME), WALL), "9", 100.0), "other", 100.0, WALL, 15)
    assert (decision.action, decision.record) == ("acquire", LeaseRecord("other", 15, WALL, WALL, 4))


# (lease_seconds, renew_deadline, retry_period, accepted)
DURATION_CASES = {
    "client-go defaults": (15, 10.0, 2.0, True),
    "test durations": (2, 1.5, 0.2, True),
    "deadline not under the lease": (10, 10.0, 2.0, False),
    "deadline within jittered retry": (15, 2.4, 2.0, False),
    "zero lease": (0, -1.0, -1.0, False),
    "zero retry": (15, 10.0, 0.0, False),
}


@pytest.mark.parametrize("case", DURATION_CASES)
def test_check_durations(case: str) -> None:
    lease, deadline, retry, accepted = DURATION_CASES[case]
    if accepted:
        check_durations(lease, deadline, retry)
    else:
        with pytest.raises(ValueError, match="must be"):
            check_durations(lease, deadline, retry)


def test_lease_body_round_trips_and_keeps_metadata() -> None:
    record = LeaseRecord(ME, 15, EARLIER, WALL, 3)
    metadata = {"name": "old", "resourceVersion": "41", "labels": {"app": "queuescale"}}
    body = lease_body("ops", "queuescale-controller", record, metadata)
    assert body["metadata"] == {
        "name": "queuescale-controller",
        "namespace": "ops",
        "resourceVersion": "41",
        "labels": {"app": "queuescale"},
    }
    assert body["spec"] == {
        "holderIdentity": ME,
        "leaseDurationSeconds": 15,
        "leaseTransitions": 3,
        "acquireTime": "2026-11-23T11:55:00.250000Z",
        "renewTime": "2026-11-23T12:00:00.250000Z",
    }
    assert record_of(body) == record


def test_create_body_has_no_resource_version() -> None:
    body = lease_body("ops", "lock", LeaseRecord(ME, 15, WALL, WALL, 0))
    assert body["metadata"] == {"name": "lock", "namespace": "ops"}


def test_micro_time_always_has_six_digits() -> None:
    # The API server's MicroTime parser needs the fraction; a whole second is written one microsecond on.
    whole = datetime(2026, 1, 1, tzinfo=UTC)
    assert micro_time(whole) == "2026-01-01T00:00:00.000000Z"
    body = lease_body("ops", "lock", LeaseRecord(ME, 15, whole, whole, 0))
    assert body["spec"]["renewTime"] == "2026-01-01T00:00:00.000001Z"


def test_record_of_a_lease_without_spec_fields() -> None:
    assert record_of({"metadata": {"name": "lock"}}) == LeaseRecord("", 0, None, None, 0)
    assert record_of({"spec": {"holderIdentity": "x", "renewTime": "not a time"}}) == LeaseRecord(
        "x", 0, None, None, 0
    )
