"""One scheduling call, step by step: its duties in order and each queue's candidate loop.

The rules are those described in `execflow.core.scheduling.scheduler`; this module carries them out
over the ledger. What a call depends on is fixed when it begins (the instant, the free capacity, the
scan budget per queue), so a `Decision` lives for one call and is then dropped.

Starting a task, preempting for one and telling it that no node exists all begin alike: take the
queue's next candidate, give it back the room held for it, and check its own constraints (time
windows, mutex), putting it aside when one fails. `_next_startable` is that shared part; `_pick`,
`_try_preemption` and `_wait_for_nodes` differ only in what they do with the candidate it returns.
"""

from dataclasses import dataclass, field

from execflow.core.scheduling.capacity import CapacityView
from execflow.core.scheduling.index import WaitingEntry
from execflow.core.scheduling.ledger import Ledger
from execflow.core.scheduling.model import (
    CRITICAL,
    HIGH,
    BlockReason,
    Capacity,
    Plan,
    Preemption,
    Start,
    utc_text,
)
from execflow.core.scheduling.queues import QueueState
from execflow.core.scheduling.windows import any_window_open, next_window_opening

_NO_NODES_MESSAGE = (
    "no schedulable node in the cluster (all cordoned, tainted or not Ready); waiting for one"
)


@dataclass
class _Pass:
    """One queue's progress within one call."""

    budget: int
    deferred: list[WaitingEntry] = field(default_factory=list)
    preemption_tried: bool = False

    def defer(self, entry: WaitingEntry) -> None:
        """The task was examined and waits on in place, which costs one unit of the budget."""
        self.budget -= 1
        self.deferred.append(entry)


class Decision:
    """One `Scheduler.schedule` call over the ledger."""

    def __init__(
        self, ledger: Ledger, now: float, capacity: Capacity | None, scan_depth: int
    ) -> None:
        self._ledger = ledger
        self._now = now
        self._scan_depth = scan_depth
        self._no_nodes = capacity is not None and not capacity.nodes
        """The nodes are known and none is schedulable: nothing may start."""
        self._view = None if capacity is None or self._no_nodes else CapacityView(capacity)
        self._starts: list[Start] = []
        self._preemptions: list[Preemption] = []

    def run(self, rotation: int) -> Plan:
        """Decide, apply to the ledger, return the plan; queue `rotation` (modulo) goes first."""
        ledger = self._ledger
        failures = ledger.deadlines.expire(self._now)
        ledger.wake_windows(self._now)
        if not self._no_nodes:
            # Without nodes, unschedulable tasks stay aside: they were judged against real nodes.
            ledger.wake_unschedulable(self._view)
            ledger.reasons.lift_no_nodes()
        queues = ledger.queue_list
        for queue in queues:
            ledger.admit_overflow(queue)
        if self._view is not None:
            ledger.hold_back_reservations(self._view)

        passes = {queue.name: _Pass(self._scan_depth) for queue in queues}
        if queues:
            first = rotation % len(queues)
            active = queues[first:] + queues[:first]
            while active:
                active = [queue for queue in active if self._pick(queue, passes[queue.name])]

        for queue in queues:
            queue.put_back(passes[queue.name].deferred)
            ledger.admit_overflow(queue)
            queue.compact()
        ledger.deadlines.compact()
        return Plan(
            starts=tuple(self._starts),
            preemptions=tuple(self._preemptions),
            failures=tuple(failures),
            waiting=ledger.reasons.drain(),
            depths=ledger.depths(),
        )

    def _pick(self, queue: QueueState, qpass: _Pass) -> bool:
        """Start one task of `queue`; False when the queue is done for this call."""
        if self._no_nodes:
            self._wait_for_nodes(queue, qpass)
            return False
        if len(queue.running) >= queue.settings.max_concurrent_tasks:
            if queue.settings.preemption:
                self._try_preemption(queue, qpass)
            return False
        view = self._view if queue.settings.resource_aware else None
        while (entry := self._next_startable(queue, qpass)) is not None:
            if self._held_by_exclusive(queue, qpass, entry):
                return False
            node = None
            if view is not None:
                node = self._place(queue, qpass, entry, view)
                if node is None:
                    if queue.holder is entry:
                        return False
                    continue
            self._start(queue, entry, node)
            return True
        return False

    def _wait_for_nodes(self, queue: QueueState, qpass: _Pass) -> None:
        """No node to run on: tell the candidates a start would reach why they wait."""
        if len(queue.running) >= queue.settings.max_concurrent_tasks:
            return
        holder = queue.holder
        while (entry := self._next_startable(queue, qpass)) is not None:
            self._ledger.reasons.report(entry, BlockReason.NO_SCHEDULABLE_NODES, _NO_NODES_MESSAGE)
            qpass.defer(entry)
            if entry is holder:
                # It held the queue before the nodes went; it keeps the hold for their return.
                queue.holder = entry
                return

    def _next_startable(self, queue: QueueState, qpass: _Pass) -> WaitingEntry | None:
        """The queue's next candidate that its own constraints let start, within the budget."""
        while qpass.budget > 0:
            entry = queue.next_candidate()
            if entry is None:
                return None
            if self._view is not None:
                self._ledger.release_reservation(entry, self._view)
            if self._may_start_now(queue, entry):
                return entry
        return None

    def _may_start_now(self, queue: QueueState, entry: WaitingEntry) -> bool:
        """Check the task's own constraints; a task that fails one is put aside."""
        ledger = self._ledger
        task = entry.task
        now = self._now
        if task.time_windows and not any_window_open(task.time_windows, now):
            opening = next_window_opening(task.time_windows, now)
            ledger.wait_for_window(queue, entry, opening)
            windows = ", ".join(window.describe() for window in task.time_windows)
            ledger.reasons.report(
                entry,
                BlockReason.OUTSIDE_TIME_WINDOW,
                f"may start only inside {windows}; next window opens {utc_text(opening)}",
            )
            return False
        mutex_key = task.mutex_key
        if mutex_key is not None:
            blocker = ledger.mutexes.blocker(mutex_key, entry)
            if blocker is not None:
                ledger.wait_for_mutex(queue, entry, mutex_key)
                ledger.reasons.report(
                    entry, BlockReason.MUTEX_HELD, f"mutex {task.mutex} is {blocker}"
                )
                return False
        return True

    def _held_by_exclusive(self, queue: QueueState, qpass: _Pass, entry: WaitingEntry) -> bool:
        """Whether exclusivity keeps the task from starting now (it then waits in place)."""
        reasons = self._ledger.reasons
        if queue.exclusive_running:
            runner = next(
                (record.task.key for record in queue.running.values() if record.task.exclusive),
                "?",
            )
            reasons.report(
                entry,
                BlockReason.EXCLUSIVE_RUNNING,
                f"{runner} runs alone in queue {queue.name}",
            )
        elif entry.task.exclusive and queue.running:
            queue.holder = entry
            reasons.report(
                entry,
                BlockReason.WAITING_FOR_CAPACITY,
                f"runs alone: waits for the running tasks of queue {queue.name} to finish",
            )
        else:
            return False
        qpass.defer(entry)
        return True

    def _place(
        self, queue: QueueState, qpass: _Pass, entry: WaitingEntry, view: CapacityView
    ) -> str | None:
        """Find room for the task and count it there; the node, or None when it cannot start.

        A task that does not fit waits in place (holding its queue once it was passed over often
        enough); one that could fit no node at all is put aside as unschedulable.
        """
        task = entry.task
        requests = task.requests
        if not view.could_ever_fit(requests):
            self._ledger.set_unschedulable(queue, entry, view)
            self._ledger.reasons.report(
                entry,
                BlockReason.UNSCHEDULABLE,
                f"requests ({requests.describe()}) exceed the allocatable resources of every "
                "schedulable node",
            )
            return None
        namespace = task.namespace
        quota_ok = view.quota_allows(namespace, requests)
        node = view.first_fit(requests) if quota_ok else None
        if node is not None:
            view.take(node, namespace, requests)
            return node
        self._wait_for_room(queue, entry, view, quota_ok=quota_ok)
        qpass.defer(entry)
        return None

    def _wait_for_room(
        self, queue: QueueState, entry: WaitingEntry, view: CapacityView, *, quota_ok: bool
    ) -> None:
        """The task does not fit now; past the backfill limit (or due) it holds its queue."""
        requests = entry.task.requests
        if entry.blocked_since is None:
            entry.blocked_since = queue.starts
        why = (
            f"the remaining ResourceQuota of namespace {entry.task.namespace}"
            if not quota_ok
            else "the free resources of any node"
        )
        passes = queue.starts - entry.blocked_since
        due = queue.starts - entry.starts_ref >= queue.starvation_limit
        message = f"requests ({requests.describe()}) exceed {why}"
        if due or passes >= queue.settings.backfill_limit:
            self._ledger.reserve(queue, entry, view)
            message += f"; queue {queue.name} holds further starts until they fit"
        self._ledger.reasons.report(entry, BlockReason.WAITING_FOR_CAPACITY, message)

    def _try_preemption(self, queue: QueueState, qpass: _Pass) -> None:
        """The queue is full: evict for its High and Critical candidates (once per call)."""
        if qpass.preemption_tried or queue.holder is not None:
            return
        qpass.preemption_tried = True
        if not queue.may_preempt():
            return
        while (entry := self._next_startable(queue, qpass)) is not None:
            qpass.defer(entry)
            task = entry.task
            if entry.nominated or task.priority < HIGH:
                continue
            victim = queue.choose_victim(task.priority)
            if victim is None:
                if task.priority == CRITICAL:
                    return
                continue
            queue.evict(victim)
            entry.nominated = True
            self._preemptions.append(Preemption(victim.task.key, task.key, queue.name))

    def _start(self, queue: QueueState, entry: WaitingEntry, node: str | None) -> None:
        self._ledger.start(queue, entry, self._now)
        self._starts.append(Start(entry.task.key, queue.name, node))
