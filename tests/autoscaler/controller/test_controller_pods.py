"""The actuators' typed view of a pod (autoscaler.controller.pods)."""

from __future__ import annotations

from typing import Any

import pytest

from autoscaler.controller.pods import pod_view


def _pod(**status: Any) -> dict[str, Any]:
    meta = {"name": "w-1", "annotations": {"a": "1"}, **status.pop("meta", {})}
    return {
        "metadata": meta,
        "spec": {
            "containers": [
                {"name": "side", "ports": [{"name": "http", "containerPort": 9000}, {"containerPort": 1}]},
                {"name": "trino", "ports": [{"name": "http", "containerPort": 8081}]},
            ]
        },
        "status": {
            "phase": "Running",
            "podIP": "10.0.0.7",
            "conditions": [{"type": "Ready", "status": "True"}],
        }
        | status,
    }


def test_a_running_ready_pod() -> None:
    view = pod_view(_pod())
    assert (view.name, view.ip, view.phase, view.ready, view.deleting) == (
        "w-1",
        "10.0.0.7",
        "Running",
        True,
        False,
    )
    assert view.running
    assert view.in_play
    assert view.annotations == {"a": "1"}
    # A later container naming the same port overrides an earlier one; unnamed ports are left out.
    assert view.ports == {"http": 8081}


@pytest.mark.parametrize(
    ("status", "running", "ready", "in_play"),
    [
        ({"phase": "Pending", "podIP": None, "conditions": []}, False, False, True),
        ({"conditions": [{"type": "Ready", "status": "False"}]}, True, False, True),
        ({"phase": "Running", "podIP": ""}, False, True, True),
        ({"phase": "Succeeded"}, False, True, False),
        ({"phase": "Failed"}, False, True, False),
        ({"meta": {"deletionTimestamp": "2026-12-07T00:00:00Z"}}, True, True, False),
    ],
)
def test_states(status: dict[str, Any], running: bool, ready: bool, in_play: bool) -> None:
    view = pod_view(_pod(**status))
    assert (view.running, view.ready, view.in_play) == (running, ready, in_play)


def test_an_empty_document_reads_as_nothing() -> None:
    view = pod_view({})
    assert (view.name, view.ip, view.phase, view.ready, view.deleting, view.running) == (
        "",
        "",
        "",
        False,
        False,
        False,
    )
    assert view.annotations == {}
    assert view.ports == {}
