"""One pass over a workflow's steps: where every task stands and which children to create now.

Steps are walked in their order (dependencies and expressions only look back, which the view
checked), so when a step is judged, everything it may wait for has been judged already. For each
step: has what it depends on ended; should it run at all (`when`); then its tasks in an order that
respects their dependencies. A task is ready when its execution mode lets it (Sequential: the task
before it ended; Conditional: it is the first whose `when` holds), the tasks it depends on
started or ended as required (with their condition, else it is Skipped), and everything its
expressions read has ended; only then is its `forEach` list evaluated and a child created per
item whose `when` holds, within the workflow's and the step's parallelism. Existing children are
read first, so a restart at any moment sees what exists and never creates a child twice; an
unfinished child of an earlier run (before a step retry or a resume) is deleted and replaced.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from execflow.api.reasons import Reason
from execflow.api.task import DependencyType
from execflow.api.workflow import (
    ExecutionMode,
    OnError,
    StepPhase,
    WorkflowStepStatus,
    WorkflowTaskStatus,
)
from execflow.api.workflow_limits import (
    FAN_OUT_MAX,
)
from execflow.core.expressions import ExpressionError
from execflow.core.workflows.children import child_task
from execflow.core.workflows.scope import Scope
from execflow.core.workflows.state import (
    PENDING,
    Creation,
    StepState,
    TaskState,
    Unit,
    condition_met,
    failure_text,
    unit_of,
)
from execflow.core.workflows.units import (
    SKIPPED,
    Child,
    Outcome,
    child_name,
    run_token,
)
from execflow.core.workflows.view import StepPlan, TaskPlan, WorkflowView, ordered_tasks


@dataclass
class Walk:
    """One pass; `run()` fills in the steps' states and the children to create and delete."""

    view: WorkflowView
    now: datetime.datetime
    stopping: bool
    """No new child of the main steps starts (a Stop failure, a cancel or a timeout)."""
    suspended: bool
    workflow_status: str
    """What expressions see as workflow.status."""
    active: int = 0
    step_active: dict[str, int] = field(default_factory=dict)
    """Active children per step, those created in this pass included."""
    steps: dict[str, StepState] = field(default_factory=dict)
    tasks: dict[str, TaskState] = field(default_factory=dict)
    creations: list[Creation] = field(default_factory=list)
    deletions: list[str] = field(default_factory=list)
    failed_step: str | None = None
    """The first step that failed for good (Stop, or Retry with no retry left)."""

    def __post_init__(self) -> None:
        self.active = sum(1 for child in self.view.children.values() if child.active)
        self.scope = Scope(self.view, self.workflow_status, self.steps, self.tasks)

    # ----- steps --------------------------------------------------------------------------
    def run(self, steps: Iterable[StepPlan]) -> None:
        self.scope.workflow_status = self.workflow_status
        for step in steps:
            state = self._step(step)
            self.steps[state.name] = state
            if state.phase is StepPhase.FAILED and step.section == "steps":
                # Nothing new starts in the main steps after a step failed for good.
                self.stopping = True
                self.failed_step = self.failed_step or state.name

    def pending(self, steps: Iterable[StepPlan]) -> None:
        """Steps not reached in this pass (finally steps while the main ones run), as Pending."""
        for step in steps:
            state = StepState(plan=step)
            self._placeholders(state)
            self.steps[state.name] = state

    def _recorded(self, name: str) -> WorkflowStepStatus | None:
        return next((s for s in self.view.status.steps if s.name == name), None)

    def _step(self, step: StepPlan) -> StepState:
        recorded = self._recorded(step.spec.name)
        state = StepState(
            plan=step,
            retries=recorded.retries if recorded else 0,
            started_at=recorded.started_at if recorded else None,
            finished_at=recorded.finished_at if recorded else None,
        )
        if not all(self.steps[name].ended for name in step.depends_on):
            self._placeholders(state)
            return state
        started = state.started_at is not None or self._has_children(step)
        stopping = self.stopping and step.section == "steps"
        if not started and stopping:
            return self._skip(state, Reason.NOT_RUN, "not run: the workflow stopped before it")
        if not started and step.when is not None:
            verdict = self.scope.condition(step.when, step.spec.name, None, None)
            if verdict is None:
                self._placeholders(state)
                return state
            if isinstance(verdict, str):
                return self._fail(state, Reason.EXPRESSION_ERROR, verdict)
            if not verdict:
                return self._skip(state, Reason.CONDITION_FALSE, f"when is false: {step.spec.when}")
        state.started_at = state.started_at or self.now
        names = {task.spec.name for task in step.tasks}
        self.step_active[state.name] = sum(
            1 for child in self.view.children.values() if child.task in names and child.active
        )
        self._tasks(state, stopping)
        return self._judge(state)

    def _has_children(self, step: StepPlan) -> bool:
        names = {task.spec.name for task in step.tasks}
        return any(child.task in names for child in self.view.children.values())

    def _placeholders(self, state: StepState) -> None:
        for task in state.plan.tasks:
            placeholder = TaskState(task, [Unit(task.spec.name, None, "")])
            state.tasks[task.spec.name] = placeholder
            self.tasks[task.spec.name] = placeholder

    def _skip(self, state: StepState, reason: str, message: str) -> StepState:
        for task in state.plan.tasks:
            skipped = TaskState(task, [Unit(task.spec.name, None, "", SKIPPED, reason)], True)
            state.tasks[task.spec.name] = skipped
            self.tasks[task.spec.name] = skipped
        state.phase, state.reason, state.message = StepPhase.SKIPPED, reason, message
        state.finished_at = state.finished_at or self.now
        return state

    def _fail(self, state: StepState, reason: str, message: str) -> StepState:
        self._placeholders(state)
        state.phase, state.reason, state.message = StepPhase.FAILED, reason, message
        state.finished_at = state.finished_at or self.now
        return state

    def _judge(self, state: StepState) -> StepState:
        """The step's phase from its tasks; a failure under Retry starts the step again."""
        outcomes = [task.outcome for task in state.tasks.values()]
        failed = [
            failure_text(task) for task in state.tasks.values() if task.outcome is Outcome.FAILED
        ]
        busy = any(unit.active for unit in state.units)
        policy = state.plan.spec.on_error
        if failed and policy is not OnError.CONTINUE and not busy:
            if policy is OnError.RETRY and state.retries < state.plan.spec.max_retries:
                return self._retry(state, failed)
            state.phase, state.reason = StepPhase.FAILED, Reason.TASK_FAILED
            state.message = "; ".join(failed)
            state.finished_at = state.finished_at or self.now
            return state
        if failed and policy is not OnError.CONTINUE:
            state.phase, state.reason = StepPhase.RUNNING, Reason.TASK_FAILED
            state.message = f"{'; '.join(failed)}; waiting for running tasks"
            return state
        if all(outcome is not None for outcome in outcomes):
            state.phase = StepPhase.COMPLETED
            state.reason = Reason.FAILURES_TOLERATED if failed else Reason.SUCCEEDED
            state.message = f"tolerated: {'; '.join(failed)}" if failed else ""
            state.finished_at = state.finished_at or self.now
            return state
        state.phase, state.reason = StepPhase.RUNNING, Reason.RUNNING
        return state

    def _retry(self, state: StepState, failed: list[str]) -> StepState:
        """Run the step again: its unfinished units of this run are replaced in the next run."""
        state.retries += 1
        for task in state.tasks.values():
            for unit in task.units:
                if unit.outcome is not Outcome.SUCCEEDED and unit.outcome is not Outcome.SKIPPED:
                    if unit.child is not None:
                        self.deletions.append(unit.name)
                    unit.phase, unit.reason, unit.child = PENDING, Reason.RETRYING_STEP, None
        state.phase, state.reason = StepPhase.RUNNING, Reason.RETRYING_STEP
        state.message = (
            f"{'; '.join(failed)}; retry {state.retries} of {state.plan.spec.max_retries}"
        )
        return state

    # ----- tasks ----------------------------------------------------------------------------
    def _tasks(self, state: StepState, stopping: bool) -> None:
        mode = state.plan.spec.execution_mode
        chosen = self._chosen(state) if mode is ExecutionMode.CONDITIONAL else None
        blocked = False
        for task in ordered_tasks(state.plan):
            if mode is ExecutionMode.CONDITIONAL and task.spec.name != chosen:
                result = self._waiting(task) if chosen is None else self._not_chosen(task)
            else:
                gate = not blocked and not stopping and not self.suspended
                conditional = mode is ExecutionMode.CONDITIONAL
                result = self._task(task, state, gate, ignore_when=conditional)
            state.tasks[task.spec.name] = result
            self.tasks[task.spec.name] = result
            if mode is ExecutionMode.SEQUENTIAL and not self._lets_next_start(result, state):
                blocked = True

    @staticmethod
    def _lets_next_start(task: TaskState, state: StepState) -> bool:
        outcome = task.outcome
        if outcome is None:
            return False
        return outcome is not Outcome.FAILED or state.plan.spec.on_error is OnError.CONTINUE

    def _chosen(self, state: StepState) -> str | None:
        """Conditional mode: the task that runs ("" none; None not decidable yet)."""
        for task in state.plan.tasks:
            if self._task_started(task) or task.when is None:
                return task.spec.name
            verdict = self.scope.condition(task.when, state.name, None, None)
            if verdict is None:
                return None
            if verdict is True:
                return task.spec.name
        return ""

    def _task_started(self, task: TaskPlan) -> bool:
        return any(child.task == task.spec.name for child in self.view.children.values())

    @staticmethod
    def _not_chosen(task: TaskPlan) -> TaskState:
        unit = Unit(task.spec.name, None, "", SKIPPED, Reason.NOT_CHOSEN)
        return TaskState(task, [unit], True)

    @staticmethod
    def _waiting(task: TaskPlan) -> TaskState:
        return TaskState(task, [Unit(task.spec.name, None, "")])

    def _task(self, task: TaskPlan, state: StepState, gate: bool, ignore_when: bool) -> TaskState:
        existing = self._existing(task, state)
        unmet = self._unmet_dependency(task)
        if unmet is not None:
            # Results of an earlier run stand; nothing more runs (a retry or a resume may have
            # turned the predecessor's outcome around since they were made).
            kept = [unit for unit in existing.values() if unit.phase == "Completed" or unit.active]
            unit = Unit(task.spec.name, None, "", SKIPPED, Reason.DEPENDENCY_NOT_MET, unmet)
            return TaskState(task, kept or [unit], True)
        ready = self._inputs_ready(task)
        if not ready and not existing:
            return self._waiting(task)
        items = self._items(task, state)
        if isinstance(items, str):
            unit = Unit(task.spec.name, None, "", "Failed", Reason.EXPRESSION_ERROR, items)
            return TaskState(task, [unit], True)
        if items is None:
            return TaskState(task, list(existing.values()) or [Unit(task.spec.name, None, "")])
        if not items:
            message = "forEach gave an empty list"
            return TaskState(
                task, [Unit(task.spec.name, None, "", SKIPPED, Reason.NO_ITEMS, message)], True
            )
        units = [
            self._unit(
                task,
                state,
                index,
                item,
                existing=existing,
                may_create=gate and ready,
                ignore_when=ignore_when,
            )
            for index, item in items
        ]
        return TaskState(task, units, True)

    def _existing(self, task: TaskPlan, state: StepState) -> dict[str, Unit]:
        """Children of this task: current ones as units; stale ones deleted (listed, not used)."""
        run = run_token(self.view.status.resumes, state.retries)
        found: dict[str, Unit] = {}
        for child in self.view.children.values():
            if child.task != task.spec.name:
                continue
            if child.run != run and child.phase != "Completed":
                if not child.deleting and child.name not in self.deletions:
                    self.deletions.append(child.name)
                continue
            found[child.name] = unit_of(child)
        return found

    def _unmet_dependency(self, task: TaskPlan) -> str | None:
        for dependency in task.spec.dependencies:
            other = self.tasks.get(dependency.task)
            if other is None:
                continue
            never_started = other.outcome is not None and not other.started
            if dependency.type is DependencyType.START_TO_START and never_started:
                return f"StartToStart dependency on {other.name}, which ended without starting"
            finished = dependency.type is DependencyType.FINISH_TO_START and other.outcome
            if finished and not condition_met(dependency.condition, finished):
                return (
                    f"FinishToStart dependency on {other.name} requires "
                    f"{dependency.condition.value}"
                )
        return None

    def _inputs_ready(self, task: TaskPlan) -> bool:
        for dependency in task.spec.dependencies:
            other = self.tasks.get(dependency.task)
            if other is None:
                return False
            if dependency.type is DependencyType.FINISH_TO_START and other.outcome is None:
                return False
            if not other.started and other.outcome is None:
                return False  # Start* needs it started; *ToFinish needs its children named
        if any(self.scope.task_outcome(name) is None for name in task.reads):
            return False
        return all(
            name in self.steps and self.steps[name].ended
            for name in task.reads_steps
            if name != task.step
        )

    def _items(self, task: TaskPlan, state: StepState) -> list[tuple[int | None, Any]] | str | None:
        """(index, item) per unit; a message when forEach fails; None when not knowable yet."""
        if task.for_each is None:
            return [(None, None)]
        if not self.scope.reads_ended(task.for_each, state.name):
            return None
        try:
            value = task.for_each.evaluate(self.scope.context(task.for_each))
        except ExpressionError as error:
            return f"forEach: {error}"
        if not isinstance(value, list):
            return f"forEach gave {type(value).__name__}, not a list"
        if len(value) > FAN_OUT_MAX:
            return f"forEach gave {len(value)} items; at most {FAN_OUT_MAX} are allowed"
        return list(enumerate(value))

    def _unit(
        self,
        task: TaskPlan,
        state: StepState,
        index: int | None,
        item: Any,
        *,
        existing: Mapping[str, Unit],
        may_create: bool,
        ignore_when: bool,
    ) -> Unit:
        name = child_name(self.view.name, task.spec.name, index)
        if name in existing:
            return existing[name]
        recorded = self._recorded_unit(state.name, task.spec.name, index)
        if recorded is not None and recorded.phase == "Completed":
            return Unit(task.spec.name, index, name, "Completed", recorded.reason)
        if task.when is not None and not ignore_when:
            verdict = self.scope.condition(task.when, state.name, item, index)
            if isinstance(verdict, str):
                return Unit(task.spec.name, index, name, "Failed", Reason.EXPRESSION_ERROR, verdict)
            if verdict is False:
                return Unit(task.spec.name, index, name, SKIPPED, Reason.CONDITION_FALSE)
        if not may_create or not self._slot(state):
            return Unit(task.spec.name, index, name)
        return self._create(task, state, index, item, name)

    def _recorded_unit(self, step: str, task: str, index: int | None) -> WorkflowTaskStatus | None:
        recorded = self._recorded(step)
        if recorded is None:
            return None
        return next(
            (u for u in recorded.tasks if u.name == task and u.index == index and u.task_name),
            None,
        )

    def _slot(self, state: StepState) -> bool:
        limit = self.view.spec.parallelism if self.view.spec is not None else 0
        step_limit = state.plan.spec.parallelism
        within_workflow = not limit or self.active < limit
        return within_workflow and (not step_limit or self.step_active[state.name] < step_limit)

    def _create(
        self, task: TaskPlan, state: StepState, index: int | None, item: Any, name: str
    ) -> Unit:
        run = run_token(self.view.status.resumes, state.retries)
        predecessors = {
            other: [unit.name for unit in self.tasks[other].units if unit.child is not None]
            for other in (d.task for d in task.spec.dependencies)
            if other in self.tasks
        }
        try:
            body = child_task(
                self.view,
                step=state.name,
                run=run,
                task=task,
                index=index,
                name=name,
                context=self.scope.template_context(task, item, index),
                predecessors=predecessors,
            )
        except ExpressionError as error:
            return Unit(task.spec.name, index, name, "Failed", Reason.EXPRESSION_ERROR, str(error))
        self.creations.append(Creation(name, body, state.name))
        self.active += 1
        self.step_active[state.name] += 1
        created = Child(name=name, task=task.spec.name, index=index, run=run, phase=PENDING)
        return Unit(task.spec.name, index, name, PENDING, "", child=created)
