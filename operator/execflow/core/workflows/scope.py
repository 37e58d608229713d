"""What a workflow's expressions see in one pass, and whether they can be evaluated yet.

An expression may be evaluated once everything it reads has ended (the tasks it names, the steps
it reads the phase of); the context holds only what it reads, so a large workflow's results are
not converted for every expression.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from execflow.core.expressions import Expression, ExpressionError
from execflow.core.workflows.state import PENDING, StepState, TaskState
from execflow.core.workflows.units import Outcome
from execflow.core.workflows.view import TaskPlan, WorkflowView


@dataclass
class Scope:
    view: WorkflowView
    workflow_status: str
    """What expressions see as workflow.status."""
    steps: dict[str, StepState] = field(default_factory=dict)
    tasks: dict[str, TaskState] = field(default_factory=dict)

    def task_outcome(self, name: str) -> Outcome | None:
        other = self.tasks.get(name)
        return None if other is None else other.outcome

    def reads_ended(self, expression: Expression, step: str) -> bool:
        for reference in expression.references():
            if reference.task is not None:
                if self.task_outcome(reference.task) is None:
                    return False
            elif reference.step != step and not (
                reference.step in self.steps and self.steps[reference.step].ended
            ):
                return False
        return True

    def condition(
        self, expression: Expression, step: str, item: Any, index: int | None
    ) -> bool | str | None:
        """True/False, a message when it fails, or None while what it reads has not ended."""
        if not self.reads_ended(expression, step):
            return None
        context = self.context(expression, item, index)
        try:
            value = expression.evaluate(context)
        except ExpressionError as error:
            return str(error)
        if not isinstance(value, bool):
            return f"when gave {value!r}, not true or false"
        return value

    def context(
        self, expression: Expression, item: Any = None, index: int | None = None
    ) -> dict[str, Any]:
        context = self._unit(item, index)
        steps: dict[str, Any] = {}
        for reference in expression.references():
            entry = steps.setdefault(reference.step, {"phase": PENDING, "tasks": {}})
            step = self.steps.get(reference.step)
            if step is not None:
                entry["phase"] = step.phase.value
            if reference.task is not None and reference.task in self.tasks:
                entry["tasks"][reference.task] = self.tasks[reference.task].info()
        context["steps"] = steps
        return context

    def _unit(self, item: Any, index: int | None) -> dict[str, Any]:
        spec = self.view.spec
        context: dict[str, Any] = {
            "variables": dict(spec.variables) if spec is not None else {},
            "workflow": {
                "name": self.view.name,
                "namespace": self.view.namespace,
                "status": self.workflow_status,
            },
            "steps": {},
        }
        if index is not None:
            context["item"], context["index"] = item, index
        return context

    def template_context(self, task: TaskPlan, item: Any, index: int | None) -> dict[str, Any]:
        context = self._unit(item, index)
        steps: dict[str, Any] = {}
        for expression in task.templates:
            for name, entry in self.context(expression, item, index)["steps"].items():
                merged = steps.setdefault(name, {"phase": entry["phase"], "tasks": {}})
                merged["tasks"].update(entry["tasks"])
        context["steps"] = steps
        return context
