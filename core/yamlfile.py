"""YAML documents that remember where each value came from, so errors can name file, line and field."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from core.errors import ConfigError

Path_ = tuple[str | int, ...]


@dataclass
class YamlDoc:
    """One YAML document: its data, and the line (1-based) of every key and list item."""

    source: str
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """The line of ``loc`` or of its nearest ancestor that exists in the file."""
        path = tuple(loc)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)


class _Loader(yaml.SafeLoader):
    """SafeLoader that also rejects duplicate keys: a silently ignored key hides a typo."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node)
        if key in mapping:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            lines[(*path, key)] = key_node.start_mark.line + 1
            _walk(value_node, (*path, key), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _walk(item, (*path, index), lines)


def parse_documents(text: str, source: str) -> list[YamlDoc]:
    """Parse every document of a YAML stream; a syntax error names the file and line."""
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
        datas = list(yaml.load_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}" if mark else source
        raise ConfigError(f"{where}: invalid YAML: {exc.problem or exc}") from exc
    docs = []
    for node, data in zip(nodes, datas, strict=True):
        lines: dict[Path_, int] = {}
        if node is not None:
            _walk(node, (), lines)
        docs.append(YamlDoc(source=source, data=data, lines=lines))
    return docs


def load_file(path: Path) -> list[YamlDoc]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    return parse_documents(text, str(path))


def field_path(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def explain(error: ValidationError, doc: YamlDoc | None, prefix: Sequence[str | int] = ()) -> str:
    """One line per problem: ``file:line: field.path: what is wrong``."""
    return "\n".join(_explain_lines(error, doc, tuple(prefix)))


def _explain_lines(error: ValidationError, doc: YamlDoc | None, prefix: Path_) -> Iterator[str]:
    for problem in error.errors(include_url=False):
        loc = tuple(p for p in problem["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        where = doc.source if doc else "configuration"
        if doc is not None:
            line = doc.line_of((*prefix, *loc))
            if line is not None:
                where = f"{where}:{line}"
        message = problem["msg"]
        if problem["type"] == "extra_forbidden":
            message = "unknown field (check its spelling and indentation)"
        elif problem["type"] == "missing":
            message = "required field is missing"
        yield f"{where}: {field_path(loc)}: {message}"
