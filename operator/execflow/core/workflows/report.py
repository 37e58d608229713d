"""What a pass of the planner reports: the workflow's status and the Events of its changes.

The status is the checkpoint (every step's and unit's phase, results as outputs, progress); its
`fingerprint` is the part decisions are made of, so a change outside it (a child went from Queued
to Running) is only progress and may be written later. A result larger than `OUTPUT_LIMIT` is
referenced by a label selector instead of copied, so the status stays small for large fan-outs.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from execflow.api.reasons import Reason
from execflow.api.workflow import StepPhase, WorkflowPhase, WorkflowStatus
from execflow.core.workflows.state import StepState
from execflow.core.workflows.units import TASK_LABEL, WORKFLOW_LABEL, Outcome
from execflow.core.workflows.view import WorkflowView
from execflow.core.workflows.walk import Walk

OUTPUT_LIMIT = 16 * 1024
"""A task's outputs above this many bytes of JSON are referenced, not copied into the status."""


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    reason: str
    message: str


def status_of(
    view: WorkflowView,
    walk: Walk,
    now: datetime.datetime,
    terminal: WorkflowPhase | None,
    outcome: WorkflowPhase | None,
) -> WorkflowStatus:
    """The status after this pass; `terminal` is the phase it ends in, `outcome` why it stops."""
    assert view.spec is not None
    steps = [walk.steps[step.spec.name] for step in view.all_steps]
    phase, reason, message = _phase(view, walk, terminal, outcome)
    units = [unit for step in steps for unit in step.units]
    finished = sum(1 for unit in units if unit.ended)
    return view.status.model_copy(
        update={
            "phase": phase,
            "reason": reason,
            "message": message,
            "progress": f"{finished}/{len(units)}",
            "started_at": view.status.started_at or now,
            "finished_at": now if terminal is not None else None,
            "steps": [step.status() for step in steps],
            "outputs": _outputs(view, steps),
        }
    )


def _phase(
    view: WorkflowView,
    walk: Walk,
    terminal: WorkflowPhase | None,
    outcome: WorkflowPhase | None,
) -> tuple[WorkflowPhase, str, str]:
    assert view.spec is not None
    if terminal is not None:
        return _ending(view, walk, terminal)
    if view.spec.suspend:
        return WorkflowPhase.PAUSED, Reason.SUSPENDED, "suspended by spec.suspend"
    if outcome is not None:
        return WorkflowPhase.RUNNING, Reason.RUNNING, f"stopping ({outcome.value}); finishing"
    running = [s.name for s in walk.steps.values() if s.phase is StepPhase.RUNNING]
    return WorkflowPhase.RUNNING, Reason.RUNNING, f"running {', '.join(running)}" if running else ""


def _ending(
    view: WorkflowView, walk: Walk, terminal: WorkflowPhase
) -> tuple[WorkflowPhase, str, str]:
    assert view.spec is not None
    if terminal is WorkflowPhase.CANCELLED:
        return terminal, Reason.CANCELLED, "cancelled by spec.cancel"
    if terminal is WorkflowPhase.TIMEOUT:
        limit = view.spec.global_timeout
        return terminal, Reason.DEADLINE_EXCEEDED, f"globalTimeout {limit} exceeded"
    if terminal is WorkflowPhase.FAILED:
        failed = [s for s in walk.steps.values() if s.phase is StepPhase.FAILED]
        detail = "; ".join(f"step {s.name}: {s.message}" for s in failed) or "a step failed"
        return terminal, Reason.STEP_FAILED, detail
    return terminal, Reason.SUCCEEDED, "every step ended"


def _outputs(view: WorkflowView, steps: Sequence[StepState]) -> dict[str, Any]:
    outputs: dict[str, Any] = {}
    for step in steps:
        for task in step.tasks.values():
            results = [u.result for u in task.units if u.outcome is Outcome.SUCCEEDED]
            if not results:
                if task.name in view.status.outputs:
                    outputs[task.name] = view.status.outputs[task.name]
                continue
            value: Any = (
                [u.result if u.outcome is Outcome.SUCCEEDED else None for u in task.units]
                if task.plan.for_each is not None
                else results[0]
            )
            size = len(json.dumps(value, separators=(",", ":")))
            if size > OUTPUT_LIMIT:
                selector = f"{WORKFLOW_LABEL}={view.name},{TASK_LABEL}={task.name}"
                value = {"ref": f"kubectl get tasks -l {selector}", "size": size}
            outputs[task.name] = value
    return outputs


def settable(status: WorkflowStatus) -> WorkflowStatus:
    """The whole status as the fields to write (every field set, so the diff sees them all)."""
    return WorkflowStatus.model_validate(status.model_dump(by_alias=True))


def fingerprint(status: WorkflowStatus) -> Any:
    """What decisions are made of: a change here is written at once, the rest may wait."""
    return (
        status.phase,
        status.reason,
        status.progress,
        json.dumps(status.outputs, sort_keys=True, default=str),
        tuple(
            (
                step.name,
                step.phase,
                step.retries,
                tuple(
                    (t.name, t.index, bool(t.task_name), t.phase if _settled(t.phase) else "")
                    for t in step.tasks
                ),
            )
            for step in status.steps
        ),
    )


def _settled(phase: str) -> bool:
    return phase in ("Skipped", "Completed", "Failed", "Cancelled", "Timeout")


def events_between(before: WorkflowStatus, after: WorkflowStatus) -> tuple[Event, ...]:
    """Step events between the workflow's start (or resume) and its end, in that order."""
    steps = []
    previous = {step.name: step.phase for step in before.steps}
    retried = {step.name: step.retries for step in before.steps}
    for step in after.steps:
        if step.retries > retried.get(step.name, 0):
            text = f"step {step.name} runs again (retry {step.retries}): {step.message}"
            steps.append(Event("Warning", Reason.RETRYING_STEP, text))
        if step.phase is previous.get(step.name) or step.phase not in _STEP_EVENTS:
            continue
        kind, reason = _STEP_EVENTS[step.phase]
        message = f"step {step.name} {step.phase.value.lower()}"
        steps.append(Event(kind, reason, f"{message}: {step.message}" if step.message else message))
    if before.phase is after.phase:
        return tuple(steps)
    phase = _phase_events(before.phase, after)
    return tuple(steps + phase if after.phase.is_terminal else phase + steps)


_STEP_EVENTS = {
    StepPhase.COMPLETED: ("Normal", "StepCompleted"),
    StepPhase.FAILED: ("Warning", "StepFailed"),
    StepPhase.SKIPPED: ("Normal", "StepSkipped"),
}

_PHASE_EVENTS = {
    WorkflowPhase.PAUSED: ("Normal", Reason.SUSPENDED),
    WorkflowPhase.COMPLETED: ("Normal", "Completed"),
    WorkflowPhase.FAILED: ("Warning", "Failed"),
    WorkflowPhase.TIMEOUT: ("Warning", "Timeout"),
    WorkflowPhase.CANCELLED: ("Normal", Reason.CANCELLED),
}


def _phase_events(before: WorkflowPhase, after: WorkflowStatus) -> list[Event]:
    if after.phase is WorkflowPhase.RUNNING:
        if before is WorkflowPhase.PENDING:
            return [Event("Normal", Reason.STARTED, "started")]
        if before is WorkflowPhase.PAUSED:
            return [Event("Normal", Reason.RESUMED, "resumed after a pause")]
        return []
    kind, reason = _PHASE_EVENTS.get(after.phase, ("Normal", after.phase.value))
    return [Event(kind, reason, after.message or after.phase.value)]
