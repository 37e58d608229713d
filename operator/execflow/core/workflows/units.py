"""What a workflow knows about its children: one unit per child Task (a task, or one fan-out item).

A unit is identified by its workflow task and its index in a fan-out; its child Task carries that
identity in labels, with the run it belongs to (`<resumes>.<step retries>`), so after a step retry
or a resume the operator can tell an unfinished child of an earlier run (to be replaced) from
one of the current run. A Completed child is kept whatever its run: its result stands.
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from execflow.api.timestamps import parse_time

WORKFLOW_LABEL = "execflow.dev/workflow"
STEP_LABEL = "execflow.dev/step"
TASK_LABEL = "execflow.dev/workflow-task"
INDEX_LABEL = "execflow.dev/index"
RUN_LABEL = "execflow.dev/run"

TERMINAL = frozenset({"Completed", "Failed", "Cancelled", "Timeout"})
FAILED = frozenset({"Failed", "Cancelled", "Timeout"})
SKIPPED = "Skipped"

Body = Mapping[str, Any]


class Outcome(enum.Enum):
    """How a unit, a task or a step ended, as later steps and expressions see it."""

    SUCCEEDED = enum.auto()
    FAILED = enum.auto()
    SKIPPED = enum.auto()


def child_name(workflow: str, task: str, index: int | None) -> str:
    return f"{workflow}-{task}" if index is None else f"{workflow}-{task}-{index}"


def run_token(resumes: int, retries: int) -> str:
    return f"{resumes}.{retries}"


@dataclass(frozen=True, slots=True)
class Child:
    """A child Task as the workflow reads it."""

    name: str
    task: str
    index: int | None
    run: str
    phase: str
    reason: str = ""
    message: str = ""
    result: Any = None
    exit_code: int | None = None
    attempts: int = 0
    started_at: datetime.datetime | None = None
    finished_at: datetime.datetime | None = None
    suspended: bool = False
    cancelled: bool = False
    deleting: bool = False

    @property
    def ended(self) -> bool:
        return self.phase in TERMINAL

    @property
    def active(self) -> bool:
        """Counts against parallelism: created, not finished, not on its way out."""
        return not self.ended and not self.deleting

    @property
    def outcome(self) -> Outcome | None:
        if self.phase == "Completed":
            return Outcome.SUCCEEDED
        if self.phase in FAILED:
            return Outcome.FAILED
        return None


def child_of(body: Body) -> Child | None:
    """The child a Task body is, or None when it does not carry a workflow unit's labels."""
    metadata = body["metadata"]
    labels = metadata.get("labels") or {}
    task = labels.get(TASK_LABEL)
    if not task:
        return None
    index_text = labels.get(INDEX_LABEL)
    try:
        index = int(index_text) if index_text else None
    except ValueError:
        return None
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    return Child(
        name=str(metadata["name"]),
        task=str(task),
        index=index,
        run=str(labels.get(RUN_LABEL) or ""),
        phase=str(status.get("phase") or "Pending"),
        reason=str(status.get("reason") or ""),
        message=str(status.get("message") or ""),
        result=status.get("result"),
        exit_code=status.get("exitCode"),
        attempts=int(status.get("attempts") or 0),
        started_at=parse_time(status.get("startTime")),
        finished_at=parse_time(status.get("completionTime")),
        suspended=bool(spec.get("suspend")),
        cancelled=bool(spec.get("cancel")),
        deleting=bool(metadata.get("deletionTimestamp")),
    )
