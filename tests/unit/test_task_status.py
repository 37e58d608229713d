"""Status writes and kstatus conditions of execflow.core.tasks.status (pure core, no cluster).

What is written for a plan's desired fields against the stored status: only the differences,
observedGeneration, and the Reconciling / Stalled / Ready / Succeeded conditions per phase.
"""

import datetime
from typing import Any

import pytest

from execflow.api.task import TaskPhase, TaskStatus
from execflow.core.tasks.status import status_update

NOW = datetime.datetime(2026, 3, 1, 12, 0, 0, tzinfo=datetime.UTC)
LATER = NOW + datetime.timedelta(minutes=1)


def written(update: TaskStatus | None) -> dict[str, Any]:
    assert update is not None
    return update.model_dump(mode="json", by_alias=True, exclude_unset=True)


def conditions(fields: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in fields["conditions"]}


@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        ("Pending", {"Reconciling": "True", "Stalled": "False", "Ready": "False"}),
        ("Queued", {"Reconciling": "True", "Stalled": "False", "Ready": "False"}),
        ("Running", {"Reconciling": "True", "Stalled": "False", "Ready": "False"}),
        ("Paused", {"Reconciling": "False", "Stalled": "False", "Ready": "False"}),
        ("Completed", {"Reconciling": "False", "Stalled": "False", "Ready": "True"}),
        ("Failed", {"Reconciling": "False", "Stalled": "True", "Ready": "False"}),
        ("Timeout", {"Reconciling": "False", "Stalled": "True", "Ready": "False"}),
        ("Cancelled", {"Reconciling": "False", "Stalled": "True", "Ready": "False"}),
    ],
)
def test_each_phase_has_its_kstatus_conditions(phase: str, expected: dict[str, str]) -> None:
    desired = TaskStatus(phase=TaskPhase(phase), reason="Why", message="because")

    fields = written(status_update({}, desired, generation=3, now=NOW))

    succeeded = {"Completed": "True", "Failed": "False", "Timeout": "False", "Cancelled": "False"}
    assert conditions(fields) == {**expected, "Succeeded": succeeded.get(phase, "Unknown")}
    assert fields["observedGeneration"] == 3
    assert all(c["observedGeneration"] == 3 for c in fields["conditions"])
    assert all(c["reason"] == "Why" for c in fields["conditions"])


def test_nothing_is_written_when_the_status_already_says_it() -> None:
    desired = TaskStatus(phase=TaskPhase.RUNNING, reason="Running", message="m", attempts=1)
    first = written(status_update({}, desired, generation=1, now=NOW))

    assert status_update(first, desired, generation=1, now=LATER) is None


def test_only_the_differences_are_written() -> None:
    current = written(
        status_update(
            {},
            TaskStatus(phase=TaskPhase.RUNNING, reason="Running", message="m", attempts=1),
            generation=1,
            now=NOW,
        )
    )
    desired = TaskStatus(phase=TaskPhase.RUNNING, reason="Running", message="m", attempts=2)

    fields = written(status_update(current, desired, generation=1, now=LATER))

    assert set(fields) == {"attempts"}, "same phase: the conditions do not change"


def test_last_transition_time_moves_only_when_a_condition_status_changes() -> None:
    queued = written(
        status_update(
            {}, TaskStatus(phase=TaskPhase.QUEUED, reason="Queued"), generation=1, now=NOW
        )
    )
    running = written(
        status_update(
            queued, TaskStatus(phase=TaskPhase.RUNNING, reason="Running"), generation=1, now=LATER
        )
    )
    by_type = {c["type"]: c for c in running["conditions"]}

    assert by_type["Reconciling"]["lastTransitionTime"] == "2026-03-01T12:00:00Z"
    assert by_type["Reconciling"]["reason"] == "Running"
    completed = written(
        status_update(
            {**queued, **running},
            TaskStatus(phase=TaskPhase.COMPLETED, reason="Succeeded"),
            generation=1,
            now=LATER,
        )
    )
    by_type = {c["type"]: c for c in completed["conditions"]}
    assert by_type["Ready"]["lastTransitionTime"] == "2026-03-01T12:01:00Z"


def test_a_new_generation_is_observed_even_without_other_changes() -> None:
    desired = TaskStatus(phase=TaskPhase.PAUSED, reason="Suspended")
    current = written(status_update({}, desired, generation=1, now=NOW))

    fields = written(status_update(current, desired, generation=2, now=LATER))

    assert fields["observedGeneration"] == 2
    assert {c["observedGeneration"] for c in fields["conditions"]} == {2}


def test_no_desired_status_writes_nothing() -> None:
    assert status_update({}, None, generation=1, now=NOW) is None
