"""Where each step, task and unit of a workflow stands in one pass of the planner.

A unit is one child Task (a task, or one item of a fan-out); a task's outcome is its units'
outcomes together, a step's phase is judged from its tasks. `StepState.status()` is what the
workflow's status shows of a step.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from execflow.api.task import DependencyCondition
from execflow.api.workflow import StepPhase, WorkflowStepStatus, WorkflowTaskStatus
from execflow.core.workflows.units import SKIPPED, Child, Outcome
from execflow.core.workflows.view import StepPlan, TaskPlan

PENDING = "Pending"


@dataclass
class Unit:
    """One child's standing in this pass: created, waiting, skipped or failed before creation."""

    task: str
    index: int | None
    name: str
    phase: str = PENDING
    reason: str = ""
    message: str = ""
    child: Child | None = None
    result: Any = None
    exit_code: int | None = None
    attempts: int = 0
    started_at: datetime.datetime | None = None
    finished_at: datetime.datetime | None = None

    @property
    def ended(self) -> bool:
        return self.outcome is not None

    @property
    def active(self) -> bool:
        return self.child is not None and self.child.active

    @property
    def outcome(self) -> Outcome | None:
        if self.phase == SKIPPED:
            return Outcome.SKIPPED
        if self.phase == "Completed":
            return Outcome.SUCCEEDED
        if self.phase in ("Failed", "Cancelled", "Timeout"):
            return Outcome.FAILED
        return None

    def info(self) -> dict[str, Any]:
        """What expressions see of it under steps.<step>.tasks['<task>']."""
        return {
            "phase": self.phase,
            "result": self.result,
            "exitCode": self.exit_code,
            "attempts": self.attempts,
        }


@dataclass
class TaskState:
    plan: TaskPlan
    units: list[Unit] = field(default_factory=list)
    expanded: bool = False
    """Its units are known (the fan-out list was evaluated); before that it counts as one."""

    @property
    def name(self) -> str:
        return self.plan.spec.name

    @property
    def started(self) -> bool:
        return any(unit.child is not None for unit in self.units)

    @property
    def outcome(self) -> Outcome | None:
        if not self.expanded or not self.units:
            return None
        outcomes = [unit.outcome for unit in self.units]
        if any(outcome is None for outcome in outcomes):
            return None
        if Outcome.FAILED in outcomes:
            return Outcome.FAILED
        if all(outcome is Outcome.SKIPPED for outcome in outcomes):
            return Outcome.SKIPPED
        return Outcome.SUCCEEDED

    def info(self) -> Any:
        if self.plan.for_each is not None:
            return [unit.info() for unit in self.units] if self.expanded else []
        return self.units[0].info() if self.units else {"phase": PENDING}


@dataclass
class StepState:
    plan: StepPlan
    phase: StepPhase = StepPhase.PENDING
    reason: str = ""
    message: str = ""
    retries: int = 0
    started_at: datetime.datetime | None = None
    finished_at: datetime.datetime | None = None
    tasks: dict[str, TaskState] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.plan.spec.name

    @property
    def ended(self) -> bool:
        return self.phase in (
            StepPhase.COMPLETED,
            StepPhase.FAILED,
            StepPhase.SKIPPED,
            StepPhase.CANCELLED,
        )

    @property
    def units(self) -> list[Unit]:
        return [unit for task in self.tasks.values() for unit in task.units]

    def status(self) -> WorkflowStepStatus:
        return WorkflowStepStatus(
            name=self.name,
            phase=self.phase,
            reason=self.reason,
            message=self.message,
            retries=self.retries,
            started_at=self.started_at,
            finished_at=self.finished_at,
            tasks=[
                WorkflowTaskStatus(
                    name=unit.task,
                    task_name=unit.name if unit.child is not None else "",
                    index=unit.index,
                    phase=unit.phase,
                    reason=unit.reason,
                    attempts=unit.attempts,
                    started_at=unit.started_at,
                    finished_at=unit.finished_at,
                )
                for unit in self.units
            ],
        )


@dataclass(frozen=True)
class Creation:
    """A child Task to create, and the unit it is for."""

    name: str
    body: Mapping[str, Any]
    step: str


def unit_of(child: Child) -> Unit:
    return Unit(
        task=child.task,
        index=child.index,
        name=child.name,
        phase=child.phase,
        reason=child.reason,
        message=child.message,
        child=child,
        result=child.result if child.ended else None,
        exit_code=child.exit_code,
        attempts=child.attempts,
        started_at=child.started_at,
        finished_at=child.finished_at,
    )


MESSAGE_LIMIT = 300


def failure_text(task: TaskState) -> str:
    """ "task NAME failed", with why (from its first failed unit that says)."""
    why = next((u.message for u in task.units if u.outcome is Outcome.FAILED and u.message), "")
    if len(why) > MESSAGE_LIMIT:
        why = why[: MESSAGE_LIMIT - 1] + "…"
    return f"task {task.name} failed: {why}" if why else f"task {task.name} failed"


def condition_met(condition: DependencyCondition, outcome: Outcome) -> bool:
    if condition is DependencyCondition.ANY:
        return True
    if condition is DependencyCondition.FAILED:
        return outcome is Outcome.FAILED
    return outcome is not Outcome.FAILED
