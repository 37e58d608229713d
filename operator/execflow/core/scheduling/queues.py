"""One queue's share of the scheduler: its waiting tasks in order, its running tasks, its counters.

Queues are scheduled alike and apart (they share only capacity and mutexes), so each keeps its own
state here. Entering a queue fixes a task's sort key and starts counting its passes; a task put
aside keeps the passes it had and they count on when it comes back; the queue hands out its next
candidate in the order the scheduler's rules give and names the running task a preemption evicts.
"""

from collections import deque
from collections.abc import Iterable

from execflow.api.settings import QueueSettings
from execflow.core.scheduling.estimates import DurationEstimator
from execflow.core.scheduling.index import (
    COMPACT_SLACK,
    DueOrder,
    EntryState,
    StrategyOrder,
    WaitingEntry,
)
from execflow.core.scheduling.model import CRITICAL, HIGH, RunningTask
from execflow.core.scheduling.strategies import base_key, duration_term, uses_duration


class RunningRecord:
    """A running task as the scheduler counts it."""

    __slots__ = ("task", "terminating")

    def __init__(self, task: RunningTask) -> None:
        self.task = task
        self.terminating = False
        """Chosen as a preemption victim; still holds its slot until reported gone."""


def _take(entry: WaitingEntry) -> WaitingEntry:
    entry.version += 1
    entry.state = EntryState.EXAMINING
    return entry


class QueueState:
    """One queue's waiting and running tasks and its counters."""

    __slots__ = (
        "due",
        "estimator",
        "exclusive_running",
        "holder",
        "name",
        "nominated",
        "order",
        "overflow",
        "overflow_count",
        "ranks",
        "running",
        "running_ranks",
        "settings",
        "size",
        "starts",
        "starvation_limit",
    )

    def __init__(self, name: str, settings: QueueSettings, estimator: DurationEstimator) -> None:
        self.name = name
        self.settings = settings
        self.estimator = estimator
        self.starvation_limit = settings.effective_starvation_limit
        self.order = StrategyOrder(lambda tool: duration_term(settings, estimator.estimate(tool)))
        self.due = DueOrder()
        self.starts = 0
        """Tasks of this queue started so far: the clock that passes are counted on."""
        self.size = 0
        """Waiting tasks inside the queue, put-aside ones included (what maxQueuedTasks bounds)."""
        self.ranks = [0, 0, 0, 0]
        """Waiting tasks inside the queue per priority rank."""
        self.overflow: deque[WaitingEntry] = deque()
        self.overflow_count = 0
        self.running: dict[str, RunningRecord] = {}
        self.running_ranks = [0, 0, 0, 0]
        """Running tasks per priority rank, victims already chosen left out."""
        self.exclusive_running = 0
        self.holder: WaitingEntry | None = None
        self.nominated: deque[WaitingEntry] = deque()

    # -- waiting tasks ----------------------------------------------------------------------------

    def is_full(self) -> bool:
        """Whether a new task must wait outside (in arrival order behind those already there)."""
        return bool(self.overflow_count) or self.size >= self.settings.max_queued_tasks

    def wait_outside(self, entry: WaitingEntry) -> None:
        """Let a task wait outside the full queue."""
        entry.state = EntryState.OVERFLOW
        self.overflow.append(entry)
        self.overflow_count += 1

    def admit_overflow(self) -> list[WaitingEntry]:
        """Let tasks waiting outside enter, in arrival order, while there is room; returns them."""
        admitted: list[WaitingEntry] = []
        limit = self.settings.max_queued_tasks
        overflow = self.overflow
        while overflow and (self.size < limit or overflow[0].state is not EntryState.OVERFLOW):
            entry = overflow.popleft()
            if entry.state is not EntryState.OVERFLOW:
                continue
            self.overflow_count -= 1
            self.enter(entry)
            admitted.append(entry)
        if len(overflow) > 2 * self.overflow_count + COMPACT_SLACK:
            self.overflow = deque(e for e in overflow if e.state is EntryState.OVERFLOW)
        return admitted

    def enter(self, entry: WaitingEntry) -> None:
        """Put a task into the queue: compute its key, start counting its passes."""
        task = entry.task
        settings = self.settings
        explicit = task.estimated_duration
        known = explicit if explicit is not None else self.estimator.known(task.tool)
        entry.tier, entry.value = base_key(settings, task, known or 0.0)
        entry.lane = None
        if uses_duration(settings.strategy):
            if explicit is None and task.tool is not None:
                entry.lane = task.tool
            else:
                duration = explicit if explicit is not None else self.estimator.default
                entry.value += duration_term(settings, duration)
        entry.starts_ref = self.starts
        self.size += 1
        self.ranks[task.priority] += 1
        self.push(entry)

    def push(self, entry: WaitingEntry) -> None:
        """Make a task inside the queue a candidate (again)."""
        entry.version += 1
        entry.state = EntryState.QUEUED
        self.order.push(entry)
        self.due.push(entry)

    def set_aside(self, entry: WaitingEntry, state: EntryState) -> None:
        """Stop offering a task; its passes stop counting until it comes back."""
        entry.frozen_passes = self.starts - entry.starts_ref
        entry.state = state
        entry.version += 1
        entry.nominated = False
        if self.holder is entry:
            self.holder = None

    def bring_back(self, entry: WaitingEntry) -> None:
        """Offer a task set aside again, with the passes it had."""
        entry.starts_ref = self.starts - entry.frozen_passes
        self.push(entry)

    def leave(self, entry: WaitingEntry) -> None:
        """Uncount a waiting task (inside or outside) that started or left."""
        if entry.state is EntryState.OVERFLOW:
            self.overflow_count -= 1
        else:
            self.size -= 1
            self.ranks[entry.task.priority] -= 1
        if self.holder is entry:
            self.holder = None

    def next_candidate(self) -> WaitingEntry | None:
        """Take out the next task to examine: the holder, a preemptor, a due task, the best."""
        holder = self.holder
        if holder is not None:
            self.holder = None
            if holder.state is EntryState.QUEUED:
                return _take(holder)
        while self.nominated:
            nominated = self.nominated.popleft()
            if nominated.state is EntryState.QUEUED:
                return _take(nominated)
        entry = self.due.pop_due(self.starts, self.starvation_limit)
        if entry is None:
            entry = self.order.pop()
        return None if entry is None else _take(entry)

    def put_back(self, examined: Iterable[WaitingEntry]) -> None:
        """Offer again the tasks a call examined and left waiting; preemptors keep their claim."""
        for entry in examined:
            if entry.state is EntryState.EXAMINING:
                self.push(entry)
                if entry.nominated:
                    self.nominated.append(entry)

    def compact(self) -> None:
        """Drop stale heap items when they outnumber the waiting tasks by far."""
        live = self.size
        self.order.compact(live)
        self.due.compact(live)

    # -- running tasks ----------------------------------------------------------------------------

    def track(self, record: RunningRecord) -> None:
        """Count a running task: it holds a slot, and the whole queue while exclusive."""
        task = record.task
        self.running[task.key] = record
        self.running_ranks[task.priority] += 1
        if task.exclusive:
            self.exclusive_running += 1

    def untrack(self, record: RunningRecord) -> None:
        """Stop counting a running task that ended or left."""
        task = record.task
        del self.running[task.key]
        if not record.terminating:
            self.running_ranks[task.priority] -= 1
        if task.exclusive:
            self.exclusive_running -= 1

    def may_preempt(self) -> bool:
        """Whether a waiting High or Critical task has a running task of lower priority to evict."""
        top = next((rank for rank in (CRITICAL, HIGH) if self.ranks[rank]), None)
        return top is not None and any(self.running_ranks[rank] for rank in range(top))

    def choose_victim(self, rank: int) -> RunningRecord | None:
        """The running task to evict for a task of priority `rank`, or None."""
        victims = [
            record
            for record in self.running.values()
            if not record.terminating and record.task.priority < rank
        ]
        if not victims:
            return None
        # Lowest priority first; among equals the most recent start loses the least work.
        return min(
            victims,
            key=lambda record: (record.task.priority, -record.task.started_at, record.task.key),
        )

    def evict(self, victim: RunningRecord) -> None:
        """Mark a victim: it keeps its slot until reported gone, but is no longer a candidate."""
        victim.terminating = True
        self.running_ranks[victim.task.priority] -= 1
