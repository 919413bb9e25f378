"""Kubernetes label selectors (the ``labelSelector`` query parameter), as k8s.io/apimachinery parses them.

Grammar (``pkg/labels/selector.go``)::

    selector     ::= "" | requirement ("," requirement)*
    requirement  ::= ["!"] KEY | KEY ("in" | "notin") "(" [VALUE] ("," [VALUE])* ")"
                   | KEY ("=" | "==" | "!=") [VALUE] | KEY (">" | "<") INTEGER

Whitespace (space, tab, CR, LF) separates tokens and is otherwise ignored. ``in`` and ``notin`` are
keywords only where an operator is expected, so ``in in (notin)`` is a valid selector. Keys are
qualified names (optional DNS-1123 subdomain prefix and ``/``), values are at most 63 characters of
``[A-Za-z0-9_.-]`` starting and ending alphanumeric, or empty. ``x in ()`` means ``x in ("")``.

Differences from upstream, both about hostile input: a NUL character is part of a token here (upstream's
lexer stops reading at it and silently ignores the rest), and input over 10,000 characters is refused.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "EVERYTHING",
    "MAX_SELECTOR_LENGTH",
    "LabelSelectorError",
    "Operator",
    "Requirement",
    "Selector",
    "parse_selector",
    "selector_from_labels",
    "validate_label_key",
    "validate_label_value",
]

MAX_SELECTOR_LENGTH = 10_000


class LabelSelectorError(ValueError):
    """The selector text or a requirement is invalid; the message quotes the offending part."""


class Operator(StrEnum):
    """The operator strings of k8s.io/apimachinery ``pkg/selection``."""

    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GREATER_THAN = "gt"
    LESS_THAN = "lt"


_UNARY = frozenset({Operator.EXISTS, Operator.DOES_NOT_EXIST})
_SET_BASED = frozenset({Operator.IN, Operator.NOT_IN})
_EXACT = frozenset({Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.NOT_EQUALS})
_ORDERED = frozenset({Operator.GREATER_THAN, Operator.LESS_THAN})
_POSITIVE = frozenset({Operator.IN, Operator.EQUALS, Operator.DOUBLE_EQUALS})
_SYMBOL = {
    Operator.EQUALS: "=",
    Operator.DOUBLE_EQUALS: "==",
    Operator.NOT_EQUALS: "!=",
    Operator.IN: " in ",
    Operator.NOT_IN: " notin ",
    Operator.GREATER_THAN: ">",
    Operator.LESS_THAN: "<",
}

_NAME = re.compile(r"(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*")
_NAME_RULE = "alphanumeric characters, '-', '_' or '.', starting and ending with an alphanumeric character"
# Go's strconv.ParseInt(s, 10, 64): optional sign, ASCII digits only, int64 range.
_INTEGER = re.compile(r"[+-]?[0-9]+")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _quote(text: str, limit: int = 64) -> str:
    """Quote user input for a message, shortened so a huge selector cannot make a huge error."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _int64(text: str) -> int | None:
    if not _INTEGER.fullmatch(text):
        return None
    number = int(text)
    return number if _INT64_MIN <= number <= _INT64_MAX else None


def validate_label_key(key: str) -> list[str]:
    """Why ``key`` is not a valid label key (``content.IsLabelKey``); empty when it is valid."""
    errors: list[str] = []
    parts = key.split("/")
    if len(parts) > 2:
        return [
            "a label key is a name with an optional DNS subdomain prefix and '/' (like 'example.com/name')"
        ]
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            if len(prefix) > 253:
                errors.append("prefix part must be no more than 253 characters")
            if not _DNS_SUBDOMAIN.fullmatch(prefix):
                errors.append(
                    "prefix part must be a lowercase RFC 1123 subdomain (lower case alphanumeric characters, "
                    "'-' or '.', starting and ending with an alphanumeric character)"
                )
    if not name:
        errors.append("name part must be non-empty")
    else:
        if len(name) > 63:
            errors.append("name part must be no more than 63 characters")
        if not _NAME.fullmatch(name):
            errors.append(f"name part must consist of {_NAME_RULE}")
    return errors


def validate_label_value(value: str) -> list[str]:
    """Why ``value`` is not a valid label value (``content.IsLabelValue``); empty when it is valid."""
    errors: list[str] = []
    if len(value) > 63:
        errors.append("must be no more than 63 characters")
    if value and not _NAME.fullmatch(value):
        errors.append(f"must be empty or consist of {_NAME_RULE}")
    return errors


@dataclass(frozen=True)
class Requirement:
    """One condition on one label; constructing it validates it like ``labels.NewRequirement``."""

    key: str
    operator: str
    values: tuple[str, ...] = ()
    _bound: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        values = tuple(self.values)
        object.__setattr__(self, "values", values)
        errors = [f"key {_quote(self.key)}: {e}" for e in validate_label_key(self.key)]
        try:
            operator = Operator(self.operator)
        except ValueError:
            allowed = ", ".join(op.value for op in Operator)
            raise LabelSelectorError(
                f"unsupported operator {_quote(str(self.operator))} (supported: {allowed})"
            ) from None
        object.__setattr__(self, "operator", operator)
        if operator in _SET_BASED and not values:
            errors.append(f"key {_quote(self.key)}: 'in' and 'notin' need at least one value")
        elif operator in _EXACT and len(values) != 1:
            errors.append(f"key {_quote(self.key)}: '{_SYMBOL[operator]}' needs exactly one value")
        elif operator in _UNARY and values:
            errors.append(f"key {_quote(self.key)}: exists and does-not-exist take no value")
        elif operator in _ORDERED:
            if len(values) != 1:
                errors.append(f"key {_quote(self.key)}: '>' and '<' need exactly one value")
            for value in values:
                bound = _int64(value)
                if bound is None:
                    errors.append(
                        f"value {_quote(value)} of key {_quote(self.key)}: '>' and '<' need an integer"
                    )
                else:
                    object.__setattr__(self, "_bound", bound)
        for value in values:
            errors.extend(
                f"value {_quote(value)} of key {_quote(self.key)}: {e}" for e in validate_label_value(value)
            )
        if errors:
            raise LabelSelectorError("; ".join(errors))

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Absent labels satisfy only ``!=``, ``notin`` and does-not-exist, as upstream."""
        operator = self.operator
        if operator is Operator.EXISTS:
            return self.key in labels
        if operator is Operator.DOES_NOT_EXIST:
            return self.key not in labels
        value = labels.get(self.key)
        if operator in _POSITIVE:
            return value is not None and value in self.values
        if value is None:
            return operator in (Operator.NOT_IN, Operator.NOT_EQUALS)
        if operator in (Operator.NOT_IN, Operator.NOT_EQUALS):
            return value not in self.values
        number = _int64(value)
        if number is None:
            return False
        return number > self._bound if operator is Operator.GREATER_THAN else number < self._bound

    def __str__(self) -> str:
        operator = self.operator
        if operator is Operator.EXISTS:
            return self.key
        if operator is Operator.DOES_NOT_EXIST:
            return "!" + self.key
        values = self.values[0] if len(self.values) == 1 else ",".join(sorted(self.values))
        if operator in _SET_BASED:
            values = f"({values})"
        return f"{self.key}{_SYMBOL[Operator(operator)]}{values}"


@dataclass(frozen=True)
class Selector:
    """An AND of requirements, kept sorted by key (stably) like upstream's parsed selectors."""

    requirements: tuple[Requirement, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "requirements", tuple(sorted(self.requirements, key=lambda r: r.key)))

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    def is_empty(self) -> bool:
        """True when the selector restricts nothing (it matches every label set)."""
        return not self.requirements

    def equality_labels(self) -> dict[str, str]:
        """Labels the selector pins to one value (``=``, ``==``, one-value ``in``).

        A key pinned to two different values cannot match anything and is left out.
        """
        pinned: dict[str, str] = {}
        conflicting: set[str] = set()
        for r in self.requirements:
            pinning = r.operator in _POSITIVE and len(r.values) == 1
            if pinning and pinned.setdefault(r.key, r.values[0]) != r.values[0]:
                conflicting.add(r.key)
        for key in conflicting:
            del pinned[key]
        return pinned

    def restricted_to(self, keys: Collection[str]) -> Selector:
        """Only the requirements on ``keys`` (a set, or a mapping whose keys count)."""
        return Selector(tuple(r for r in self.requirements if r.key in keys))

    @functools.cached_property
    def text(self) -> str:
        """The selector as a ``labelSelector`` string (kept: reads key their caches by it)."""
        return ",".join(str(r) for r in self.requirements)

    def __str__(self) -> str:
        return self.text


EVERYTHING = Selector()

# One token: a two-character operator, a one-character symbol, or a run of anything else but
# whitespace. Only whitespace is left between matches, which is exactly what the lexer skips.
_TOKEN = re.compile(r"!=|==|[=!(),<>]|[^ \t\r\n=!(),<>]+")
_END = ""  # never a token: tokens are non-empty
_SYMBOLS = frozenset({"!=", "==", "=", "!", "(", ")", ",", "<", ">"})
_OPERATOR_TOKENS = {
    "in": Operator.IN,
    "notin": Operator.NOT_IN,
    "=": Operator.EQUALS,
    "==": Operator.DOUBLE_EQUALS,
    "!=": Operator.NOT_EQUALS,
    ">": Operator.GREATER_THAN,
    "<": Operator.LESS_THAN,
}


def _shown(token: str) -> str:
    return "end of string" if token == _END else _quote(token)


class _Parser:
    """Recursive descent over the token list, following the upstream parser's decisions."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.tokens.append(_END)
        self.position = 0

    def peek(self) -> str:
        return self.tokens[self.position]

    def take(self) -> str:
        token = self.tokens[self.position]
        self.position += 1
        return token

    @staticmethod
    def is_identifier(token: str) -> bool:
        # 'in' and 'notin' are identifiers wherever a value or key may stand.
        return token != _END and token not in _SYMBOLS

    def selector(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        token = self.peek()
        if token == _END:
            return requirements
        while True:
            if not (self.is_identifier(token) or token == "!"):
                raise LabelSelectorError(f"found {_shown(token)}, expected '!', a label key or end of string")
            requirements.append(self.requirement())
            separator = self.take()
            if separator == _END:
                return requirements
            if separator != ",":
                raise LabelSelectorError(f"found {_shown(separator)}, expected ',' or end of string")
            token = self.peek()
            if not (self.is_identifier(token) or token == "!"):
                raise LabelSelectorError(f"found {_shown(token)}, expected a label key after ','")

    def requirement(self) -> Requirement:
        token = self.take()
        negated = token == "!"
        if negated:
            token = self.take()
        if not self.is_identifier(token):
            raise LabelSelectorError(f"found {_shown(token)}, expected a label key")
        key_errors = validate_label_key(token)
        if key_errors:
            raise LabelSelectorError(f"invalid label key {_quote(token)}: {'; '.join(key_errors)}")
        if negated or self.peek() in (_END, ","):
            # After '!' anything but ',' or the end is left for the caller to reject, as upstream does.
            return Requirement(token, Operator.DOES_NOT_EXIST if negated else Operator.EXISTS)
        operator_token = self.take()
        operator = _OPERATOR_TOKENS.get(operator_token)
        if operator is None:
            raise LabelSelectorError(
                f"found {_shown(operator_token)} after key {_quote(token)}, "
                "expected one of: in, notin, =, ==, !=, >, <"
            )
        values = self.value_set() if operator in _SET_BASED else (self.exact_value(),)
        return Requirement(token, operator, values)

    def exact_value(self) -> str:
        if self.peek() in (_END, ","):
            return ""
        token = self.take()
        if not self.is_identifier(token):
            raise LabelSelectorError(f"found {_shown(token)}, expected a value")
        return token

    def value_set(self) -> tuple[str, ...]:
        opening = self.take()
        if opening != "(":
            raise LabelSelectorError(f"found {_shown(opening)}, expected '('")
        values: set[str] = set()
        token = self.peek()
        if token == ")":
            self.take()
            return ("",)
        if not (self.is_identifier(token) or token == ","):
            raise LabelSelectorError(f"found {_shown(token)}, expected ',', ')' or a value")
        # Empty entries ("(,a)", "(a,,b)", "(a,)") stand for the empty value.
        while True:
            token = self.take()
            if self.is_identifier(token):
                values.add(token)
                following = self.peek()
                if following == ")":
                    break
                if following != ",":
                    raise LabelSelectorError(f"found {_shown(following)}, expected ',' or ')'")
            elif token == ",":
                following = self.peek()
                if not values or following in (",", ")"):
                    values.add("")
                if following == ")":
                    break
            else:
                raise LabelSelectorError(f"found {_shown(token)}, expected ',' or a value")
        self.take()
        return tuple(sorted(values))


def parse_selector(text: str) -> Selector:
    """Parse a label selector; the empty string selects everything. Raises LabelSelectorError.

    Nothing is kept here: a caller that parses untrusted text keeps answers in a cache bounded in bytes
    (the API server's), one that parses its own selectors on every pass may keep them as it likes."""
    if len(text) > MAX_SELECTOR_LENGTH:
        raise LabelSelectorError(
            f"label selector is {len(text)} characters long; the limit is {MAX_SELECTOR_LENGTH}"
        )
    if not text:
        return EVERYTHING
    return Selector(tuple(_Parser(_TOKEN.findall(text)).selector()))


def selector_from_labels(labels: Mapping[str, str] | Iterable[tuple[str, str]]) -> Selector:
    """An equality selector for a label set (``SelectorFromValidatedSet``, but validated)."""
    pairs = labels.items() if isinstance(labels, Mapping) else labels
    return Selector(tuple(Requirement(k, Operator.EQUALS, (v,)) for k, v in pairs))
