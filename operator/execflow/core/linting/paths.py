"""Field paths as the API server writes them, built from a schema so map keys look like map keys.

A path is a tuple of segments: a property name (`str`), a list index (`int`) or a map key
(`MapKey`, a `str`). The API server writes them `spec.resources.requests[memory]` and
`spec.steps[0].name`; a `MapKey` compares equal to the plain string, so a path can be looked up
in a table keyed by the plain segments of a YAML document.

Checks that report a path only as text (a pydantic model's error, the admission webhook's
message) are read back into segments with `parse`, which accepts both `steps[0]` and pydantic's
`steps.0`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

JsonSchema = Mapping[str, Any]


class MapKey(str):
    """A key of a map (an object schema with additionalProperties), written `[key]`."""

    __slots__ = ()


Segment = str | int
Path = tuple[Segment, ...]

_TOKEN = re.compile(r"\.([A-Za-z0-9_$-]+)|\[(\d+)\]|\['([^']*)'\]|\[([^\]'\s]+)\]")
_LEADING_PATH = re.compile(
    r"^([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_$-]+|\[\d+\]|\['[^']*'\]|\[[^\]'\s]+\])*): "
)


def render(path: Iterable[Segment]) -> str:
    """`path` as the API server writes it: `spec.steps[0].tasks[1].name`, `requests[memory]`."""
    text = ""
    for segment in path:
        if isinstance(segment, int | MapKey):
            text += f"[{segment}]"
        else:
            text += f".{segment}" if text else segment
    return text


def typed(schema: JsonSchema | None, path: Iterable[Segment]) -> Path:
    """`path` with each string segment that is a map key (per `schema`) made a `MapKey`."""
    result: list[Segment] = []
    for segment in path:
        if isinstance(segment, int):
            result.append(segment)
            schema = child(schema, segment)
            continue
        properties = schema.get("properties") if schema else None
        if properties is None and schema is not None and _is_map(schema):
            result.append(MapKey(segment))
        else:
            result.append(str(segment))
        schema = child(schema, segment)
    return tuple(result)


def child(schema: JsonSchema | None, segment: Segment) -> JsonSchema | None:
    """The schema of the value at `segment` below a value of `schema`; None when unknown."""
    if schema is None:
        return None
    if isinstance(segment, int):
        items = schema.get("items")
        return items if isinstance(items, Mapping) else None
    properties = schema.get("properties")
    if isinstance(properties, Mapping) and segment in properties:
        found: JsonSchema = properties[segment]
        return found
    additional = schema.get("additionalProperties")
    return additional if isinstance(additional, Mapping) else None


def _is_map(schema: JsonSchema) -> bool:
    return isinstance(schema.get("additionalProperties"), Mapping)


def parse(text: str) -> Path | None:
    """The segments of a path written as text (`spec.steps[0].when`, `steps.0.name`,
    `.spec.finally`, `['a.b']`), or None when it is not one."""
    text = text.strip()
    if not text:
        return ()
    if not text.startswith((".", "[")):
        text = "." + text
    segments: list[Segment] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            return None
        name, index, quoted, bare = match.groups()
        if index is not None:
            segments.append(int(index))
        elif name is not None:
            segments.append(int(name) if name.isdigit() else name)
        else:
            segments.append(MapKey(quoted if quoted is not None else bare))
        position = match.end()
    return tuple(segments)


def split_leading(message: str) -> tuple[Path | None, str]:
    """A message that starts with a field path (`steps[1].dependsOn: 'x' is ...`): the path and
    the rest; (None, message) when it does not start with one."""
    match = _LEADING_PATH.match(message)
    if match is None:
        return None, message
    parsed = parse(match.group(1))
    if parsed is None:
        return None, message
    return parsed, message[match.end() :]


def exists(value: Any, path: Sequence[Segment]) -> bool:
    """Whether `value` has something at `path`."""
    for segment in path:
        in_list = isinstance(segment, int) and isinstance(value, list) and 0 <= segment < len(value)
        in_map = isinstance(segment, str) and isinstance(value, Mapping) and segment in value
        if not (in_list or in_map):
            return False
        value = value[segment]
    return True


def covers(outer: Sequence[Segment], inner: Sequence[Segment]) -> bool:
    """Whether one of the paths is a prefix of the other (they are about the same field)."""
    shorter = min(len(outer), len(inner))
    return tuple(outer[:shorter]) == tuple(inner[:shorter])
