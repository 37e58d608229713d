"""The Task controller: wiring only — which snapshot, which pure functions, which writes.

A reconcile takes the Task's snapshot from the stores, asks the core for the view and the plan,
and applies the plan: Job marks and deletions, the status write (only what differs), the Task's
place in the scheduler (`Slot`). The scheduler's decisions come back as the actions below (start
an attempt, write a waiting reason, fail, preempt), each carried out in the Task's turn of the
work queue and written into its status at once, so nothing the scheduler decided waits in memory
for a later reconcile.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from typing import NamedTuple, Protocol

from execflow import metrics
from execflow.api import timestamps
from execflow.api.reasons import Reason
from execflow.api.task import TaskStatus
from execflow.core.scheduling import RunningTask, WaitingTask
from execflow.core.tasks.attempts import STOPPED_ANNOTATION, stop_marker
from execflow.core.tasks.lifecycle import (
    Event,
    Slot,
    TaskPlan,
    failed_status,
    next_attempt_number,
    plan,
    queued_status,
    started_status,
)
from execflow.core.tasks.queueing import queued_since, running_task, scheduler_key, waiting_task
from execflow.core.tasks.status import status_update
from execflow.core.tasks.view import TaskSettings, TaskView
from execflow.handlers.stores import Stores, controller_uid
from execflow.handlers.task_reading import TaskReader
from execflow.kube.client import JOBS, TASKS, Kube
from execflow.kube.errors import ConflictError, ForbiddenError, InvalidError, NotFoundError
from execflow.kube.events import EventRecorder
from execflow.kube.job_builder import Owner, build_job
from execflow.runtime.controller import Controller, Result
from execflow.runtime.store import Body, uid_of

log = logging.getLogger("execflow.tasks")

Key = tuple[str, str]


class Seats(Protocol):
    """What a reconcile tells the scheduler about a Task's place (see `dispatch.Dispatcher`)."""

    def offer(self, task: WaitingTask, uid: str, status: TaskStatus) -> None: ...

    def hold(self, task: RunningTask, uid: str) -> None: ...

    def release(self, key: str) -> None: ...

    def learn(self, tool: str, seconds: float) -> None: ...


def _version(body: Body) -> str:
    return str(body["metadata"].get("resourceVersion") or "")


class _Waiting(NamedTuple):
    """A Task that still waits for the start the scheduler decided: as stored, viewed, when."""

    body: Body
    view: TaskView
    now: datetime.datetime


class TaskController:
    def __init__(
        self,
        stores: Stores,
        kube: Kube,
        events: EventRecorder,
        settings: TaskSettings,
        clock: Callable[[], datetime.datetime] = timestamps.now,
    ) -> None:
        self.stores = stores
        self.kube = kube
        self.events = events
        self.reader = TaskReader(stores, settings)
        self.clock = clock
        self.runtime: Controller[Key] = Controller("tasks", self)
        self.seats: Seats | None = None
        """The scheduler's seat for Tasks, wired at start-up."""

    # ----- reading --------------------------------------------------------------------------
    @property
    def settings(self) -> TaskSettings:
        return self.reader.settings

    @settings.setter
    def settings(self, settings: TaskSettings) -> None:
        self.reader.settings = settings

    def view(self, body: Body, now: datetime.datetime) -> TaskView:
        return self.reader.view(body, now)

    # ----- reconcile ------------------------------------------------------------------------
    async def reconcile(self, key: Key) -> Result:
        body = self.stores.tasks.named(*key)
        if body is None:
            self._dispatch().release(scheduler_key(*key))
            return Result()
        now = self.clock()
        view = self.view(body, now)
        decision = plan(view, now)
        await self._apply(key, body, view, decision, now)
        if decision.requeue_at is None:
            return Result()
        return Result(requeue_after=max(0.0, (decision.requeue_at - now).total_seconds()))

    async def report_failure(self, key: Key, error: Exception) -> None:
        """An unexpected error: say so in the status, keeping the phase, until a reconcile works."""
        body = self.stores.tasks.named(*key)
        if body is None:
            return
        status = TaskStatus.model_validate(body.get("status") or {})
        if status.phase.is_terminal:
            return
        message = (
            f"the operator cannot reconcile this Task ({type(error).__name__}: {error}); it "
            "keeps retrying with backoff. This is a bug in execflow: please report it"
        )[:1024]
        now = self.clock()
        desired = TaskStatus(phase=status.phase, reason=Reason.OPERATOR_ERROR, message=message)
        await self.write_status(key, body, desired, now)

    async def _apply(
        self, key: Key, body: Body, view: TaskView, decision: TaskPlan, now: datetime.datetime
    ) -> None:
        namespace, _ = key
        for attempt in decision.stop_jobs:
            patch = {
                "metadata": {"annotations": {STOPPED_ANNOTATION: stop_marker(attempt)}},
                "spec": {"suspend": True},
            }
            self.stores.jobs.put(await self.kube.patch(JOBS, namespace, attempt.job_name, patch))
        for job in decision.delete_jobs:
            await self._delete_job(namespace, job)
        self._place(key, body, view, decision, now)
        if decision.learned_seconds is not None and view.spec and view.spec.tool_ref:
            self._dispatch().learn(view.spec.tool_ref.name, decision.learned_seconds)
            metrics.RUN_SECONDS.observe(decision.learned_seconds)
        await self.write_status(key, body, decision.status, now, decision.events)

    def _place(
        self, key: Key, body: Body, view: TaskView, decision: TaskPlan, now: datetime.datetime
    ) -> None:
        dispatcher = self._dispatch()
        task_key = scheduler_key(*key)
        if decision.slot is Slot.WANT:
            waiting = waiting_task(task_key, view, queued_since(view, now))
            dispatcher.offer(waiting, uid_of(body), view.status)
        elif decision.slot is Slot.HOLD:
            started = view.status.start_time or now
            dispatcher.hold(running_task(task_key, view, started), uid_of(body))
        else:
            dispatcher.release(task_key)

    async def write_status(
        self,
        key: Key,
        body: Body,
        desired: TaskStatus | None,
        now: datetime.datetime,
        events: tuple[Event, ...] = (),
    ) -> Body | None:
        """Write what differs from the stored status; the store is updated with the reply.

        The write is conditional on the Task being the same incarnation at the same version as
        `body` (see `Kube.patch_status`): a decision taken on a stale copy is never written.
        Returns the updated Task, or None when it no longer exists.
        """
        current = body.get("status") or {}
        generation = int(body["metadata"].get("generation") or 1)
        update = status_update(current, desired, generation=generation, now=now)
        if update is None:
            return body
        reply: Body
        try:
            reply = await self.kube.patch_status(TASKS, key[0], key[1], update, expect=body)
        except NotFoundError:
            return None
        except InvalidError as error:
            reply = await self._status_refused(key, body, error, now)
        self.stores.tasks.put(reply)
        before, after = current.get("phase"), (reply.get("status") or {}).get("phase")
        if before != after:
            metrics.record_transition(before, after)
        for event in events:
            self.events.record(reply, event.type, event.reason, event.message)
        return reply

    async def _status_refused(
        self, key: Key, body: Body, error: InvalidError, now: datetime.datetime
    ) -> Body:
        """The API server refused a status write (say, a result it cannot store): end Failed."""
        message = f"the API server refused the Task's status: {error.message}"[:1024]
        generation = int(body["metadata"].get("generation") or 1)
        update = status_update(
            {}, failed_status(Reason.STATUS_REJECTED, message, now), generation=generation, now=now
        )
        assert update is not None
        log.warning("task %s/%s: %s", key[0], key[1], message)
        return await self.kube.patch_status(TASKS, key[0], key[1], update, expect=body)

    async def _delete_job(self, namespace: str, name: str) -> None:
        job = self.stores.jobs.named(namespace, name)
        await self.kube.delete(JOBS, namespace, name, uid=None if job is None else uid_of(job))
        if job is not None:
            self.stores.jobs.delete(job)

    def _dispatch(self) -> Seats:
        assert self.seats is not None, "the scheduler is wired at start-up"
        return self.seats

    # ----- the scheduler's decisions ----------------------------------------------------------
    def _still_waiting(self, key: Key, uid: str) -> _Waiting | None:
        """The Task a decision was made for, if it still exists (same uid) and still waits.

        Between a decision and its action the Task may have been deleted, re-created, suspended
        or cancelled; the action then does nothing and the reconcile sets things right.
        """
        body = self.stores.tasks.named(*key)
        if body is None or uid_of(body) != uid:
            return None
        now = self.clock()
        view = self.view(body, now)
        if view.spec is None or plan(view, now).slot is not Slot.WANT:
            self.runtime.enqueue(key)
            return None
        return _Waiting(body, view, now)

    async def start(self, key: Key, uid: str, queued_at: datetime.datetime) -> bool:
        """Create the next attempt's Job and write Running. False: the slot was not used.

        The store can be stale for a moment (right after a relist, an object deleted while the
        watch was down may still be in it), and a Job is the one write that runs something, so
        the Task is read once more first: a Task that no longer exists never gets a Job.
        """
        async with self.runtime.exclusive(key):
            found = self._still_waiting(key, uid)
            if found is None:
                return False
            try:
                fresh = await self.kube.get(TASKS, key[0], key[1])
            except NotFoundError:
                stale = self.stores.tasks.named(*key)
                if stale is not None:
                    self.stores.tasks.delete(stale)
                return False
            if uid_of(fresh) != uid:
                self.runtime.enqueue(key)
                return False
            if _version(fresh) != _version(found.body):
                # It changed since the decision: decide on the fresh copy.
                self.stores.tasks.put(fresh)
                found = self._still_waiting(key, uid)
                if found is None:
                    return False
            return await self._start_attempt(key, found, uid=uid, queued_at=queued_at)

    async def _start_attempt(
        self, key: Key, found: _Waiting, *, uid: str, queued_at: datetime.datetime
    ) -> bool:
        body, view, now = found
        assert view.spec is not None
        number = next_attempt_number(view.status, view.attempts)
        manifest = build_job(Owner(key[1], key[0], uid), view.spec, view.tool, number)
        try:
            job = await self.kube.create(JOBS, key[0], manifest)
        except InvalidError as error:
            message = f"the API server refused the attempt's Job: {error.message}"
            await self.write_status(
                key,
                body,
                failed_status(Reason.JOB_REJECTED, message, now),
                now,
                (Event("Warning", Reason.JOB_REJECTED, message),),
            )
            return False
        except ForbiddenError as error:
            message = f"creating the attempt's Job is forbidden: {error.message}"
            await self.write_status(
                key,
                body,
                queued_status(Reason.JOB_FORBIDDEN, message, queued_at),
                now,
                (Event("Warning", Reason.JOB_FORBIDDEN, message),),
            )
            self.runtime.retry_later(key)
            return False
        if controller_uid(job) != uid:
            # An earlier Task's Job of that name: wait until the garbage collector removes it.
            self.runtime.enqueue(key)
            return False
        self.stores.jobs.put(job)
        metrics.ATTEMPTS.inc()
        metrics.QUEUE_WAIT.labels(priority=view.spec.priority.value).observe(
            max(0.0, (now - queued_at).total_seconds())
        )
        status = started_status(view, number, str(job["metadata"]["name"]), now, queued_at)
        try:
            await self.write_status(key, body, status, now)
        except ConflictError:
            self.runtime.enqueue(key)  # the Job exists; the reconcile writes Running from it
        return True

    async def wait(
        self, key: Key, uid: str, reason: str, message: str, queued_at: datetime.datetime
    ) -> None:
        """Write why a waiting Task waits (Queued when it simply waits its turn)."""
        async with self.runtime.exclusive(key):
            found = self._still_waiting(key, uid)
            if found is None:
                return
            body, _, now = found
            events = () if reason == Reason.QUEUED else (Event("Normal", reason, message),)
            await self.write_status(
                key, body, queued_status(reason, message, queued_at), now, events
            )

    async def fail(self, key: Key, uid: str, reason: str, message: str) -> None:
        """The scheduler failed a waiting Task (its deadline can no longer be met)."""
        async with self.runtime.exclusive(key):
            found = self._still_waiting(key, uid)
            if found is None:
                return
            body, _, now = found
            events = (Event("Warning", reason, message),)
            await self.write_status(key, body, failed_status(reason, message, now), now, events)

    async def preempt(self, key: Key, uid: str, preemptor: str) -> None:
        """Stop the running attempt to free its slot; the Task queues again from its queue time."""
        async with self.runtime.exclusive(key):
            body = self.stores.tasks.named(*key)
            if body is None or uid_of(body) != uid:
                return
            now = self.clock()
            view = self.view(body, now)
            for attempt in view.active:
                await self._delete_job(key[0], attempt.job_name)
            message = f"evicted to make room for {preemptor}; re-queued"
            queued_at = view.status.queued_at or now
            await self.write_status(
                key,
                body,
                queued_status(Reason.PREEMPTED, message, queued_at),
                now,
                (Event("Warning", Reason.PREEMPTED, message),),
            )
        self.runtime.enqueue(key)
