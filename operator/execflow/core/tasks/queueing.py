"""A Task in the scheduler's terms: the waiting or running shape of a view, in plain numbers.

The scheduler counts in epoch seconds, millicores and bytes and keys tasks as "namespace/name";
this is the one place that converts a Task's spec (its Tool's requests under its own, its
constraints, its estimate) into that shape, and decides since when a Task has been waiting.
"""

from __future__ import annotations

import datetime

from execflow.api.durations import parse_duration
from execflow.api.task import TaskPhase
from execflow.core.scheduling import RunningTask, TimeWindow, WaitingTask
from execflow.core.tasks.resources import requests_of
from execflow.core.tasks.view import TaskView


def scheduler_key(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def queued_since(view: TaskView, now: datetime.datetime) -> datetime.datetime:
    """When the Task's current wait for a start began.

    A Task already Queued keeps its queue time (also after a preemption, so its wait counts from
    when it first queued); a retry waits from when it became due; a Task that never ran waits
    from its creation. The answer is the same after an operator restart.
    """
    status = view.status
    if status.phase is TaskPhase.QUEUED and status.queued_at is not None:
        return status.queued_at
    if status.next_retry_at is not None:
        return status.next_retry_at
    if not view.attempts and status.attempts == 0 and view.created_at is not None:
        return view.created_at
    return now


def waiting_task(key: str, view: TaskView, queued_at: datetime.datetime) -> WaitingTask:
    spec = view.spec
    assert spec is not None
    constraints = spec.constraints
    return WaitingTask(
        key=key,
        queue=spec.queue,
        priority=spec.priority.rank,
        queued_at=queued_at.timestamp(),
        estimated_duration=(
            parse_duration(spec.estimated_duration).total_seconds()
            if spec.estimated_duration
            else None
        ),
        tool=spec.tool_ref.name if spec.tool_ref is not None else None,
        deadline=constraints.deadline.timestamp() if constraints.deadline else None,
        time_windows=tuple(
            TimeWindow(w.start, w.end, w.time_zone) for w in constraints.time_windows
        ),
        exclusive=constraints.exclusive,
        mutex=constraints.mutex or None,
        requests=requests_of(spec, view.tool),
    )


def running_task(key: str, view: TaskView, started_at: datetime.datetime) -> RunningTask:
    spec = view.spec
    assert spec is not None
    return RunningTask(
        key=key,
        queue=spec.queue,
        priority=spec.priority.rank,
        started_at=started_at.timestamp(),
        tool=spec.tool_ref.name if spec.tool_ref is not None else None,
        exclusive=spec.constraints.exclusive,
        mutex=spec.constraints.mutex or None,
        requests=requests_of(spec, view.tool),
    )
