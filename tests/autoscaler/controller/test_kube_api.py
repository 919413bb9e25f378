"""The controller's edge to the Kubernetes client (autoscaler.controller.kube_api)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from kubernetes.client.exceptions import ApiException

from autoscaler.controller.kube_api import Conflict, Gone, KubeError, NotFound, call, call_here, kube_error

ROOT = Path(__file__).resolve().parents[3]


def _refusal(code: int, reason: str, body: object) -> ApiException:
    exc = ApiException(status=code, reason=reason)
    exc.body = body if isinstance(body, (str, bytes)) or body is None else json.dumps(body)
    return exc


STATUS_409 = {
    "kind": "Status",
    "apiVersion": "v1",
    "status": "Failure",
    "message": 'Operation cannot be fulfilled on leases.coordination.k8s.io "x": the object has been modified',
    "reason": "Conflict",
    "details": {"name": "x", "group": "coordination.k8s.io", "kind": "leases"},
    "code": 409,
}


@pytest.mark.parametrize(
    ("code", "kind"),
    [(404, NotFound), (409, Conflict), (410, Gone), (403, KubeError), (500, KubeError), (0, KubeError)],
)
def test_each_code_becomes_its_error(code: int, kind: type[KubeError]) -> None:
    error = kube_error(_refusal(code, "Some Reason", None))
    assert type(error) is kind
    assert error.code == code
    assert error.brief == f"{code} Some Reason"
    assert error.status == {}


def test_the_status_the_server_sent_is_kept() -> None:
    for body in (json.dumps(STATUS_409), json.dumps(STATUS_409).encode()):
        error = kube_error(_refusal(409, "Conflict", body))
        assert isinstance(error, Conflict)
        assert error.status["details"]["kind"] == "leases"
        assert error.message.startswith("Operation cannot be fulfilled")
        assert "the object has been modified" in str(error)


@pytest.mark.parametrize("body", ["", "not json", "[1, 2]", json.dumps({"kind": "Lease"}), b"\xff\xfe"])
def test_a_body_that_is_not_a_status_is_left_out(body: str | bytes) -> None:
    error = kube_error(_refusal(500, "Internal Server Error", body))
    assert error.status == {}
    assert error.message == ""
    assert str(error) == "500 Internal Server Error"


def _refuse() -> int:
    raise _refusal(404, "Not Found", STATUS_409 | {"code": 404, "reason": "NotFound"})


async def test_calls_raise_typed_errors_and_pass_answers_through() -> None:
    with pytest.raises(NotFound) as caught:
        await call(_refuse)
    assert isinstance(caught.value.__cause__, ApiException)
    with pytest.raises(NotFound):
        call_here(_refuse)
    assert await call(lambda a, b: a + b, 2, b=3) == 5
    assert call_here(lambda: "answer") == "answer"


def test_only_the_edge_imports_the_clients_exception() -> None:
    """Past kube_api, controller code sees NotFound/Conflict/Gone, never the client's ApiException."""
    offenders = []
    for path in sorted((ROOT / "autoscaler" / "controller").rglob("*.py")):
        if path.name == "kube_api.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and any(a.name == "ApiException" for a in node.names):
                offenders.append(str(path.relative_to(ROOT)))
            if isinstance(node, ast.Name | ast.Attribute) and getattr(
                node, "id", getattr(node, "attr", "")
            ) == ("ApiException"):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
