"""The Task state machine, level-based: from what exists now to what the status should say.

`plan()` looks only at the present (the view built from the spec, the status checkpoint, the
attempts that exist as Jobs, and the clock passed in) and returns the status fields that should
hold and the actions to take. It never asks "what changed", so a restarted operator converges to
the same answer. It does not start attempts: a Task that should run asks for a slot
(`Slot.WANT`) and the scheduler decides when; while an attempt is active the Task holds its slot
(`Slot.HOLD`). Waiting reasons inside the queue (QueueFull, Unschedulable, ...) are the
scheduler's, written by it; the lifecycle leaves them alone.

One helper per situation, checked in this order: finished, cancelled, cannot run, attempt active,
attempt succeeded, attempt failed, waiting for something, ready to start.
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from execflow.api.durations import parse_duration
from execflow.api.reasons import Reason
from execflow.api.task import DependencyType, TaskPhase, TaskSpec, TaskStatus
from execflow.api.timestamps import format_seconds
from execflow.core.results import parse_result
from execflow.core.retries import Failure, RetryRule, next_retry_at
from execflow.core.tasks.attempts import Attempt, AttemptState
from execflow.core.tasks.view import TaskView


class Slot(enum.Enum):
    """What the Task asks of its queue."""

    NONE = enum.auto()
    WANT = enum.auto()
    HOLD = enum.auto()


@dataclass(frozen=True, slots=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class TaskPlan:
    status: TaskStatus | None = None
    """The status fields that should hold (only the fields set on the model); None: no opinion."""
    slot: Slot = Slot.NONE
    delete_jobs: tuple[str, ...] = ()
    stop_jobs: tuple[Attempt, ...] = ()
    """Attempts to mark failed on their Job and stop (their pod could never be created)."""
    requeue_at: datetime.datetime | None = None
    events: tuple[Event, ...] = ()
    """Emitted only when the status actually changes."""
    learned_seconds: float | None = None
    """Run time of a successful attempt, to learn the tool's duration."""


def retry_rule(spec: TaskSpec) -> RetryRule:
    policy = spec.retry_policy
    return RetryRule(
        max_retries=policy.max_retries,
        retry_delay=parse_duration(policy.retry_delay).total_seconds(),
        backoff_multiplier=policy.backoff_multiplier,
        max_retry_delay=parse_duration(policy.max_retry_delay).total_seconds(),
        exit_codes=frozenset(policy.retry_on.exit_codes),
        reasons=frozenset(policy.retry_on.reasons),
    )


def running_message(attempt: int, job_name: str) -> str:
    return f"attempt {attempt} running as Job {job_name}"


def next_attempt_number(status: TaskStatus, attempts: tuple[Attempt, ...]) -> int:
    """Attempts are numbered from 1 and never reused, even when a Job was deleted."""
    return max([status.attempts, *(a.number for a in attempts)]) + 1


def finish_gated(spec: TaskSpec | None) -> bool:
    return spec is not None and any(
        d.type in (DependencyType.FINISH_TO_FINISH, DependencyType.START_TO_FINISH)
        for d in spec.dependencies
    )


def _status(phase: TaskPhase, reason: str, message: str, **fields: Any) -> TaskStatus:
    return TaskStatus(phase=phase, reason=reason, message=message, **fields)


def plan(view: TaskView, now: datetime.datetime) -> TaskPlan:
    for situation in _SITUATIONS:
        decided = situation(view, now)
        if decided is not None:
            return decided
    return _ready_to_start(view, now)


def _finished(view: TaskView, _now: datetime.datetime) -> TaskPlan | None:
    # A finished task keeps its outcome; only leftovers of a cancel are cleaned up.
    if not view.status.phase.is_terminal:
        return None
    if view.status.phase is TaskPhase.CANCELLED:
        return TaskPlan(delete_jobs=tuple(a.job_name for a in view.active))
    return TaskPlan()


def _cancelled(view: TaskView, now: datetime.datetime) -> TaskPlan | None:
    if view.spec is None or not view.spec.cancel:
        return None
    return TaskPlan(
        status=_status(
            TaskPhase.CANCELLED,
            Reason.CANCELLED,
            "cancelled by spec.cancel",
            completion_time=now,
            next_retry_at=None,
        ),
        delete_jobs=tuple(a.job_name for a in view.active),
    )


def _cannot_run(view: TaskView, now: datetime.datetime) -> TaskPlan | None:
    if view.failure is None:
        return None
    reason, message = view.failure.reason, view.failure.message
    return TaskPlan(
        status=failed_status(reason, message, now),
        delete_jobs=tuple(a.job_name for a in view.active),
        events=(Event("Warning", reason, message),),
    )


def _attempt_active(view: TaskView, now: datetime.datetime) -> TaskPlan | None:
    latest = view.latest
    if latest is None or not latest.active:
        return None
    spec = view.spec
    if spec is not None and spec.suspend:
        return TaskPlan(
            status=_status(
                TaskPhase.PAUSED,
                Reason.SUSPENDED,
                f"attempt {latest.number} stopped by spec.suspend",
            ),
            delete_jobs=(latest.job_name,),
        )
    reason: str = Reason.RUNNING
    message = running_message(latest.number, latest.job_name)
    if latest.problem is not None:
        reason = latest.problem.reason
        message = f"attempt {latest.number} (Job {latest.job_name}): {latest.problem.message}"
    return TaskPlan(
        status=_status(
            TaskPhase.RUNNING,
            reason,
            message,
            attempts=max(view.status.attempts, latest.number),
            job_name=latest.job_name,
            start_time=view.status.start_time or latest.created_at or now,
            next_retry_at=None,
        ),
        slot=Slot.HOLD,
        requeue_at=latest.recheck_at,
    )


def _attempt_succeeded(view: TaskView, now: datetime.datetime) -> TaskPlan | None:
    latest = view.latest
    if latest is None or latest.state is not AttemptState.SUCCEEDED:
        return None
    if view.finish_wait is not None:
        return TaskPlan(
            status=_status(TaskPhase.RUNNING, view.finish_wait.reason, view.finish_wait.message)
        )
    learned = None
    if latest.started_at and latest.finished_at:
        learned = (latest.finished_at - latest.started_at).total_seconds()
    return TaskPlan(
        status=_status(
            TaskPhase.COMPLETED,
            Reason.SUCCEEDED,
            f"attempt {latest.number} succeeded",
            attempts=max(view.status.attempts, latest.number),
            job_name=latest.job_name,
            exit_code=latest.exit_code if latest.exit_code is not None else 0,
            result=parse_result(latest.message),
            start_time=view.status.start_time or latest.created_at or now,
            completion_time=now,
            next_retry_at=None,
        ),
        stop_jobs=view.stop_jobs,
        learned_seconds=learned,
    )


def _attempt_failed(view: TaskView, now: datetime.datetime) -> TaskPlan | None:
    """The plan after a failed attempt: give up, or back off (the retry may be due already).

    None when the Task is suspended (it pauses instead) or when a due retry has to wait for
    something missing (the waiting situation reports it).
    """
    latest, spec = view.latest, view.spec
    if latest is None or latest.state is not AttemptState.FAILED or spec is None:
        return None
    failed = sum(1 for a in view.attempts if a.state is AttemptState.FAILED)
    failure = Failure(latest.exit_code, latest.reason or Reason.ERROR)
    failed_at = latest.finished_at or now
    retry_at = next_retry_at(retry_rule(spec), failure, failed, failed_at.timestamp())
    what = (
        "timed out"
        if failure.reason == Reason.DEADLINE_EXCEEDED
        else f"failed with exit code {failure.exit_code} ({failure.reason})"
        if failure.exit_code is not None
        else f"failed ({failure.reason})"
    )
    common: dict[str, Any] = {
        "attempts": max(view.status.attempts, latest.number),
        "job_name": latest.job_name,
        "exit_code": latest.exit_code,
        "start_time": view.status.start_time or latest.created_at,
    }
    if retry_at is None:
        terminal = (
            TaskPhase.TIMEOUT if failure.reason == Reason.DEADLINE_EXCEEDED else TaskPhase.FAILED
        )
        message = f"attempt {latest.number} {what}; no retry left"
        if latest.message:
            message += f": {latest.message[:512]}"
        return TaskPlan(
            status=_status(
                terminal,
                failure.reason,
                message,
                completion_time=now,
                next_retry_at=None,
                **common,
            ),
            stop_jobs=view.stop_jobs,
            events=(Event("Warning", terminal.value, message),),
        )
    retry_moment = datetime.datetime.fromtimestamp(retry_at, datetime.UTC)
    due = retry_moment <= now
    if spec.suspend or (due and view.waiting is not None):
        return None  # paused, or the retry waits for what is missing (a Tool, a dependency)
    message = f"attempt {latest.number} {what}; retrying at {format_seconds(retry_moment)}"
    if latest.message:
        message += f": {latest.message[:256]}"
    # Written even when the retry is due at once: the failure is recorded and announced.
    return TaskPlan(
        status=_status(
            TaskPhase.PENDING, Reason.BACK_OFF, message, next_retry_at=retry_moment, **common
        ),
        slot=Slot.WANT if due else Slot.NONE,
        stop_jobs=view.stop_jobs,
        requeue_at=None if due else retry_moment,
        events=(Event("Warning", Reason.BACK_OFF, message),),
    )


def _waiting(view: TaskView, _now: datetime.datetime) -> TaskPlan | None:
    if view.waiting is None:
        return None
    reason, message = view.waiting.reason, view.waiting.message
    return TaskPlan(
        status=_status(TaskPhase.PENDING, reason, message),
        events=(Event("Normal", reason, message),),
    )


def _ready_to_start(view: TaskView, now: datetime.datetime) -> TaskPlan:
    spec = view.spec
    assert spec is not None
    if spec.suspend:
        return TaskPlan(
            status=_status(TaskPhase.PAUSED, Reason.SUSPENDED, "not started: spec.suspend is set")
        )
    cached = view.cached
    if cached is not None and not view.attempts:
        message = f"reused the result of task {cached.task}"
        return TaskPlan(
            status=_status(
                TaskPhase.COMPLETED,
                Reason.CACHE_HIT,
                message,
                cache_hit=True,
                result=cached.result,
                exit_code=cached.exit_code,
                completion_time=now,
            )
        )
    # The scheduler writes Queued (with its reason) or Running once it has decided.
    return TaskPlan(slot=Slot.WANT)


_SITUATIONS: tuple[Callable[[TaskView, datetime.datetime], TaskPlan | None], ...] = (
    _finished,
    _cancelled,
    _cannot_run,
    _attempt_active,
    _attempt_succeeded,
    _attempt_failed,
    _waiting,
)
"""Checked in this order; the first that applies decides. Otherwise the Task is ready to start."""


# ----- the statuses the scheduler's decisions write -----------------------------------------


def started_status(
    view: TaskView, number: int, job_name: str, now: datetime.datetime, queued_at: datetime.datetime
) -> TaskStatus:
    """A new attempt's Job exists: the Task runs (one write, also for a Task that never queued)."""
    fields: dict[str, Any] = {
        "attempts": number,
        "job_name": job_name,
        "start_time": view.status.start_time or now,
        "queued_at": view.status.queued_at or queued_at,
        "next_retry_at": None,
    }
    if view.cache_key is not None:
        fields["cache_key"] = view.cache_key
    return _status(TaskPhase.RUNNING, Reason.RUNNING, running_message(number, job_name), **fields)


def queued_status(reason: str, message: str, queued_at: datetime.datetime) -> TaskStatus:
    """Waiting in the queue, and why (Queued when it simply waits its turn)."""
    return _status(TaskPhase.QUEUED, reason, message, queued_at=queued_at, next_retry_at=None)


def failed_status(reason: str, message: str, now: datetime.datetime) -> TaskStatus:
    """Failed for good without (another) attempt: a missed deadline, a Job the API refused."""
    return _status(TaskPhase.FAILED, reason, message, completion_time=now, next_retry_at=None)
