"""Reading ScalingPolicy documents: files, custom resources, and the HPA behavior they carry.

The models live in :mod:`autoscaler.policy.models`; this module turns YAML into them with errors a person can
act on (``file:line: spec.metrics[1].external.target.averageValue: <plain words>``), and hands the engine the
behavior in the shape of :mod:`autoscaler.decision.hpa`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

from autoscaler.policy.models import (
    API_VERSION,
    KIND,
    PATTERN_RULES,
    ScalingPolicy,
    ScalingPolicySpec,
)
from core.errors import ConfigError
from core.yamlfile import YamlDoc, explain, parse_documents

__all__ = [
    "API_VERSION",
    "KIND",
    "ScalingPolicy",
    "ScalingPolicySpec",
    "from_resource",
    "load_policies",
    "parse_policies",
    "plain_error",
]

_TYPE_WORDS = {
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string (put it in quotes)",
    "dict_type": "must be a mapping of keys to values",
    "model_type": "must be a mapping of fields (indented `key: value` lines)",
    "model_attributes_type": "must be a mapping of fields (indented `key: value` lines)",
    "list_type": "must be a list (lines starting with '- ')",
    "datetime_type": "must be a date and time (RFC 3339, e.g. 2024-01-31T08:00:00Z)",
    "datetime_parsing": "must be a date and time (RFC 3339, e.g. 2024-01-31T08:00:00Z)",
    "datetime_from_date_parsing": "must be a date and time (RFC 3339, e.g. 2024-01-31T08:00:00Z)",
    "extra_forbidden": "unknown field (check its spelling and indentation)",
    "missing": "required field is missing",
}
# Types whose message is clearer with the offending value shown.
_SHOW_INPUT = {"int_type", "int_parsing", "int_from_float", "float_type", "float_parsing", "bool_type"}
_SHOW_INPUT |= {"bool_parsing", "string_type", "literal_error"}


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, int | float):
        return repr(value)
    return "a mapping" if isinstance(value, dict) else "a list" if isinstance(value, list) else "a value"


def _words(problem: ErrorDetails) -> str:
    kind = problem["type"]
    ctx: dict[str, Any] = dict(problem.get("ctx") or {})
    if kind in _TYPE_WORDS:
        text = _TYPE_WORDS[kind]
    elif kind == "literal_error":
        text = f"must be {ctx['expected']}"
    elif kind == "greater_than":
        text = f"must be greater than {ctx['gt']}"
    elif kind == "greater_than_equal":
        text = f"must be at least {ctx['ge']}"
    elif kind == "less_than":
        text = f"must be less than {ctx['lt']}"
    elif kind == "less_than_equal":
        text = f"must be at most {ctx['le']}"
    elif kind == "too_short":
        text = f"must have at least {ctx['min_length']} item{'s' if ctx['min_length'] != 1 else ''}"
    elif kind == "string_too_short":
        text = "must not be empty" if ctx["min_length"] == 1 else f"needs {ctx['min_length']}+ characters"
    elif kind == "string_too_long":
        text = f"must be at most {ctx['max_length']} characters"
    elif kind == "string_pattern_mismatch":
        pattern = str(ctx["pattern"])
        text = PATTERN_RULES.get(pattern, f"must match the pattern {pattern}")
    else:
        text = problem["msg"]
    if kind in _SHOW_INPUT:
        text = f"{text}, not {_shown(problem['input'])}"
    return text


def plain_error(error: ValidationError) -> ValidationError:
    """The same problems, each in plain words, with pydantic's internal location parts removed."""
    details: list[InitErrorDetails] = []
    for problem in error.errors(include_url=False):
        loc = tuple(p for p in problem["loc"] if p != "[key]")
        message = _words(problem).replace("{", "{{").replace("}", "}}")
        details.append(
            InitErrorDetails(
                type=PydanticCustomError(problem["type"], message), loc=loc, input=problem["input"]
            )
        )
    return ValidationError.from_exception_data(error.title, details)


def parse_policies(text: str, source: str) -> list[tuple[ScalingPolicy, YamlDoc]]:
    """Every ScalingPolicy of a YAML stream; empty documents are skipped.

    Raises ConfigError with one line per problem over all documents.
    """
    docs = [doc for doc in parse_documents(text, source) if doc.data is not None]
    if not docs:
        raise ConfigError(f"{source}: no ScalingPolicy document in the file")
    found: list[tuple[ScalingPolicy, YamlDoc]] = []
    failures: list[str] = []
    for doc in docs:
        try:
            found.append((ScalingPolicy.model_validate(doc.data), doc))
        except ValidationError as exc:
            # In file order, so the lines read top to bottom like the document.
            lines = explain(plain_error(exc), doc).splitlines()
            failures.extend(sorted(lines, key=_line_number))
    if failures:
        raise ConfigError("\n".join(failures))
    return found


def _line_number(explained: str) -> int:
    where = explained.split(": ", 1)[0]
    number = where.rsplit(":", 1)[-1]
    return int(number) if number.isdigit() else 0


def load_policies(path: Path | str) -> list[tuple[ScalingPolicy, YamlDoc]]:
    """Every ScalingPolicy of a file (several documents allowed); ConfigError names file, line and field."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: cannot read: not UTF-8 text") from exc
    return parse_policies(text, str(path))


_META_KEYS = ("name", "namespace", "labels", "annotations")


def from_resource(obj: Mapping[str, Any]) -> ScalingPolicy:
    """A policy from a custom resource read from the API server, whose metadata has server-set fields."""
    meta = obj.get("metadata") or {}
    kept = {key: meta[key] for key in _META_KEYS if key in meta}
    return ScalingPolicy.model_validate({**obj, "metadata": kept})
