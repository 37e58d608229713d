"""Snapshot → view of execflow.core.tasks.view (pure core, no cluster).

Each test builds the plain data the controller reads from its stores (the Task, its Tool, its
Jobs and pods, other Tasks of the namespace) and checks what the view concludes: failures with
their reasons, waits, dependencies, the cache, attempts and stuck attempts.
"""

import datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from execflow.api.reasons import Reason
from execflow.core.tasks.attempts import AttemptState, JobObservation
from execflow.core.tasks.cache import cache_key
from execflow.core.tasks.view import (
    TaskSettings,
    TaskSnapshot,
    TaskView,
    ToolSnapshot,
    build_view,
)

UTC = datetime.UTC
NOW = datetime.datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def iso(seconds_ago: float) -> str:
    return (NOW - datetime.timedelta(seconds=seconds_ago)).isoformat().replace("+00:00", "Z")


def snapshot(spec: dict[str, Any] | None = None, **fields: Any) -> TaskSnapshot:
    values: dict[str, Any] = {
        "namespace": "ns",
        "name": "clean",
        "generation": 1,
        "created_at": NOW - datetime.timedelta(minutes=5),
        "spec": spec if spec is not None else {"container": {"image": "tool:1"}},
        "status": {},
    }
    values.update(fields)
    return TaskSnapshot(**values)


def task(name: str, phase: str | None = None, **status: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"metadata": {"name": name, "namespace": "ns"}, "spec": {}}
    if phase is not None:
        body["status"] = {"phase": phase, **status}
    return body


def job(number: int, *, age: float = 10, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"clean-{number}",
            "uid": f"job-{number}",
            "labels": {"execflow.dev/attempt": str(number)},
            "creationTimestamp": iso(age),
        },
        "status": status,
    }


def view(snap: TaskSnapshot, settings: TaskSettings | None = None) -> TaskView:
    return build_view(snap, NOW, settings)


# --- names, tools and specs -------------------------------------------------------------------


def test_a_name_longer_than_a_label_value_fails_with_invalid_name() -> None:
    result = view(snapshot(name="x" * 64))

    assert result.failure is not None and result.failure.reason == Reason.INVALID_NAME


def test_a_missing_tool_makes_the_task_wait_with_tool_not_found() -> None:
    result = view(snapshot({"toolRef": {"name": "cleaner"}}, tool=ToolSnapshot("cleaner", None)))

    assert result.failure is None
    assert result.waiting is not None and result.waiting.reason == Reason.TOOL_NOT_FOUND
    assert "cleaner" in result.waiting.message


def test_a_tool_with_an_invalid_input_schema_fails_the_task_with_invalid_tool() -> None:
    tool = ToolSnapshot("cleaner", {"image": "t:1", "inputSchema": {"type": "strin"}})

    result = view(snapshot({"toolRef": {"name": "cleaner"}}, tool=tool))

    assert result.failure is not None and result.failure.reason == Reason.INVALID_TOOL
    assert "inputSchema" in result.failure.message


def test_tool_defaults_fill_unset_fields_and_the_task_wins() -> None:
    tool = ToolSnapshot(
        "cleaner", {"image": "t:1", "defaults": {"timeout": "5m", "priority": "High"}}
    )

    result = view(snapshot({"toolRef": {"name": "cleaner"}, "priority": "Low"}, tool=tool))

    assert result.spec is not None
    assert (result.spec.timeout, result.spec.priority.value) == ("5m", "Low")


def test_parameters_violating_the_input_schema_fail_with_the_validator_message() -> None:
    tool = ToolSnapshot(
        "cleaner",
        {
            "image": "t:1",
            "inputSchema": {
                "type": "object",
                "properties": {"count": {"type": "integer", "minimum": 1}},
            },
        },
    )

    result = view(snapshot({"toolRef": {"name": "cleaner"}, "parameters": {"count": 0}}, tool=tool))

    assert result.failure is not None and result.failure.reason == Reason.INVALID_PARAMETERS
    assert "count" in result.failure.message and "minimum of 1" in result.failure.message


def test_an_unknown_time_zone_fails_with_invalid_spec_naming_the_field() -> None:
    spec = {
        "container": {"image": "t:1"},
        "constraints": {"timeWindows": [{"start": "22:00", "end": "06:00", "timeZone": "Mars/X"}]},
    }

    result = view(snapshot(spec))

    assert result.failure is not None and result.failure.reason == Reason.INVALID_SPEC
    assert "timeWindows[0].timeZone" in result.failure.message


def test_args_naming_a_missing_parameter_fail_with_invalid_parameters() -> None:
    spec = {"container": {"image": "t:1", "args": ["{{ parameters.input }}"]}}

    result = view(snapshot(spec))

    assert result.failure is not None and result.failure.reason == Reason.INVALID_PARAMETERS


# --- attempts ---------------------------------------------------------------------------------


def test_attempts_come_from_the_jobs_of_this_task_only() -> None:
    done = job(1, conditions=[{"type": "Complete", "status": "True"}])
    pod = {
        "metadata": {"name": "clean-1-x", "creationTimestamp": iso(9)},
        "status": {
            "containerStatuses": [
                {
                    "name": "tool",
                    "state": {"terminated": {"exitCode": 0, "message": '{"rows": 3}'}},
                }
            ]
        },
    }

    result = view(snapshot(jobs=[JobObservation(done, [pod])]))

    [attempt] = result.attempts
    assert (attempt.number, attempt.state, attempt.message) == (
        1,
        AttemptState.SUCCEEDED,
        '{"rows": 3}',
    )


def test_a_job_of_an_earlier_task_of_that_name_makes_the_first_attempt_wait() -> None:
    result = view(snapshot(previous_jobs=["clean-1"]))

    assert result.waiting is not None and result.waiting.reason == Reason.PREVIOUS_JOB_EXISTS


def test_a_pod_that_cannot_be_created_is_reported_then_stopped_after_the_grace() -> None:
    settings = TaskSettings(pod_create_timeout=datetime.timedelta(seconds=60))
    failure = 'pods "clean-1-" is forbidden: error looking up service account ns/robot'

    young = view(snapshot(jobs=[JobObservation(job(1, age=30), [], failure)]), settings)
    old = view(snapshot(jobs=[JobObservation(job(1, age=90), [], failure)]), settings)

    [waiting] = young.attempts
    assert waiting.state is AttemptState.PENDING
    assert waiting.problem is not None and waiting.problem.reason == Reason.POD_CREATE_FAILED
    assert waiting.recheck_at == NOW + datetime.timedelta(seconds=30)
    assert young.stop_jobs == ()
    [stopped] = old.attempts
    assert (stopped.state, stopped.reason) == (AttemptState.FAILED, Reason.POD_CREATE_FAILED)
    assert old.stop_jobs == (stopped,)


def test_a_stopped_job_stays_a_failed_attempt_without_its_events() -> None:
    marker = (
        '{"reason":"PodCreateFailed","message":"no service account","at":"2026-03-01T11:59:00Z"}'
    )
    stopped = job(1, age=300)
    stopped["metadata"]["annotations"] = {"execflow.dev/stopped": marker}

    result = view(snapshot(jobs=[JobObservation(stopped)]))

    [attempt] = result.attempts
    assert (attempt.state, attempt.reason, attempt.message) == (
        AttemptState.FAILED,
        "PodCreateFailed",
        "no service account",
    )
    assert result.stop_jobs == ()


def test_an_unschedulable_pod_is_a_visible_problem() -> None:
    pod = {
        "metadata": {"name": "clean-1-x", "creationTimestamp": iso(5)},
        "status": {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/4 nodes are available",
                }
            ],
        },
    }

    result = view(snapshot(jobs=[JobObservation(job(1), [pod])]))

    [attempt] = result.attempts
    assert attempt.problem is not None
    assert (attempt.problem.reason, attempt.problem.message) == (
        Reason.POD_UNSCHEDULABLE,
        "0/4 nodes are available",
    )


# --- dependencies -----------------------------------------------------------------------------


def depends(
    *names: str, kind: str = "FinishToStart", condition: str = "Succeeded"
) -> dict[str, Any]:
    return {
        "container": {"image": "t:1"},
        "dependencies": [{"task": n, "type": kind, "condition": condition} for n in names],
    }


def lookup(*bodies: dict[str, Any]) -> Any:
    by_name = {b["metadata"]["name"]: b for b in bodies}
    return by_name.get


def test_a_dependency_that_has_not_finished_makes_the_task_wait() -> None:
    result = view(snapshot(depends("fetch"), task_named=lookup(task("fetch", "Running"))))

    assert result.waiting is not None and result.waiting.reason == Reason.WAITING_FOR_DEPENDENCY


def test_a_dependency_that_cannot_be_met_fails_the_task() -> None:
    result = view(snapshot(depends("fetch"), task_named=lookup(task("fetch", "Failed"))))

    assert result.failure is not None and result.failure.reason == Reason.DEPENDENCY_FAILED


def test_a_dependency_on_a_missing_task_waits() -> None:
    result = view(snapshot(depends("later")))

    assert result.waiting is not None and "does not exist" in result.waiting.message


def test_a_cycle_through_other_tasks_fails_with_dependency_cycle() -> None:
    a = task("a")
    a["spec"] = depends("clean")
    result = view(snapshot(depends("a"), task_named=lookup(a)))

    assert result.failure is not None and result.failure.reason == Reason.DEPENDENCY_CYCLE


def succeeded_attempt() -> JobObservation:
    done = job(1, conditions=[{"type": "Complete", "status": "True"}])
    pod = {
        "metadata": {"name": "clean-1-x"},
        "status": {
            "containerStatuses": [{"name": "tool", "state": {"terminated": {"exitCode": 0}}}]
        },
    }
    return JobObservation(done, [pod])


def test_a_finish_dependency_holds_a_successful_attempt_instead_of_the_start() -> None:
    result = view(
        snapshot(
            depends("fetch", kind="FinishToFinish"),
            jobs=[succeeded_attempt()],
            task_named=lookup(task("fetch", "Running")),
        )
    )

    assert result.waiting is None
    assert result.finish_wait is not None


# --- the cache --------------------------------------------------------------------------------


CACHED_SPEC = {"container": {"image": "t:1"}, "parameters": {"x": 1}, "cache": {"enabled": True}}


def completed(name: str, finished_ago: float, result: Any) -> dict[str, Any]:
    return task(name, "Completed", completionTime=iso(finished_ago), result=result, exitCode=0)


def cache_lookup(*bodies: dict[str, Any]) -> Any:
    def find(key: str) -> list[dict[str, Any]]:
        return list(bodies)

    return find


def test_the_newest_identical_execution_within_the_ttl_is_reused() -> None:
    entries = cache_lookup(
        completed("old", 3000, {"v": 1}),
        completed("new", 60, {"v": 2}),
        completed("expired", 7200, {"v": 0}),
    )

    result = view(snapshot(CACHED_SPEC, completed_with_key=entries))

    assert result.cached is not None
    assert (result.cached.task, result.cached.result) == ("new", {"v": 2})


def test_the_cache_is_not_used_past_its_ttl_or_once_an_attempt_exists() -> None:
    spec = {**CACHED_SPEC, "cache": {"enabled": True, "ttl": "1m"}}
    entries = cache_lookup(completed("old", 3000, {"v": 1}))

    assert view(snapshot(spec, completed_with_key=entries)).cached is None
    running = job(1)
    with_attempt = view(
        snapshot(CACHED_SPEC, completed_with_key=entries, jobs=[JobObservation(running)])
    )
    assert with_attempt.cached is None


@given(st.dictionaries(st.text(max_size=5), st.integers(), max_size=4))
def test_the_cache_key_depends_on_the_parameters(parameters: dict[str, int]) -> None:
    base = view(snapshot({**CACHED_SPEC, "parameters": parameters}))
    changed = view(snapshot({**CACHED_SPEC, "parameters": {**parameters, "extra!": 1}}))

    assert base.spec is not None and changed.spec is not None
    assert cache_key(base.spec, None) != cache_key(changed.spec, None)
    assert base.cache_key == cache_key(base.spec, None)


# --- found by fuzzing specs from the CRD schema -------------------------------------------------


def test_exa_quantities_in_requests_are_read_not_fatal() -> None:
    spec = {
        "container": {"image": "t:1"},
        "resources": {"requests": {"cpu": "1Ei", "memory": "2E"}},
    }

    result = view(snapshot(spec))

    assert result.failure is None and result.waiting is None


def test_a_start_to_finish_dependency_on_itself_is_met_once_it_started() -> None:
    result = view(snapshot(depends("clean", kind="StartToFinish"), jobs=[succeeded_attempt()]))

    assert (result.failure, result.waiting, result.finish_wait) == (None, None, None)


def test_a_cycle_is_reported_even_while_the_tool_is_missing() -> None:
    spec = {"toolRef": {"name": "later"}, "dependencies": [{"task": "clean"}]}

    result = view(snapshot(spec, tool=ToolSnapshot("later", None)))

    assert result.failure is not None and result.failure.reason == Reason.DEPENDENCY_CYCLE
