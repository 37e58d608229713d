"""The scheduler: which waiting tasks start now, which running ones to evict, which to fail.

`Scheduler` is the in-memory index of waiting and running tasks (a cache the operator rebuilds from
Task statuses on start) and `Scheduler.schedule(now, capacity)` is one decision: it returns a `Plan`
and applies it to the index at once, so the caller only has to carry it out. Nothing here reads a
clock or does I/O; time is always the `now` the caller passes. This module states the rules; the
`ledger` keeps the tasks and moves them between places, a `decision` carries out one call, and
`queues`, `mutexes`, `deadlines` and `reasons` each keep their share of the index.

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

`capacity=None` means the free room is unknown: every resource check is skipped. A known capacity
without a single node (all cordoned, tainted NoSchedule or not Ready) means no pod could be placed,
so nothing starts in any queue, resource-aware or not: a started task would only leave a Pending
pod. Each queue with a free slot still examines its candidates, up to `scan_depth`, and each one
that its own constraints (time windows, mutex) let start waits in place with reason
`NoSchedulableNodes`: it is neither failed nor put aside as `Unschedulable`, it takes no hold on its
queue (one that held it before keeps its hold), and as nothing starts no passes are counted and the
turn of the queues does not move on. Deadlines still fail tasks; nothing is preempted; tasks put
aside as `Unschedulable` stay aside, as they were judged against real nodes. The first call with
nodes (or with capacity unknown) lifts `NoSchedulableNodes` from every task still carrying it: it is
reported as simply waiting unless that call gives it another reason.

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
it leaves waiting in place (too big for now, held back by an exclusive task, no node at all), which
bounds the cost of a call when many tasks do not fit; tasks put aside (time window, mutex,
unschedulable) do not count, since each is put aside once and costs nothing until it comes back.

Exclusive: once an exclusive task is the next candidate of its queue, it holds the queue until the
queue's running tasks have finished, then starts alone; while it runs nothing else of its queue
starts (`ExclusiveRunning`).

Preemption (per queue): when the queue has no free slot and no task holds it, a waiting High or
Critical task may evict the running task of the queue with the lowest priority, strictly below its
own (the most recently started among equals, losing the least work). The victim keeps its slot until
the caller reports it gone; the preemptor then starts before anything else of its queue. Preemption
frees slots only: it is not used to make room for resources.
"""

from execflow.api.settings import OperatorSettings
from execflow.core.scheduling.decision import Decision
from execflow.core.scheduling.estimates import DurationEstimator
from execflow.core.scheduling.ledger import Ledger
from execflow.core.scheduling.model import Capacity, Plan, QueueDepth, RunningTask, WaitingTask

DEFAULT_SCAN_DEPTH = 64
"""Tasks a queue may look at per call without starting them (skipped for resources, held)."""


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
        self._ledger = Ledger(settings, DurationEstimator() if estimator is None else estimator)
        self._scan_depth = scan_depth
        self._rotation = 0

    # -- what the caller reports -------------------------------------------------------------

    @property
    def estimator(self) -> DurationEstimator:
        """The learned per-tool durations."""
        return self._ledger.estimator

    def add(self, task: WaitingTask) -> None:
        """Make `task` wait for a start; idempotent for an unchanged task.

        A changed task replaces the previous version. A task of the same key still counted as
        running is released first (a preempted or retried task coming back).
        """
        self._ledger.add(task)

    def add_running(self, task: RunningTask) -> None:
        """Count `task` as running (it holds a slot, its mutex, its queue if exclusive)."""
        self._ledger.add_running(task)

    def finish(self, key: str, *, now: float, succeeded: bool) -> None:
        """A running task ended; a success teaches its tool's duration (now - started_at)."""
        self._ledger.finish(key, now=now, succeeded=succeeded)

    def learn_duration(self, tool: str, seconds: float) -> None:
        """Teach one successful run of `tool` (also how past runs are replayed after a restart)."""
        self._ledger.learn_duration(tool, seconds)

    def remove(self, key: str) -> bool:
        """Forget a waiting or running task (deleted, cancelled, suspended, evicted).

        Returns whether the scheduler knew it.
        """
        return self._ledger.remove(key)

    # -- what the caller may ask -------------------------------------------------------------

    def is_waiting(self, key: str) -> bool:
        """Whether the task waits (inside or outside its queue)."""
        return self._ledger.is_waiting(key)

    def running_task(self, key: str) -> RunningTask | None:
        """The running task of that key, or None."""
        return self._ledger.running_task(key)

    def running_keys(self) -> frozenset[str]:
        """Keys of every task counted as running, preemption victims included."""
        return self._ledger.running_keys()

    def depths(self) -> dict[str, QueueDepth]:
        """Per configured queue: waiting inside, waiting outside (QueueFull), running."""
        return self._ledger.depths()

    # -- the decision ------------------------------------------------------------------------

    def schedule(self, now: float, capacity: Capacity | None = None) -> Plan:
        """Decide what happens now, apply it to the index and return it.

        `capacity` is the cluster's free room; None skips every resource check (for example before
        the node list is known), while a capacity without nodes starts nothing.
        """
        plan = Decision(self._ledger, now, capacity, self._scan_depth).run(self._rotation)
        # A call without nodes starts nothing, so the queue whose turn it was keeps it.
        if capacity is None or capacity.nodes:
            self._rotation += 1
        return plan
