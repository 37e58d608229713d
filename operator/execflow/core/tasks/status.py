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

from execflow.api.task import TaskPhase, TaskStatus
from execflow.core.conditions import Health, status_write

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
    return status_write(
        current,
        desired,
        generation=generation,
        now=now,
        health=lambda phase: health(TaskPhase(phase)),
    )
