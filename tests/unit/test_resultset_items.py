"""Collected items of execflow.core.resultsets.items: records, their checksum, field paths.

Pure core, no cluster: a record is checked against the canonical JSON it is defined by, verified
when read back, and dotted paths are read out of results with missing told apart from null.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from execflow.api.reasons import Reason
from execflow.core.resultsets.errors import ChecksumMismatchError
from execflow.core.resultsets.items import (
    MISSING,
    RECORD_FIELDS,
    Item,
    canonical_json,
    field_value,
    item_from_record,
    item_record,
    verify_record,
)

ITEM = Item(
    uid="0f5e-uid",
    task="train-model-0",
    phase="Completed",
    source="model-trainer",
    tags=("nightly", "processed"),
    completion_time="2024-05-01T12:00:00Z",
    result={"score": 0.91, "metrics": {"f1": 0.8, "none": None}, "name": "zürich", "rows": [3, 4]},
)


def test_a_record_holds_every_field_and_the_sha256_of_the_rest() -> None:
    record = item_record(ITEM)

    assert tuple(record) == RECORD_FIELDS
    content = {key: value for key, value in record.items() if key != "sha256"}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert record["sha256"] == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert record["completionTime"] == "2024-05-01T12:00:00Z"
    assert record["tags"] == ["nightly", "processed"]


def test_canonical_json_sorts_keys_keeps_non_ascii_and_has_no_spaces() -> None:
    assert canonical_json({"b": 1, "a": "zürich"}) == '{"a":"zürich","b":1}'.encode()


def test_canonical_json_refuses_what_json_cannot_carry() -> None:
    with pytest.raises(ValueError):
        canonical_json({"score": float("nan")})


def test_a_record_read_back_gives_the_item() -> None:
    record = json.loads(canonical_json(item_record(ITEM)))

    assert item_from_record(record) == ITEM


def test_an_altered_record_fails_its_checksum_naming_the_task() -> None:
    record = item_record(ITEM)
    record["result"] = {**ITEM.result, "score": 0.92}

    with pytest.raises(ChecksumMismatchError, match="task 'train-model-0'") as raised:
        verify_record(record)

    assert raised.value.reason is Reason.CHECKSUM_MISMATCH


@pytest.mark.parametrize(
    ("record", "words"),
    [
        ([1, 2], "a list, not a JSON object"),
        ({"task": "t"}, "has the keys task, not those of an item record"),
    ],
)
def test_what_is_not_a_record_fails_as_a_checksum_mismatch(record: Any, words: str) -> None:
    with pytest.raises(ChecksumMismatchError, match=words):
        verify_record(record)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("score", 0.91),
        ("metrics.f1", 0.8),
        ("metrics.none", None),
        ("rows.1", 4),
        ("rows.2", MISSING),
        ("metrics.f2", MISSING),
        ("score.value", MISSING),
        ("rows.x", MISSING),
        (None, ITEM.result),
    ],
)
def test_a_field_path_reads_keys_and_list_indexes(path: str | None, expected: Any) -> None:
    assert field_value(ITEM.result, path) == expected


def test_a_null_field_is_present_and_a_missing_one_is_not() -> None:
    assert field_value({"a": None}, "a") is None
    assert field_value({"a": None}, "b") is MISSING
    assert field_value({"a": None}, "a.b") is MISSING
