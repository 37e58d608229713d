"""Snapshot → view: a Workflow and its children as the planner reads them, checked once.

The spec is parsed, every expression it holds is compiled (step and task `when`, `forEach`, and the
`{{ ... }}` templates of each task) and the names they read are checked: an expression or a
dependency may read steps listed before its own step and tasks of its own step, never a later
step, and the tasks of one step may not wait for each other in a cycle. So the planner can walk
the steps in their order and nothing can wait forever for something that comes after it. A spec
that fails these checks makes a view with a `failure` (InvalidSpec or InvalidExpression, with the
field's path), which ends the workflow with that reason.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from execflow.api.reasons import Reason
from execflow.api.task import DependencyType
from execflow.api.workflow import (
    WorkflowSpec,
    WorkflowStatus,
    WorkflowStep,
    WorkflowTask,
    child_name_problems,
)
from execflow.core.dependencies import Dependency as Edge
from execflow.core.dependencies import tasks_on_cycles
from execflow.core.expressions import Expression, ExpressionError, compile_expression
from execflow.core.workflows.templates import expressions_in
from execflow.core.workflows.units import Child, child_of

RESUME_ANNOTATION = "execflow.dev/resume"
TEMPLATED = ("parameters", "container", "podTemplate")
"""Where a task's templates live (args and env values in container, annotations in podTemplate)."""

Body = Mapping[str, Any]


@dataclass(frozen=True)
class WorkflowSnapshot:
    namespace: str
    name: str
    uid: str
    generation: int
    created_at: datetime.datetime | None
    annotations: Mapping[str, str]
    spec: Body
    status: Body
    children: Sequence[Body] = ()


@dataclass(frozen=True)
class TaskPlan:
    """One task of the spec with its compiled expressions and where it sits."""

    step: str
    position: int
    """Index of the task in its step."""
    spec: WorkflowTask
    raw: Mapping[str, Any]
    """The task as the user wrote it: a child's spec is built from this, so unset fields stay
    unset and a Tool's defaults can fill them."""
    when: Expression | None
    for_each: Expression | None
    templates: tuple[Expression, ...]
    reads: frozenset[str]
    """Tasks whose end this task's expressions wait for (by task name)."""
    reads_steps: frozenset[str]
    """Steps whose end this task's expressions wait for."""


@dataclass(frozen=True)
class StepPlan:
    spec: WorkflowStep
    section: str
    """"steps" or "finally"."""
    position: int
    depends_on: tuple[str, ...]
    when: Expression | None
    tasks: tuple[TaskPlan, ...]


@dataclass(frozen=True)
class Failure:
    reason: str
    message: str


@dataclass(frozen=True)
class WorkflowView:
    name: str
    namespace: str
    uid: str
    generation: int
    status: WorkflowStatus
    spec: WorkflowSpec | None = None
    steps: tuple[StepPlan, ...] = ()
    finally_steps: tuple[StepPlan, ...] = ()
    children: Mapping[str, Child] = field(default_factory=dict)
    resume_token: str = ""
    failure: Failure | None = None

    @property
    def all_steps(self) -> tuple[StepPlan, ...]:
        return self.steps + self.finally_steps

    def task(self, name: str) -> TaskPlan | None:
        for step in self.all_steps:
            for task in step.tasks:
                if task.spec.name == name:
                    return task
        return None


def _status(raw: Body) -> WorkflowStatus:
    try:
        return WorkflowStatus.model_validate(raw)
    except ValidationError:
        return WorkflowStatus()


def _describe(error: ValidationError) -> str:
    return "; ".join(
        f"spec.{'.'.join(str(part) for part in item['loc'])}: {item['msg']}"
        for item in error.errors(include_url=False)
    )


def _compile(text: str | None, where: str) -> Expression | None:
    if text is None:
        return None
    try:
        return compile_expression(text)
    except ExpressionError as error:
        raise error.at(where) from None


def _raw_tasks(raw_spec: Body, section: str, step_index: int) -> list[Mapping[str, Any]]:
    steps = raw_spec.get(section) or []
    tasks = steps[step_index].get("tasks") or [] if step_index < len(steps) else []
    return [task for task in tasks if isinstance(task, Mapping)]


def _task_plan(step: WorkflowStep, position: int, raw: Mapping[str, Any], where: str) -> TaskPlan:
    task = step.tasks[position]
    templates = tuple(
        _compile_template(text, f"{where}.{part}")
        for part in TEMPLATED
        for text in expressions_in(raw.get(part))
    )
    when = _compile(task.when, f"{where}.when")
    for_each = _compile(task.for_each, f"{where}.forEach")
    reads: set[str] = set()
    reads_steps: set[str] = set()
    for expression in [*templates, *(e for e in (when, for_each) if e is not None)]:
        for reference in expression.references():
            if reference.task is None:
                reads_steps.add(reference.step)
            else:
                reads.add(reference.task)
    return TaskPlan(
        step=step.name,
        position=position,
        spec=task,
        raw=raw,
        when=when,
        for_each=for_each,
        templates=templates,
        reads=frozenset(reads),
        reads_steps=frozenset(reads_steps),
    )


def _compile_template(text: str, where: str) -> Expression:
    compiled = _compile(text, where)
    assert compiled is not None
    return compiled


def _step_plans(spec: WorkflowSpec, raw_spec: Body) -> tuple[tuple[StepPlan, ...], ...]:
    sections = []
    for section, steps in (("steps", spec.steps), ("finally", spec.finally_)):
        plans = []
        for index, step in enumerate(steps):
            where = f"spec.{section}[{index}]"
            raw_tasks = _raw_tasks(raw_spec, section, index)
            tasks = tuple(
                _task_plan(step, position, raw_tasks[position], f"{where}.tasks[{position}]")
                for position in range(len(step.tasks))
            )
            default = () if index == 0 else (steps[index - 1].name,)
            plans.append(
                StepPlan(
                    spec=step,
                    section=section,
                    position=index,
                    depends_on=tuple(step.depends_on) if step.depends_on is not None else default,
                    when=_compile(step.when, f"{where}.when"),
                    tasks=tasks,
                )
            )
        sections.append(tuple(plans))
    return tuple(sections)


def _order_problem(view: WorkflowView) -> str | None:
    """Expressions and dependencies may read earlier steps and their own, never later ones."""
    for section in (view.steps, view.finally_steps):
        for step in section:
            allowed_steps = {s.spec.name for s in view.steps}
            if step.section == "steps":
                allowed_steps = {s.spec.name for s in view.steps[: step.position + 1]}
            else:
                allowed_steps |= {s.spec.name for s in view.finally_steps[: step.position + 1]}
            allowed_tasks = {
                t.spec.name
                for s in (*view.steps, *view.finally_steps)
                if s.spec.name in allowed_steps
                for t in s.tasks
            }
            for task in step.tasks:
                named = {d.task for d in task.spec.dependencies} | task.reads
                unknown = sorted(named - allowed_tasks) + sorted(task.reads_steps - allowed_steps)
                if unknown:
                    return (
                        f"task {task.spec.name} (step {step.spec.name}) reads or depends on "
                        f"{', '.join(unknown)}, which is not a task or step of its own step or of "
                        "a step listed before it"
                    )
    return None


def _cycle_problem(view: WorkflowView) -> str | None:
    """Tasks of one step may not wait for each other in a cycle (dependencies or reads)."""
    for step in view.all_steps:
        names = {t.spec.name for t in step.tasks}
        graph: dict[str, list[Edge]] = {}
        for task in step.tasks:
            edges = [
                Edge(d.task, d.type, d.condition) for d in task.spec.dependencies if d.task in names
            ]
            edges += [
                Edge(read, DependencyType.FINISH_TO_START) for read in task.reads if read in names
            ]
            graph[task.spec.name] = edges
        cyclic = tasks_on_cycles(graph)
        if cyclic:
            return (
                f"tasks {', '.join(sorted(cyclic))} of step {step.spec.name} wait for each "
                "other in a cycle (dependencies or expressions reading their results)"
            )
    return None


def build_view(snapshot: WorkflowSnapshot) -> WorkflowView:
    children = {
        child.name: child
        for child in (child_of(body) for body in snapshot.children)
        if child is not None
    }
    view = WorkflowView(
        name=snapshot.name,
        namespace=snapshot.namespace,
        uid=snapshot.uid,
        generation=snapshot.generation,
        status=_status(snapshot.status),
        children=children,
        resume_token=str(snapshot.annotations.get(RESUME_ANNOTATION) or ""),
    )
    try:
        spec = WorkflowSpec.model_validate(snapshot.spec)
    except ValidationError as error:
        return _failed(view, Reason.INVALID_SPEC, _describe(error))
    too_long = child_name_problems(snapshot.name, spec)
    if too_long:
        return _failed(view, Reason.INVALID_SPEC, "; ".join(too_long))
    try:
        steps, finally_steps = _step_plans(spec, snapshot.spec)
    except ExpressionError as error:
        return _failed(view, Reason.INVALID_EXPRESSION, str(error))
    view = WorkflowView(
        **{**view.__dict__, "spec": spec, "steps": steps, "finally_steps": finally_steps}
    )
    problem = _order_problem(view) or _cycle_problem(view)
    if problem is not None:
        return _failed(view, Reason.INVALID_SPEC, problem)
    return view


def _failed(view: WorkflowView, reason: str, message: str) -> WorkflowView:
    return WorkflowView(**{**view.__dict__, "failure": Failure(reason, message)})


def ordered_tasks(step: StepPlan) -> list[TaskPlan]:
    """The step's tasks in list order, moved so that each comes after what it waits for."""
    by_name = {task.spec.name: task for task in step.tasks}
    done: list[TaskPlan] = []
    seen: set[str] = set()

    def visit(task: TaskPlan) -> None:
        if task.spec.name in seen:
            return
        seen.add(task.spec.name)
        for name in [d.task for d in task.spec.dependencies] + sorted(task.reads):
            if name in by_name:
                visit(by_name[name])
        done.append(task)

    for task in step.tasks:
        visit(task)
    return done
