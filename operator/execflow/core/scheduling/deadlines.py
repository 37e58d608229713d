"""Deadlines of waiting tasks: which can no longer finish in time, found without scanning them all.

A waiting task misses its deadline once `now + duration > deadline`, with the task's own estimate,
else its tool's learned duration, else none (the default guess never fails a task). Tasks with an
estimate, or with neither an estimate nor a tool, have a fixed latest start and sit in one heap.
Tasks timed by their tool's learned duration sit in one heap per tool, ordered by deadline: a
changed estimate shifts the whole heap at once, so their order never changes. Each call pops only
the tasks that expire. A task that leaves early stays in its heap as a stale item until it surfaces
or the heaps are compacted.
"""

import heapq
from collections.abc import Callable

from execflow.core.scheduling.estimates import DurationEstimator
from execflow.core.scheduling.index import COMPACT_SLACK, EntryState, WaitingEntry
from execflow.core.scheduling.model import DEADLINE_MISSED, Failure, WaitingTask, utc_text

_DeadlineItem = tuple[float, int, WaitingEntry]


class DeadlineIndex:
    """The waiting tasks that have a deadline, by when they must start at the latest."""

    def __init__(
        self, estimator: DurationEstimator, discard: Callable[[WaitingEntry], None]
    ) -> None:
        self._estimator = estimator
        self._discard = discard
        """Takes a task that missed its deadline out of the scheduler."""
        self._fixed: list[_DeadlineItem] = []
        """(latest start, arrival, entry) of tasks not timed by a learned duration."""
        self._by_tool: dict[str, list[_DeadlineItem]] = {}
        """(deadline, arrival, entry) per tool whose learned duration times them."""
        self._items = 0
        self._live = 0

    def add(self, entry: WaitingEntry) -> None:
        """Watch a newly waiting task's deadline, if it has one."""
        task = entry.task
        if task.deadline is None:
            return
        self._live += 1
        self._items += 1
        if task.estimated_duration is None and task.tool is not None:
            heap = self._by_tool.setdefault(task.tool, [])
            heapq.heappush(heap, (task.deadline, entry.arrival, entry))
        else:
            latest_start = task.deadline - (task.estimated_duration or 0.0)
            heapq.heappush(self._fixed, (latest_start, entry.arrival, entry))

    def forget(self, task: WaitingTask) -> None:
        """A waiting task started or left; its heap item is stale from now on."""
        if task.deadline is not None:
            self._live -= 1

    def expire(self, now: float) -> list[Failure]:
        """Fail and take out every waiting task that can no longer finish by its deadline."""
        failures: list[Failure] = []
        heap = self._fixed
        while heap and heap[0][0] < now:
            _, _, entry = heapq.heappop(heap)
            self._items -= 1
            self._fail(entry, now, failures)
        for tool, tool_heap in list(self._by_tool.items()):
            known = self._estimator.known(tool) or 0.0
            while tool_heap and tool_heap[0][0] - known < now:
                _, _, entry = heapq.heappop(tool_heap)
                self._items -= 1
                self._fail(entry, now, failures)
            if not tool_heap:
                del self._by_tool[tool]
        return failures

    def compact(self) -> None:
        """Drop stale items when they outnumber the live ones by far."""
        if self._items <= 2 * self._live + COMPACT_SLACK:
            return
        self._fixed = [item for item in self._fixed if item[2].state is not EntryState.GONE]
        heapq.heapify(self._fixed)
        total = len(self._fixed)
        for tool, heap in list(self._by_tool.items()):
            kept = [item for item in heap if item[2].state is not EntryState.GONE]
            if kept:
                heapq.heapify(kept)
                self._by_tool[tool] = kept
                total += len(kept)
            else:
                del self._by_tool[tool]
        self._items = total

    def _fail(self, entry: WaitingEntry, now: float, failures: list[Failure]) -> None:
        task = entry.task
        if entry.state is EntryState.GONE or task.deadline is None:
            return
        duration = task.estimated_duration
        if duration is None:
            duration = self._estimator.known(task.tool)
        estimate = "" if not duration else f" with an estimated {duration:.0f}s to run"
        self._discard(entry)
        failures.append(
            Failure(
                task.key,
                DEADLINE_MISSED,
                f"cannot finish by its deadline {utc_text(task.deadline)}: still waiting at "
                f"{utc_text(now)}{estimate}",
            )
        )
