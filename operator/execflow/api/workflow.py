"""The Workflow kind: many Tasks in steps, with conditions, fan-out, finally steps and resume.

A Workflow only creates Tasks (owned by it, named `<workflow>-<task>` and `<workflow>-<task>-<n>`
for fan-out) and reacts to their status; everything a Task can do, a workflow task can do. The
spec's expressions (`when`, `forEach`, and `{{ ... }}` templates in parameters, args, env values
and pod annotations) are CEL over the workflow's context. The status is the checkpoint: each
step's and task's phase, the results as they came in, and the resume count.

Admission checks what a CRD's CEL rules can: names that are DNS labels, step names unique across
`steps` and `finally`, task names unique in the whole workflow, `dependsOn` naming only steps
listed before (so steps can have no cycle), `maxRetries` only with `onError: Retry`, and child
names that fit a label value. Python checks the same when a body is parsed (`workflow_problems`,
`child_name_problems`). Expressions are compiled by the operator when it first sees the workflow;
one that does not compile fails it with reason InvalidExpression and the position.
"""

import enum
import re
from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, ConfigDict, Field, model_validator

from execflow.api.admission import AdmissionRule, matches
from execflow.api.common import (
    GROUP_VERSION,
    Condition,
    ExecflowModel,
    ObjectMeta,
    conditions_field,
)
from execflow.api.durations import Duration
from execflow.api.result_set import ResultSetTemplate
from execflow.api.task import TaskSpec
from execflow.api.workflow_limits import (
    CHILD_NAME_MESSAGE,
    DEPENDS_ON_MAX,
    FAN_OUT_MAX,
    FINALLY_MAX,
    INDEX_SUFFIX,
    LABEL_MAX,
    MAX_RETRIES_MESSAGE,
    NAME_MESSAGE,
    NAME_PATTERN,
    STEPS_MAX,
    TASKS_PER_STEP_MAX,
)
from execflow.api.workflow_rules import (
    child_names_rule,
    depends_on_rule,
    unique_in_step_rule,
    unique_step_names_rule,
    unique_task_names_rule,
)

_NAME = re.compile(NAME_PATTERN)


def _check_name(text: str) -> str:
    if _NAME.fullmatch(text) is None:
        raise ValueError(f"{text!r} {NAME_MESSAGE}")
    return text


StepName = Annotated[
    str,
    Field(min_length=1, max_length=LABEL_MAX),
    AfterValidator(_check_name),
    AdmissionRule(matches(NAME_PATTERN), NAME_MESSAGE),
]
"""A step or task name: a DNS label, since it names child Tasks and labels them."""

Expression = Annotated[str, Field(min_length=1, max_length=4096)]
"""A CEL expression over the workflow's context."""


class ExecutionMode(enum.StrEnum):
    """How the tasks of a step are run."""

    SEQUENTIAL = "Sequential"
    PARALLEL = "Parallel"
    HYBRID = "Hybrid"
    CONDITIONAL = "Conditional"


class OnError(enum.StrEnum):
    """What a task's final failure (after its own retryPolicy) does to its step."""

    STOP = "Stop"
    CONTINUE = "Continue"
    RETRY = "Retry"


class WorkflowPhase(enum.StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    PAUSED = "Paused"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    TIMEOUT = "Timeout"

    @property
    def is_terminal(self) -> bool:
        return self in (
            WorkflowPhase.COMPLETED,
            WorkflowPhase.FAILED,
            WorkflowPhase.CANCELLED,
            WorkflowPhase.TIMEOUT,
        )


FINAL_PHASES = frozenset(phase.value for phase in WorkflowPhase if phase.is_terminal)
"""The phases a workflow ends in, as its status spells them."""


class StepPhase(enum.StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    SKIPPED = "Skipped"
    CANCELLED = "Cancelled"


class WorkflowTask(TaskSpec):
    """One task of a step: any Task spec field, plus its name, a condition and a fan-out."""

    name: StepName = Field(
        description=(
            "Name of the task, unique in the workflow; the child Task is named "
            "<workflow>-<name> (and <workflow>-<name>-<index> for each item of a fan-out)."
        ),
    )
    when: Expression | None = Field(
        default=None,
        description=(
            "CEL condition; false skips the task (no Task is created). Sees variables, steps, "
            "workflow, and item and index inside a fan-out."
        ),
    )
    for_each: Expression | None = Field(
        default=None,
        description=(
            "CEL expression giving a list: one child Task per item (fan-out), with item and "
            f"index in its context; at most {FAN_OUT_MAX} items."
        ),
    )


class WorkflowStep(ExecflowModel):
    """A group of tasks run in one execution mode."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.maxRetries) || self.maxRetries == 0 || "
                    "(has(self.onError) && self.onError == 'Retry')",
                    "message": MAX_RETRIES_MESSAGE,
                    "fieldPath": ".maxRetries",
                },
                unique_in_step_rule(),
            ]
        }
    )

    name: StepName = Field(description="Name of the step, unique in the workflow.")
    execution_mode: ExecutionMode = Field(
        default=ExecutionMode.SEQUENTIAL,
        description=(
            "Sequential (one task after the other), Parallel (all at once), Hybrid (a DAG by "
            "the tasks' dependencies, across steps too) or Conditional (the first task whose "
            "when is true runs, a task without when is the default; the others are Skipped). "
            "Default Sequential."
        ),
    )
    on_error: OnError = Field(
        default=OnError.STOP,
        description=(
            "What a task's final failure does: Stop (the step and the workflow fail; finally "
            "steps still run), Continue (tolerated: the rest goes on) or Retry (the step's "
            "unfinished tasks run again, up to maxRetries times). Default Stop."
        ),
    )
    max_retries: int = Field(
        default=0,
        ge=0,
        le=10,
        description="With onError Retry: how often the step is run again (0..10). Default 0.",
    )
    parallelism: int = Field(
        default=0,
        ge=0,
        description="Most tasks of this step running at once; 0 means no limit.",
    )
    depends_on: list[StepName] | None = Field(
        default=None,
        max_length=DEPENDS_ON_MAX,
        # A set: the API server refuses a name listed twice, which also bounds the cost of the
        # dependsOn rule by the number of steps listed before.
        json_schema_extra={"x-kubernetes-list-type": "set"},
        description=(
            "Steps that must have ended before this one starts, each listed once; they must be "
            "listed before it (a finally step may name any step of steps and the finally steps "
            "before it). Unset: the step before it in the list. Empty: it starts at once."
        ),
    )
    when: Expression | None = Field(
        default=None,
        description="CEL condition evaluated when the step would start; false skips the step.",
    )
    tasks: list[WorkflowTask] = Field(
        min_length=1,
        max_length=TASKS_PER_STEP_MAX,
        description=(
            f"The tasks of the step, at most {TASKS_PER_STEP_MAX}; a forEach fans one task out "
            "to many child Tasks."
        ),
    )


class WorkflowSpec(ExecflowModel):
    """The desired orchestration: steps of tasks, their context, limits and lifecycle switches."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                rule(section)
                for rule in (unique_step_names_rule, unique_task_names_rule, depends_on_rule)
                for section in ("steps", "finally")
            ]
        }
    )

    variables: dict[str, Any] = Field(
        default_factory=dict,
        description="The shared context, visible to expressions as variables.",
    )
    global_timeout: Duration | None = Field(
        default=None,
        description=(
            "Time limit of a run (from its start or resume): past it every child is stopped "
            "and the workflow ends Timeout once its finally steps ran."
        ),
    )
    parallelism: int = Field(
        default=0,
        ge=0,
        description="Most child Tasks running at once in the workflow; 0 means no limit.",
    )
    ttl_after_finished: Duration | None = Field(
        default=None,
        description="Delete the finished workflow (and its children) after this; unset keeps it.",
    )
    suspend: bool = Field(
        default=False,
        description="Pause: no new child starts and running children are suspended.",
    )
    cancel: bool = Field(
        default=False,
        description="Stop for good: every child is cancelled; finally steps still run.",
    )
    steps: list[WorkflowStep] = Field(
        min_length=1,
        max_length=STEPS_MAX,
        description=f"The steps, in order; at most {STEPS_MAX}.",
    )
    finally_: list[WorkflowStep] = Field(
        default_factory=list,
        alias="finally",
        max_length=FINALLY_MAX,
        description=(
            "Steps that run once all others have ended, whatever the outcome; they see "
            f"workflow.status (Completed, Failed, Cancelled or Timeout). At most {FINALLY_MAX}."
        ),
    )
    result_set: ResultSetTemplate | None = Field(
        default=None,
        description=(
            "A ResultSet spec without source: the ResultSet named as the workflow, over all "
            "its tasks, created when the workflow starts and owned by it."
        ),
    )

    @model_validator(mode="after")
    def _names_and_dependencies(self) -> "WorkflowSpec":
        problems = workflow_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def workflow_problems(spec: WorkflowSpec) -> list[str]:
    """What admission refuses, checked again when a body is parsed: names, order and retries."""
    problems = []
    seen_steps: set[str] = set()
    seen_tasks: set[str] = set()
    for path, step in _steps(spec):
        if step.name in seen_steps:
            problems.append(f"{path}.name: step {step.name!r} is defined twice")
        problems.extend(_dependency_problems(path, step, seen_steps))
        if step.max_retries and step.on_error is not OnError.RETRY:
            problems.append(f"{path}.maxRetries: {MAX_RETRIES_MESSAGE}")
        seen_steps.add(step.name)
        for task in step.tasks:
            if task.name in seen_tasks:
                problems.append(f"{path}.tasks: task {task.name!r} is defined twice")
            seen_tasks.add(task.name)
    return problems


def child_name_problems(workflow_name: str, spec: WorkflowSpec) -> list[str]:
    """Tasks whose child Task names would not fit a label value (what the root rule refuses)."""
    problems = []
    for path, step in _steps(spec):
        for task in step.tasks:
            longest = len(f"{workflow_name}-{task.name}")
            if task.for_each is not None:
                longest += INDEX_SUFFIX
            if longest > LABEL_MAX:
                problems.append(
                    f"{path}.tasks: task {task.name!r} gives child Task names of {longest} "
                    f"characters; {CHILD_NAME_MESSAGE}"
                )
    return problems


def _steps(spec: WorkflowSpec) -> Iterator[tuple[str, WorkflowStep]]:
    """Every step in the order the workflow lists them, with its path in the spec."""
    for section, steps in (("steps", spec.steps), ("finally", spec.finally_)):
        for index, step in enumerate(steps):
            yield f"{section}[{index}]", step


def _dependency_problems(path: str, step: WorkflowStep, earlier: set[str]) -> list[str]:
    problems = []
    listed: set[str] = set()
    for name in step.depends_on or ():
        if name in listed:
            problems.append(f"{path}.dependsOn: {name!r} is listed twice")
        elif name not in earlier:
            problems.append(f"{path}.dependsOn: {name!r} is not a step listed before it")
        listed.add(name)
    return problems


class WorkflowTaskStatus(ExecflowModel):
    """One child of a step: a task, or one item of a fan-out."""

    name: str = Field(description="Name of the task in the workflow.")
    task_name: str = Field(default="", description="Name of the child Task (once created).")
    index: int | None = Field(default=None, ge=0, description="Item index inside a fan-out.")
    phase: str = Field(
        default="Pending",
        description="The child's phase, or Skipped when its when was false (no Task created).",
    )
    reason: str = Field(default="", description="Why it is in its phase.")
    attempts: int = Field(default=0, ge=0, description="Attempts of the child Task.")
    started_at: AwareDatetime | None = Field(default=None, description="When the child started.")
    finished_at: AwareDatetime | None = Field(default=None, description="When it finished.")


class WorkflowStepStatus(ExecflowModel):
    """A step as it runs: its phase, its retries and its tasks."""

    name: str = Field(description="Name of the step.")
    phase: StepPhase = Field(default=StepPhase.PENDING, description="Phase of the step.")
    reason: str = Field(default="", description="Why it is in its phase.")
    message: str = Field(default="", description="Detail, for failures and skips.")
    retries: int = Field(default=0, ge=0, description="Times the step was run again (Retry).")
    started_at: AwareDatetime | None = Field(default=None, description="When it started.")
    finished_at: AwareDatetime | None = Field(default=None, description="When it ended.")
    tasks: list[WorkflowTaskStatus] = Field(
        default_factory=list, description="Its tasks (fan-out items each)."
    )


class WorkflowStatus(ExecflowModel):
    """The observed state of a Workflow, written by the operator only; its checkpoint."""

    phase: WorkflowPhase = Field(
        default=WorkflowPhase.PENDING,
        description="Pending, Running, Paused, Completed, Failed, Cancelled or Timeout.",
    )
    reason: str = Field(default="", description="One CamelCase word explaining the phase.")
    message: str = Field(default="", description="Human-readable detail about the phase.")
    progress: str = Field(
        default="",
        description="Finished tasks / all tasks (a fan-out counted once its list is known).",
    )
    started_at: AwareDatetime | None = Field(default=None, description="When the run started.")
    resumed_at: AwareDatetime | None = Field(
        default=None, description="When it was last resumed; the timeout counts from there."
    )
    finished_at: AwareDatetime | None = Field(default=None, description="When it finished.")
    resumes: int = Field(default=0, ge=0, description="How often it was resumed.")
    resume_token: str = Field(
        default="",
        description="The execflow.dev/resume annotation value the last resume answered.",
    )
    steps: list[WorkflowStepStatus] = Field(
        default_factory=list, description="Per step: phase, times and tasks."
    )
    outputs: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Results of finished tasks by task name (a list for a fan-out); a result over "
            "16 KiB is referenced ({ref: ...}) instead of copied."
        ),
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The metadata.generation this status was computed from."
    )
    conditions: list[Condition] = conditions_field(
        "Reconciling, Stalled, Ready and Succeeded, as for Tasks."
    )


class Workflow(ExecflowModel):
    """A Workflow runs Tasks in steps: sequential, parallel, as a DAG or by condition, with
    fan-out, results passed between steps, retries, finally steps, pause, cancel and resume."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                child_names_rule("steps"),
                child_names_rule("finally"),
            ]
        }
    )

    api_version: str = Field(default=GROUP_VERSION, description="API group and version.")
    kind: str = Field(default="Workflow", description="Kind of the object: Workflow.")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta, description="Object metadata.")
    spec: WorkflowSpec = Field(description="The steps of tasks and how they run.")
    status: WorkflowStatus = Field(
        default_factory=WorkflowStatus, description="Observed state, written by the operator."
    )

    @model_validator(mode="after")
    def _child_names_fit(self) -> "Workflow":
        # A body without a name (built in code, not read from the API) has no child names yet.
        problems = child_name_problems(self.metadata.name, self.spec) if self.metadata.name else []
        if problems:
            raise ValueError("; ".join(problems))
        return self
