"""The pure collection plan, ledger and accounting of ResultSets, without a cluster.

The strategies are checked one by one against the rules the collection module states; then a
property drives plan → store → count the way the controller does, over random finishing orders,
strategies and crashes (storage kept, the in-memory ledger and an unwritten status lost), and
checks that every eligible result ends up stored once and counted once, with aggregations equal
to a computation from scratch.
"""

from __future__ import annotations

import datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from execflow.api.result_set import ResultSetSpec
from execflow.api.result_set_status import ResultSetPhase, ResultSetStatus
from execflow.core.resultsets import accounting, aggregations
from execflow.core.resultsets.codec import CHAIN_START, chained_checksum
from execflow.core.resultsets.collection import (
    SEGMENT_ITEMS,
    Candidate,
    CollectionView,
    SourceState,
    plan,
)
from execflow.core.resultsets.items import Item, item_from_record, item_record
from execflow.core.resultsets.ledger import SegmentEntry, rebuild
from execflow.core.resultsets.transforms import compile_programs

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def spec(**fields: Any) -> ResultSetSpec:
    return ResultSetSpec.model_validate({"source": {"selector": {}}, **fields})


def task(index: int, phase: str = "Completed", seconds: float | None = None) -> Candidate:
    finished = T0 + datetime.timedelta(seconds=index if seconds is None else seconds)
    final = phase in ("Completed", "Failed", "Cancelled", "Timeout")
    return Candidate(
        uid=f"uid-{index}",
        name=f"task-{index}",
        phase=phase,
        finished_at=finished if final else None,
        result={"v": index},
        size=8,
    )


def view(the_spec: ResultSetSpec, tasks: list[Candidate], **fields: Any) -> CollectionView:
    return CollectionView(
        spec=the_spec,
        phase=fields.pop("phase", ResultSetPhase.COLLECTING),
        candidates=tasks,
        collected=fields.pop("collected", set()),
        **fields,
    )


def test_immediate_takes_every_finished_task_in_finish_order_then_is_ready() -> None:
    tasks = [task(2), task(0), task(1)]

    first = plan(view(spec(), tasks), T0)
    done = plan(view(spec(), tasks, collected={"uid-0", "uid-1", "uid-2"}), T0)

    assert [c.name for c in first.take] == ["task-0", "task-1", "task-2"]
    assert first.phase is ResultSetPhase.COLLECTING
    assert (done.take, done.phase, done.reason) == ((), ResultSetPhase.READY, "Collected")


def test_an_unfinished_task_keeps_the_set_collecting() -> None:
    decision = plan(view(spec(), [task(0, "Running")]), T0)

    assert (decision.phase, decision.reason) == (ResultSetPhase.COLLECTING, "WaitingForTasks")
    assert decision.message == "selected Tasks have not finished yet"


def test_the_filter_keeps_only_its_phases_tags_sources_and_time_range() -> None:
    chosen = spec(filter={"phases": ["Failed"], "since": "2026-01-01T00:00:01Z"})
    tasks = [task(0, "Failed"), task(1, "Failed"), task(2, "Completed")]

    decision = plan(view(chosen, tasks), T0)

    assert [c.name for c in decision.take] == ["task-1"]


def test_batch_waits_for_size_then_takes_exactly_size() -> None:
    batched = spec(strategy="Batch", batch={"size": 3})
    running = [task(9, "Running")]

    short = plan(view(batched, [task(0), task(1), *running]), T0)
    full = plan(view(batched, [task(0), task(1), task(2), task(3), *running]), T0)

    assert (short.take, short.reason) == ((), "WaitingForBatch")
    assert [c.name for c in full.take] == ["task-0", "task-1", "task-2"]


def test_batch_takes_everything_once_the_oldest_waited_its_interval() -> None:
    batched = spec(strategy="Batch", batch={"size": 100, "interval": "10s"})
    tasks = [task(0), task(1), task(9, "Running")]

    early = plan(view(batched, tasks), T0 + datetime.timedelta(seconds=5))
    due = plan(view(batched, tasks), T0 + datetime.timedelta(seconds=10))

    assert early.take == ()
    assert early.requeue_at == T0 + datetime.timedelta(seconds=10)
    assert [c.name for c in due.take] == ["task-0", "task-1"]


def test_batch_flushes_a_partial_batch_once_nothing_selected_still_runs() -> None:
    batched = spec(strategy="Batch", batch={"size": 100})

    decision = plan(view(batched, [task(0), task(1)]), T0)

    assert len(decision.take) == 2


def test_lazy_collects_nothing_until_first_read() -> None:
    lazy = spec(strategy="Lazy")

    unread = plan(view(lazy, [task(0)]), T0)
    read = plan(view(lazy, [task(0)], collect_token="now"), T0)

    assert (unread.take, unread.phase, unread.reason) == (
        (),
        ResultSetPhase.PENDING,
        "WaitingForFirstRead",
    )
    assert len(read.take) == 1


def test_on_demand_takes_one_snapshot_per_annotation_value() -> None:
    on_demand = spec(strategy="OnDemand")
    tasks = [task(0), task(1)]

    none = plan(view(on_demand, tasks), T0)
    first = plan(view(on_demand, tasks, collect_token="a"), T0)
    served = plan(
        view(
            on_demand,
            [*tasks, task(2)],
            collect_token="a",
            served_token="a",
            collected={"uid-0", "uid-1"},
        ),
        T0,
    )

    assert (none.take, none.reason) == ((), "WaitingForRequest")
    assert (len(first.take), first.served_token, first.phase) == (2, "a", ResultSetPhase.READY)
    assert (served.take, served.phase) == ((), ResultSetPhase.READY)


def test_a_segment_holds_at_most_segment_items_and_the_rest_follows_at_once() -> None:
    tasks = [task(i) for i in range(SEGMENT_ITEMS + 5)]

    decision = plan(view(spec(), tasks), T0)

    assert len(decision.take) == SEGMENT_ITEMS
    assert decision.more is True


def test_missing_task_refs_and_a_running_workflow_keep_it_collecting() -> None:
    named = plan(view(spec(), [], source=SourceState(missing=("a", "b"))), T0)
    workflow = plan(view(spec(), [], source=SourceState(workflow_running=True)), T0)

    assert "a, b" in named.message
    assert workflow.reason == "WaitingForTasks"


def test_ttl_expires_the_data_after_the_last_collection() -> None:
    short = spec(ttl="1m")

    before = plan(view(short, [], last_collected_at=T0), T0 + datetime.timedelta(seconds=30))
    after = plan(view(short, [], last_collected_at=T0), T0 + datetime.timedelta(minutes=1))

    assert (before.phase, before.requeue_at) == (
        ResultSetPhase.READY,
        T0 + datetime.timedelta(minutes=1),
    )
    assert (after.phase, after.expire) == (ResultSetPhase.EXPIRED, True)


def test_a_ledger_counts_only_what_the_status_does_not_count_yet() -> None:
    entries = [entry(0, [0, 1]), entry(1, [2])]

    ledger = rebuild(entries, counted=1, keep_records=0)

    assert ledger.collected == {"uid-0", "uid-1", "uid-2"}
    assert [e.number for e in ledger.uncounted] == [1]
    assert ledger.stored == 2


def entry(number: int, indexes: list[int]) -> SegmentEntry:
    records = tuple(item_record(as_item(task(i))) for i in indexes)
    return SegmentEntry(number, f"{number:064x}", 10, f"segment {number}", records)


def as_item(candidate: Candidate) -> Item:
    assert candidate.finished_at is not None
    return Item(
        candidate.uid,
        candidate.name,
        candidate.phase,
        candidate.source,
        candidate.tags,
        candidate.finished_at.isoformat(),
        candidate.result,
    )


STRATEGIES = st.sampled_from(
    [
        {"strategy": "Immediate"},
        {"strategy": "Streaming"},
        {"strategy": "Batch", "batch": {"size": 3}},
        {"strategy": "Batch", "batch": {"size": 50, "interval": "5s"}},
    ]
)


@settings(max_examples=150, deadline=None)
@given(
    strategy=STRATEGIES,
    order=st.permutations(list(range(12))),
    phases=st.lists(st.sampled_from(["Completed", "Failed"]), min_size=12, max_size=12),
    crashes=st.sets(st.integers(0, 40)),
    lost_writes=st.sets(st.integers(0, 40)),
)
def test_every_eligible_result_is_stored_once_and_counted_once_whatever_crashes_happen(
    strategy: dict[str, Any],
    order: list[int],
    phases: list[str],
    crashes: set[int],
    lost_writes: set[int],
) -> None:
    the_spec = spec(
        **strategy,
        aggregations=[
            {"name": "sum", "function": "sum", "field": "v"},
            {"name": "n", "function": "count"},
        ],
        transforms=[
            {"name": "total", "type": "reduce", "expression": "acc + r.result.v", "initial": 0}
        ],
    )
    programs = compile_programs(the_spec.aggregations, the_spec.transforms)
    storage: list[SegmentEntry] = []
    status = ResultSetStatus()
    ledger = rebuild([], 0, 0)
    finished: list[Candidate] = []
    step = 0
    for arrival, index in enumerate([*order, None, None, None]):
        if index is not None:
            finished.append(task(index, phases[index], seconds=arrival))
        running = [task(i, "Running") for i in order[arrival + 1 :]] if index is not None else []
        now = T0 + datetime.timedelta(seconds=arrival + 10)
        while True:
            step += 1
            if step in crashes:  # the operator restarts: only storage and the written status stay
                ledger = rebuild(storage, status.storage.segments, 0)
            pending = [e for e in ledger.uncounted if e.number >= status.storage.segments]
            counted = accounting.count_into(
                status, the_spec, programs, pending, name="rs", generation=1, now=now
            )
            decision = plan(
                CollectionView(
                    spec=the_spec,
                    phase=counted.phase,
                    candidates=[*finished, *running],
                    collected=ledger.collected,
                ),
                now,
            )
            if decision.take:
                records = tuple(item_record(as_item(c)) for c in decision.take)
                written = SegmentEntry(ledger.stored, f"{ledger.stored:064x}", 1, "", records)
                storage.append(written)
                ledger.add(written)
                counted = accounting.count_into(
                    counted, the_spec, programs, [written], name="rs", generation=1, now=now
                )
            if step not in lost_writes:  # a status write that did not happen leaves the old one
                status = counted
                ledger.counted(status.storage.segments)
            if not decision.more:
                break
    ledger = rebuild(storage, status.storage.segments, 0)
    pending = [e for e in ledger.uncounted if e.number >= status.storage.segments]
    status = accounting.count_into(
        status, the_spec, programs, pending, name="rs", generation=1, now=T0
    )

    stored_uids = [record["uid"] for e in storage for record in e.records]
    eligible = sorted(f"uid-{i}" for i in range(12) if phases[i] == "Completed")
    assert sorted(stored_uids) == eligible
    assert status.count == len(eligible)
    if not eligible:  # nothing to aggregate: the status shows nothing, as it counted nothing
        assert (status.aggregations, status.transforms) == ({}, {})
        return
    items = [item_from_record(record) for e in storage for record in e.records]
    expected = aggregations.values(aggregations.compute(the_spec.aggregations, items))
    assert status.aggregations == expected
    total = sum(i for i in range(12) if phases[i] == "Completed")
    assert status.transforms["total"]["value"] == total
    assert status.checksum == chained_checksum(e.sha256 for e in storage) or (
        not storage and status.checksum in ("", CHAIN_START)
    )


def test_a_released_batch_larger_than_a_segment_is_written_whole_before_holding_again() -> None:
    batched = spec(strategy="Batch", batch={"size": SEGMENT_ITEMS + 10})
    tasks = [task(i) for i in range(SEGMENT_ITEMS + 12)] + [task(99_999, "Running")]

    first = plan(view(batched, tasks), T0)
    collected = {c.uid for c in first.take}
    rest = plan(view(batched, tasks, collected=collected, owed=first.owed), T0)
    held = plan(view(batched, tasks, collected=collected | {c.uid for c in rest.take}), T0)

    assert (len(first.take), first.owed) == (SEGMENT_ITEMS, 10)
    assert (len(rest.take), rest.owed) == (10, 0)
    assert (held.take, held.reason) == ((), "WaitingForBatch")
