"""The Task state machine of execflow.core.tasks.lifecycle (pure core, no cluster).

Each test builds a TaskView (spec, status checkpoint, observed attempts, verdicts) and a fixed,
timezone-aware "now", and checks the TaskPlan: the status fields that should hold, the Task's
place in its queue (Slot) and the actions to take.
"""

import datetime
from typing import Any

import pytest

from execflow.api.task import TaskPhase, TaskSpec, TaskStatus
from execflow.core.tasks.attempts import Attempt, AttemptState, Problem
from execflow.core.tasks.cache import CachedResult
from execflow.core.tasks.lifecycle import Slot, TaskPlan, next_attempt_number, plan
from execflow.core.tasks.view import TaskView, Verdict

UTC = datetime.UTC
NOW = datetime.datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
NOW_ISO = "2026-03-01T12:00:00Z"


def spec(**fields: Any) -> TaskSpec:
    return TaskSpec.model_validate({"toolRef": {"name": "data-cleaner"}, **fields})


def view(
    task_spec: TaskSpec | None = None,
    *,
    status: TaskStatus | None = None,
    attempts: tuple[Attempt, ...] = (),
    use_default_spec: bool = True,
    **extra: Any,
) -> TaskView:
    if task_spec is None and use_default_spec:
        task_spec = spec()
    return TaskView(
        name="clean-data",
        generation=1,
        spec=task_spec,
        status=status or TaskStatus(),
        attempts=attempts,
        **extra,
    )


def attempt(number: int, state: AttemptState, **fields: Any) -> Attempt:
    fields.setdefault("created_at", fields.get("started_at"))
    return Attempt(number=number, job_name=f"clean-data-{number}", state=state, **fields)


def failed(
    number: int,
    *,
    finished_at: datetime.datetime,
    exit_code: int | None = 1,
    reason: str = "Error",
    message: str | None = None,
) -> Attempt:
    return attempt(
        number,
        AttemptState.FAILED,
        started_at=finished_at - datetime.timedelta(seconds=5),
        finished_at=finished_at,
        exit_code=exit_code,
        reason=reason,
        message=message,
    )


def seconds_ago(seconds: float) -> datetime.datetime:
    return NOW - datetime.timedelta(seconds=seconds)


def fields(decision: TaskPlan) -> dict[str, Any]:
    """The status fields a plan wants to hold, as they would be written."""
    if decision.status is None:
        return {}
    return decision.status.model_dump(mode="json", by_alias=True, exclude_unset=True)


RETRYING = spec(
    retryPolicy={
        "maxRetries": 2,
        "retryDelay": "10s",
        "backoffMultiplier": 2,
        "maxRetryDelay": "1m",
    }
)


# --- waiting and running ----------------------------------------------------------------------


def test_task_without_attempts_wants_a_slot() -> None:
    decision = plan(view(), NOW)

    assert decision.slot is Slot.WANT
    assert decision.status is None, "the scheduler writes Queued or Running once it decided"
    assert decision.delete_jobs == ()


def test_a_due_retry_wants_a_slot_and_leaves_the_status_to_the_scheduler() -> None:
    status = TaskStatus(phase=TaskPhase.PENDING, next_retry_at=seconds_ago(1))

    decision = plan(view(status=status), NOW)

    assert decision.slot is Slot.WANT
    assert decision.status is None


@pytest.mark.parametrize("state", [AttemptState.PENDING, AttemptState.RUNNING])
def test_active_attempt_means_running(state: AttemptState) -> None:
    started = seconds_ago(30)

    decision = plan(view(attempts=(attempt(1, state, started_at=started),)), NOW)

    assert decision.slot is Slot.HOLD
    assert decision.slot is not Slot.WANT
    assert fields(decision)["phase"] == "Running"
    assert fields(decision)["attempts"] == 1
    assert fields(decision)["jobName"] == "clean-data-1"
    assert fields(decision)["startTime"] == "2026-03-01T11:59:30Z"
    assert fields(decision)["nextRetryAt"] is None
    assert decision.delete_jobs == ()


def test_running_keeps_the_start_time_of_the_first_attempt() -> None:
    first_start = seconds_ago(600)
    attempts = (
        failed(1, finished_at=seconds_ago(100)),
        attempt(2, AttemptState.RUNNING, started_at=seconds_ago(10)),
    )

    decision = plan(view(status=TaskStatus(start_time=first_start), attempts=attempts), NOW)

    assert fields(decision)["startTime"] == "2026-03-01T11:50:00Z"
    assert fields(decision)["jobName"] == "clean-data-2"
    assert fields(decision)["attempts"] == 2


# --- suspend ----------------------------------------------------------------------------------


def test_suspend_with_an_active_attempt_pauses_and_deletes_its_job() -> None:
    running = attempt(2, AttemptState.RUNNING, started_at=seconds_ago(5))

    decision = plan(view(spec(suspend=True), attempts=(running,)), NOW)

    assert fields(decision)["phase"] == "Paused"
    assert fields(decision)["reason"] == "Suspended"
    assert decision.delete_jobs == ("clean-data-2",)
    assert decision.slot is not Slot.HOLD
    assert decision.slot is not Slot.WANT


def test_suspend_without_an_attempt_pauses_without_starting() -> None:
    decision = plan(view(spec(suspend=True)), NOW)

    assert fields(decision)["phase"] == "Paused"
    assert fields(decision)["reason"] == "Suspended"
    assert decision.slot is not Slot.WANT
    assert decision.delete_jobs == ()


def test_suspend_while_backing_off_pauses() -> None:
    suspended = spec(suspend=True, retryPolicy={"maxRetries": 3, "retryDelay": "1m"})

    decision = plan(view(suspended, attempts=(failed(1, finished_at=seconds_ago(1)),)), NOW)

    assert fields(decision)["phase"] == "Paused"
    assert decision.requeue_at is None
    assert decision.slot is not Slot.WANT


# --- success ----------------------------------------------------------------------------------


def test_succeeded_attempt_completes_with_its_result() -> None:
    started, finished = seconds_ago(60), seconds_ago(20)
    done = attempt(
        1,
        AttemptState.SUCCEEDED,
        started_at=started,
        finished_at=finished,
        exit_code=0,
        message='{"rows": 42}',
    )

    decision = plan(view(attempts=(done,)), NOW)

    assert fields(decision)["phase"] == "Completed"
    assert fields(decision)["reason"] == "Succeeded"
    assert fields(decision)["result"] == {"rows": 42}
    assert fields(decision)["exitCode"] == 0
    assert fields(decision)["completionTime"] == NOW_ISO, "observed now, on the operator's clock"
    assert fields(decision)["startTime"] == "2026-03-01T11:59:00Z"
    assert fields(decision)["attempts"] == 1
    assert fields(decision)["nextRetryAt"] is None
    assert decision.learned_seconds == 40.0
    assert decision.slot is not Slot.WANT
    assert decision.slot is not Slot.HOLD


@pytest.mark.parametrize(("message", "result"), [("plain text", "plain text"), (None, {})])
def test_succeeded_attempt_keeps_non_json_output_as_text(message: str | None, result: Any) -> None:
    done = attempt(1, AttemptState.SUCCEEDED, finished_at=seconds_ago(1), message=message)

    decision = plan(view(attempts=(done,)), NOW)

    assert fields(decision)["result"] == result
    assert fields(decision)["exitCode"] == 0


def test_succeeded_after_a_failure_reports_the_later_attempt() -> None:
    attempts = (
        failed(1, finished_at=seconds_ago(100)),
        attempt(2, AttemptState.SUCCEEDED, finished_at=seconds_ago(10), exit_code=0),
    )

    decision = plan(view(RETRYING, attempts=attempts), NOW)

    assert fields(decision)["phase"] == "Completed"
    assert fields(decision)["attempts"] == 2
    assert fields(decision)["jobName"] == "clean-data-2"


# --- failure and retry ------------------------------------------------------------------------


def test_failed_attempt_with_retries_left_backs_off_until_the_retry_time() -> None:
    finished = seconds_ago(3)

    decision = plan(view(RETRYING, attempts=(failed(1, finished_at=finished),)), NOW)

    assert fields(decision)["phase"] == "Pending"
    assert fields(decision)["reason"] == "BackOff"
    assert fields(decision)["nextRetryAt"] == "2026-03-01T12:00:07Z"
    assert fields(decision)["exitCode"] == 1
    assert decision.requeue_at == finished + datetime.timedelta(seconds=10)
    assert decision.slot is not Slot.WANT
    assert decision.slot is not Slot.HOLD


def test_backoff_grows_with_each_failure() -> None:
    finished = seconds_ago(1)
    attempts = (failed(1, finished_at=seconds_ago(60)), failed(2, finished_at=finished))

    decision = plan(view(RETRYING, attempts=attempts), NOW)

    assert fields(decision)["reason"] == "BackOff"
    assert decision.requeue_at == finished + datetime.timedelta(seconds=20)


def test_failed_attempt_whose_retry_time_has_passed_wants_a_slot_and_records_the_failure() -> None:
    decision = plan(view(RETRYING, attempts=(failed(1, finished_at=seconds_ago(11)),)), NOW)

    assert decision.slot is Slot.WANT
    assert decision.requeue_at is None
    assert (fields(decision)["phase"], fields(decision)["reason"]) == ("Pending", "BackOff")
    assert [e.reason for e in decision.events] == ["BackOff"], "a retried failure is an Event"


def test_failures_beyond_max_retries_fail_with_the_container_reason() -> None:
    attempts = (
        failed(1, finished_at=seconds_ago(300)),
        failed(2, finished_at=seconds_ago(200)),
        failed(3, finished_at=seconds_ago(4), exit_code=137, reason="OOMKilled", message="boom"),
    )

    decision = plan(view(RETRYING, attempts=attempts), NOW)

    assert fields(decision)["phase"] == "Failed"
    assert fields(decision)["reason"] == "OOMKilled"
    assert fields(decision)["exitCode"] == 137
    assert fields(decision)["attempts"] == 3
    assert fields(decision)["completionTime"] == NOW_ISO
    assert "boom" in fields(decision)["message"]
    assert decision.slot is not Slot.WANT
    assert decision.requeue_at is None


def test_failure_without_a_reason_is_reported_as_error() -> None:
    decision = plan(view(attempts=(failed(1, finished_at=seconds_ago(1), reason=""),)), NOW)

    assert fields(decision)["phase"] == "Failed"
    assert fields(decision)["reason"] == "Error"


def test_failure_outside_retry_on_fails_at_once() -> None:
    only_oom = spec(retryPolicy={"maxRetries": 5, "retryOn": {"reasons": ["OOMKilled"]}})

    decision = plan(view(only_oom, attempts=(failed(1, finished_at=seconds_ago(1)),)), NOW)

    assert fields(decision)["phase"] == "Failed"
    assert fields(decision)["reason"] == "Error"


def test_deadline_exceeded_without_retry_is_a_timeout() -> None:
    timed_out = failed(1, finished_at=seconds_ago(1), exit_code=None, reason="DeadlineExceeded")

    decision = plan(view(spec(timeout="30s"), attempts=(timed_out,)), NOW)

    assert fields(decision)["phase"] == "Timeout"
    assert fields(decision)["reason"] == "DeadlineExceeded"
    assert fields(decision)["exitCode"] is None


def test_deadline_exceeded_with_retries_left_backs_off() -> None:
    timed_out = failed(1, finished_at=seconds_ago(1), exit_code=None, reason="DeadlineExceeded")

    decision = plan(view(RETRYING, attempts=(timed_out,)), NOW)

    assert fields(decision)["phase"] == "Pending"
    assert fields(decision)["reason"] == "BackOff"


# --- cancel and terminal phases ---------------------------------------------------------------


def test_cancel_cancels_and_deletes_active_jobs() -> None:
    attempts = (
        failed(1, finished_at=seconds_ago(100)),
        attempt(2, AttemptState.RUNNING, started_at=seconds_ago(10)),
    )

    decision = plan(view(spec(cancel=True), attempts=attempts), NOW)

    assert fields(decision)["phase"] == "Cancelled"
    assert fields(decision)["completionTime"] == NOW_ISO
    assert decision.delete_jobs == ("clean-data-2",)
    assert decision.slot is not Slot.HOLD
    assert decision.slot is not Slot.WANT


def test_cancel_without_an_attempt_cancels() -> None:
    decision = plan(view(spec(cancel=True)), NOW)

    assert fields(decision)["phase"] == "Cancelled"
    assert decision.delete_jobs == ()


def test_cancel_wins_over_suspend() -> None:
    running = attempt(1, AttemptState.RUNNING)

    decision = plan(view(spec(cancel=True, suspend=True), attempts=(running,)), NOW)

    assert fields(decision)["phase"] == "Cancelled"
    assert decision.delete_jobs == ("clean-data-1",)


@pytest.mark.parametrize(
    "phase",
    [TaskPhase.COMPLETED, TaskPhase.FAILED, TaskPhase.TIMEOUT, TaskPhase.CANCELLED],
)
def test_terminal_phases_stay(phase: TaskPhase) -> None:
    leftovers = (failed(1, finished_at=seconds_ago(1)), attempt(2, AttemptState.SUCCEEDED))

    decision = plan(
        view(spec(cancel=True, suspend=True), status=TaskStatus(phase=phase), attempts=leftovers),
        NOW,
    )

    assert decision == TaskPlan()


def test_cancelled_task_still_deletes_leftover_active_jobs() -> None:
    decision = plan(
        view(
            status=TaskStatus(phase=TaskPhase.CANCELLED),
            attempts=(attempt(1, AttemptState.RUNNING),),
        ),
        NOW,
    )

    assert decision.status is None
    assert decision.delete_jobs == ("clean-data-1",)


def test_completed_task_does_not_delete_active_jobs() -> None:
    decision = plan(
        view(
            status=TaskStatus(phase=TaskPhase.COMPLETED),
            attempts=(attempt(1, AttemptState.RUNNING),),
        ),
        NOW,
    )

    assert decision.delete_jobs == ()


# --- spec problems, tools and the cache -------------------------------------------------------


def test_missing_tool_keeps_the_task_pending() -> None:
    missing = Verdict("ToolNotFound", "Tool 'data-cleaner' does not exist (yet)")

    decision = plan(view(waiting=missing), NOW)

    assert fields(decision)["phase"] == "Pending"
    assert fields(decision)["reason"] == "ToolNotFound"
    assert "data-cleaner" in fields(decision)["message"]
    assert decision.slot is not Slot.WANT


def test_missing_tool_does_not_drop_a_running_attempt() -> None:
    running = attempt(1, AttemptState.RUNNING, started_at=seconds_ago(5))

    missing = Verdict("ToolNotFound", "Tool 'data-cleaner' does not exist (yet)")

    decision = plan(view(waiting=missing, attempts=(running,)), NOW)

    assert decision.slot is Slot.HOLD
    assert fields(decision)["phase"] == "Running"


def test_spec_error_fails_with_its_reason() -> None:
    task = view(
        use_default_spec=False,
        failure=Verdict("InvalidParameters", "parameters.input: required"),
    )

    decision = plan(task, NOW)

    assert fields(decision)["phase"] == "Failed"
    assert fields(decision)["reason"] == "InvalidParameters"
    assert fields(decision)["message"] == "parameters.input: required"
    assert fields(decision)["completionTime"] == NOW_ISO
    assert decision.slot is not Slot.WANT


def test_cached_result_without_attempts_completes_as_cache_hit() -> None:
    cached = CachedResult(task="clean-data-yesterday", result={"rows": 42}, exit_code=0)

    decision = plan(view(spec(cache={"enabled": True}), cached=cached), NOW)

    assert fields(decision)["phase"] == "Completed"
    assert fields(decision)["reason"] == "CacheHit"
    assert fields(decision)["cacheHit"] is True
    assert fields(decision)["result"] == {"rows": 42}
    assert fields(decision)["exitCode"] == 0
    assert fields(decision)["completionTime"] == NOW_ISO
    assert "clean-data-yesterday" in fields(decision)["message"]
    assert decision.slot is not Slot.WANT


def test_cached_result_is_ignored_once_an_attempt_exists() -> None:
    cached = CachedResult(task="other", result={"rows": 1}, exit_code=0)
    attempts = (failed(1, finished_at=seconds_ago(60)),)

    decision = plan(view(RETRYING, attempts=attempts, cached=cached), NOW)

    assert decision.slot is Slot.WANT
    assert "cacheHit" not in fields(decision)


def test_dependency_block_keeps_a_fresh_task_pending() -> None:
    decision = plan(view(waiting=Verdict("WaitingForDependencies", "fetch-data: Running")), NOW)

    assert fields(decision)["phase"] == "Pending"
    assert fields(decision)["reason"] == "WaitingForDependencies"
    assert decision.slot is not Slot.WANT


# --- attempt numbers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("recorded", "existing", "expected"),
    [
        (0, (), 1),
        (1, (1,), 2),
        (3, (1, 2), 4),
        (1, (1, 2, 5), 6),
        (4, (), 5),
    ],
)
def test_next_attempt_number_never_reuses_a_number(
    recorded: int, existing: tuple[int, ...], expected: int
) -> None:
    attempts = tuple(failed(n, finished_at=seconds_ago(100 - n)) for n in existing)

    assert next_attempt_number(TaskStatus(attempts=recorded), attempts) == expected


# --- stuck attempts -----------------------------------------------------------------------------


def test_an_attempt_that_is_not_starting_shows_why_while_it_holds_its_slot() -> None:
    stuck = attempt(
        1,
        AttemptState.PENDING,
        created_at=seconds_ago(20),
        problem=Problem("PodCreateFailed", 'serviceaccount "robot" not found'),
    )

    decision = plan(view(attempts=(stuck,)), NOW)

    assert decision.slot is Slot.HOLD
    assert (fields(decision)["phase"], fields(decision)["reason"]) == ("Running", "PodCreateFailed")
    assert 'serviceaccount "robot" not found' in fields(decision)["message"]


def test_an_attempt_stopped_by_the_operator_counts_as_a_failed_attempt() -> None:
    stopped = attempt(
        1,
        AttemptState.FAILED,
        created_at=seconds_ago(200),
        finished_at=seconds_ago(1),
        reason="PodCreateFailed",
        message="no service account",
    )

    decision = plan(view(attempts=(stopped,), stop_jobs=(stopped,)), NOW)

    assert (fields(decision)["phase"], fields(decision)["reason"]) == ("Failed", "PodCreateFailed")
    assert decision.stop_jobs == (stopped,), "its Job is marked and stopped by the same plan"
