"""The Task state machine, level-based: from what exists now to what the status should say.

`plan()` looks only at the present (the spec, the status checkpoint, the attempts that exist as
Jobs, the clock passed in) and returns the status to write and the actions to take. It never
asks "what changed", so a restarted operator converges to the same answer. Starting an attempt is
not decided here: a task that should run is handed to its queue (`wants_slot`), and the scheduler
decides when.
"""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass, field
from typing import Any

from execflow.api.durations import parse_duration
from execflow.api.task import DependencyType, TaskPhase, TaskSpec, TaskStatus
from execflow.core.results import parse_result
from execflow.core.retries import Failure, RetryRule, next_retry_at

TIMEOUT_REASON = "DeadlineExceeded"


class AttemptState(enum.StrEnum):
    PENDING = "Pending"  # the Job exists, its pod has not started
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


@dataclass(frozen=True)
class Attempt:
    """One attempt as observed from its Job and pod."""

    number: int
    job_name: str
    state: AttemptState
    started_at: datetime.datetime | None = None
    finished_at: datetime.datetime | None = None
    exit_code: int | None = None
    reason: str = ""
    message: str | None = None

    @property
    def active(self) -> bool:
        return self.state in (AttemptState.PENDING, AttemptState.RUNNING)


@dataclass(frozen=True)
class CachedResult:
    """A completed identical execution found in the cache."""

    task: str
    result: Any
    exit_code: int | None


@dataclass(frozen=True)
class TaskView:
    """Everything the lifecycle needs to know about one task, as plain data."""

    name: str
    generation: int
    spec: TaskSpec | None
    status: TaskStatus
    attempts: tuple[Attempt, ...] = ()
    spec_error: tuple[str, str] | None = None  # (reason, message): the task cannot run at all
    tool_missing: str | None = None  # the name of the missing Tool
    cached: CachedResult | None = None
    dependency_block: tuple[str, str] | None = None  # (reason, message) while waiting on others


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass
class Plan:
    status: dict[str, Any] = field(default_factory=dict)
    wants_slot: bool = False  # hand the task to its queue
    running: bool = False  # the task holds a slot (an attempt is active)
    delete_jobs: list[str] = field(default_factory=list)
    requeue_at: datetime.datetime | None = None
    events: list[Event] = field(default_factory=list)
    run_seconds: float | None = None  # duration of a successful attempt, for learning


def rfc3339(moment: datetime.datetime) -> str:
    """A status timestamp: UTC with a Z, microseconds kept (ordering within a second matters)."""
    return moment.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


def _iso(moment: datetime.datetime | None) -> str | None:
    return None if moment is None else rfc3339(moment)


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


def _phase_status(phase: TaskPhase, reason: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"phase": phase.value, "reason": reason, "message": message, **extra}


def plan(view: TaskView, now: datetime.datetime) -> Plan:
    status = view.status
    current = status.phase
    active = [a for a in view.attempts if a.active]

    if current.is_terminal:
        # A finished task keeps its outcome; only leftovers of a cancel are cleaned up.
        return Plan(
            delete_jobs=[a.job_name for a in active] if current is TaskPhase.CANCELLED else []
        )

    if view.spec is not None and view.spec.cancel:
        return Plan(
            status=_phase_status(
                TaskPhase.CANCELLED,
                "Cancelled",
                "cancelled by spec.cancel",
                completionTime=_iso(now),
                nextRetryAt=None,
            ),
            delete_jobs=[a.job_name for a in active],
            events=[Event("Normal", "Cancelled", "task cancelled; its pods are deleted")],
        )

    if view.spec_error is not None:
        reason, message = view.spec_error
        return Plan(
            status=_phase_status(TaskPhase.FAILED, reason, message, completionTime=_iso(now)),
            delete_jobs=[a.job_name for a in active],
            events=[Event("Warning", reason, message)],
        )

    # A Tool deleted after an attempt started does not matter to that attempt's Job.
    if view.tool_missing is not None and (not view.attempts or view.spec is None):
        message = f"Tool {view.tool_missing!r} does not exist (yet); the task starts once it does"
        return Plan(status=_phase_status(TaskPhase.PENDING, "ToolNotFound", message))

    spec = view.spec
    assert spec is not None
    latest = max(view.attempts, key=lambda a: a.number, default=None)
    first_start = status.start_time or min(
        (a.started_at for a in view.attempts if a.started_at is not None), default=None
    )

    if latest is not None and latest.active:
        if spec.suspend:
            return Plan(
                status=_phase_status(
                    TaskPhase.PAUSED,
                    "Suspended",
                    f"attempt {latest.number} stopped by spec.suspend",
                ),
                delete_jobs=[latest.job_name],
                events=[Event("Normal", "Suspended", f"attempt {latest.number} stopped")],
            )
        return Plan(
            status=_phase_status(
                TaskPhase.RUNNING,
                "Running",
                running_message(latest.number, latest.job_name),
                attempts=max(status.attempts, latest.number),
                jobName=latest.job_name,
                startTime=_iso(first_start or latest.started_at),
                nextRetryAt=None,
            ),
            running=True,
        )

    if latest is not None and latest.state is AttemptState.SUCCEEDED:
        if view.dependency_block is not None:
            reason, message = view.dependency_block
            return Plan(status=_phase_status(TaskPhase.RUNNING, reason, message))
        run_seconds = None
        if latest.started_at and latest.finished_at:
            run_seconds = (latest.finished_at - latest.started_at).total_seconds()
        return Plan(
            status=_phase_status(
                TaskPhase.COMPLETED,
                "Succeeded",
                f"attempt {latest.number} succeeded",
                attempts=max(status.attempts, latest.number),
                jobName=latest.job_name,
                exitCode=latest.exit_code if latest.exit_code is not None else 0,
                result=parse_result(latest.message),
                startTime=_iso(first_start),
                # A completion held by a *ToFinish dependency happens now, not when the pod ended.
                completionTime=_iso(now if finish_gated(spec) else (latest.finished_at or now)),
                nextRetryAt=None,
            ),
            events=[Event("Normal", "Completed", f"attempt {latest.number} succeeded")],
            run_seconds=run_seconds,
        )

    if latest is not None and latest.state is AttemptState.FAILED:
        failed = sum(1 for a in view.attempts if a.state is AttemptState.FAILED)
        failure = Failure(latest.exit_code, latest.reason or "Error")
        failed_at = latest.finished_at or now
        retry_at = next_retry_at(retry_rule(spec), failure, failed, failed_at.timestamp())
        what = (
            "timed out"
            if failure.reason == TIMEOUT_REASON
            else f"failed with exit code {failure.exit_code} ({failure.reason})"
        )
        common = {
            "attempts": max(status.attempts, latest.number),
            "jobName": latest.job_name,
            "exitCode": latest.exit_code,
            "startTime": _iso(first_start),
        }
        if retry_at is None:
            terminal = TaskPhase.TIMEOUT if failure.reason == TIMEOUT_REASON else TaskPhase.FAILED
            message = f"attempt {latest.number} {what}; no retry left"
            if latest.message:
                message += f": {latest.message[:512]}"
            return Plan(
                status=_phase_status(
                    terminal,
                    failure.reason,
                    message,
                    completionTime=_iso(failed_at),
                    nextRetryAt=None,
                    **common,
                ),
                events=[Event("Warning", terminal.value, message)],
            )
        retry_moment = datetime.datetime.fromtimestamp(retry_at, datetime.UTC)
        if not spec.suspend and retry_moment > now:
            message = f"attempt {latest.number} {what}; retrying at {_iso(retry_moment)}"
            return Plan(
                status=_phase_status(
                    TaskPhase.PENDING, "BackOff", message, nextRetryAt=_iso(retry_moment), **common
                ),
                requeue_at=retry_moment,
                events=[Event("Warning", "BackOff", message)],
            )

    # No attempt is active: a new one should start (first run, retry, or after an interruption).
    if spec.suspend:
        return Plan(
            status=_phase_status(TaskPhase.PAUSED, "Suspended", "not started: spec.suspend is set")
        )
    if not view.attempts and view.cached is not None:
        cached = view.cached
        return Plan(
            status=_phase_status(
                TaskPhase.COMPLETED,
                "CacheHit",
                f"reused the result of task {cached.task}",
                cacheHit=True,
                result=cached.result,
                exitCode=cached.exit_code,
                completionTime=_iso(now),
            ),
            events=[Event("Normal", "CacheHit", f"reused the result of task {cached.task}")],
        )
    if view.dependency_block is not None:
        reason, message = view.dependency_block
        return Plan(status=_phase_status(TaskPhase.PENDING, reason, message))
    return Plan(wants_slot=True, status={"nextRetryAt": None} if status.next_retry_at else {})


def finish_gated(spec: TaskSpec) -> bool:
    return any(
        d.type in (DependencyType.FINISH_TO_FINISH, DependencyType.START_TO_FINISH)
        for d in spec.dependencies
    )


def running_message(attempt: int, job_name: str) -> str:
    return f"attempt {attempt} running as Job {job_name}"


def next_attempt_number(status: TaskStatus, attempts: tuple[Attempt, ...]) -> int:
    """Attempts are numbered from 1 and never reused, even when a Job was deleted."""
    return max([status.attempts, *(a.number for a in attempts)]) + 1
