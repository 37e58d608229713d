"""The scheduler's ledger: every waiting and running task, where each is kept, and the moves.

A waiting task is in one place at a time: a candidate in its queue, put aside (outside its time
windows, waiting for its mutex, unschedulable), outside its full queue, or nowhere when its queue
is not configured. Every move between places goes through here, so each one keeps all the indexes
in step: queues, mutexes, deadlines, capacity held back for a task, and the reasons reported. A
scheduling call (`decision`) chooses the moves; the ledger makes them.
"""

import heapq

from execflow.api.settings import OperatorSettings
from execflow.core.scheduling.capacity import CapacityView
from execflow.core.scheduling.deadlines import DeadlineIndex
from execflow.core.scheduling.estimates import DurationEstimator
from execflow.core.scheduling.index import EntryState, WaitingEntry
from execflow.core.scheduling.model import (
    BlockReason,
    QueueDepth,
    RunningTask,
    WaitingTask,
)
from execflow.core.scheduling.mutexes import MutexTable
from execflow.core.scheduling.queues import QueueState, RunningRecord
from execflow.core.scheduling.reasons import ReasonReports, Reported
from execflow.core.scheduling.strategies import uses_duration


class Ledger:
    """The waiting and running tasks of all queues and the indexes over them."""

    def __init__(self, settings: OperatorSettings, estimator: DurationEstimator) -> None:
        self.estimator = estimator
        self.queues = {
            name: QueueState(name, queue_settings, estimator)
            for name, queue_settings in settings.queues.items()
        }
        self.queue_list = list(self.queues.values())
        self.reasons = ReasonReports()
        self.mutexes = MutexTable(
            self.unpark, lambda entry: self.queues[entry.task.queue].starvation_limit
        )
        self.deadlines = DeadlineIndex(estimator, self.discard)
        self._arrivals = 0
        self._waiting: dict[str, WaitingEntry] = {}
        self._running: dict[str, RunningRecord] = {}
        self._window_wakeups: list[tuple[float, int, int, WaitingEntry]] = []
        self._unschedulable: dict[str, WaitingEntry] = {}
        self._node_shapes: frozenset[tuple[int, int]] | None = None
        """Allocatable shapes of the nodes the unschedulable tasks were judged against."""
        self._reserved: dict[str, WaitingEntry] = {}
        """Tasks whose requests are held back from a node and their namespace's quota."""

    # -- arrivals and departures (see `Scheduler`) -------------------------------------------------

    def add(self, task: WaitingTask) -> None:
        """Make `task` wait; a changed task replaces its previous version."""
        key = task.key
        heard: Reported = (None, "")
        existing = self._waiting.get(key)
        if existing is not None:
            if existing.task == task:
                return
            heard = self.reasons.heard(existing)
            self.discard(existing)
        if key in self._running:
            self._release(key)
        self._arrivals += 1
        entry = WaitingEntry(task, self._arrivals)
        # The new version starts from what the caller last heard, so only news is reported.
        entry.reported = heard
        self._waiting[key] = entry
        self.deadlines.add(entry)
        mutex_key = task.mutex_key
        if mutex_key is not None:
            self.mutexes.want(mutex_key)
        queue = self.queues.get(task.queue)
        if queue is None:
            entry.state = EntryState.NO_QUEUE
            configured = ", ".join(sorted(self.queues))
            self.reasons.report(
                entry,
                BlockReason.UNKNOWN_QUEUE,
                f"queue {task.queue!r} is not configured (configured: {configured})",
            )
            return
        if queue.is_full():
            queue.wait_outside(entry)
            self.reasons.report(
                entry,
                BlockReason.QUEUE_FULL,
                f"queue {queue.name} holds its maximum of {queue.settings.max_queued_tasks} "
                "waiting tasks; this task enters, in arrival order, when there is room",
            )
            return
        queue.enter(entry)
        self.reasons.report(entry, None, "")

    def add_running(self, task: RunningTask) -> None:
        """Count `task` as running."""
        key = task.key
        waiting = self._waiting.get(key)
        if waiting is not None:
            self.discard(waiting)
        current = self._running.get(key)
        if current is not None:
            if current.task == task:
                return
            self._release(key)
        self._track_running(task)

    def finish(self, key: str, *, now: float, succeeded: bool) -> None:
        """A running task ended; a success teaches its tool's duration."""
        record = self._running.get(key)
        if record is None:
            return
        tool = record.task.tool
        if succeeded and tool is not None:
            self.learn_duration(tool, now - record.task.started_at)
        self._release(key)

    def learn_duration(self, tool: str, seconds: float) -> None:
        """Teach one successful run of `tool`; queues ordered by duration move its lane."""
        if self.estimator.observe(tool, seconds):
            for queue in self.queue_list:
                if uses_duration(queue.settings.strategy):
                    queue.order.move_lane(tool)

    def remove(self, key: str) -> bool:
        """Forget a waiting or running task; whether it was known."""
        entry = self._waiting.get(key)
        if entry is not None:
            self.discard(entry)
            return True
        if key in self._running:
            self._release(key)
            return True
        return False

    # -- what is known -----------------------------------------------------------------------------

    def is_waiting(self, key: str) -> bool:
        """Whether the task waits (inside or outside its queue)."""
        return key in self._waiting

    def running_task(self, key: str) -> RunningTask | None:
        """The running task of that key, or None."""
        record = self._running.get(key)
        return None if record is None else record.task

    def running_keys(self) -> frozenset[str]:
        """Keys of every task counted as running, preemption victims included."""
        return frozenset(self._running)

    def depths(self) -> dict[str, QueueDepth]:
        """Per configured queue: waiting inside, waiting outside, running."""
        return {
            queue.name: QueueDepth(queue.size, queue.overflow_count, len(queue.running))
            for queue in self.queue_list
        }

    # -- moves a scheduling call makes -------------------------------------------------------------

    def start(self, queue: QueueState, entry: WaitingEntry, now: float) -> None:
        """The task of `entry` starts now: from waiting to running."""
        task = entry.task
        # Count it running before forgetting it waits, so its mutex record (and the grant count
        # its other waiters are measured on) never lapses in between.
        self._track_running(task.started(now))
        self._forget(entry)
        queue.starts += 1
        mutex_key = task.mutex_key
        if mutex_key is not None:
            self.mutexes.grant(mutex_key, entry)

    def admit_overflow(self, queue: QueueState) -> None:
        """Let tasks waiting outside the queue enter while there is room."""
        if not queue.overflow:
            return
        for entry in queue.admit_overflow():
            self.reasons.report(entry, None, "")

    def wait_for_window(self, queue: QueueState, entry: WaitingEntry, opening: float) -> None:
        """Put a task aside until its next time window opens at `opening`."""
        self._park(queue, entry, EntryState.OUTSIDE_WINDOW)
        heapq.heappush(self._window_wakeups, (opening, entry.arrival, entry.version, entry))

    def wait_for_mutex(self, queue: QueueState, entry: WaitingEntry, mutex_key: str) -> None:
        """Put a task aside until its mutex is free for it."""
        self._park(queue, entry, EntryState.MUTEX_WAIT)
        self.mutexes.wait(mutex_key, entry)

    def set_unschedulable(self, queue: QueueState, entry: WaitingEntry, view: CapacityView) -> None:
        """Put aside a task larger than every node of `view` until the set of nodes changes."""
        self._park(queue, entry, EntryState.UNSCHEDULABLE)
        if not self._unschedulable:
            # Remember the nodes it was judged against; it comes back when they change.
            self._node_shapes = view.node_shapes()
        self._unschedulable[entry.task.key] = entry

    def reserve(self, queue: QueueState, entry: WaitingEntry, view: CapacityView) -> None:
        """Hold back room for a task that does not fit, and let it hold its queue."""
        task = entry.task
        entry.reserved_node = view.closest_node(task.requests, entry.reserved_node)
        view.take(entry.reserved_node, task.namespace, task.requests)
        self._reserved[task.key] = entry
        queue.holder = entry

    def wake_windows(self, now: float) -> None:
        """Bring back the tasks whose time window has opened."""
        wakeups = self._window_wakeups
        while wakeups and wakeups[0][0] <= now:
            _, _, version, entry = heapq.heappop(wakeups)
            if entry.version == version and entry.state is EntryState.OUTSIDE_WINDOW:
                self.unpark(entry)

    def wake_unschedulable(self, view: CapacityView | None) -> None:
        """Bring back the unschedulable tasks if the nodes changed (or are unknown now)."""
        if not self._unschedulable:
            return
        shapes = None if view is None else view.node_shapes()
        if shapes == self._node_shapes:
            return
        self._node_shapes = shapes
        entries = list(self._unschedulable.values())
        self._unschedulable.clear()
        for entry in entries:
            self.unpark(entry)

    def hold_back_reservations(self, view: CapacityView) -> None:
        """Take the room held back for waiting tasks out of `view` before anything is planned."""
        for key, entry in list(self._reserved.items()):
            if entry.state is not EntryState.QUEUED:
                del self._reserved[key]
                continue
            node = entry.reserved_node
            if node is not None and not view.has_node(node):
                entry.reserved_node = node = None
            view.take(node, entry.task.namespace, entry.task.requests)

    def release_reservation(self, entry: WaitingEntry, view: CapacityView) -> None:
        """Give the room held back for the task of `entry` to it, as it is examined."""
        if self._reserved.pop(entry.task.key, None) is not None:
            view.give_back(entry.reserved_node, entry.task.namespace, entry.task.requests)

    def unpark(self, entry: WaitingEntry) -> None:
        """Offer a task that was put aside again, with the passes it had."""
        self.queues[entry.task.queue].bring_back(entry)

    def discard(self, entry: WaitingEntry) -> None:
        """A waiting task leaves without starting."""
        self.mutexes.drop_reservation(entry)
        self._forget(entry)

    # -- bookkeeping -------------------------------------------------------------------------------

    def _park(self, queue: QueueState, entry: WaitingEntry, state: EntryState) -> None:
        queue.set_aside(entry, state)
        self._reserved.pop(entry.task.key, None)
        self.mutexes.drop_reservation(entry)

    def _forget(self, entry: WaitingEntry) -> None:
        """Take a waiting task out of every structure (it started or left)."""
        task = entry.task
        key = task.key
        del self._waiting[key]
        self.reasons.forget(key)
        self._reserved.pop(key, None)
        self._unschedulable.pop(key, None)
        self.deadlines.forget(task)
        queue = self.queues.get(task.queue)
        if queue is not None:
            queue.leave(entry)
        entry.state = EntryState.GONE
        entry.version += 1
        mutex_key = task.mutex_key
        if mutex_key is not None:
            self.mutexes.unwant(mutex_key, key)

    def _track_running(self, task: RunningTask) -> None:
        record = RunningRecord(task)
        self._running[task.key] = record
        queue = self.queues.get(task.queue)
        if queue is not None:
            queue.track(record)
        mutex_key = task.mutex_key
        if mutex_key is not None:
            self.mutexes.hold(mutex_key, task.key)

    def _release(self, key: str) -> None:
        record = self._running.pop(key)
        task = record.task
        queue = self.queues.get(task.queue)
        if queue is not None:
            queue.untrack(record)
        mutex_key = task.mutex_key
        if mutex_key is not None:
            self.mutexes.release(mutex_key, key)
