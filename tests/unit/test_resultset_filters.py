"""The ResultSet filter of execflow.core.resultsets.filters, against its definition.

Pure core, no cluster: examples of each condition, then hypothesis compares the filter with a
plain reference predicate written from the definition, over random filters and items (phases,
tags, sources, completion times written with any offset, and unreadable ones).
"""

from __future__ import annotations

import datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from execflow.api.result_set import ResultFilter
from execflow.api.task import TaskPhase
from execflow.core.resultsets.filters import passes
from execflow.core.resultsets.items import Item

FINAL = ["Completed", "Failed", "Cancelled", "Timeout"]
EPOCH = datetime.datetime(2024, 5, 1, tzinfo=datetime.UTC)


def item(**changes: Any) -> Item:
    fields: dict[str, Any] = {
        "uid": "u",
        "task": "t",
        "phase": "Completed",
        "source": "trainer",
        "tags": ("nightly", "processed"),
        "completion_time": "2024-05-01T12:00:00Z",
        "result": {},
    }
    fields.update(changes)
    return Item(**fields)


def test_the_default_filter_takes_completed_tasks_only() -> None:
    default = ResultFilter()

    assert passes(default, item())
    assert not passes(default, item(phase="Failed"))


def test_every_tag_of_the_filter_must_be_on_the_item() -> None:
    wanted = ResultFilter(tags=["processed", "nightly"])

    assert passes(wanted, item(tags=("processed", "nightly", "extra")))
    assert not passes(wanted, item(tags=("processed",)))


def test_sources_filter_only_when_given() -> None:
    assert passes(ResultFilter(sources=[]), item(source=""))
    assert passes(ResultFilter(sources=["a", "trainer"]), item())
    assert not passes(ResultFilter(sources=["a"]), item())


def test_the_time_range_includes_since_and_excludes_until() -> None:
    noon = datetime.datetime(2024, 5, 1, 12, tzinfo=datetime.UTC)
    window = ResultFilter(since=noon, until=noon + datetime.timedelta(hours=1))

    assert passes(window, item(completion_time="2024-05-01T12:00:00Z"))
    assert passes(window, item(completion_time="2024-05-01T14:59:59.999999+02:00"))
    assert not passes(window, item(completion_time="2024-05-01T13:00:00Z"))
    assert not passes(window, item(completion_time="2024-05-01T11:59:59Z"))


def test_an_item_without_a_readable_time_passes_only_an_open_range() -> None:
    noon = datetime.datetime(2024, 5, 1, 12, tzinfo=datetime.UTC)

    assert passes(ResultFilter(), item(completion_time=""))
    assert not passes(ResultFilter(since=noon), item(completion_time=""))
    assert not passes(ResultFilter(until=noon), item(completion_time="yesterday"))


def reference(
    result_filter: ResultFilter, candidate: Item, finished: datetime.datetime | None
) -> bool:
    """The definition, written out: phase in phases, all tags present, source in sources when
    any, since <= time < until when set (no time: only without a range)."""
    if candidate.phase not in [str(phase) for phase in result_filter.phases]:
        return False
    if any(tag not in candidate.tags for tag in result_filter.tags):
        return False
    if len(result_filter.sources) > 0 and candidate.source not in result_filter.sources:
        return False
    if result_filter.since is not None and (finished is None or finished < result_filter.since):
        return False
    return result_filter.until is None or (finished is not None and finished < result_filter.until)


WORDS = st.sampled_from(["a", "b", "c", "nightly"])
MINUTES = st.integers(-120, 120)
OFFSETS = st.sampled_from([0, 60, -300, 330])


@st.composite
def filters(draw: st.DrawFn) -> ResultFilter:
    def moment() -> datetime.datetime | None:
        if draw(st.booleans()):
            return None
        zone = datetime.timezone(datetime.timedelta(minutes=draw(OFFSETS)))
        return (EPOCH + datetime.timedelta(minutes=draw(MINUTES))).astimezone(zone)

    return ResultFilter(
        phases=[TaskPhase(p) for p in draw(st.lists(st.sampled_from(FINAL), max_size=4))],
        tags=draw(st.lists(WORDS, max_size=3)),
        sources=draw(st.lists(WORDS, max_size=3)),
        since=moment(),
        until=moment(),
    )


@st.composite
def items_with_times(draw: st.DrawFn) -> tuple[Item, datetime.datetime | None]:
    finished: datetime.datetime | None = None
    kind = draw(st.sampled_from(["time", "time", "time", "empty", "garbage"]))
    text = {"empty": "", "garbage": "not a time"}.get(kind, "")
    if kind == "time":
        zone = datetime.timezone(datetime.timedelta(minutes=draw(OFFSETS)))
        finished = EPOCH + datetime.timedelta(
            minutes=draw(MINUTES), seconds=draw(st.integers(0, 59))
        )
        text = finished.astimezone(zone).isoformat().replace("+00:00", "Z")
    candidate = item(
        phase=draw(st.sampled_from([*FINAL, "Running"])),
        tags=tuple(draw(st.lists(WORDS, max_size=4))),
        source=draw(st.one_of(WORDS, st.just(""))),
        completion_time=text,
    )
    return candidate, finished


@settings(max_examples=300, deadline=None)
@given(result_filter=filters(), drawn=items_with_times())
def test_the_filter_matches_its_definition(
    result_filter: ResultFilter, drawn: tuple[Item, datetime.datetime | None]
) -> None:
    candidate, finished = drawn

    assert passes(result_filter, candidate) == reference(result_filter, candidate, finished)
