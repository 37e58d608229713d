"""When a ResultSet collects, what, and what phase it is in: a pure decision per reconcile.

The controller hands over the selected Tasks as plain `Candidate`s, the uids already collected
(in storage, whatever the status says yet) and the clock; this module decides:

- which finished, filtered, not yet collected Tasks go into the next segment, by strategy:
  Immediate and Streaming take all of them at once; Batch takes `size` of them once `size` wait,
  all of them once the oldest has waited `interval`, and all of them once no selected Task is
  still running (a last partial batch never waits for ever); Lazy takes nothing until the
  ResultSet was first read (the annotation `execflow.dev/collect` set), then behaves as
  Immediate; OnDemand takes everything available once per new value of that annotation;
- at most `SEGMENT_ITEMS` items and `SEGMENT_BYTES` bytes of results per segment, so a segment
  always fits in one ConfigMap shard; the rest follows at once in the next segment (a released
  batch larger than a segment is `owed` to the next reconcile, which writes it before holding
  anything again);
- the phase: Pending (waiting for the first read or request), Collecting (a selected Task is not
  finished, a result waits, a named Task or the workflow is not there or not finished), Ready
  (everything selected has finished and was collected) and when the stored data expires. The
  messages do not count anything (status.count does), so they change only with the situation
  and never cost a status write of their own.

Ordering is by finish time then name, so the segments hold results in the order they finished.
"""

from __future__ import annotations

import datetime
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from execflow.api.durations import parse_duration
from execflow.api.reasons import Reason
from execflow.api.result_set import ResultSetSpec, Strategy
from execflow.api.result_set_status import ResultSetPhase
from execflow.api.task import TaskPhase
from execflow.api.timestamps import format_time
from execflow.core.resultsets.filters import passes
from execflow.core.resultsets.items import Item

SEGMENT_ITEMS = 500
"""Most results in one segment."""
SEGMENT_BYTES = 256 * 1024
"""Most bytes of result JSON in one segment (a Task's result is at most 4 KiB)."""

_FINAL = frozenset({TaskPhase.COMPLETED, TaskPhase.FAILED, TaskPhase.CANCELLED, TaskPhase.TIMEOUT})


@dataclass(frozen=True)
class Candidate:
    """A selected Task, as plain data."""

    uid: str
    name: str
    phase: str
    finished_at: datetime.datetime | None
    source: str = ""
    tags: tuple[str, ...] = ()
    result: Any = None
    size: int = 0
    """Bytes of the result's JSON."""

    @property
    def finished(self) -> bool:
        return self.phase in _FINAL and self.finished_at is not None

    def item(self) -> Item:
        """The item collecting it stores."""
        finished = format_time(self.finished_at) if self.finished_at is not None else ""
        return Item(self.uid, self.name, self.phase, self.source, self.tags, finished, self.result)


@dataclass(frozen=True)
class SourceState:
    """What the source says beyond its Tasks: named Tasks missing, a workflow not finished."""

    missing: tuple[str, ...] = ()
    """taskRefs that name no Task (yet)."""
    workflow_running: bool = False
    """workflowRef: the workflow exists and has not finished (more Tasks may come)."""
    workflow_missing: bool = False


@dataclass(frozen=True)
class CollectionView:
    spec: ResultSetSpec
    phase: ResultSetPhase
    candidates: Sequence[Candidate]
    collected: Collection[str]
    """Uids whose results are stored already."""
    source: SourceState = field(default_factory=SourceState)
    collect_token: str = ""
    """The execflow.dev/collect annotation's value ("" when absent)."""
    served_token: str = ""
    """The value the last snapshot answered (status.collectToken)."""
    last_collected_at: datetime.datetime | None = None
    created_at: datetime.datetime | None = None
    owed: int = 0
    """Results of a batch already released but not yet written (it needed several segments)."""


@dataclass(frozen=True)
class CollectionPlan:
    take: tuple[Candidate, ...]
    """The next segment's Tasks, in order; empty: nothing to write now."""
    phase: ResultSetPhase
    reason: str
    message: str
    more: bool = False
    """More results are ready right after this segment: reconcile again at once."""
    requeue_at: datetime.datetime | None = None
    expire: bool = False
    """The ttl has passed: delete the stored data and end Expired."""
    served_token: str | None = None
    """Set: the snapshot for this annotation value is complete once `take` is written."""
    owed: int = 0
    """Results of the released batch still to write after `take` (the next view's `owed`)."""


def filtered(view: CollectionView) -> list[Candidate]:
    """Finished Tasks that pass the filter, in finish order (collected ones included)."""
    rules = view.spec.filter
    chosen = [c for c in view.candidates if c.finished and passes(rules, c.item())]
    chosen.sort(key=_finish_order)
    return chosen


def plan(view: CollectionView, now: datetime.datetime) -> CollectionPlan:
    """The decision of one reconcile (see the module docstring)."""
    if view.phase is ResultSetPhase.EXPIRED:
        return CollectionPlan((), ResultSetPhase.EXPIRED, Reason.EXPIRED, "the stored data expired")
    waiting = [c for c in filtered(view) if c.uid not in view.collected]
    if view.spec.strategy is Strategy.LAZY and not view.collect_token:
        return CollectionPlan(
            (),
            ResultSetPhase.PENDING,
            Reason.WAITING_FOR_FIRST_READ,
            "nothing is collected until the set is first read (execflow results get, or the "
            "annotation execflow.dev/collect)",
        )
    if view.spec.strategy is Strategy.ON_DEMAND:
        return _on_demand(view, waiting)
    return _continuous(view, waiting, now)


def _continuous(
    view: CollectionView, waiting: list[Candidate], now: datetime.datetime
) -> CollectionPlan:
    """Immediate, Streaming, Batch, and Lazy once read."""
    running = _still_running(view)
    take, holding, requeue_at, released = _batch(view, waiting, running, now)
    more = len(take) < len(waiting) and not holding
    if take or more:
        return CollectionPlan(
            take,
            ResultSetPhase.COLLECTING,
            Reason.COLLECTING,
            _collecting(len(waiting)),
            more,
            owed=max(0, released - len(take)),
        )
    if waiting:
        return CollectionPlan(
            (),
            ResultSetPhase.COLLECTING,
            Reason.WAITING_FOR_BATCH,
            "results wait for the batch to fill or its interval to pass",
            requeue_at=requeue_at,
        )
    if running:
        return CollectionPlan((), ResultSetPhase.COLLECTING, Reason.WAITING_FOR_TASKS, running)
    return _ready(view, now)


def _on_demand(view: CollectionView, waiting: list[Candidate]) -> CollectionPlan:
    if not view.collect_token or view.collect_token == view.served_token:
        if not view.served_token:
            return CollectionPlan(
                (),
                ResultSetPhase.PENDING,
                Reason.WAITING_FOR_REQUEST,
                "a snapshot is taken for each new value of the annotation execflow.dev/collect",
            )
        return CollectionPlan(
            (),
            ResultSetPhase.READY,
            Reason.SNAPSHOT_TAKEN,
            f"snapshot {view.served_token!r} taken",
        )
    take = _segment(waiting)
    done = len(take) == len(waiting)
    return CollectionPlan(
        take,
        ResultSetPhase.READY if done else ResultSetPhase.COLLECTING,
        Reason.SNAPSHOT_TAKEN if done else Reason.COLLECTING,
        f"snapshot {view.collect_token!r} taken" if done else _collecting(len(waiting)),
        more=not done,
        served_token=view.collect_token if done else None,
    )


def _batch(
    view: CollectionView, waiting: list[Candidate], running: str, now: datetime.datetime
) -> tuple[tuple[Candidate, ...], bool, datetime.datetime | None, int]:
    """The Tasks to write now; whether the rest is held for the batch to fill (Batch only);
    when the held batch is due by its interval (None: only its size, or the end, releases it);
    and how many results the batch released (it may take several segments to write)."""
    if view.spec.strategy is not Strategy.BATCH or not waiting:
        return _segment(waiting), False, None, 0
    if view.owed:
        return _segment(waiting[: view.owed]), False, None, min(view.owed, len(waiting))
    policy = view.spec.batch
    size = policy.size if policy is not None and policy.size is not None else None
    interval = (
        parse_duration(policy.interval)
        if policy is not None and policy.interval is not None
        else None
    )
    if size is not None and len(waiting) >= size:
        return _segment(waiting[:size]), False, None, size
    oldest = waiting[0].finished_at
    assert oldest is not None
    due = oldest + interval if interval is not None else None
    if not running or (due is not None and due <= now):
        return _segment(waiting), False, None, len(waiting)
    return (), True, due, 0


def _segment(waiting: Sequence[Candidate]) -> tuple[Candidate, ...]:
    take: list[Candidate] = []
    total = 0
    for candidate in waiting:
        if take and (len(take) >= SEGMENT_ITEMS or total + candidate.size > SEGMENT_BYTES):
            break
        take.append(candidate)
        total += candidate.size
    return tuple(take)


def _still_running(view: CollectionView) -> str:
    """Why more results may come ("" when nothing selected can still finish)."""
    source = view.source
    if source.workflow_missing:
        return "the workflow does not exist (yet)"
    if source.missing:
        shown = ", ".join(source.missing[:5])
        more = f" and {len(source.missing) - 5} more" if len(source.missing) > 5 else ""
        return f"waiting for Tasks that do not exist (yet): {shown}{more}"
    unfinished = sum(1 for candidate in view.candidates if not candidate.finished)
    if unfinished:
        return "selected Tasks have not finished yet"
    if source.workflow_running:
        return "the workflow is still running"
    return ""


def _ready(view: CollectionView, now: datetime.datetime) -> CollectionPlan:
    ttl = view.spec.ttl
    since = view.last_collected_at or view.created_at
    if ttl is not None and since is not None:
        expires = since + parse_duration(ttl)
        if expires <= now:
            return CollectionPlan(
                (),
                ResultSetPhase.EXPIRED,
                Reason.EXPIRED,
                f"the stored data expired {ttl} after the last collection",
                expire=True,
            )
        return CollectionPlan(
            (),
            ResultSetPhase.READY,
            Reason.COLLECTED,
            "every selected Task's result is collected",
            requeue_at=expires,
        )
    return CollectionPlan(
        (), ResultSetPhase.READY, Reason.COLLECTED, "every selected Task's result is collected"
    )


def _collecting(waiting: int) -> str:
    # The same words whatever the count, so a message never costs a status write of its own.
    del waiting
    return "collecting results as their Tasks finish"


def _finish_order(candidate: Candidate) -> tuple[datetime.datetime, str]:
    assert candidate.finished_at is not None
    return candidate.finished_at, candidate.name
