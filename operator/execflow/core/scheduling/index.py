"""The in-memory index of waiting tasks: one record per task and the heaps that order them.

A queue needs two orders at once: its strategy's order (which task is best) and the order in which
tasks become due under the starvation bound. Both are binary heaps with lazy deletion: a record
carries a version, every heap item copies the version it was pushed with, and an item whose version
no longer matches (the task started, left, or was put aside) is dropped when it surfaces. So taking
a task out of the middle of a queue costs O(1), and each heap is compacted when stale items
outnumber live ones, which keeps memory proportional to the number of waiting tasks.

The strategy order is split into lanes: one for tasks whose key is fixed, and one per tool for tasks
ordered by their tool's learned duration. A lane carries an offset added to all its keys, so when a
tool's estimate changes its whole lane moves in O(1) instead of re-keying every task of the tool.
"""

import enum
import heapq
from collections.abc import Callable

from execflow.core.scheduling.model import BlockReason, WaitingTask

COMPACT_SLACK = 256
"""Stale heap items tolerated beyond the live count before a heap is rebuilt."""


class EntryState(enum.Enum):
    """Where a waiting task is kept."""

    QUEUED = enum.auto()
    """In its queue's heaps, a candidate for the next start."""
    EXAMINING = enum.auto()
    """Taken out during a scheduling call; put back at its end unless it started."""
    OUTSIDE_WINDOW = enum.auto()
    """Put aside until its next time window opens."""
    MUTEX_WAIT = enum.auto()
    """Put aside until its mutex is released."""
    UNSCHEDULABLE = enum.auto()
    """Put aside until the set of nodes changes."""
    OVERFLOW = enum.auto()
    """Waiting outside its full queue, in arrival order."""
    NO_QUEUE = enum.auto()
    """Names a queue the settings do not define."""
    GONE = enum.auto()
    """Started or left; heap items still pointing at it are stale."""


class WaitingEntry:
    """The scheduler's mutable record of one waiting task."""

    __slots__ = (
        "arrival",
        "blocked_since",
        "frozen_passes",
        "lane",
        "mutex_since",
        "nominated",
        "reported",
        "reserved_node",
        "starts_ref",
        "state",
        "task",
        "tier",
        "value",
        "version",
    )

    def __init__(self, task: WaitingTask, arrival: int) -> None:
        self.task = task
        self.arrival = arrival
        """Order of `Scheduler.add` calls; breaks ties between equal keys."""
        self.version = 0
        self.state = EntryState.QUEUED
        self.tier = 0
        self.value = 0.0
        self.lane: str | None = None
        self.starts_ref = 0
        """Queue start count at which this task's passes are counted from."""
        self.frozen_passes = 0
        """Passes counted so far, kept while the task is put aside."""
        self.blocked_since: int | None = None
        """Queue start count when the task first did not fit, for the backfill limit."""
        self.mutex_since: int | None = None
        """Grant count of its mutex when the task first found it held."""
        self.nominated = False
        """A victim is being evicted for this task; it gets the next slot."""
        self.reserved_node: str | None = None
        """Node whose free capacity is held back for this task."""
        self.reported: tuple[BlockReason | None, str] = (None, "")
        """The waiting reason the caller last heard of."""


_OrderItem = tuple[int, float, int, int, WaitingEntry]
_GuardItem = tuple[int, int, int, WaitingEntry]


class StrategyOrder:
    """A queue's waiting tasks in strategy order, one heap per lane."""

    def __init__(self, lane_offset: Callable[[str], float]) -> None:
        self._lane_offset = lane_offset
        self._lanes: dict[str | None, list[_OrderItem]] = {}
        self._offsets: dict[str | None, float] = {}
        self._items = 0

    def __len__(self) -> int:
        """Heap items held, stale ones included."""
        return self._items

    def push(self, entry: WaitingEntry) -> None:
        """Add a QUEUED entry at the position of its key and version."""
        lane = entry.lane
        heap = self._lanes.get(lane)
        if heap is None:
            heap = self._lanes[lane] = []
            self._offsets[lane] = 0.0 if lane is None else self._lane_offset(lane)
        heapq.heappush(heap, (entry.tier, entry.value, entry.arrival, entry.version, entry))
        self._items += 1

    def move_lane(self, lane: str) -> None:
        """Re-read the offset of a tool lane after its learned estimate changed."""
        if lane in self._offsets:
            self._offsets[lane] = self._lane_offset(lane)

    def pop(self) -> WaitingEntry | None:
        """Take out the best QUEUED entry, or None when there is none."""
        best_lane: str | None = None
        best: tuple[int, float, int] | None = None
        empty: list[str | None] = []
        for lane, heap in self._lanes.items():
            while heap:
                tier, value, arrival, version, entry = heap[0]
                if entry.version == version and entry.state is EntryState.QUEUED:
                    break
                heapq.heappop(heap)
                self._items -= 1
            if not heap:
                empty.append(lane)
                continue
            tier, value, arrival, _, _ = heap[0]
            candidate = (tier, value + self._offsets[lane], arrival)
            if best is None or candidate < best:
                best, best_lane = candidate, lane
        for lane in empty:
            del self._lanes[lane]
            del self._offsets[lane]
        if best is None:
            return None
        self._items -= 1
        return heapq.heappop(self._lanes[best_lane])[4]

    def compact(self, live: int) -> None:
        """Drop stale items when they outnumber the `live` entries by far."""
        if self._items <= 2 * live + COMPACT_SLACK:
            return
        self._items = 0
        for lane, heap in list(self._lanes.items()):
            kept = [
                item
                for item in heap
                if item[4].version == item[3] and item[4].state is EntryState.QUEUED
            ]
            if kept:
                heapq.heapify(kept)
                self._lanes[lane] = kept
                self._items += len(kept)
            else:
                del self._lanes[lane]
                del self._offsets[lane]


class DueOrder:
    """A queue's waiting tasks in the order they become due under the starvation bound.

    A task's passes are the starts of its queue since `starts_ref`, so the smallest `starts_ref`
    becomes due first; ties go to the earlier arrival.
    """

    def __init__(self) -> None:
        self._heap: list[_GuardItem] = []

    def __len__(self) -> int:
        """Heap items held, stale ones included."""
        return len(self._heap)

    def push(self, entry: WaitingEntry) -> None:
        """Add a QUEUED entry at the position of its pass reference and version."""
        heapq.heappush(self._heap, (entry.starts_ref, entry.arrival, entry.version, entry))

    def pop_due(self, starts: int, limit: int) -> WaitingEntry | None:
        """Take out the QUEUED entry passed over longest if it has `limit` passes, else None."""
        heap = self._heap
        while heap:
            starts_ref, _, version, entry = heap[0]
            if entry.version == version and entry.state is EntryState.QUEUED:
                if starts - starts_ref < limit:
                    return None
                heapq.heappop(heap)
                return entry
            heapq.heappop(heap)
        return None

    def compact(self, live: int) -> None:
        """Drop stale items when they outnumber the `live` entries by far."""
        if len(self._heap) <= 2 * live + COMPACT_SLACK:
            return
        kept = [
            item
            for item in self._heap
            if item[3].version == item[2] and item[3].state is EntryState.QUEUED
        ]
        heapq.heapify(kept)
        self._heap = kept
