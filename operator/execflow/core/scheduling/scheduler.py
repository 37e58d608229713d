"""The scheduler: which waiting tasks start now, which running ones to evict, which to fail.

`Scheduler` is the in-memory index of waiting and running tasks (a cache the operator rebuilds from
Task statuses on start) and `Scheduler.schedule(now, capacity)` is one decision: it returns a `Plan`
and applies it to the index at once, so the caller only has to carry it out. Nothing here reads a
clock or does I/O; time is always the `now` the caller passes.

One decision, in this order:

1. Waiting tasks that can no longer finish by their deadline (`now + duration > deadline`, with the
   task's estimate, else its tool's learned duration, else none) fail with `DeadlineMissed`.
2. Tasks put aside come back when their reason passes: their time window opened, the set of nodes
   changed (for `Unschedulable` ones); mutex waiters come back when the mutex is released.
3. Queues take starts in turn, one start per queue per round, beginning with a different queue on
   each call, so shared capacity and namespace mutexes are not always won by the same queue.
   Within a queue, candidates come in this order: a task holding the queue (see below), tasks that a
   preemption freed a slot for, due tasks (longest passed over first), then the strategy order.
4. A candidate starts when its queue has a free slot (`maxConcurrentTasks`), one of its time windows
   is open, its mutex is free, its queue has no exclusive task running (and, if it is exclusive
   itself, nothing running at all) and, for resource-aware queues, its requests fit the free
   resources of some node and its namespace's remaining quota.
5. Tasks that waited outside a full queue (`QueueFull`) enter, in arrival order, as room frees.
   A task naming a queue the settings do not define waits with reason `UnknownQueue`.

Waiting reasons are reported only when they change (`Plan.waiting`), so the caller writes a Task's
status only when there is news. A task that simply waits its turn carries no reason.

Anti-starvation (every strategy): a waiting task's *passes* are the starts of its queue while it was
in the queue and not put aside (time outside its time windows, waiting for its mutex or judged
unschedulable does not count: it could not have started then). At `starvationLimit` passes it is
*due*: due tasks are examined before all others, in the order they became due. So a task that can
start is overtaken by at most `starvationLimit` tasks of its queue, plus the tasks that became due
before it (in a queue whose tasks are never put aside, those all arrived earlier). For a mutex
shared by several queues, the longest-waiting waiter reserves the mutex once it has been granted
`starvationLimit` times to others while it waited.

Head-of-line rule (resources): a task whose requests do not fit is skipped, and smaller tasks behind
it may start, until `backfillLimit` tasks of its queue started since it first did not fit (or it is
due). Then it *holds* its queue: nothing else of the queue starts, and its requests are held back
from the node where it is closest to fitting and from its namespace quota, for every queue, until it
fits. A task larger than every schedulable node's allocatable is `Unschedulable` instead: it is put
aside and never holds anything. Per call, each queue looks at no more than `scan_depth` tasks that
it leaves waiting in place (too big for now, or held back by an exclusive task), which bounds the
cost of a call when many tasks do not fit; tasks put aside (time window, mutex, unschedulable) do
not count, since each is put aside once and costs nothing until it comes back.

Exclusive: once an exclusive task is the next candidate of its queue, it holds the queue until the
queue's running tasks have finished, then starts alone; while it runs nothing else of its queue
starts (`ExclusiveRunning`).

Preemption (per queue): when the queue has no free slot and no task holds it, a waiting High or
Critical task may evict the running task of the queue with the lowest priority, strictly below its
own (the most recently started among equals, losing the least work). The victim keeps its slot until
the caller reports it gone; the preemptor then starts before anything else of its queue. Preemption
frees slots only: it is not used to make room for resources.
"""

import datetime
import heapq
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from execflow.api.settings import OperatorSettings, QueueSettings
from execflow.core.scheduling.capacity import CapacityView
from execflow.core.scheduling.estimates import DurationEstimator
from execflow.core.scheduling.index import (
    DueOrder,
    EntryState,
    StrategyOrder,
    WaitingEntry,
)
from execflow.core.scheduling.model import (
    CRITICAL,
    DEADLINE_MISSED,
    HIGH,
    BlockReason,
    Capacity,
    Failure,
    Plan,
    Preemption,
    QueueDepth,
    RunningTask,
    Start,
    WaitingStatus,
    WaitingTask,
)
from execflow.core.scheduling.strategies import base_key, duration_term, uses_duration
from execflow.core.scheduling.windows import any_window_open, next_window_opening

DEFAULT_SCAN_DEPTH = 64
"""Tasks a queue may look at per call without starting them (skipped for resources, held)."""

_COMPACT_SLACK = 256


def _utc(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Running:
    __slots__ = ("task", "terminating")

    def __init__(self, task: RunningTask) -> None:
        self.task = task
        self.terminating = False
        """Chosen as a preemption victim; still holds its slot until reported gone."""


class _Mutex:
    __slots__ = ("grants", "holders", "interested", "reserved_for", "waiters")

    def __init__(self) -> None:
        self.holders: set[str] = set()
        self.grants = 0
        """Starts that took this mutex: the clock its waiters' passes are counted on."""
        self.interested = 0
        """Waiting tasks naming this mutex; the record lives while anyone holds or wants it."""
        self.waiters: dict[str, WaitingEntry] = {}
        self.reserved_for: WaitingEntry | None = None


class _Queue:
    """One queue's waiting and running tasks and its counters."""

    __slots__ = (
        "due",
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
        self.running: dict[str, _Running] = {}
        self.running_ranks = [0, 0, 0, 0]
        """Running tasks per priority rank, victims already chosen left out."""
        self.exclusive_running = 0
        self.holder: WaitingEntry | None = None
        self.nominated: deque[WaitingEntry] = deque()


@dataclass
class _Pass:
    """One queue's progress within one call."""

    budget: int
    deferred: list[WaitingEntry] = field(default_factory=list)
    preemption_tried: bool = False


@dataclass
class _PlanBuilder:
    starts: list[Start] = field(default_factory=list)
    preemptions: list[Preemption] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)


class Scheduler:
    """The waiting and running tasks of all queues, and the decisions over them."""

    def __init__(
        self,
        settings: OperatorSettings,
        *,
        estimator: DurationEstimator | None = None,
        scan_depth: int = DEFAULT_SCAN_DEPTH,
    ) -> None:
        if scan_depth < 1:
            raise ValueError("scan_depth must be at least 1")
        self._estimator = DurationEstimator() if estimator is None else estimator
        self._scan_depth = scan_depth
        self._queues = {
            name: _Queue(name, queue_settings, self._estimator)
            for name, queue_settings in settings.queues.items()
        }
        self._queue_list = list(self._queues.values())
        self._rotation = 0
        self._arrivals = 0
        self._waiting: dict[str, WaitingEntry] = {}
        self._running: dict[str, _Running] = {}
        self._updates: dict[str, tuple[tuple[BlockReason | None, str], WaitingStatus]] = {}
        """Reason changes since the last plan, with what the caller heard before them."""
        self._mutexes: dict[str, _Mutex] = {}
        self._window_wakeups: list[tuple[float, int, int, WaitingEntry]] = []
        self._unschedulable: dict[str, WaitingEntry] = {}
        self._node_shapes: frozenset[tuple[int, int]] | None = None
        """Allocatable shapes of the nodes the unschedulable tasks were judged against."""
        self._reserved: dict[str, WaitingEntry] = {}
        self._deadlines: list[tuple[float, int, WaitingEntry]] = []
        self._tool_deadlines: dict[str, list[tuple[float, int, WaitingEntry]]] = {}
        self._deadline_items = 0
        self._deadline_live = 0

    # -- what the caller reports -------------------------------------------------------------

    @property
    def estimator(self) -> DurationEstimator:
        """The learned per-tool durations."""
        return self._estimator

    def add(self, task: WaitingTask) -> None:
        """Make `task` wait for a start; idempotent for an unchanged task.

        A changed task replaces the previous version. A task of the same key still counted as
        running is released first (a preempted or retried task coming back).
        """
        key = task.key
        heard: tuple[BlockReason | None, str] = (None, "")
        existing = self._waiting.get(key)
        if existing is not None:
            if existing.task == task:
                return
            pending = self._updates.get(key)
            heard = existing.reported if pending is None else pending[0]
            self._discard(existing)
        if key in self._running:
            self._release(key)
        self._arrivals += 1
        entry = WaitingEntry(task, self._arrivals)
        # The new version starts from what the caller last heard, so only news is reported.
        entry.reported = heard
        self._waiting[key] = entry
        self._index_deadline(entry)
        if task.mutex_key is not None:
            self._mutex(task.mutex_key).interested += 1
        queue = self._queues.get(task.queue)
        if queue is None:
            entry.state = EntryState.NO_QUEUE
            configured = ", ".join(sorted(self._queues))
            self._report(
                entry,
                BlockReason.UNKNOWN_QUEUE,
                f"queue {task.queue!r} is not configured (configured: {configured})",
            )
            return
        if queue.overflow_count or queue.size >= queue.settings.max_queued_tasks:
            entry.state = EntryState.OVERFLOW
            queue.overflow.append(entry)
            queue.overflow_count += 1
            self._report(
                entry,
                BlockReason.QUEUE_FULL,
                f"queue {queue.name} holds its maximum of {queue.settings.max_queued_tasks} "
                "waiting tasks; this task enters, in arrival order, when there is room",
            )
            return
        self._enter(queue, entry)
        self._report(entry, None, "")

    def add_running(self, task: RunningTask) -> None:
        """Count `task` as running (it holds a slot, its mutex, its queue if exclusive)."""
        key = task.key
        waiting = self._waiting.get(key)
        if waiting is not None:
            self._discard(waiting)
        current = self._running.get(key)
        if current is not None:
            if current.task == task:
                return
            self._release(key)
        self._track_running(task)

    def finish(self, key: str, *, now: float, succeeded: bool) -> None:
        """A running task ended; a success teaches its tool's duration (now - started_at)."""
        record = self._running.get(key)
        if record is None:
            return
        tool = record.task.tool
        if succeeded and tool is not None:
            self.learn_duration(tool, now - record.task.started_at)
        self._release(key)

    def learn_duration(self, tool: str, seconds: float) -> None:
        """Teach one successful run of `tool` (also how past runs are replayed after a restart)."""
        if self._estimator.observe(tool, seconds):
            for queue in self._queue_list:
                if uses_duration(queue.settings.strategy):
                    queue.order.move_lane(tool)

    def remove(self, key: str) -> bool:
        """Forget a waiting or running task (deleted, cancelled, suspended, evicted).

        Returns whether the scheduler knew it.
        """
        entry = self._waiting.get(key)
        if entry is not None:
            self._discard(entry)
            return True
        if key in self._running:
            self._release(key)
            return True
        return False

    # -- what the caller may ask -------------------------------------------------------------

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
        """Per configured queue: waiting inside, waiting outside (QueueFull), running."""
        return {
            queue.name: QueueDepth(queue.size, queue.overflow_count, len(queue.running))
            for queue in self._queue_list
        }

    # -- the decision ------------------------------------------------------------------------

    def schedule(self, now: float, capacity: Capacity | None = None) -> Plan:
        """Decide what happens now, apply it to the index and return it.

        `capacity` is the cluster's free room; None skips every resource check (for example before
        the node list is known).
        """
        plan = _PlanBuilder()
        view = None if capacity is None else CapacityView(capacity)
        self._expire_deadlines(now, plan)
        self._wake_windows(now)
        if self._unschedulable:
            self._wake_unschedulable(view)
        for queue in self._queue_list:
            self._admit_overflow(queue)
        if view is not None:
            self._hold_back_reservations(view)

        passes = {queue.name: _Pass(self._scan_depth) for queue in self._queue_list}
        count = len(self._queue_list)
        if count:
            first = self._rotation % count
            self._rotation += 1
            active = self._queue_list[first:] + self._queue_list[:first]
            while active:
                active = [
                    queue
                    for queue in active
                    if self._pick(queue, passes[queue.name], now, view, plan)
                ]

        for queue in self._queue_list:
            for entry in passes[queue.name].deferred:
                if entry.state is EntryState.EXAMINING:
                    self._push(queue, entry)
                    if entry.nominated:
                        queue.nominated.append(entry)
            self._admit_overflow(queue)
            live = queue.size
            queue.order.compact(live)
            queue.due.compact(live)
        self._compact_deadlines()

        updates = tuple(status for _, status in self._updates.values())
        self._updates.clear()
        return Plan(
            starts=tuple(plan.starts),
            preemptions=tuple(plan.preemptions),
            failures=tuple(plan.failures),
            waiting=updates,
            depths=self.depths(),
        )

    def _pick(
        self,
        queue: _Queue,
        qpass: _Pass,
        now: float,
        view: CapacityView | None,
        plan: _PlanBuilder,
    ) -> bool:
        """Start one task of `queue`; False when the queue is done for this call."""
        while True:
            if len(queue.running) >= queue.settings.max_concurrent_tasks:
                if queue.settings.preemption:
                    self._try_preemption(queue, qpass, now, view, plan)
                return False
            if qpass.budget <= 0:
                return False
            entry = self._next_candidate(queue)
            if entry is None:
                return False
            if view is not None:
                self._release_reservation(entry, view)
            if not self._may_start_now(queue, entry, now):
                continue
            if queue.exclusive_running:
                self._hold_for_exclusive(queue, qpass, entry)
                return False
            if entry.task.exclusive and queue.running:
                queue.holder = entry
                self._report(
                    entry,
                    BlockReason.WAITING_FOR_CAPACITY,
                    f"runs alone: waits for the running tasks of queue {queue.name} to finish",
                )
                self._defer(qpass, entry)
                return False
            node = None
            if view is not None and queue.settings.resource_aware:
                placed = self._place(queue, entry, view)
                if placed is None:
                    continue
                fits, node = placed
                if not fits:
                    self._defer(qpass, entry)
                    if queue.holder is entry:
                        return False
                    continue
            self._start(queue, entry, node, now, plan)
            return True

    def _next_candidate(self, queue: _Queue) -> WaitingEntry | None:
        holder = queue.holder
        if holder is not None:
            queue.holder = None
            if holder.state is EntryState.QUEUED:
                return self._take(holder)
        while queue.nominated:
            nominated = queue.nominated.popleft()
            if nominated.state is EntryState.QUEUED:
                return self._take(nominated)
        entry = queue.due.pop_due(queue.starts, queue.starvation_limit)
        if entry is None:
            entry = queue.order.pop()
        return None if entry is None else self._take(entry)

    def _may_start_now(self, queue: _Queue, entry: WaitingEntry, now: float) -> bool:
        """Check the task's own constraints; a task that fails one is put aside."""
        task = entry.task
        if task.time_windows and not any_window_open(task.time_windows, now):
            opening = next_window_opening(task.time_windows, now)
            self._park(queue, entry, EntryState.OUTSIDE_WINDOW)
            heapq.heappush(self._window_wakeups, (opening, entry.arrival, entry.version, entry))
            windows = ", ".join(window.describe() for window in task.time_windows)
            self._report(
                entry,
                BlockReason.OUTSIDE_TIME_WINDOW,
                f"may start only inside {windows}; next window opens {_utc(opening)}",
            )
            return False
        mutex_key = task.mutex_key
        if mutex_key is not None:
            blocker = self._mutex_blocker(mutex_key, entry)
            if blocker is not None:
                mutex = self._mutexes[mutex_key]
                if entry.mutex_since is None:
                    entry.mutex_since = mutex.grants
                self._park(queue, entry, EntryState.MUTEX_WAIT)
                mutex.waiters[task.key] = entry
                self._report(entry, BlockReason.MUTEX_HELD, f"mutex {task.mutex} is {blocker}")
                return False
        return True

    def _hold_for_exclusive(self, queue: _Queue, qpass: _Pass, entry: WaitingEntry) -> None:
        runner = next(
            (record.task.key for record in queue.running.values() if record.task.exclusive), "?"
        )
        self._report(
            entry,
            BlockReason.EXCLUSIVE_RUNNING,
            f"{runner} runs alone in queue {queue.name}",
        )
        self._defer(qpass, entry)

    def _place(
        self, queue: _Queue, entry: WaitingEntry, view: CapacityView
    ) -> tuple[bool, str | None] | None:
        """Find room for the task and count it there.

        Returns (True, node) when it fits, (False, None) when it must wait (holding its queue once
        it was passed over often enough), and None when it was put aside as unschedulable.
        """
        task = entry.task
        requests = task.requests
        namespace = task.namespace
        if not view.could_ever_fit(requests):
            self._park(queue, entry, EntryState.UNSCHEDULABLE)
            if not self._unschedulable:
                # Remember the nodes it was judged against; it comes back when they change.
                self._node_shapes = view.node_shapes()
            self._unschedulable[task.key] = entry
            self._report(
                entry,
                BlockReason.UNSCHEDULABLE,
                f"requests ({requests.describe()}) exceed the allocatable resources of every "
                "schedulable node",
            )
            return None
        quota_ok = view.quota_allows(namespace, requests)
        node = view.first_fit(requests) if quota_ok else None
        if node is not None:
            view.take(node, namespace, requests)
            return True, node
        if entry.blocked_since is None:
            entry.blocked_since = queue.starts
        why = (
            f"the remaining ResourceQuota of namespace {namespace}"
            if not quota_ok
            else "the free resources of any node"
        )
        passes = queue.starts - entry.blocked_since
        due = queue.starts - entry.starts_ref >= queue.starvation_limit
        if due or passes >= queue.settings.backfill_limit:
            entry.reserved_node = view.closest_node(requests, entry.reserved_node)
            view.take(entry.reserved_node, namespace, requests)
            self._reserved[task.key] = entry
            queue.holder = entry
            self._report(
                entry,
                BlockReason.WAITING_FOR_CAPACITY,
                f"requests ({requests.describe()}) exceed {why}; queue {queue.name} holds "
                "further starts until they fit",
            )
        else:
            self._report(
                entry,
                BlockReason.WAITING_FOR_CAPACITY,
                f"requests ({requests.describe()}) exceed {why}",
            )
        return False, None

    def _try_preemption(
        self,
        queue: _Queue,
        qpass: _Pass,
        now: float,
        view: CapacityView | None,
        plan: _PlanBuilder,
    ) -> None:
        if qpass.preemption_tried or queue.holder is not None:
            return
        qpass.preemption_tried = True
        top = next((rank for rank in (CRITICAL, HIGH) if queue.ranks[rank]), None)
        if top is None:
            return
        if not any(queue.running_ranks[rank] for rank in range(top)):
            return
        while qpass.budget > 0:
            entry = self._next_candidate(queue)
            if entry is None:
                return
            if view is not None:
                self._release_reservation(entry, view)
            if not self._may_start_now(queue, entry, now):
                continue
            self._defer(qpass, entry)
            task = entry.task
            if entry.nominated or task.priority < HIGH:
                continue
            victim = self._choose_victim(queue, task.priority)
            if victim is None:
                if task.priority == CRITICAL:
                    return
                continue
            victim.terminating = True
            queue.running_ranks[victim.task.priority] -= 1
            entry.nominated = True
            plan.preemptions.append(Preemption(victim.task.key, task.key, queue.name))

    @staticmethod
    def _choose_victim(queue: _Queue, rank: int) -> _Running | None:
        victims = [
            record
            for record in queue.running.values()
            if not record.terminating and record.task.priority < rank
        ]
        if not victims:
            return None
        # Lowest priority first; among equals the most recent start loses the least work.
        return min(
            victims,
            key=lambda record: (record.task.priority, -record.task.started_at, record.task.key),
        )

    def _start(
        self,
        queue: _Queue,
        entry: WaitingEntry,
        node: str | None,
        now: float,
        plan: _PlanBuilder,
    ) -> None:
        task = entry.task
        # Count it running before forgetting it waits, so its mutex record (and the grant count
        # its other waiters are measured on) never lapses in between.
        self._track_running(
            RunningTask(
                key=task.key,
                queue=task.queue,
                priority=task.priority,
                started_at=now,
                tool=task.tool,
                exclusive=task.exclusive,
                mutex=task.mutex,
                requests=task.requests,
            )
        )
        self._forget(entry)
        queue.starts += 1
        mutex_key = task.mutex_key
        if mutex_key is not None:
            mutex = self._mutexes[mutex_key]
            mutex.grants += 1
            if mutex.reserved_for is entry:
                mutex.reserved_for = None
        plan.starts.append(Start(task.key, queue.name, node))

    # -- bookkeeping -------------------------------------------------------------------------

    def _enter(self, queue: _Queue, entry: WaitingEntry) -> None:
        """Put a task into its queue: compute its key, start counting its passes."""
        task = entry.task
        settings = queue.settings
        explicit = task.estimated_duration
        known = explicit if explicit is not None else self._estimator.known(task.tool)
        entry.tier, entry.value = base_key(settings, task, known or 0.0)
        entry.lane = None
        if uses_duration(settings.strategy):
            if explicit is None and task.tool is not None:
                entry.lane = task.tool
            else:
                duration = explicit if explicit is not None else self._estimator.default
                entry.value += duration_term(settings, duration)
        entry.starts_ref = queue.starts
        queue.size += 1
        queue.ranks[task.priority] += 1
        self._push(queue, entry)

    @staticmethod
    def _push(queue: _Queue, entry: WaitingEntry) -> None:
        entry.version += 1
        entry.state = EntryState.QUEUED
        queue.order.push(entry)
        queue.due.push(entry)

    @staticmethod
    def _take(entry: WaitingEntry) -> WaitingEntry:
        entry.version += 1
        entry.state = EntryState.EXAMINING
        return entry

    @staticmethod
    def _defer(qpass: _Pass, entry: WaitingEntry) -> None:
        qpass.budget -= 1
        qpass.deferred.append(entry)

    def _park(self, queue: _Queue, entry: WaitingEntry, state: EntryState) -> None:
        """Put a task aside; its passes stop counting until it comes back."""
        entry.frozen_passes = queue.starts - entry.starts_ref
        entry.state = state
        entry.version += 1
        entry.nominated = False
        if queue.holder is entry:
            queue.holder = None
        self._reserved.pop(entry.task.key, None)
        self._drop_mutex_reservation(entry)

    def _unpark(self, entry: WaitingEntry) -> None:
        queue = self._queues[entry.task.queue]
        entry.starts_ref = queue.starts - entry.frozen_passes
        self._push(queue, entry)

    def _admit_overflow(self, queue: _Queue) -> None:
        limit = queue.settings.max_queued_tasks
        overflow = queue.overflow
        while overflow and (queue.size < limit or overflow[0].state is not EntryState.OVERFLOW):
            entry = overflow.popleft()
            if entry.state is not EntryState.OVERFLOW:
                continue
            queue.overflow_count -= 1
            self._enter(queue, entry)
            self._report(entry, None, "")
        if len(overflow) > 2 * queue.overflow_count + _COMPACT_SLACK:
            queue.overflow = deque(e for e in overflow if e.state is EntryState.OVERFLOW)

    def _forget(self, entry: WaitingEntry) -> None:
        """Take a waiting task out of every structure (it started or left)."""
        task = entry.task
        key = task.key
        del self._waiting[key]
        self._updates.pop(key, None)
        self._reserved.pop(key, None)
        self._unschedulable.pop(key, None)
        if task.deadline is not None:
            self._deadline_live -= 1
        queue = self._queues.get(task.queue)
        state = entry.state
        if queue is not None:
            if state is EntryState.OVERFLOW:
                queue.overflow_count -= 1
            else:
                queue.size -= 1
                queue.ranks[task.priority] -= 1
            if queue.holder is entry:
                queue.holder = None
        entry.state = EntryState.GONE
        entry.version += 1
        mutex_key = task.mutex_key
        if mutex_key is not None:
            mutex = self._mutexes[mutex_key]
            mutex.waiters.pop(key, None)
            mutex.interested -= 1
            self._drop_idle_mutex(mutex_key, mutex)

    def _discard(self, entry: WaitingEntry) -> None:
        """A waiting task leaves without starting."""
        self._drop_mutex_reservation(entry)
        self._forget(entry)

    def _track_running(self, task: RunningTask) -> None:
        record = _Running(task)
        self._running[task.key] = record
        queue = self._queues.get(task.queue)
        if queue is not None:
            queue.running[task.key] = record
            queue.running_ranks[task.priority] += 1
            if task.exclusive:
                queue.exclusive_running += 1
        mutex_key = task.mutex_key
        if mutex_key is not None:
            self._mutex(mutex_key).holders.add(task.key)

    def _release(self, key: str) -> None:
        record = self._running.pop(key)
        task = record.task
        queue = self._queues.get(task.queue)
        if queue is not None:
            del queue.running[key]
            if not record.terminating:
                queue.running_ranks[task.priority] -= 1
            if task.exclusive:
                queue.exclusive_running -= 1
        mutex_key = task.mutex_key
        if mutex_key is not None:
            mutex = self._mutexes[mutex_key]
            mutex.holders.discard(key)
            if not mutex.holders:
                self._mutex_freed(mutex)
            self._drop_idle_mutex(mutex_key, mutex)

    # -- mutexes -----------------------------------------------------------------------------

    def _mutex(self, mutex_key: str) -> _Mutex:
        mutex = self._mutexes.get(mutex_key)
        if mutex is None:
            mutex = self._mutexes[mutex_key] = _Mutex()
        return mutex

    def _drop_idle_mutex(self, mutex_key: str, mutex: _Mutex) -> None:
        if not mutex.holders and not mutex.interested:
            self._mutexes.pop(mutex_key, None)

    def _mutex_blocker(self, mutex_key: str, entry: WaitingEntry) -> str | None:
        """Why the mutex is not available to `entry` ("held by x", "reserved for y"), or None."""
        mutex = self._mutexes.get(mutex_key)
        if mutex is None:
            return None
        if mutex.holders:
            return f"held by {min(mutex.holders)}"
        reserved = mutex.reserved_for
        if reserved is None or reserved is entry:
            return None
        if reserved.state in (EntryState.QUEUED, EntryState.EXAMINING):
            return f"reserved for {reserved.task.key}, which waited longest for it"
        mutex.reserved_for = None
        return None

    def _drop_mutex_reservation(self, entry: WaitingEntry) -> None:
        mutex_key = entry.task.mutex_key
        if mutex_key is None:
            return
        mutex = self._mutexes.get(mutex_key)
        if mutex is not None and mutex.reserved_for is entry:
            mutex.reserved_for = None
            if not mutex.holders:
                self._mutex_freed(mutex)

    def _mutex_freed(self, mutex: _Mutex) -> None:
        """Nobody holds the mutex: bring its waiters back, or only the one starved for it."""
        waiters = mutex.waiters
        if not waiters:
            return
        oldest = min(
            waiters.values(),
            key=lambda entry: (
                entry.mutex_since if entry.mutex_since is not None else mutex.grants,
                entry.arrival,
            ),
        )
        since = oldest.mutex_since if oldest.mutex_since is not None else mutex.grants
        limit = self._queues[oldest.task.queue].starvation_limit
        if mutex.grants - since >= limit:
            mutex.reserved_for = oldest
            back: Iterable[WaitingEntry] = (oldest,)
            del waiters[oldest.task.key]
        else:
            back = list(waiters.values())
            waiters.clear()
        for entry in back:
            self._unpark(entry)

    # -- periodic duties of a decision -------------------------------------------------------

    def _index_deadline(self, entry: WaitingEntry) -> None:
        task = entry.task
        if task.deadline is None:
            return
        self._deadline_live += 1
        self._deadline_items += 1
        if task.estimated_duration is None and task.tool is not None:
            heap = self._tool_deadlines.setdefault(task.tool, [])
            heapq.heappush(heap, (task.deadline, entry.arrival, entry))
        else:
            latest_start = task.deadline - (task.estimated_duration or 0.0)
            heapq.heappush(self._deadlines, (latest_start, entry.arrival, entry))

    def _expire_deadlines(self, now: float, plan: _PlanBuilder) -> None:
        heap = self._deadlines
        while heap and heap[0][0] < now:
            _, _, entry = heapq.heappop(heap)
            self._deadline_items -= 1
            self._fail_deadline(entry, now, plan)
        for tool, tool_heap in list(self._tool_deadlines.items()):
            known = self._estimator.known(tool) or 0.0
            while tool_heap and tool_heap[0][0] - known < now:
                _, _, entry = heapq.heappop(tool_heap)
                self._deadline_items -= 1
                self._fail_deadline(entry, now, plan)
            if not tool_heap:
                del self._tool_deadlines[tool]

    def _fail_deadline(self, entry: WaitingEntry, now: float, plan: _PlanBuilder) -> None:
        task = entry.task
        if entry.state is EntryState.GONE or task.deadline is None:
            return
        duration = task.estimated_duration
        if duration is None:
            duration = self._estimator.known(task.tool)
        estimate = "" if not duration else f" with an estimated {duration:.0f}s to run"
        self._discard(entry)
        plan.failures.append(
            Failure(
                task.key,
                DEADLINE_MISSED,
                f"cannot finish by its deadline {_utc(task.deadline)}: still waiting at "
                f"{_utc(now)}{estimate}",
            )
        )

    def _compact_deadlines(self) -> None:
        if self._deadline_items <= 2 * self._deadline_live + _COMPACT_SLACK:
            return
        self._deadlines = [item for item in self._deadlines if item[2].state is not EntryState.GONE]
        heapq.heapify(self._deadlines)
        total = len(self._deadlines)
        for tool, heap in list(self._tool_deadlines.items()):
            kept = [item for item in heap if item[2].state is not EntryState.GONE]
            if kept:
                heapq.heapify(kept)
                self._tool_deadlines[tool] = kept
                total += len(kept)
            else:
                del self._tool_deadlines[tool]
        self._deadline_items = total

    def _wake_windows(self, now: float) -> None:
        wakeups = self._window_wakeups
        while wakeups and wakeups[0][0] <= now:
            _, _, version, entry = heapq.heappop(wakeups)
            if entry.version == version and entry.state is EntryState.OUTSIDE_WINDOW:
                self._unpark(entry)

    def _wake_unschedulable(self, view: CapacityView | None) -> None:
        shapes = None if view is None else view.node_shapes()
        if shapes == self._node_shapes:
            return
        self._node_shapes = shapes
        entries = list(self._unschedulable.values())
        self._unschedulable.clear()
        for entry in entries:
            self._unpark(entry)

    def _hold_back_reservations(self, view: CapacityView) -> None:
        for key, entry in list(self._reserved.items()):
            if entry.state is not EntryState.QUEUED:
                del self._reserved[key]
                continue
            node = entry.reserved_node
            if node is not None and not view.has_node(node):
                entry.reserved_node = node = None
            view.take(node, entry.task.namespace, entry.task.requests)

    def _release_reservation(self, entry: WaitingEntry, view: CapacityView) -> None:
        if self._reserved.pop(entry.task.key, None) is not None:
            view.give_back(entry.reserved_node, entry.task.namespace, entry.task.requests)

    def _report(self, entry: WaitingEntry, reason: BlockReason | None, message: str) -> None:
        current = (reason, message)
        if entry.reported == current:
            return
        key = entry.task.key
        pending = self._updates.get(key)
        # The caller heard of the state before any update still pending; a change back to that
        # state within one call is no news.
        heard = entry.reported if pending is None else pending[0]
        entry.reported = current
        if heard == current:
            del self._updates[key]
        else:
            self._updates[key] = (heard, WaitingStatus(key, reason, message))
