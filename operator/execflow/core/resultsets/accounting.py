"""Counting stored segments into a ResultSet's status: count, aggregations, transforms, checksum.

Each stored segment is counted once, in order: its items are folded into the built-in
aggregations' running states and the reduce transforms' `acc` (both kept in
`status.accumulators`, so the next segment needs nothing else), appended to the filter, map and
group outputs while those are small (`INLINE_BYTES` of JSON each; past that an output is
`{count, ref}` and `execflow results get` computes it from storage), and listed among the newest
items (`ITEMS_SHOWN`); the segment's sha256 is chained into `status.checksum`. Custom (whole-list)
aggregations and transforms are evaluated by `finish`, when the set is Ready.

Every transform output in status is an object: `{count, value}` while it is inline,
`{count, ref}` once it is not (a group key can be any string, so the two never mix).
"""

from __future__ import annotations

import copy
import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from execflow.api.result_set import ResultSetTemplate, TransformType
from execflow.api.result_set_status import ItemSummary, ResultSetStatus
from execflow.api.timestamps import parse_time
from execflow.core.resultsets import aggregations
from execflow.core.resultsets.codec import CHAIN_START, chain_checksum
from execflow.core.resultsets.errors import TooLargeError
from execflow.core.resultsets.items import canonical_json, item_from_record
from execflow.core.resultsets.ledger import SegmentEntry
from execflow.core.resultsets.transforms import (
    MAX_WHOLE_LIST_RESULTS,
    ItemOutputs,
    Programs,
    custom_aggregation_values,
    evaluate_whole_list,
    initial_accumulators,
    item_outputs,
)

ITEMS_SHOWN = 20
"""The newest items listed in status.items."""
INLINE_BYTES = 4 * 1024
"""Largest transform output (JSON) shown in status; larger ones are referenced."""


def reference(name: str, transform: str) -> str:
    """How a user reads a transform output that is too large for the status."""
    return f"execflow results get {name} --transform {transform}"


def needs_recount(status: ResultSetStatus, generation: int) -> bool:
    """Whether what is counted was computed for another spec (it changed): recount from storage."""
    return status.count > 0 and status.accumulators.get("generation") != generation


def emptied(status: ResultSetStatus) -> ResultSetStatus:
    """The status with nothing counted, for a recount of everything stored."""
    return status.model_copy(
        update={
            "count": 0,
            "aggregations": {},
            "transforms": {},
            "accumulators": {},
            "items": [],
            "checksum": "",
            "storage": status.storage.model_copy(update={"segments": 0, "bytes": 0}),
        }
    )


def count_into(
    status: ResultSetStatus,
    spec: ResultSetTemplate,
    programs: Programs,
    entries: Sequence[SegmentEntry],
    *,
    name: str,
    generation: int,
    now: datetime.datetime,
) -> ResultSetStatus:
    """`status` with `entries` (the next stored segments, in order) counted, for the spec of
    `generation`."""
    if not entries:
        return status
    states = aggregations.load_states(
        spec.aggregations, status.accumulators.get("aggregations") or {}
    ).states
    reduce = {**initial_accumulators(programs), **(status.accumulators.get("reduce") or {})}
    # A deep copy: the status may share its lists with the watched object it was parsed from.
    outputs = copy.deepcopy(status.transforms)
    for program in programs.transforms:
        if program.kind in (TransformType.FILTER, TransformType.MAP):
            outputs.setdefault(program.name, {"count": 0, "value": []})
        elif program.kind == TransformType.GROUP:
            outputs.setdefault(program.name, {"count": 0, "value": {}})
    items = list(status.items)
    count = status.count
    checksum = status.checksum or CHAIN_START
    segments, stored_bytes = status.storage.segments, status.storage.bytes
    for entry in entries:
        states = aggregations.fold_many(states, map(item_from_record, entry.records))
        for record in entry.records:
            contribution = item_outputs(programs, reduce, record)
            reduce.update(contribution.accumulators)
            _grow(outputs, contribution, record, name)
            items.append(_summary(record, entry.location))
            count += 1
        checksum = chain_checksum(checksum, entry.sha256)
        segments, stored_bytes = entry.number + 1, stored_bytes + entry.size
    for key, acc in reduce.items():
        outputs[key] = {"count": count, "value": acc}
    built_in = aggregations.values(states)
    return status.model_copy(
        update={
            "count": count,
            "aggregations": {**status.aggregations, **built_in},
            "transforms": outputs,
            "accumulators": {
                "generation": generation,
                "aggregations": aggregations.states_to_json(states),
                "reduce": reduce,
            },
            "items": items[-ITEMS_SHOWN:],
            "checksum": checksum,
            "storage": status.storage.model_copy(
                update={"segments": segments, "bytes": stored_bytes}
            ),
            "last_collected_at": now,
        }
    )


def finish(
    status: ResultSetStatus, programs: Programs, records: Sequence[Mapping[str, Any]] | None
) -> ResultSetStatus:
    """`status` with the custom (whole-list) aggregations and transforms evaluated over every
    record; `records` is None once the set holds more than a whole-list expression may read."""
    customs = [p for p in programs.transforms if p.kind == TransformType.CUSTOM]
    if not programs.aggregations and not customs:
        return status
    if records is None:
        raise TooLargeError(
            f"custom aggregations and transforms read the whole list of results, and there are "
            f"{status.count}: more than the {MAX_WHOLE_LIST_RESULTS} they may read; use "
            "built-in aggregations or per-result transforms, which have no limit",
            limit=MAX_WHOLE_LIST_RESULTS,
            count=status.count,
        )
    values = custom_aggregation_values(programs, records)
    outputs = dict(status.transforms)
    for program in customs:
        outputs[program.name] = {
            "count": len(records),
            "value": evaluate_whole_list(program, records),
        }
    return status.model_copy(
        update={"aggregations": {**status.aggregations, **values}, "transforms": outputs}
    )


def _grow(
    outputs: dict[str, dict[str, Any]],
    contribution: ItemOutputs,
    record: Mapping[str, Any],
    name: str,
) -> None:
    for key, keep in contribution.kept.items():
        if keep:
            _append(outputs, key, name, lambda value: value.append(dict(record)))
    for key, mapped in contribution.mapped.items():
        _append(outputs, key, name, lambda value, mapped=mapped: value.append(mapped))
    for key, group in contribution.groups.items():
        _append(
            outputs,
            key,
            name,
            lambda value, group=group: value.setdefault(group, []).append(dict(record)),
        )


def _append(outputs: dict[str, dict[str, Any]], key: str, name: str, add: Any) -> None:
    output = outputs[key]
    output["count"] = int(output.get("count", 0)) + 1
    if "value" not in output:
        return
    add(output["value"])
    if len(canonical_json(output["value"])) > INLINE_BYTES:
        del output["value"]
        output["ref"] = reference(name, key)


def _summary(record: Mapping[str, Any], location: str) -> ItemSummary:
    return ItemSummary(
        task=str(record.get("task", "")),
        phase=str(record.get("phase", "")),
        source=str(record.get("source", "")),
        tags=list(record.get("tags") or []),
        completion_time=parse_time(record.get("completionTime")),
        size=len(canonical_json(record)),
        sha256=str(record.get("sha256", "")),
        ref=location,
    )
