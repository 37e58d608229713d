"""Status conditions every execflow kind carries, following kstatus so GitOps tools see the truth.

Flux, kpt and other kstatus readers judge an object by three conditions: `Reconciling` (work in
progress), `Stalled` (it ended in failure or cannot progress) and `Ready`; Argo CD health checks
read the same. Kinds that run to an end (Task, later Workflow) also carry `Succeeded`
(True/False once finished, Unknown before). All four are always present, each with the object's
generation, so a reader never has to guess from an absent condition. `lastTransitionTime` moves
only when a condition's status changes, as the Kubernetes API conventions ask.
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from execflow.api.common import Condition, ConditionStatus

RECONCILING = "Reconciling"
STALLED = "Stalled"
READY = "Ready"
SUCCEEDED = "Succeeded"

T, F, U = ConditionStatus.TRUE, ConditionStatus.FALSE, ConditionStatus.UNKNOWN


class Health(enum.Enum):
    """Where an object stands, as the conditions express it."""

    PROGRESSING = enum.auto()
    """Work is under way or waiting for its turn: Reconciling."""
    PAUSED = enum.auto()
    """Stopped on purpose until a user acts: neither Reconciling nor Stalled, not Ready."""
    READY = enum.auto()
    """Ended well (a Task: Completed) or is usable (a Tool): Ready."""
    FAILED = enum.auto()
    """Ended in failure or can never proceed: Stalled."""


_STATUSES: dict[
    Health, tuple[ConditionStatus, ConditionStatus, ConditionStatus, ConditionStatus]
] = {
    # Reconciling, Stalled, Ready, Succeeded
    Health.PROGRESSING: (T, F, F, U),
    Health.PAUSED: (F, F, F, U),
    Health.READY: (F, F, T, T),
    Health.FAILED: (F, T, F, F),
}


def conditions(
    existing: Sequence[Condition],
    health: Health,
    reason: str,
    message: str,
    *,
    generation: int,
    now: datetime.datetime,
    succeeded: bool = True,
) -> list[Condition]:
    """The full conditions list for `health`; `succeeded=False` leaves out `Succeeded`."""
    reconciling, stalled, ready, done = _STATUSES[health]
    wanted = [(RECONCILING, reconciling), (STALLED, stalled), (READY, ready)]
    if succeeded:
        wanted.append((SUCCEEDED, done))
    previous = {condition.type: condition for condition in existing}
    result: list[Condition] = []
    for kind, status in wanted:
        before = previous.get(kind)
        moved = before is None or before.status != status or before.last_transition_time is None
        result.append(
            Condition(
                type=kind,
                status=status,
                reason=reason,
                message=message,
                last_transition_time=now
                if moved or before is None
                else before.last_transition_time,
                observed_generation=generation,
            )
        )
    return result


Status = TypeVar("Status", bound=BaseModel)


def existing_conditions(raw: Any) -> list[Condition]:
    """The conditions of a stored status; entries that do not parse are dropped."""
    found = []
    for item in raw or []:
        try:
            found.append(Condition.model_validate(item))
        except ValidationError:
            continue
    return found


def status_write(
    current: Mapping[str, Any],
    desired: Status | None,
    *,
    generation: int,
    now: datetime.datetime,
    health: Callable[[str], Health],
    succeeded: bool = True,
) -> Status | None:
    """The status write that makes `desired` hold over `current`, or None when none is needed.

    Only the fields that differ are written, with `observedGeneration` and the conditions that
    follow from the resulting phase (`health` maps a phase to where the object stands). The
    returned model has exactly the fields to write set (it is dumped with exclude_unset).
    """
    if desired is None:
        return None
    wanted = desired.model_dump(mode="json", by_alias=True, exclude_unset=True)
    changed = {key: value for key, value in wanted.items() if current.get(key) != value}
    if not changed and current.get("observedGeneration") == generation:
        return None
    phase = str(changed.get("phase") or current.get("phase") or "Pending")
    reason = str(changed.get("reason", current.get("reason")) or phase)
    message = str(changed.get("message", current.get("message")) or "")
    new_conditions = conditions(
        existing_conditions(current.get("conditions")),
        health(phase),
        reason,
        message,
        generation=generation,
        now=now,
        succeeded=succeeded,
    )
    dumped = [c.model_dump(mode="json", by_alias=True) for c in new_conditions]
    if dumped != current.get("conditions"):
        changed["conditions"] = dumped
    if current.get("observedGeneration") != generation:
        changed["observedGeneration"] = generation
    if not changed:
        return None
    return type(desired).model_validate(changed)
