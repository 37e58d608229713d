"""The Task kind: one execution of a tool (or an inline container), queued, retried and observed.

A Task is the unit everything else is built from: a Workflow creates Tasks, a ResultSet collects
them. The spec here is what users write; the status is the operator's checkpoint, so it holds all
the operator needs to resume after a restart (attempts, timestamps, the Job of the current attempt).

Task specs deliberately carry their defaults in these models rather than in the CRD schema: a field
the user leaves unset stays absent in the stored object, so a Tool's `defaults` can still fill it.
"""

import enum
from typing import Any

from pydantic import AwareDatetime, ConfigDict, Field, model_validator

from execflow.api.common import (
    GROUP_VERSION,
    Condition,
    Container,
    ExecflowModel,
    ObjectMeta,
    ObjectName,
    ResourceRequirements,
    conditions_field,
)
from execflow.api.constraints import Constraints
from execflow.api.durations import Duration
from execflow.api.pod_template import PodTemplate

TOOL_REF_XOR_CONTAINER_RULE = "has(self.toolRef) != has(self.container)"
TOOL_REF_XOR_CONTAINER_MESSAGE = "exactly one of spec.toolRef or spec.container must be set"

TASK_SPEC_MUTABLE_FIELDS = ("suspend", "cancel")
"""The only spec fields a Task may change after creation, as a Job's template allows none."""

TASK_SPEC_IMMUTABLE_MESSAGE = (
    "spec is immutable except suspend and cancel; create a new Task to run with different settings"
)
"""What admission answers for any other change to a Task's spec."""


class Priority(enum.StrEnum):
    """How urgent a task is; higher priorities are started first by priority-aware queues."""

    LOW = "Low"
    NORMAL = "Normal"
    HIGH = "High"
    CRITICAL = "Critical"

    @property
    def rank(self) -> int:
        """Numeric order of the priority: Low=0, Normal=1, High=2, Critical=3."""
        return _PRIORITY_RANKS[self]


_PRIORITY_RANKS: dict[Priority, int] = {priority: rank for rank, priority in enumerate(Priority)}


class TaskPhase(enum.StrEnum):
    """Where a task is in its life."""

    PENDING = "Pending"
    QUEUED = "Queued"
    RUNNING = "Running"
    PAUSED = "Paused"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    TIMEOUT = "Timeout"

    @property
    def is_terminal(self) -> bool:
        """True for phases a task never leaves: Completed, Failed, Cancelled, Timeout."""
        return self in _TERMINAL_PHASES


_TERMINAL_PHASES = frozenset(
    {TaskPhase.COMPLETED, TaskPhase.FAILED, TaskPhase.CANCELLED, TaskPhase.TIMEOUT}
)


class DependencyType(enum.StrEnum):
    """Which event of the predecessor gates which event of the dependent task."""

    FINISH_TO_START = "FinishToStart"
    START_TO_START = "StartToStart"
    FINISH_TO_FINISH = "FinishToFinish"
    START_TO_FINISH = "StartToFinish"


class DependencyCondition(enum.StrEnum):
    """The outcome of the predecessor a dependency requires."""

    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    ANY = "Any"


class ToolReference(ExecflowModel):
    """A reference to a Tool in the task's namespace."""

    name: ObjectName = Field(description="Name of the Tool to run.")


class RetryOn(ExecflowModel):
    """Which failures are retried. Both lists empty means every failure is retried."""

    exit_codes: list[int] = Field(
        default_factory=list,
        max_length=64,
        description="Container exit codes that are retried, e.g. [1, 137].",
    )
    reasons: list[str] = Field(
        default_factory=list,
        max_length=64,
        description=(
            "Failure reasons that are retried: Error, OOMKilled, DeadlineExceeded, Evicted, "
            "or any other reason a failed attempt reports."
        ),
    )


class RetryPolicy(ExecflowModel):
    """How failed attempts are retried, with exponential backoff between them."""

    max_retries: int = Field(
        default=0,
        ge=0,
        le=100,
        description="Attempts after the first one (0..100). Default 0: no retries.",
    )
    retry_delay: Duration = Field(
        default="1s",
        description="Delay before the first retry, e.g. 1s. Default 1s.",
    )
    backoff_multiplier: float = Field(
        default=2.0,
        ge=1,
        description="Factor applied to the delay after each retry (>= 1). Default 2.",
    )
    max_retry_delay: Duration = Field(
        default="5m",
        description="Upper bound of the delay between attempts. Default 5m.",
    )
    retry_on: RetryOn = Field(
        default_factory=RetryOn,
        description="Which failures are retried; empty retries any failure.",
    )


class Dependency(ExecflowModel):
    """An ordering constraint on another Task in the same namespace."""

    task: ObjectName = Field(description="Name of the Task this task depends on.")
    type: DependencyType = Field(
        default=DependencyType.FINISH_TO_START,
        description=(
            "Which events are linked: FinishToStart (start after it finishes), StartToStart, "
            "FinishToFinish, StartToFinish. Default FinishToStart."
        ),
    )
    condition: DependencyCondition = Field(
        default=DependencyCondition.SUCCEEDED,
        description=(
            "Outcome the dependency requires: Succeeded, Failed or Any. If it cannot be met "
            "any more, this task fails. Default Succeeded."
        ),
    )


class CachePolicy(ExecflowModel):
    """Reuse of the result of an identical earlier execution (same container and parameters)."""

    enabled: bool = Field(default=False, description="Look up and reuse a cached result.")
    ttl: Duration | None = Field(
        default=None,
        description="How long a cached result stays usable, e.g. 1h; unset means no expiry.",
    )


class TaskSpec(ExecflowModel):
    """The desired execution: what to run, with which parameters, when and how often.

    Fixed once the Task exists, except `suspend` and `cancel`: an execution that could change
    underneath its attempts would leave no record of what actually ran.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": TOOL_REF_XOR_CONTAINER_RULE, "message": TOOL_REF_XOR_CONTAINER_MESSAGE}
            ]
        }
    )

    tool_ref: ToolReference | None = Field(
        default=None,
        description="The Tool to run. Exactly one of toolRef and container is set.",
    )
    container: Container | None = Field(
        default=None,
        description="An inline container to run instead of a Tool.",
    )
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Parameters of the execution, validated against the Tool's inputSchema. The "
            "container receives them as JSON in $EXECFLOW_PARAMETERS and "
            "/execflow/parameters.json."
        ),
    )
    queue: str = Field(
        default="default",
        min_length=1,
        max_length=63,
        description="Scheduling queue, configured in the operator settings. Default: default.",
    )
    priority: Priority = Field(
        default=Priority.NORMAL,
        description="Low, Normal, High or Critical. Default Normal.",
    )
    timeout: Duration | None = Field(
        default=None,
        description=(
            "Time limit per attempt, e.g. 30s; an attempt past it fails with reason "
            "DeadlineExceeded. Unset means no limit."
        ),
    )
    retry_policy: RetryPolicy = Field(
        default_factory=RetryPolicy,
        description="How failed attempts are retried. Default: no retries.",
    )
    dependencies: list[Dependency] = Field(
        default_factory=list,
        max_length=256,
        description="Tasks that must reach a given state before this one starts or finishes.",
    )
    constraints: Constraints = Field(
        default_factory=Constraints,
        description="Deadline, start windows and mutual exclusion.",
    )
    estimated_duration: Duration | None = Field(
        default=None,
        description=(
            "Expected run time, e.g. 5s, used by shortest-job-first and adaptive ordering; "
            "learned per tool when unset."
        ),
    )
    resources: ResourceRequirements = Field(
        default_factory=ResourceRequirements,
        description=(
            "Compute resources of the task container, merged over the Tool's per resource name."
        ),
    )
    cache: CachePolicy = Field(
        default_factory=CachePolicy,
        description="Reuse of results of identical earlier executions. Default off.",
    )
    tags: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="Free-form tags, used by ResultSet filters.",
    )
    suspend: bool = Field(
        default=False,
        description="Do not start; a running attempt is stopped and the task is Paused.",
    )
    cancel: bool = Field(
        default=False,
        description="Stop for good: a running attempt is stopped and the task is Cancelled.",
    )
    pod_template: PodTemplate = Field(
        default_factory=PodTemplate,
        description="Optional extras merged into the pod template of the task's Jobs.",
    )

    @model_validator(mode="after")
    def _tool_ref_xor_container(self) -> "TaskSpec":
        if (self.tool_ref is None) == (self.container is None):
            raise ValueError(TOOL_REF_XOR_CONTAINER_MESSAGE)
        return self


class ResultRef(ExecflowModel):
    """Where a result too large for the status is stored."""

    kind: str = Field(description="Storage kind: ConfigMap or S3.")
    name: str = Field(description="ConfigMap name, or bucket for S3.")
    key: str = Field(default="", description="Key in the ConfigMap, or object key in the bucket.")
    sha256: str = Field(default="", description="Hex SHA-256 of the stored bytes.")
    size: int | None = Field(default=None, ge=0, description="Size of the stored bytes.")


class TaskStatus(ExecflowModel):
    """The observed state of a Task, written by the operator only."""

    phase: TaskPhase = Field(
        default=TaskPhase.PENDING,
        description=(
            "Pending, Queued, Running, Paused, Completed, Failed, Cancelled or Timeout. "
            "The last four are final."
        ),
    )
    reason: str = Field(
        default="",
        description=(
            "One CamelCase word explaining the phase, e.g. InvalidParameters, "
            "DeadlineExceeded, DeadlineMissed, Preempted, CacheHit."
        ),
    )
    message: str = Field(default="", description="Human-readable detail about the phase.")
    attempts: int = Field(default=0, ge=0, description="Attempts started so far.")
    next_retry_at: AwareDatetime | None = Field(
        default=None, description="When the next attempt may start, while waiting to retry."
    )
    queued_at: AwareDatetime | None = Field(
        default=None, description="When the task entered its queue."
    )
    start_time: AwareDatetime | None = Field(
        default=None, description="When the first attempt started."
    )
    completion_time: AwareDatetime | None = Field(
        default=None, description="When the task reached a final phase."
    )
    job_name: str = Field(default="", description="Name of the Job of the current attempt.")
    exit_code: int | None = Field(
        default=None, description="Exit code of the last finished attempt's container."
    )
    result: Any = Field(
        default=None,
        description=(
            "Output of the task: parsed JSON when the termination message is JSON, else the "
            "raw string. Small results only; large ones are referenced by resultRef."
        ),
    )
    result_ref: ResultRef | None = Field(
        default=None, description="Where a result too large for the status is stored."
    )
    cache_key: str | None = Field(
        default=None,
        description=(
            "sha256 identity of the execution (image, command, args, env, parameters), set when "
            "spec.cache is enabled; completed tasks with the same key serve as the cache."
        ),
    )
    cache_hit: bool = Field(
        default=False, description="The result was reused from an identical earlier execution."
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The metadata.generation this status was computed from."
    )
    conditions: list[Condition] = conditions_field(
        "Current observations, keyed by type (e.g. Succeeded, Ready)."
    )


class Task(ExecflowModel):
    """A Task is one execution of a Tool or an inline container, queued, retried and observed.

    Its status holds the phase, attempts, timestamps and the result of the execution.
    """

    api_version: str = Field(default=GROUP_VERSION, description="API group and version.")
    kind: str = Field(default="Task", description="Kind of the object: Task.")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta, description="Object metadata.")
    spec: TaskSpec = Field(description="What to run, with which parameters, when and how often.")
    status: TaskStatus = Field(
        default_factory=TaskStatus, description="Observed state, written by the operator."
    )
