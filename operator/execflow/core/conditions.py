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
from collections.abc import Callable, Collection, Mapping, Sequence
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
    free_form: Collection[str] = (),
) -> Status | None:
    """The status write that makes `desired` hold over `current`, or None when none is needed.

    Only the fields that differ are written, with `observedGeneration` and the conditions that
    follow from the resulting phase (`health` maps a phase to where the object stands). The
    returned model has exactly the fields to write set (it is dumped with exclude_unset).
    """
    if desired is None:
        return None
    wanted = desired.model_dump(mode="json", by_alias=True, exclude_unset=True)
    for key in free_form:
        if key in wanted:
            wanted[key] = without_nulls(wanted[key])
    changed = {key: value for key, value in wanted.items() if current.get(key) != value}
    for key in free_form:
        if key in changed:
            changed[key] = merge_patch(current.get(key), changed[key])
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


def merge_patch(current: Any, desired: Any) -> Any:
    """The JSON merge patch (RFC 7396) that turns `current` into `desired`: objects are patched
    key by key and a key `desired` lacks is sent as null, which deletes it. Statuses are written
    as merge patches, so a free-form object whose keys can disappear must be written this way.
    (A null inside `desired` cannot be expressed: merge patch reads it as a deletion.)"""
    if not isinstance(current, Mapping) or not isinstance(desired, Mapping):
        return desired
    patch: dict[str, Any] = {key: None for key in current if key not in desired}
    for key, value in desired.items():
        if current.get(key) != value or key not in current:
            patch[key] = merge_patch(current.get(key), value)
    return patch


def without_nulls(value: Any) -> Any:
    """`value` without the null members of its objects (at any depth outside lists), which a
    merge patch cannot store: what the stored object will hold."""
    if not isinstance(value, Mapping):
        return value
    return {key: without_nulls(item) for key, item in value.items() if item is not None}
