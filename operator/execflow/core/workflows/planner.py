"""The Workflow state machine, level-based: from the view to the children and the status to write.

`plan()` decides, in this order: a workflow whose spec cannot run fails (its running children are
cancelled); a finished workflow is deleted after its TTL, or resumed when its resume annotation has
a new value; otherwise the steps are walked (`walk`), then, once the main steps have ended (or the
workflow stopped: a step failed with Stop, it was cancelled, or it timed out, and nothing of the
main steps still runs), the finally steps. The workflow ends when the finally steps have ended.
While it runs, the children's `suspend` follows the workflow's, and on cancel or timeout the
children of the main steps are cancelled.

Status writes that only show progress (a child went from Queued to Running) are marked not urgent,
so the controller may batch them; everything that decides something is urgent.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from execflow.api.durations import parse_duration
from execflow.api.reasons import Reason
from execflow.api.workflow import (
    StepPhase,
    WorkflowPhase,
    WorkflowStatus,
    WorkflowStepStatus,
    WorkflowTaskStatus,
)
from execflow.core.workflows.report import Event, events_between, fingerprint, settable, status_of
from execflow.core.workflows.state import Creation
from execflow.core.workflows.view import WorkflowView
from execflow.core.workflows.walk import Walk


@dataclass(frozen=True, slots=True)
class ChildPatch:
    """Set `suspend` or `cancel` on a child (the only spec fields a Task may change)."""

    name: str
    suspend: bool | None = None
    cancel: bool | None = None


@dataclass(frozen=True)
class WorkflowPlan:
    status: WorkflowStatus | None = None
    creations: tuple[Creation, ...] = ()
    deletions: tuple[str, ...] = ()
    patches: tuple[ChildPatch, ...] = ()
    delete_workflow: bool = False
    events: tuple[Event, ...] = ()
    requeue_at: datetime.datetime | None = None
    urgent: bool = True


def plan(view: WorkflowView, now: datetime.datetime) -> WorkflowPlan:
    if view.failure is not None:
        return failed(view, now, view.failure.reason, view.failure.message)
    if view.status.phase.is_terminal:
        if view.resume_token and view.resume_token != view.status.resume_token:
            return _resume(view, now)
        return _finished(view, now)
    return _running(view, now)


# ----- a workflow that cannot run, a finished workflow, a resume ---------------------------------
def failed(view: WorkflowView, now: datetime.datetime, reason: str, message: str) -> WorkflowPlan:
    """Fail the workflow with `reason`, cancelling its running children: its spec cannot run, or
    a child's name is taken by a Task that is not the workflow's."""
    patches = tuple(
        ChildPatch(child.name, cancel=True)
        for child in view.children.values()
        if child.active and not child.cancelled
    )
    if view.status.phase.is_terminal:
        if view.resume_token and view.resume_token != view.status.resume_token:
            noted = settable(view.status.model_copy(update={"resume_token": view.resume_token}))
            refused = Event("Warning", reason, f"not resumed: {message}")
            return WorkflowPlan(status=noted, patches=patches, events=(refused,))
        return WorkflowPlan(patches=patches)
    status = view.status.model_copy(
        update={
            "phase": WorkflowPhase.FAILED,
            "reason": reason,
            "message": message,
            "finished_at": now,
            "started_at": view.status.started_at or now,
        }
    )
    event = Event("Warning", reason, message)
    return WorkflowPlan(status=settable(status), patches=patches, events=(event,))


def _finished(view: WorkflowView, now: datetime.datetime) -> WorkflowPlan:
    spec = view.spec
    assert spec is not None
    status = None
    events: tuple[Event, ...] = ()
    if view.resume_token and view.resume_token != view.status.resume_token:
        status = settable(view.status.model_copy(update={"resume_token": view.resume_token}))
    if spec.ttl_after_finished is None or view.status.finished_at is None:
        return WorkflowPlan(status=status, events=events)
    expires = view.status.finished_at + parse_duration(spec.ttl_after_finished)
    if now >= expires:
        return WorkflowPlan(delete_workflow=True)
    return WorkflowPlan(status=status, events=events, requeue_at=expires)


def _resume(view: WorkflowView, now: datetime.datetime) -> WorkflowPlan:
    status = view.status
    if status.phase is WorkflowPhase.COMPLETED:
        message = "a Completed workflow has nothing to run again; only Failed, Cancelled or "
        message += "Timeout workflows resume"
        updated = status.model_copy(update={"resume_token": view.resume_token})
        return WorkflowPlan(
            status=settable(updated), events=(Event("Normal", Reason.RESUME_IGNORED, message),)
        )
    steps = [_reset(step) for step in status.steps]
    resumes = status.resumes + 1
    updated = status.model_copy(
        update={
            "phase": WorkflowPhase.RUNNING,
            "reason": Reason.RESUMED,
            "message": f"resumed from its checkpoint (resume {resumes})",
            "resumes": resumes,
            "resume_token": view.resume_token,
            "resumed_at": now,
            "finished_at": None,
            "steps": steps,
        }
    )
    message = "resumed: Completed tasks keep their results; the others run again"
    return WorkflowPlan(
        status=settable(updated), events=(Event("Normal", Reason.RESUMED, message),)
    )


def _reset(step: WorkflowStepStatus) -> WorkflowStepStatus:
    if step.phase is StepPhase.COMPLETED and all(
        t.phase in ("Completed", "Skipped") for t in step.tasks
    ):
        return step
    tasks = [
        task if task.phase == "Completed" else WorkflowTaskStatus(name=task.name, index=task.index)
        for task in step.tasks
    ]
    return WorkflowStepStatus(name=step.name, tasks=tasks)


# ----- running ----------------------------------------------------------------------------------
def _running(view: WorkflowView, now: datetime.datetime) -> WorkflowPlan:
    spec = view.spec
    assert spec is not None
    status = view.status
    clock_start = status.resumed_at or status.started_at or now
    deadline = clock_start + parse_duration(spec.global_timeout) if spec.global_timeout else None
    outcome = _stop_reason(view, now, deadline)
    walk = Walk(
        view,
        now,
        stopping=outcome is not None,
        suspended=spec.suspend,
        workflow_status=WorkflowPhase.RUNNING.value,
    )
    walk.run(view.steps)
    if outcome is None and walk.failed_step is not None:
        outcome = WorkflowPhase.FAILED
    main = [walk.steps[step.spec.name] for step in view.steps]
    main_active = any(unit.active for step in main for unit in step.units)
    main_ended = all(step.ended for step in main) or (outcome is not None and not main_active)
    terminal = None
    if main_ended:
        walk.workflow_status = (outcome or WorkflowPhase.COMPLETED).value
        walk.run(view.finally_steps)
        closing = [walk.steps[step.spec.name] for step in view.finally_steps]
        if all(step.ended for step in closing):
            failed_finally = any(step.phase is StepPhase.FAILED for step in closing)
            terminal = outcome or (
                WorkflowPhase.FAILED if failed_finally else WorkflowPhase.COMPLETED
            )
    else:
        walk.pending(view.finally_steps)
    if terminal is None and _stuck(view, walk):
        return _stuck_plan(view, walk, now)
    new_status = status_of(view, walk, now, terminal, outcome)
    return WorkflowPlan(
        status=settable(new_status),
        creations=tuple(walk.creations),
        deletions=tuple(walk.deletions),
        patches=_patches(view, walk, outcome),
        events=events_between(view.status, new_status),
        requeue_at=deadline if terminal is None else _expiry(view, now),
        urgent=fingerprint(view.status) != fingerprint(new_status)
        or bool(walk.creations or walk.deletions),
    )


def _stop_reason(
    view: WorkflowView, now: datetime.datetime, deadline: datetime.datetime | None
) -> WorkflowPhase | None:
    assert view.spec is not None
    if view.spec.cancel:
        return WorkflowPhase.CANCELLED
    if deadline is not None and now >= deadline:
        return WorkflowPhase.TIMEOUT
    main = {step.spec.name for step in view.steps}
    if any(s.phase is StepPhase.FAILED and s.name in main for s in view.status.steps):
        return WorkflowPhase.FAILED
    return None


def _stuck(view: WorkflowView, walk: Walk) -> bool:
    """Nothing runs, nothing is being created or replaced, yet the workflow has not ended."""
    if walk.suspended or walk.creations or walk.deletions:
        return False
    return not any(child.active or child.deleting for child in view.children.values())


def _stuck_plan(view: WorkflowView, walk: Walk, now: datetime.datetime) -> WorkflowPlan:
    waiting = sorted(name for name, task in walk.tasks.items() if task.outcome is None)
    message = f"nothing can run and the workflow has not ended; waiting: {', '.join(waiting)}"
    status = status_of(view, walk, now, WorkflowPhase.FAILED, WorkflowPhase.FAILED)
    status = status.model_copy(update={"reason": Reason.STUCK, "message": message})
    return WorkflowPlan(status=settable(status), events=(Event("Warning", Reason.STUCK, message),))


def _expiry(view: WorkflowView, now: datetime.datetime) -> datetime.datetime | None:
    assert view.spec is not None
    if view.spec.ttl_after_finished is None:
        return None
    return now + parse_duration(view.spec.ttl_after_finished)


def _patches(
    view: WorkflowView, walk: Walk, outcome: WorkflowPhase | None
) -> tuple[ChildPatch, ...]:
    main_tasks = {task.spec.name for step in view.steps for task in step.tasks}
    stop = outcome in (WorkflowPhase.CANCELLED, WorkflowPhase.TIMEOUT)
    patches = []
    for child in view.children.values():
        if not child.active:
            continue
        if stop and child.task in main_tasks:
            if not child.cancelled:
                patches.append(ChildPatch(child.name, cancel=True))
        elif child.suspended != walk.suspended:
            patches.append(ChildPatch(child.name, suspend=walk.suspended))
    return tuple(patches)
