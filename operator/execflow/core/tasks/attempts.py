"""Job and pods → Attempt: what one attempt of a task looks like from the cluster.

The Job says whether the attempt is over (its Complete/Failed conditions, written by the Job
controller); the pod says how (exit code, reason, termination message). A Job failed by its
activeDeadlineSeconds is a timeout whatever its pod says.

An attempt that has not started can be stuck, and the user must see why rather than a silent
`Running`: its pod cannot be created (the Job controller's `FailedCreate` Event: a missing
ServiceAccount, an exhausted quota, an admission policy), the cluster scheduler cannot place it,
or its container cannot start (an image that cannot be pulled, a missing Secret). Such an attempt
carries a `problem` (a reason and the cluster's own message); the lifecycle reports it and gives
up on a pod that cannot be created after a grace period.
"""

from __future__ import annotations

import datetime
import enum
import json
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from execflow.api.reasons import Reason
from execflow.api.timestamps import format_time, parse_time

ATTEMPT_LABEL = "execflow.dev/attempt"
STOPPED_ANNOTATION = "execflow.dev/stopped"
"""On a Job the operator stopped as a failed attempt: JSON with the reason, message and time."""
CONTAINER_NAME = "tool"
POD_GRACE = datetime.timedelta(seconds=30)
"""How long a finished Job waits for its pod's final status before it is judged without it."""

# Container waiting reasons that are part of a normal start, not a problem.
_STARTING = frozenset({"ContainerCreating", "PodInitializing"})

Body = Mapping[str, Any]


class AttemptState(enum.StrEnum):
    PENDING = "Pending"  # the Job exists, its pod has not started
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


@dataclass(frozen=True, slots=True)
class Problem:
    """Why an attempt that has not started is not starting."""

    reason: Reason
    message: str


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt as observed from its Job and pod."""

    number: int
    job_name: str
    state: AttemptState
    created_at: datetime.datetime | None = None
    started_at: datetime.datetime | None = None
    finished_at: datetime.datetime | None = None
    exit_code: int | None = None
    reason: str = ""
    message: str | None = None
    problem: Problem | None = None
    recheck_at: datetime.datetime | None = None
    """When to look again without any event (a finished Job still waiting for its pod status)."""

    @property
    def active(self) -> bool:
        return self.state in (AttemptState.PENDING, AttemptState.RUNNING)


@dataclass(frozen=True, slots=True)
class JobObservation:
    """One Job of a task with its pods and the Job controller's latest pod-creation failure."""

    job: Body
    pods: Sequence[Body] = ()
    create_failure: str | None = None


def job_signature(job: Body) -> Hashable:
    """The parts of a Job that reading its attempt looks at (`attempt_of`): the Job controller
    writes a Job's counters several times per run, and a change elsewhere cannot change the
    attempt, so only a change of this signature needs a look."""
    metadata = job["metadata"]
    return (
        (metadata.get("annotations") or {}).get(STOPPED_ANNOTATION),
        metadata.get("deletionTimestamp"),
        repr(_condition(job, "Complete")),
        repr(_condition(job, "Failed")),
    )


def pod_signature(pod: Body) -> Hashable:
    """The parts of a pod that reading its Job's attempt looks at (see `job_signature`)."""
    status = pod.get("status") or {}
    unschedulable = [
        condition
        for condition in status.get("conditions") or ()
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False"
    ]
    return (status.get("reason"), repr(_container(pod)), repr(unschedulable))


def _condition(job: Body, kind: str) -> Mapping[str, Any] | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == "True":
            return dict(condition)
    return None


def _container(pod: Body) -> Mapping[str, Any]:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == CONTAINER_NAME:
            return dict(status.get("state") or {})
    return {}


def _started(pod: Body) -> datetime.datetime | None:
    state = _container(pod)
    for key in ("running", "terminated"):
        if state.get(key):
            return parse_time(state[key].get("startedAt"))
    return None


def _pending_problem(pod: Body | None, create_failure: str | None) -> Problem | None:
    if pod is None:
        if create_failure:
            return Problem(Reason.POD_CREATE_FAILED, create_failure)
        return None
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            message = str(condition.get("message") or condition.get("reason") or "")
            return Problem(Reason.POD_UNSCHEDULABLE, message)
    waiting = _container(pod).get("waiting") or {}
    reason = str(waiting.get("reason") or "")
    if reason and reason not in _STARTING:
        detail = str(waiting.get("message") or "")
        return Problem(Reason.CONTAINER_WAITING, f"{reason}: {detail}" if detail else reason)
    return None


def _failure_reason(failed: Mapping[str, Any], pod: Body | None, terminated: Any) -> str:
    reason = str(failed.get("reason") or "")
    if reason == Reason.DEADLINE_EXCEEDED:
        return reason
    if str(((pod or {}).get("status") or {}).get("reason") or "") == Reason.EVICTED:
        return Reason.EVICTED
    if terminated:
        return str(terminated.get("reason") or Reason.ERROR)
    return reason or Reason.ERROR


def stopped_attempt(attempt: Attempt, now: datetime.datetime) -> Attempt:
    """The attempt judged failed now because its pod could never be created."""
    problem = attempt.problem
    message = problem.message if problem is not None else "its pod could not be created"
    return Attempt(
        attempt.number,
        attempt.job_name,
        AttemptState.FAILED,
        attempt.created_at,
        finished_at=now,
        reason=Reason.POD_CREATE_FAILED,
        message=message,
    )


def stop_marker(attempt: Attempt) -> str:
    """The annotation value recording why the operator stopped the attempt's Job."""
    return json.dumps(
        {
            "reason": attempt.reason,
            "message": attempt.message or "",
            "at": format_time(attempt.finished_at) if attempt.finished_at else None,
        },
        separators=(",", ":"),
    )


def _stopped(
    job: Body, number: int, name: str, created: datetime.datetime | None
) -> Attempt | None:
    marker = (job["metadata"].get("annotations") or {}).get(STOPPED_ANNOTATION)
    if not marker:
        return None
    try:
        recorded = json.loads(marker)
    except ValueError:
        recorded = {}
    if not isinstance(recorded, dict):
        recorded = {}
    return Attempt(
        number,
        name,
        AttemptState.FAILED,
        created,
        finished_at=parse_time(recorded.get("at")) or created,
        reason=str(recorded.get("reason") or Reason.POD_CREATE_FAILED),
        message=str(recorded.get("message") or ""),
    )


def attempt_of(observation: JobObservation, now: datetime.datetime) -> Attempt:
    job = observation.job
    metadata = job["metadata"]
    number = int((metadata.get("labels") or {}).get(ATTEMPT_LABEL, "0"))
    name = str(metadata["name"])
    created = parse_time(metadata.get("creationTimestamp"))
    stopped = _stopped(job, number, name, created)
    if stopped is not None:
        return stopped
    pod = max(
        observation.pods,
        key=lambda p: str(p["metadata"].get("creationTimestamp") or ""),
        default=None,
    )
    started = _started(pod) if pod else None
    terminated = _container(pod).get("terminated") if pod else None
    complete = _condition(job, "Complete")
    failed = _condition(job, "Failed")
    ended = complete or failed
    if ended is None:
        if started is not None:
            return Attempt(number, name, AttemptState.RUNNING, created, started)
        problem = _pending_problem(pod, observation.create_failure)
        return Attempt(number, name, AttemptState.PENDING, created, problem=problem)
    ended_at = parse_time(ended.get("lastTransitionTime"))
    timed_out = failed is not None and failed.get("reason") == Reason.DEADLINE_EXCEEDED
    recent = ended_at is None or now - ended_at < POD_GRACE
    if not terminated and not timed_out and recent:
        # The Job finished, but the pod status that carries the result and exit code has not
        # reached the store yet (separate watch streams): wait for it rather than decide blind.
        recheck = None if ended_at is None else ended_at + POD_GRACE
        return Attempt(number, name, AttemptState.RUNNING, created, started, recheck_at=recheck)
    finished = parse_time((terminated or {}).get("finishedAt")) or ended_at
    exit_code = terminated.get("exitCode") if terminated else None
    message = (terminated or {}).get("message")
    if complete is not None:
        return Attempt(
            number,
            name,
            AttemptState.SUCCEEDED,
            created,
            started,
            finished,
            int(exit_code) if exit_code is not None else 0,
            str((terminated or {}).get("reason") or "Completed"),
            message,
        )
    assert failed is not None
    return Attempt(
        number,
        name,
        AttemptState.FAILED,
        created,
        started,
        finished,
        int(exit_code) if exit_code is not None else None,
        _failure_reason(failed, pod, terminated),
        message or failed.get("message"),
    )
