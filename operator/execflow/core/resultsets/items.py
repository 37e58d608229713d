"""A collected result: the Item, the record it is stored as, and the record's own checksum.

An item is what a ResultSet keeps of one finished Task: its uid (which makes "collected once" a
set membership), name, final phase, the Tool it ran (`source`), its tags, when it finished and
its parsed result. The record is the JSON object written to storage and read back:
`{task, uid, phase, source, tags, completionTime, result, sha256}`, where `sha256` is the hex
sha256 of the record's canonical JSON without `sha256`. Canonical JSON is `json.dumps` with sorted
keys, the separators `,` and `:`, non-ASCII text kept as is, encoded as UTF-8, so a record read
back verifies bit for bit whatever wrote it in between.

Aggregations and transforms read a field of the result by a dotted path (`metrics.f1`);
`field_value` tells a missing field (`MISSING`) apart from one holding null.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from execflow.core.resultsets.errors import ChecksumMismatchError

RECORD_FIELDS = ("task", "uid", "phase", "source", "tags", "completionTime", "result", "sha256")
"""The keys of a record, each always present."""


class Missing(enum.Enum):
    """The type of `MISSING`."""

    MISSING = "missing"


MISSING = Missing.MISSING
"""What `field_value` gives for a path that leads nowhere (a null value is None)."""


@dataclass(frozen=True)
class Item:
    """One collected result. `completion_time` is RFC 3339 text ("" when unknown), `result` any
    JSON value."""

    uid: str
    task: str
    phase: str
    source: str
    tags: tuple[str, ...]
    completion_time: str
    result: Any


def canonical_json(value: Any) -> bytes:
    """`value` as canonical JSON in UTF-8: sorted keys, no spaces, non-ASCII kept.

    Raises ValueError for what JSON cannot carry (NaN, infinities, lone surrogates) and
    TypeError for values that are not JSON at all.
    """
    text = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def record_sha256(record: Mapping[str, Any]) -> str:
    """The hex sha256 of the canonical JSON of `record` without its `sha256` key."""
    content = {key: value for key, value in record.items() if key != "sha256"}
    return hashlib.sha256(canonical_json(content)).hexdigest()


def item_record(item: Item) -> dict[str, Any]:
    """The record of `item`, with its sha256."""
    record: dict[str, Any] = {
        "task": item.task,
        "uid": item.uid,
        "phase": item.phase,
        "source": item.source,
        "tags": list(item.tags),
        "completionTime": item.completion_time,
        "result": item.result,
    }
    record["sha256"] = record_sha256(record)
    return record


def verify_record(record: Any) -> None:
    """Raises ChecksumMismatchError, naming the task, when `record` is not an item record or its
    sha256 is not the sha256 of its content."""
    if not isinstance(record, Mapping):
        raise ChecksumMismatchError(
            f"a stored item is a {type(record).__name__}, not a JSON object"
        )
    task = record.get("task")
    named = f"the item of task {task!r}" if isinstance(task, str) else "a stored item"
    if set(record) != set(RECORD_FIELDS):
        keys = ", ".join(sorted(str(key) for key in record))
        raise ChecksumMismatchError(f"{named} has the keys {keys}, not those of an item record")
    expected = record["sha256"]
    actual = record_sha256(record)
    if actual != expected:
        raise ChecksumMismatchError(
            f"{named} does not match its checksum: its sha256 is {actual}, the record says "
            f"{expected}"
        )


def item_from_record(record: Any) -> Item:
    """The item a record holds, once verified (see `verify_record`)."""
    verify_record(record)
    tags = record["tags"]
    texts = (record["task"], record["uid"], record["phase"], record["source"])
    if not all(isinstance(text, str) for text in (*texts, record["completionTime"])) or not (
        isinstance(tags, list) and all(isinstance(tag, str) for tag in tags)
    ):
        raise ChecksumMismatchError(
            f"the item of task {record['task']!r} has fields of wrong types"
        )
    return Item(
        uid=record["uid"],
        task=record["task"],
        phase=record["phase"],
        source=record["source"],
        tags=tuple(tags),
        completion_time=record["completionTime"],
        result=record["result"],
    )


def field_value(result: Any, path: str | None) -> Any:
    """The value at the dotted `path` inside `result`, or `MISSING` when there is none.

    Each step takes a key of an object, or an index of a list when the step is a decimal number
    (`scores.0`); anything else, or a step past a scalar, is missing. No path is the result.
    """
    if path is None:
        return result
    value = result
    for step in path.split("."):
        if isinstance(value, Mapping):
            if step not in value:
                return MISSING
            value = value[step]
        elif isinstance(value, list) and step.isdecimal() and step.isascii():
            index = int(step)
            if index >= len(value):
                return MISSING
            value = value[index]
        else:
            return MISSING
    return value
