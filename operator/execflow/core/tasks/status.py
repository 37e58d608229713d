"""From the status fields that should hold to the write that makes them hold, if any.

A reconcile or a scheduler decision says which status fields should have which values. Only the
fields that differ from the stored status are written, with `observedGeneration` and the kstatus
conditions that follow from the resulting phase; when nothing differs nothing is written, so a
reconcile that finds the world as it should be costs no API call.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from execflow.api.common import Condition
from execflow.api.task import TaskPhase, TaskStatus
from execflow.core.conditions import Health, conditions

_HEALTH = {
    TaskPhase.PENDING: Health.PROGRESSING,
    TaskPhase.QUEUED: Health.PROGRESSING,
    TaskPhase.RUNNING: Health.PROGRESSING,
    TaskPhase.PAUSED: Health.PAUSED,
    TaskPhase.COMPLETED: Health.READY,
    TaskPhase.FAILED: Health.FAILED,
    TaskPhase.CANCELLED: Health.FAILED,
    TaskPhase.TIMEOUT: Health.FAILED,
}


def health(phase: TaskPhase) -> Health:
    return _HEALTH[phase]


def _existing_conditions(raw: Any) -> list[Condition]:
    found = []
    for item in raw or []:
        try:
            found.append(Condition.model_validate(item))
        except ValidationError:
            continue
    return found


def status_update(
    current: Mapping[str, Any],
    desired: TaskStatus | None,
    *,
    generation: int,
    now: datetime.datetime,
) -> TaskStatus | None:
    """The status write that makes `desired` hold over `current`, or None when none is needed.

    The returned model has exactly the fields to write set (it is dumped with exclude_unset).
    """
    if desired is None:
        return None
    wanted = desired.model_dump(mode="json", by_alias=True, exclude_unset=True)
    changed = {key: value for key, value in wanted.items() if current.get(key) != value}
    if not changed and current.get("observedGeneration") == generation:
        return None
    phase = TaskPhase(changed.get("phase") or current.get("phase") or TaskPhase.PENDING)
    reason = str(changed.get("reason", current.get("reason")) or phase.value)
    message = str(changed.get("message", current.get("message")) or "")
    new_conditions = conditions(
        _existing_conditions(current.get("conditions")),
        health(phase),
        reason,
        message,
        generation=generation,
        now=now,
    )
    dumped = [c.model_dump(mode="json", by_alias=True) for c in new_conditions]
    if dumped != current.get("conditions"):
        changed["conditions"] = dumped
    if current.get("observedGeneration") != generation:
        changed["observedGeneration"] = generation
    if not changed:
        return None
    return TaskStatus.model_validate(changed)
