"""Job and pod → Attempt: what one attempt of a task looks like from the cluster.

The Job says whether the attempt is over (its Complete/Failed conditions, written by the Job
controller); the pod says how (exit code, reason, termination message, start and finish times).
A Job failed by its activeDeadlineSeconds is a timeout whatever its pod says.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from execflow.core.task_lifecycle import Attempt, AttemptState
from execflow.kube.job_builder import ATTEMPT_LABEL, CONTAINER_NAME

# How long a finished Job waits for its pod's final status before it is judged without it (for
# a pod deleted by hand, say).
POD_GRACE = 30.0


def parse_time(value: Any) -> datetime.datetime | None:
    if not value:
        return None
    if isinstance(value, datetime.datetime):
        return value
    return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _condition(job: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for condition in job.get("status", {}).get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == "True":
            return dict(condition)
    return None


def _terminated(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for status in pod.get("status", {}).get("containerStatuses") or []:
        if status.get("name") == CONTAINER_NAME:
            state = status.get("state") or {}
            terminated = state.get("terminated")
            return dict(terminated) if terminated else None
    return None


def _started(pod: Mapping[str, Any]) -> datetime.datetime | None:
    for status in pod.get("status", {}).get("containerStatuses") or []:
        state = status.get("state") or {}
        for key in ("running", "terminated"):
            if state.get(key):
                return parse_time(state[key].get("startedAt"))
    return None


def attempt_of(
    job: Mapping[str, Any],
    pods: Sequence[Mapping[str, Any]],
    now: datetime.datetime | None = None,
) -> Attempt:
    metadata = job["metadata"]
    number = int(metadata.get("labels", {}).get(ATTEMPT_LABEL, "0"))
    name = metadata["name"]
    pod = max(pods, key=lambda p: p["metadata"].get("creationTimestamp") or "", default=None)
    started = _started(pod) if pod else None
    terminated = _terminated(pod) if pod else None
    complete = _condition(job, "Complete")
    failed = _condition(job, "Failed")
    if complete is not None or failed is not None:
        ended = parse_time((complete or failed or {}).get("lastTransitionTime"))
        timed_out = failed is not None and failed.get("reason") == "DeadlineExceeded"
        recent = now is None or ended is None or (now - ended).total_seconds() < POD_GRACE
        if terminated is None and not timed_out and recent:
            # The Job finished, but the pod status that carries the result and exit code has
            # not reached the store yet (separate watch streams): wait for it, not decide blind.
            return Attempt(number, name, AttemptState.RUNNING, started_at=started)
        finished = parse_time((complete or failed or {}).get("lastTransitionTime"))
        if terminated is not None:
            finished = parse_time(terminated.get("finishedAt")) or finished
        if complete is not None:
            return Attempt(
                number,
                name,
                AttemptState.SUCCEEDED,
                started_at=started,
                finished_at=finished,
                exit_code=int(terminated.get("exitCode", 0)) if terminated else 0,
                reason=str(terminated.get("reason", "Completed")) if terminated else "Completed",
                message=terminated.get("message") if terminated else None,
            )
        assert failed is not None
        reason = str(failed.get("reason") or "")
        pod_reason = str((pod or {}).get("status", {}).get("reason") or "")
        if reason != "DeadlineExceeded":
            if pod_reason == "Evicted":
                reason = "Evicted"
            elif terminated is not None:
                reason = str(terminated.get("reason") or "Error")
            else:
                reason = reason or "Error"
        return Attempt(
            number,
            name,
            AttemptState.FAILED,
            started_at=started,
            finished_at=finished,
            exit_code=int(terminated["exitCode"])
            if terminated and "exitCode" in terminated
            else None,
            reason=reason,
            message=(terminated or {}).get("message") or failed.get("message"),
        )
    state = AttemptState.RUNNING if started is not None else AttemptState.PENDING
    return Attempt(number, name, state, started_at=started)
