"""Operator settings: the scheduling queues an installation offers and how each one decides.

The settings come from Helm values (rendered into a ConfigMap), not from a CRD, so this module is
the only schema they have: it validates the YAML once at startup and turns every mistake into a
ValueError that names the offending key. Unknown keys are refused rather than ignored, because a
misspelt `maxConcurrentTask` silently falling back to the default is worse than a failed start.

A queue named `default` always exists (Tasks name it unless they say otherwise); it is added with
default settings when the file does not configure it.

Two settings bound how long a task can be passed over (see `execflow.core.scheduling`):

- `agingSeconds` is gradual ageing inside the ordering: under Priority, waiting `agingSeconds`
  longer is worth one priority level; under ShortestJobFirst it is worth halving the estimated
  duration; under Adaptive it is the unit of the waitTime and deadline terms.
- `starvationLimit` is the hard bound that holds under every strategy: a queued task that could
  start has been passed over by at most this many starts of its queue before it becomes *due*; due
  tasks start before any other task of their queue and reserve the capacity they wait for.

`backfillLimit` is the head-of-line rule for resources: a task whose requests do not fit lets
smaller tasks behind it start, but only until that many tasks of its queue started since it first
did not fit; then it holds its queue and capacity is held back for it until it fits.
"""

import datetime
import enum
import re
from typing import Annotated, Any

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from execflow.api.durations import Duration, parse_duration

DEFAULT_QUEUE = "default"
"""The queue a Task joins when its spec names none; it always exists."""

QUEUE_NAME_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
"""Queue names are DNS labels, so they can appear verbatim in labels and metric values."""


class SchedulingStrategy(enum.StrEnum):
    """How a queue orders its waiting tasks."""

    FIFO = "FIFO"
    PRIORITY = "Priority"
    SHORTEST_JOB_FIRST = "ShortestJobFirst"
    DEADLINE_AWARE = "DeadlineAware"
    ADAPTIVE = "Adaptive"


class _SettingsModel(BaseModel):
    """Base of the settings models: camelCase keys in YAML, frozen, unknown keys refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


Weight = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class AdaptiveWeights(_SettingsModel):
    """Weights of the Adaptive strategy's score; each term is measured in priority levels."""

    priority: Weight = Field(
        default=1.0, description="Weight of the priority rank (Low=0 .. Critical=3)."
    )
    wait_time: Weight = Field(
        default=1.0,
        alias="waitTime",
        description="Weight of the time waited, one level per agingSeconds.",
    )
    deadline: Weight = Field(
        default=1.0,
        description=(
            "Weight of deadline urgency: 4 levels at zero slack when queued, one level less "
            "per agingSeconds of slack, never below 0; tasks without a deadline score 0."
        ),
    )
    shortness: Weight = Field(
        default=1.0,
        description=(
            "Weight of shortness: 0 for an estimated one minute, one level more per halving "
            "of the estimated duration (one less per doubling)."
        ),
    )


class QueueSettings(_SettingsModel):
    """One scheduling queue: its ordering strategy and its limits."""

    strategy: SchedulingStrategy = Field(
        default=SchedulingStrategy.PRIORITY,
        description="FIFO, Priority, ShortestJobFirst, DeadlineAware or Adaptive.",
    )
    max_concurrent_tasks: int = Field(
        default=100,
        ge=1,
        alias="maxConcurrentTasks",
        description="Tasks of this queue running at the same time, at most.",
    )
    max_queued_tasks: int = Field(
        default=10000,
        ge=1,
        alias="maxQueuedTasks",
        description=(
            "Tasks waiting in this queue, at most. Further tasks wait outside it with reason "
            "QueueFull and enter, in arrival order, as room frees."
        ),
    )
    preemption: bool = Field(
        default=False,
        description=(
            "Let a waiting Critical or High task evict the lowest-priority running task of "
            "this queue (strictly lower priority) when no slot is free."
        ),
    )
    resource_aware: bool = Field(
        default=True,
        alias="resourceAware",
        description=(
            "Start a task only when its resource requests fit the free allocatable resources "
            "of some node and the remaining quota of its namespace."
        ),
    )
    adaptive_weights: AdaptiveWeights = Field(
        default_factory=AdaptiveWeights,
        alias="adaptiveWeights",
        description="Weights of the Adaptive strategy's score.",
    )
    aging_seconds: float = Field(
        default=600.0,
        gt=0,
        allow_inf_nan=False,
        alias="agingSeconds",
        description=(
            "Gradual ageing: under Priority, waiting this long is worth one priority level; "
            "under ShortestJobFirst, halving the estimated duration; under Adaptive, one "
            "level of the waitTime term. Default 600 (10 minutes)."
        ),
    )
    starvation_limit: int | None = Field(
        default=None,
        ge=1,
        alias="starvationLimit",
        description=(
            "Hard anti-starvation bound: after this many starts of the queue while it could "
            "start, a waiting task is due and goes before every task that is not. Unset: "
            "maxQueuedTasks."
        ),
    )

    backfill_limit: int = Field(
        default=20,
        ge=0,
        alias="backfillLimit",
        description=(
            "Head-of-line rule: a task whose requests do not fit lets tasks behind it start "
            "until this many tasks of the queue started since it first did not fit; then it "
            "holds the queue (nothing else of it starts) and capacity is held back for it until "
            "it fits. 0: never let a task that does not fit be overtaken."
        ),
    )

    @property
    def effective_starvation_limit(self) -> int:
        """The starvation bound in force: `starvationLimit`, or `maxQueuedTasks` when unset.

        Tying the default to the queue's size means a full queue can be worked through in strategy
        order before any task is forced ahead of it.
        """
        if self.starvation_limit is not None:
            return self.starvation_limit
        return self.max_queued_tasks


class OperatorSettings(_SettingsModel):
    """The operator settings file: the scheduling queues, and how long a stuck attempt may wait."""

    queues: dict[str, QueueSettings] = Field(
        default_factory=dict,
        validate_default=True,
        description="Scheduling queues by name; `default` is added when absent.",
    )
    pod_create_timeout: Duration = Field(
        default="2m",
        alias="podCreateTimeout",
        description=(
            "How long an attempt whose pod cannot be created (the Job controller reports "
            "FailedCreate: a missing ServiceAccount, an exhausted quota, an admission policy) "
            "may keep trying before it fails with reason PodCreateFailed; retries then follow "
            "the Task's retryPolicy. Default 2m."
        ),
    )
    storage_cleanup_timeout: Duration = Field(
        default="1m",
        alias="storageCleanupTimeout",
        description=(
            "How long a deleted ResultSet waits for its S3 objects to be deleted while the "
            "store cannot be reached; then it is let go, and an Event StorageLeftBehind names "
            "what remains. Default 1m."
        ),
    )

    @property
    def storage_cleanup_grace(self) -> datetime.timedelta:
        """`storageCleanupTimeout` as a timedelta."""
        return parse_duration(self.storage_cleanup_timeout)

    @property
    def pod_create_grace(self) -> datetime.timedelta:
        """`podCreateTimeout` as a timedelta."""
        return parse_duration(self.pod_create_timeout)

    @field_validator("queues", mode="before")
    @classmethod
    def _null_means_defaults(cls, value: Any) -> Any:
        # A key with nothing under it is YAML null: `queues:` means no queues, `batch:` under
        # `queues:` means a queue with all defaults.
        if value is None:
            return {}
        if isinstance(value, dict):
            return {name: {} if queue is None else queue for name, queue in value.items()}
        return value

    @field_validator("queues")
    @classmethod
    def _check_names_and_add_default(
        cls, queues: dict[str, QueueSettings]
    ) -> dict[str, QueueSettings]:
        for name in queues:
            if not QUEUE_NAME_PATTERN.match(name):
                raise ValueError(
                    f"queue name {name!r} is not a DNS label (lowercase letters, digits, '-', "
                    "at most 63 characters)"
                )
        if DEFAULT_QUEUE in queues:
            return queues
        return {DEFAULT_QUEUE: QueueSettings(), **queues}


def _describe(error: pydantic.ValidationError) -> str:
    lines = []
    for problem in error.errors(include_url=False):
        where = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        lines.append(f"{where}: {problem['msg']}")
    return "; ".join(lines)


def load_settings(text: str) -> OperatorSettings:
    """Parse and validate the settings YAML; an empty document means all defaults.

    Raises ValueError with a message naming every invalid key.
    """
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ValueError(f"operator settings are not valid YAML: {error}") from error
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ValueError(
            f"operator settings must be a mapping at the top level, not {type(document).__name__}"
        )
    try:
        return OperatorSettings.model_validate(document)
    except pydantic.ValidationError as error:
        raise ValueError(f"invalid operator settings: {_describe(error)}") from error
