"""Label and field selectors as the sandbox's API server applies them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.selectors import EVERYTHING, LabelSelectorError, Requirement, Selector, parse_selector
from lab.sandbox.kube_errors import bad_request

Obj = dict[str, Any]

_EXPRESSION_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


def from_label_selector(doc: Mapping[str, Any] | None) -> Selector:
    """``metav1.LabelSelectorAsSelector``: matchLabels and matchExpressions ANDed (empty: everything)."""
    if not doc:
        return EVERYTHING
    requirements = [Requirement(k, "=", (str(v),)) for k, v in (doc.get("matchLabels") or {}).items()]
    for expr in doc.get("matchExpressions") or []:
        operator = _EXPRESSION_OPERATORS.get(str(expr.get("operator")))
        if operator is None:
            raise LabelSelectorError(f"{expr.get('operator')!r} is not a valid label selector operator")
        values = tuple(str(v) for v in expr.get("values") or ())
        requirements.append(Requirement(str(expr.get("key")), operator, values))
    return Selector(tuple(requirements))


def selector_string(doc: Mapping[str, Any] | None) -> str:
    """The selector in the text form ``Scale.status.selector`` and ``kubectl`` use."""
    return str(from_label_selector(doc))


def labels_of(obj: Mapping[str, Any]) -> dict[str, str]:
    meta = obj.get("metadata") or {}
    return dict(meta.get("labels") or {})


@dataclass(frozen=True)
class FieldTerm:
    path: str
    equal: bool
    value: str

    def matches(self, obj: Mapping[str, Any]) -> bool:
        current: Any = obj
        for part in self.path.split("."):
            current = current.get(part) if isinstance(current, dict) else None
        actual = (
            "" if current is None else str(current).lower() if isinstance(current, bool) else str(current)
        )
        return (actual == self.value) == self.equal


def parse_fields(text: str) -> tuple[FieldTerm, ...]:
    out = []
    for term in filter(None, (t.strip() for t in text.split(","))):
        for op in ("!=", "==", "="):
            path, sep, value = term.partition(op)
            if sep:
                out.append(FieldTerm(path.strip(), op != "!=", value.strip()))
                break
        else:
            raise bad_request(f'invalid field selector: "{term}": no operator')
    return tuple(out)


def parse_labels(text: str) -> Selector:
    try:
        return parse_selector(text)
    except LabelSelectorError as exc:
        raise bad_request(f"unable to parse requirement: {exc}") from exc


@dataclass(frozen=True)
class Filter:
    """Which objects of a type a list or watch request selects."""

    namespace: str | None = None
    labels: Selector = EVERYTHING
    fields: tuple[FieldTerm, ...] = ()

    def matches(self, obj: Mapping[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        if self.namespace is not None and meta.get("namespace", "") != self.namespace:
            return False
        return self.labels.matches(meta.get("labels") or {}) and all(f.matches(obj) for f in self.fields)


def request_filter(namespace: str | None, query: Mapping[str, str]) -> Filter:
    return Filter(
        namespace=namespace,
        labels=parse_labels(query.get("labelSelector", "")),
        fields=parse_fields(query.get("fieldSelector", "")),
    )
