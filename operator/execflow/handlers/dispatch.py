"""The scheduler's seat in the operator: what reconciles report, when to decide, what to carry out.

Task reconciles report each Task's place synchronously (`offer` a waiting Task, `hold` a running
one, `release` one that wants no slot); nothing here does I/O on their behalf. The decision loop
wakes on those reports, on capacity changes and on a tick while tasks wait (time windows open and
deadlines pass without events), asks the scheduler for a plan and carries it out through the Task
controller's actions: start attempts, fail tasks, preempt, and write waiting reasons. A Task that
the scheduler leaves waiting gets its Queued status (and its reason) from here, after the decision,
so a Task that starts at once is never written as Queued first.

The first decision waits until every Task listed at start-up has been reconciled once, so the
running attempts hold their slots before anything new starts.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import Awaitable, Callable

from execflow import metrics
from execflow.api import timestamps
from execflow.api.reasons import Reason
from execflow.api.settings import OperatorSettings
from execflow.api.task import TaskPhase, TaskStatus
from execflow.core.cluster_capacity import CapacityTracker
from execflow.core.scheduling import Capacity, Plan, RunningTask, Scheduler, WaitingTask
from execflow.handlers.tasks import TaskController
from execflow.kube.errors import ApiError, ConflictError

log = logging.getLogger("execflow.dispatch")

DISPATCH_TICK = 1.0
ACTIONS_AT_ONCE = 64
"""Scheduling actions (starts, waiting reasons, failures, preemptions) in flight at once: 10,000
Tasks queued at once must not become 10,000 concurrent requests and their buffers."""
DECISION_WINDOW = 0.005
"""After a wake, wait this long for more: a burst of offers and releases makes one decision."""

Key = tuple[str, str]


def _key_of(text: str) -> Key:
    namespace, _, name = text.partition("/")
    return (namespace, name)


class Dispatcher:
    def __init__(
        self,
        settings: OperatorSettings,
        tasks: TaskController,
        capacity: CapacityTracker,
        capacity_known: Callable[[], bool],
        clock: Callable[[], datetime.datetime] = timestamps.now,
    ) -> None:
        self.settings = settings
        self.scheduler = Scheduler(settings)
        self.capacity = capacity
        self._capacity_known = capacity_known
        self._tasks = tasks
        self._clock = clock
        self._waiting: dict[str, WaitingTask] = {}
        self._running: dict[str, RunningTask] = {}
        self._uids: dict[str, str] = {}
        self._said: dict[str, tuple[str, str, str]] = {}
        """What each waiting Task's status says: phase, reason, message."""
        self._verdicts: dict[str, tuple[str, str]] = {}
        """The scheduler's latest reason (and message) for each waiting Task that has one."""
        self._news: set[str] = set()
        self._starting: dict[str, float] = {}
        """Tasks the last decision started, with the time they had been queued since."""
        self._wake = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._actions = asyncio.Semaphore(ACTIONS_AT_ONCE)
        """Decisions being carried out; the next decision does not wait for them."""

    # ----- what reconciles report ------------------------------------------------------------
    def offer(self, task: WaitingTask, uid: str, status: TaskStatus) -> None:
        key = task.key
        self._uids[key] = uid
        self._running.pop(key, None)
        if self._waiting.get(key) != task:
            self._waiting[key] = task
            self.scheduler.add(task)
            self._wake.set()
        said = (status.phase.value, status.reason, status.message)
        if self._said.get(key) != said:
            self._said[key] = said
            self._news.add(key)
            self._wake.set()

    def hold(self, task: RunningTask, uid: str) -> None:
        key = task.key
        self._uids[key] = uid
        self._forget_waiting(key)
        if self._running.get(key) != task:
            self._running[key] = task
            self.scheduler.add_running(task)

    def release(self, key: str) -> None:
        self._forget_waiting(key)
        self._running.pop(key, None)
        self._uids.pop(key, None)
        if self.scheduler.remove(key):
            self.capacity.forget(key)
            self._wake.set()

    def _forget_waiting(self, key: str) -> None:
        self._waiting.pop(key, None)
        self._said.pop(key, None)
        self._verdicts.pop(key, None)
        self._news.discard(key)

    def learn(self, tool: str, seconds: float) -> None:
        self.scheduler.learn_duration(tool, seconds)

    def wake(self) -> None:
        self._wake.set()

    def reconfigure(self, settings: OperatorSettings) -> None:
        """New settings: a new scheduler that knows every task the old one knew."""
        scheduler = Scheduler(settings, estimator=self.scheduler.estimator)
        for running in self._running.values():
            scheduler.add_running(running)
        for waiting in sorted(self._waiting.values(), key=lambda t: t.queued_at):
            scheduler.add(waiting)
        self.settings = settings
        self.scheduler = scheduler
        self._news.update(self._waiting)
        self._wake.set()

    # ----- deciding ----------------------------------------------------------------------------
    async def run(self, ready: asyncio.Event) -> None:
        await ready.wait()
        loop = asyncio.get_running_loop()
        try:
            while True:
                await self._wake.wait()
                # Let the changes of the same burst arrive: one decision for all of them.
                await asyncio.sleep(DECISION_WINDOW)
                self._wake.clear()
                try:
                    plan = self.decide()
                except Exception:  # a bug here must not stop scheduling for good
                    log.exception("a scheduling decision failed; deciding again")
                    loop.call_later(DISPATCH_TICK, self._wake.set)
                else:
                    # Carried out in the background: the slots are taken already, and a burst
                    # of Tasks must not wait for the slowest API call of the previous decision.
                    action = asyncio.create_task(self._carry_out_safely(plan), name="scheduling")
                    self._in_flight.add(action)
                    action.add_done_callback(self._in_flight.discard)
                if self._waiting:
                    # Time windows open and deadlines pass without any event: look again soon.
                    loop.call_later(DISPATCH_TICK, self._wake.set)
        finally:
            for action in self._in_flight:
                action.cancel()

    def _capacity_now(self) -> Capacity | None:
        return self.capacity.snapshot() if self._capacity_known() else None

    def decide(self) -> Plan:
        now = self._clock()
        started = time.perf_counter()
        plan = self.scheduler.schedule(now.timestamp(), self._capacity_now())
        metrics.DECISION_SECONDS.observe(time.perf_counter() - started)
        for start in plan.starts:
            waited = self._waiting.get(start.key)
            self._starting[start.key] = waited.queued_at if waited is not None else now.timestamp()
            self._forget_waiting(start.key)
            running = self.scheduler.running_task(start.key)
            if running is not None:
                self._running[start.key] = running
                self.capacity.plan(start.key, start.node, running.requests)
        for failure in plan.failures:
            self._forget_waiting(failure.key)
        for waiting in plan.waiting:
            if waiting.reason is None:
                self._verdicts.pop(waiting.key, None)
            else:
                self._verdicts[waiting.key] = (waiting.reason.value, waiting.message)
            self._news.add(waiting.key)
        for queue, depth in plan.depths.items():
            metrics.QUEUE_DEPTH.labels(queue=queue).set(depth.waiting + depth.overflow)
        return plan

    async def _carry_out_safely(self, plan: Plan) -> None:
        try:
            await self._carry_out(plan)
        except Exception:  # a bug here must not stop scheduling for good
            log.exception("carrying out a scheduling decision failed; deciding again")
            asyncio.get_running_loop().call_later(DISPATCH_TICK, self._wake.set)

    async def _carry_out(self, plan: Plan) -> None:
        actions: list[Awaitable[None]] = []
        for start in plan.starts:
            actions.append(self._start(start.key))
        for failure in plan.failures:
            uid = self._uids.pop(failure.key, None)
            if uid is not None:
                actions.append(
                    self._tasks.fail(_key_of(failure.key), uid, failure.reason, failure.message)
                )
        for preemption in plan.preemptions:
            metrics.PREEMPTIONS.labels(queue=preemption.queue).inc()
            uid = self._uids.get(preemption.victim)
            if uid is not None:
                actions.append(
                    self._tasks.preempt(_key_of(preemption.victim), uid, preemption.preemptor)
                )
        actions += self._waiting_reasons()
        results = await asyncio.gather(*map(self._limited, actions), return_exceptions=True)
        for result in results:
            if isinstance(result, ConflictError):
                continue  # the Task changed meanwhile; its reconcile sees the change
            if isinstance(result, ApiError):
                log.warning("a scheduling action failed: %s", result)
            elif isinstance(result, BaseException):
                log.error("a scheduling action failed: %s", result, exc_info=result)

    async def _limited(self, action: Awaitable[None]) -> None:
        async with self._actions:
            await action

    def _waiting_reasons(self) -> list[Awaitable[None]]:
        """Queued statuses to write for waiting Tasks whose status does not say it yet."""
        actions: list[Awaitable[None]] = []
        for key in self._news:
            task = self._waiting.get(key)
            uid = self._uids.get(key)
            if task is None or uid is None or not self.scheduler.is_waiting(key):
                continue
            reason, message = self._verdicts.get(
                key, (Reason.QUEUED.value, f"waiting in queue {task.queue}")
            )
            said = (TaskPhase.QUEUED.value, reason, message)
            if self._said.get(key) == said:
                continue
            self._said[key] = said
            queued_at = timestamps.from_epoch(task.queued_at)
            actions.append(self._tasks.wait(_key_of(key), uid, reason, message, queued_at))
        self._news.clear()
        return actions

    async def _start(self, key: str) -> None:
        uid = self._uids.get(key)
        running = self._running.get(key)
        queued_at = timestamps.from_epoch(self._starting.pop(key, self._clock().timestamp()))
        started = False
        try:
            if uid is not None:
                started = await self._tasks.start(_key_of(key), uid, queued_at)
        finally:
            if not started and self._running.get(key) is running:
                # The slot was not used: give it back; the Task's reconcile offers it again.
                self._running.pop(key, None)
                if self.scheduler.remove(key):
                    self.capacity.forget(key)
                    self._wake.set()
                self._tasks.runtime.enqueue(_key_of(key))
