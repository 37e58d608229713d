"""YAML documents read as kubectl reads them, with the line and column of every field.

kubectl turns YAML into JSON before anything is sent, so values are read the same way here:
timestamps stay strings, map keys become strings, and a key given twice in one mapping is an
error (kubectl refuses such a file). Each document is composed into nodes first, so every field
path maps to the position of its key (of its item, in a list); a path that is not in the file
(a defaulted field) is placed at its nearest ancestor that is.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from execflow.core.linting.paths import Path

_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"


class _JsonLoader(yaml.SafeLoader):
    """The safe loader without the timestamp type: kubectl keeps `2026-12-01T12:00:00Z` a
    string."""


_JsonLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class Position:
    """1-based line and column in the file."""

    line: int
    column: int


class YamlError(ValueError):
    """The text is not YAML; `position` is where the parser gave up."""

    def __init__(self, message: str, position: Position) -> None:
        super().__init__(message)
        self.position = position


@dataclass(frozen=True)
class DuplicateKey:
    path: Path
    position: Position
    first: Position


@dataclass
class Document:
    """One YAML document: its value (as JSON would carry it) and where each field is written."""

    index: int
    value: Any
    start: Position
    positions: dict[Path, Position] = field(default_factory=dict)
    duplicates: list[DuplicateKey] = field(default_factory=list)

    def position(self, path: Path) -> Position:
        """Where `path` is written, or its nearest written ancestor (the document's start)."""
        for end in range(len(path), 0, -1):
            found = self.positions.get(tuple(path[:end]))
            if found is not None:
                return found
        return self.start


def load(text: str) -> list[Document]:
    """Every non-empty document of `text`, in order; raises YamlError when it is not YAML."""
    loader = _JsonLoader(text)
    documents: list[Document] = []
    try:
        index = 0
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            # Indexed before construction, which merges `<<` keys into the node's own.
            document = Document(index, None, _position(node))
            _index(node, (), document, loader)
            document.value = _json(loader.construct_document(node))
            if document.value is not None:
                documents.append(document)
            index += 1
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = Position(mark.line + 1, mark.column + 1) if mark else Position(1, 1)
        problem = " ".join(part for part in (error.context, error.problem) if part)
        raise YamlError(problem or str(error), where) from None
    except yaml.YAMLError as error:
        raise YamlError(str(error), Position(1, 1)) from None
    finally:
        loader.dispose()
    return documents


def _position(node: yaml.Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


def _index(node: yaml.Node, path: Path, document: Document, loader: _JsonLoader) -> None:
    """Record the position of every field below `node`, and keys given twice."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, Position] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                continue
            key = _key(loader.construct_object(key_node, deep=True))
            where = _position(key_node)
            if key in seen:
                document.duplicates.append(DuplicateKey((*path, key), where, seen[key]))
                continue
            seen[key] = where
            document.positions.setdefault((*path, key), where)
            _index(value_node, (*path, key), document, loader)
    elif isinstance(node, yaml.SequenceNode):
        for number, item in enumerate(node.value):
            document.positions.setdefault((*path, number), _position(item))
            _index(item, (*path, number), document, loader)


def _key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    return str(key)


def _json(value: Any) -> Any:
    """`value` as JSON would carry it: string keys, bytes as base64, sets as lists."""
    if isinstance(value, Mapping):
        return {_key(key): _json(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json(item) for item in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value
