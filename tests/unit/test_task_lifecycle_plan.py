"""The Task state machine of execflow.core.task_lifecycle (pure core, no cluster).

Each test builds a TaskView (spec, status checkpoint, observed attempts) and a fixed, timezone-aware
"now", and checks the Plan: the status to write and the actions to take.
"""

import datetime
from typing import Any

import pytest

from execflow.api.task import TaskPhase, TaskSpec, TaskStatus
from execflow.core.task_lifecycle import (
    Attempt,
    AttemptState,
    CachedResult,
    Plan,
    TaskView,
    next_attempt_number,
    plan,
)

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

    assert decision.wants_slot is True
    assert decision.running is False
    assert decision.status == {}
    assert decision.delete_jobs == []


def test_wanting_a_slot_clears_a_stale_next_retry_at() -> None:
    status = TaskStatus(phase=TaskPhase.PENDING, next_retry_at=seconds_ago(1))

    decision = plan(view(status=status), NOW)

    assert decision.wants_slot is True
    assert decision.status == {"nextRetryAt": None}


@pytest.mark.parametrize("state", [AttemptState.PENDING, AttemptState.RUNNING])
def test_active_attempt_means_running(state: AttemptState) -> None:
    started = seconds_ago(30)

    decision = plan(view(attempts=(attempt(1, state, started_at=started),)), NOW)

    assert decision.running is True
    assert decision.wants_slot is False
    assert decision.status["phase"] == "Running"
    assert decision.status["attempts"] == 1
    assert decision.status["jobName"] == "clean-data-1"
    assert decision.status["startTime"] == "2026-03-01T11:59:30Z"
    assert decision.status["nextRetryAt"] is None
    assert decision.delete_jobs == []


def test_running_keeps_the_start_time_of_the_first_attempt() -> None:
    first_start = seconds_ago(600)
    attempts = (
        failed(1, finished_at=seconds_ago(100)),
        attempt(2, AttemptState.RUNNING, started_at=seconds_ago(10)),
    )

    decision = plan(view(status=TaskStatus(start_time=first_start), attempts=attempts), NOW)

    assert decision.status["startTime"] == "2026-03-01T11:50:00Z"
    assert decision.status["jobName"] == "clean-data-2"
    assert decision.status["attempts"] == 2


# --- suspend ----------------------------------------------------------------------------------


def test_suspend_with_an_active_attempt_pauses_and_deletes_its_job() -> None:
    running = attempt(2, AttemptState.RUNNING, started_at=seconds_ago(5))

    decision = plan(view(spec(suspend=True), attempts=(running,)), NOW)

    assert decision.status["phase"] == "Paused"
    assert decision.status["reason"] == "Suspended"
    assert decision.delete_jobs == ["clean-data-2"]
    assert decision.running is False
    assert decision.wants_slot is False


def test_suspend_without_an_attempt_pauses_without_starting() -> None:
    decision = plan(view(spec(suspend=True)), NOW)

    assert decision.status["phase"] == "Paused"
    assert decision.status["reason"] == "Suspended"
    assert decision.wants_slot is False
    assert decision.delete_jobs == []


def test_suspend_while_backing_off_pauses() -> None:
    suspended = spec(suspend=True, retryPolicy={"maxRetries": 3, "retryDelay": "1m"})

    decision = plan(view(suspended, attempts=(failed(1, finished_at=seconds_ago(1)),)), NOW)

    assert decision.status["phase"] == "Paused"
    assert decision.requeue_at is None
    assert decision.wants_slot is False


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

    assert decision.status["phase"] == "Completed"
    assert decision.status["reason"] == "Succeeded"
    assert decision.status["result"] == {"rows": 42}
    assert decision.status["exitCode"] == 0
    assert decision.status["completionTime"] == "2026-03-01T11:59:40Z"
    assert decision.status["startTime"] == "2026-03-01T11:59:00Z"
    assert decision.status["attempts"] == 1
    assert decision.status["nextRetryAt"] is None
    assert decision.run_seconds == 40.0
    assert decision.wants_slot is False
    assert decision.running is False


@pytest.mark.parametrize(("message", "result"), [("plain text", "plain text"), (None, {})])
def test_succeeded_attempt_keeps_non_json_output_as_text(message: str | None, result: Any) -> None:
    done = attempt(1, AttemptState.SUCCEEDED, finished_at=seconds_ago(1), message=message)

    decision = plan(view(attempts=(done,)), NOW)

    assert decision.status["result"] == result
    assert decision.status["exitCode"] == 0


def test_succeeded_after_a_failure_reports_the_later_attempt() -> None:
    attempts = (
        failed(1, finished_at=seconds_ago(100)),
        attempt(2, AttemptState.SUCCEEDED, finished_at=seconds_ago(10), exit_code=0),
    )

    decision = plan(view(RETRYING, attempts=attempts), NOW)

    assert decision.status["phase"] == "Completed"
    assert decision.status["attempts"] == 2
    assert decision.status["jobName"] == "clean-data-2"


# --- failure and retry ------------------------------------------------------------------------


def test_failed_attempt_with_retries_left_backs_off_until_the_retry_time() -> None:
    finished = seconds_ago(3)

    decision = plan(view(RETRYING, attempts=(failed(1, finished_at=finished),)), NOW)

    assert decision.status["phase"] == "Pending"
    assert decision.status["reason"] == "BackOff"
    assert decision.status["nextRetryAt"] == "2026-03-01T12:00:07Z"
    assert decision.status["exitCode"] == 1
    assert decision.requeue_at == finished + datetime.timedelta(seconds=10)
    assert decision.wants_slot is False
    assert decision.running is False


def test_backoff_grows_with_each_failure() -> None:
    finished = seconds_ago(1)
    attempts = (failed(1, finished_at=seconds_ago(60)), failed(2, finished_at=finished))

    decision = plan(view(RETRYING, attempts=attempts), NOW)

    assert decision.status["reason"] == "BackOff"
    assert decision.requeue_at == finished + datetime.timedelta(seconds=20)


def test_failed_attempt_whose_retry_time_has_passed_wants_a_slot() -> None:
    decision = plan(view(RETRYING, attempts=(failed(1, finished_at=seconds_ago(11)),)), NOW)

    assert decision.wants_slot is True
    assert decision.requeue_at is None


def test_failures_beyond_max_retries_fail_with_the_container_reason() -> None:
    attempts = (
        failed(1, finished_at=seconds_ago(300)),
        failed(2, finished_at=seconds_ago(200)),
        failed(3, finished_at=seconds_ago(4), exit_code=137, reason="OOMKilled", message="boom"),
    )

    decision = plan(view(RETRYING, attempts=attempts), NOW)

    assert decision.status["phase"] == "Failed"
    assert decision.status["reason"] == "OOMKilled"
    assert decision.status["exitCode"] == 137
    assert decision.status["attempts"] == 3
    assert decision.status["completionTime"] == "2026-03-01T11:59:56Z"
    assert "boom" in decision.status["message"]
    assert decision.wants_slot is False
    assert decision.requeue_at is None


def test_failure_without_a_reason_is_reported_as_error() -> None:
    decision = plan(view(attempts=(failed(1, finished_at=seconds_ago(1), reason=""),)), NOW)

    assert decision.status["phase"] == "Failed"
    assert decision.status["reason"] == "Error"


def test_failure_outside_retry_on_fails_at_once() -> None:
    only_oom = spec(retryPolicy={"maxRetries": 5, "retryOn": {"reasons": ["OOMKilled"]}})

    decision = plan(view(only_oom, attempts=(failed(1, finished_at=seconds_ago(1)),)), NOW)

    assert decision.status["phase"] == "Failed"
    assert decision.status["reason"] == "Error"


def test_deadline_exceeded_without_retry_is_a_timeout() -> None:
    timed_out = failed(1, finished_at=seconds_ago(1), exit_code=None, reason="DeadlineExceeded")

    decision = plan(view(spec(timeout="30s"), attempts=(timed_out,)), NOW)

    assert decision.status["phase"] == "Timeout"
    assert decision.status["reason"] == "DeadlineExceeded"
    assert decision.status["exitCode"] is None


def test_deadline_exceeded_with_retries_left_backs_off() -> None:
    timed_out = failed(1, finished_at=seconds_ago(1), exit_code=None, reason="DeadlineExceeded")

    decision = plan(view(RETRYING, attempts=(timed_out,)), NOW)

    assert decision.status["phase"] == "Pending"
    assert decision.status["reason"] == "BackOff"


# --- cancel and terminal phases ---------------------------------------------------------------


def test_cancel_cancels_and_deletes_active_jobs() -> None:
    attempts = (
        failed(1, finished_at=seconds_ago(100)),
        attempt(2, AttemptState.RUNNING, started_at=seconds_ago(10)),
    )

    decision = plan(view(spec(cancel=True), attempts=attempts), NOW)

    assert decision.status["phase"] == "Cancelled"
    assert decision.status["completionTime"] == NOW_ISO
    assert decision.delete_jobs == ["clean-data-2"]
    assert decision.running is False
    assert decision.wants_slot is False


def test_cancel_without_an_attempt_cancels() -> None:
    decision = plan(view(spec(cancel=True)), NOW)

    assert decision.status["phase"] == "Cancelled"
    assert decision.delete_jobs == []


def test_cancel_wins_over_suspend() -> None:
    running = attempt(1, AttemptState.RUNNING)

    decision = plan(view(spec(cancel=True, suspend=True), attempts=(running,)), NOW)

    assert decision.status["phase"] == "Cancelled"
    assert decision.delete_jobs == ["clean-data-1"]


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

    assert decision == Plan()


def test_cancelled_task_still_deletes_leftover_active_jobs() -> None:
    decision = plan(
        view(
            status=TaskStatus(phase=TaskPhase.CANCELLED),
            attempts=(attempt(1, AttemptState.RUNNING),),
        ),
        NOW,
    )

    assert decision.status == {}
    assert decision.delete_jobs == ["clean-data-1"]


def test_completed_task_does_not_delete_active_jobs() -> None:
    decision = plan(
        view(
            status=TaskStatus(phase=TaskPhase.COMPLETED),
            attempts=(attempt(1, AttemptState.RUNNING),),
        ),
        NOW,
    )

    assert decision.delete_jobs == []


# --- spec problems, tools and the cache -------------------------------------------------------


def test_missing_tool_keeps_the_task_pending() -> None:
    decision = plan(view(tool_missing="data-cleaner"), NOW)

    assert decision.status["phase"] == "Pending"
    assert decision.status["reason"] == "ToolNotFound"
    assert "data-cleaner" in decision.status["message"]
    assert decision.wants_slot is False


def test_missing_tool_does_not_drop_a_running_attempt() -> None:
    running = attempt(1, AttemptState.RUNNING, started_at=seconds_ago(5))

    decision = plan(view(tool_missing="data-cleaner", attempts=(running,)), NOW)

    assert decision.running is True
    assert decision.status["phase"] == "Running"


def test_spec_error_fails_with_its_reason() -> None:
    task = view(
        use_default_spec=False,
        spec_error=("InvalidParameters", "parameters.input: required"),
    )

    decision = plan(task, NOW)

    assert decision.status["phase"] == "Failed"
    assert decision.status["reason"] == "InvalidParameters"
    assert decision.status["message"] == "parameters.input: required"
    assert decision.status["completionTime"] == NOW_ISO
    assert decision.wants_slot is False


def test_cached_result_without_attempts_completes_as_cache_hit() -> None:
    cached = CachedResult(task="clean-data-yesterday", result={"rows": 42}, exit_code=0)

    decision = plan(view(spec(cache={"enabled": True}), cached=cached), NOW)

    assert decision.status["phase"] == "Completed"
    assert decision.status["reason"] == "CacheHit"
    assert decision.status["cacheHit"] is True
    assert decision.status["result"] == {"rows": 42}
    assert decision.status["exitCode"] == 0
    assert decision.status["completionTime"] == NOW_ISO
    assert "clean-data-yesterday" in decision.status["message"]
    assert decision.wants_slot is False


def test_cached_result_is_ignored_once_an_attempt_exists() -> None:
    cached = CachedResult(task="other", result={"rows": 1}, exit_code=0)
    attempts = (failed(1, finished_at=seconds_ago(60)),)

    decision = plan(view(RETRYING, attempts=attempts, cached=cached), NOW)

    assert decision.wants_slot is True
    assert "cacheHit" not in decision.status


def test_dependency_block_keeps_a_fresh_task_pending() -> None:
    decision = plan(view(dependency_block=("WaitingForDependencies", "fetch-data: Running")), NOW)

    assert decision.status["phase"] == "Pending"
    assert decision.status["reason"] == "WaitingForDependencies"
    assert decision.wants_slot is False


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
