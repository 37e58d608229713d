"""Task and Tool models parse stored bodies and dump them back (pure, no cluster).

Bodies are camelCase dicts, exactly what kopf hands to a handler; the models must keep every field
the API documents, apply the documented defaults, ignore fields they do not know, and refuse what
admission would refuse.
"""

import copy
import datetime
from typing import Any

import pytest
from pydantic import ValidationError

from execflow.api.common import QUANTITY_MESSAGE, EnvVar
from execflow.api.constraints import TIME_OF_DAY_MESSAGE, TIME_ZONE_MESSAGE
from execflow.api.task import (
    DependencyCondition,
    DependencyType,
    Priority,
    Task,
    TaskPhase,
    TaskSpec,
    TaskStatus,
    ToolReference,
)
from execflow.api.tool import Tool, ToolSpec
from tests.task_specs import reference_task_spec

TASK_BODY: dict[str, Any] = {
    "apiVersion": "execflow.dev/v1alpha1",
    "kind": "Task",
    "metadata": {
        "name": "clean-data",
        "namespace": "ml",
        "uid": "6f1c2b9e-0000-4000-8000-000000000001",
        "generation": 2,
        "resourceVersion": "4711",
        "labels": {"team": "ml"},
        "annotations": {"note": "nightly"},
        "creationTimestamp": "2026-01-01T10:00:00Z",
    },
    "spec": reference_task_spec(
        parameters={"input": "raw_data.csv", "limits": {"rows": 10}, "flags": [1, "a"]},
        priority="High",
        podTemplate={
            "metadata": {"labels": {"tier": "batch"}, "annotations": {"a": "b"}},
            "spec": {
                "serviceAccountName": "runner",
                "nodeSelector": {"pool": "cpu"},
                "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
                "affinity": {
                    "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}
                },
                "priorityClassName": "batch-low",
                "imagePullSecrets": [{"name": "registry"}],
            },
        },
    ),
    "status": {
        "phase": "Running",
        "reason": "Started",
        "message": "attempt 2 running",
        "attempts": 2,
        "nextRetryAt": "2026-01-01T10:05:00Z",
        "queuedAt": "2026-01-01T10:00:01Z",
        "startTime": "2026-01-01T10:00:02Z",
        "jobName": "clean-data-2",
        "exitCode": 1,
        "result": {"rows": 42, "path": "s3://bucket/clean.csv"},
        "resultRef": {
            "kind": "ConfigMap",
            "name": "clean-data-result",
            "key": "result.json",
            "sha256": "ab" * 32,
            "size": 1234,
        },
        "cacheHit": False,
        "observedGeneration": 2,
        "conditions": [
            {
                "type": "Succeeded",
                "status": "Unknown",
                "reason": "Running",
                "message": "",
                "lastTransitionTime": "2026-01-01T10:00:02Z",
                "observedGeneration": 2,
            }
        ],
    },
}


def minimal_spec(**fields: Any) -> dict[str, Any]:
    return {"toolRef": {"name": "data-cleaner"}, **fields}


def test_a_full_task_body_round_trips_through_the_models() -> None:
    task = Task.model_validate(TASK_BODY)

    dumped = task.model_dump(mode="json", by_alias=True, exclude_none=True)

    assert dumped == TASK_BODY


def test_parsed_fields_have_python_types_for_core_logic() -> None:
    task = Task.model_validate(TASK_BODY)

    assert task.spec.priority is Priority.HIGH
    assert task.spec.tool_ref == ToolReference(name="data-cleaner")
    assert task.spec.dependencies[0].type is DependencyType.FINISH_TO_START
    assert task.spec.dependencies[0].condition is DependencyCondition.SUCCEEDED
    assert task.spec.constraints.deadline == datetime.datetime(
        2026, 12, 1, 12, 0, tzinfo=datetime.UTC
    )
    window = task.spec.constraints.time_windows[0]
    assert (window.start_time, window.end_time) == (datetime.time(22, 0), datetime.time(6, 0))
    assert task.spec.retry_policy.backoff_multiplier == 2.0
    assert task.status.phase is TaskPhase.RUNNING
    assert task.metadata.labels == {"team": "ml"}


def test_python_mode_dump_by_alias_keeps_camel_case_keys() -> None:
    task = Task.model_validate(TASK_BODY)

    dumped = task.model_dump(by_alias=True, exclude_none=True)

    assert dumped["spec"]["retryPolicy"]["retryOn"]["exitCodes"] == [1, 137]
    assert dumped["spec"]["podTemplate"]["spec"]["serviceAccountName"] == "runner"
    assert dumped["status"]["resultRef"]["sha256"] == "ab" * 32
    assert dumped["spec"]["constraints"]["deadline"] == datetime.datetime(
        2026, 12, 1, 12, 0, tzinfo=datetime.UTC
    )


def test_a_minimal_spec_gets_the_documented_defaults() -> None:
    spec = TaskSpec.model_validate(minimal_spec())

    assert spec.queue == "default"
    assert spec.priority is Priority.NORMAL
    assert spec.timeout is None
    assert spec.retry_policy.max_retries == 0
    assert spec.retry_policy.retry_delay == "1s"
    assert spec.retry_policy.backoff_multiplier == 2.0
    assert spec.retry_policy.max_retry_delay == "5m"
    assert spec.retry_policy.retry_on.exit_codes == []
    assert spec.constraints.time_windows == []
    assert spec.cache.enabled is False
    assert (spec.suspend, spec.cancel) == (False, False)


def test_a_dependency_defaults_to_finish_to_start_on_success() -> None:
    spec = TaskSpec.model_validate(minimal_spec(dependencies=[{"task": "fetch-data"}]))

    assert spec.dependencies[0].type is DependencyType.FINISH_TO_START
    assert spec.dependencies[0].condition is DependencyCondition.SUCCEEDED


def test_a_time_window_defaults_to_utc() -> None:
    spec = TaskSpec.model_validate(
        minimal_spec(constraints={"timeWindows": [{"start": "09:00", "end": "17:00"}]})
    )

    assert spec.constraints.time_windows[0].time_zone == "UTC"


def test_an_empty_status_parses_as_pending() -> None:
    assert TaskStatus.model_validate({}).phase is TaskPhase.PENDING
    assert Task.model_validate({"spec": minimal_spec()}).status.attempts == 0


def test_an_inline_container_replaces_the_tool_reference() -> None:
    spec = TaskSpec.model_validate(
        {"container": {"image": "busybox:1.36", "command": ["sh", "-c"], "args": ["echo 1"]}}
    )

    assert spec.tool_ref is None
    assert spec.container is not None
    assert spec.container.image == "busybox:1.36"


@pytest.mark.parametrize(
    "spec",
    [
        {},
        {"toolRef": {"name": "a"}, "container": {"image": "busybox"}},
    ],
    ids=["neither", "both"],
)
def test_exactly_one_of_tool_ref_and_container_is_required(spec: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match=r"exactly one of spec\.toolRef or spec\.container"):
        TaskSpec.model_validate(spec)


def test_unknown_fields_from_newer_versions_are_ignored() -> None:
    body = copy.deepcopy(TASK_BODY)
    body["spec"]["futureField"] = {"x": 1}
    body["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    body["status"]["somethingNew"] = True

    task = Task.model_validate(body)

    assert task.model_dump(mode="json", by_alias=True, exclude_none=True) == TASK_BODY


def test_env_vars_keep_value_from_and_fields_they_do_not_name() -> None:
    env = [
        {"name": "PLAIN", "value": "1"},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "token"}}},
        {"name": "NEWER", "value": "x", "someFutureField": {"a": 1}},
    ]
    spec = TaskSpec.model_validate({"container": {"image": "busybox", "env": env}})

    assert spec.container is not None
    dumped = [
        var.model_dump(mode="json", by_alias=True, exclude_none=True) for var in spec.container.env
    ]
    assert dumped == env
    assert spec.container.env[1].value_from == {"secretKeyRef": {"name": "s", "key": "token"}}
    assert EnvVar(name="A", value="b").model_dump(by_alias=True, exclude_none=True) == {
        "name": "A",
        "value": "b",
    }


@pytest.mark.parametrize(
    "result",
    [{"rows": 1}, [1, 2, 3], "plain text output", 42, 3.5, True],
    ids=["object", "list", "string", "integer", "number", "boolean"],
)
def test_a_result_may_be_any_json_value(result: Any) -> None:
    status = TaskStatus.model_validate({"phase": "Completed", "result": result})

    assert status.result == result
    assert status.model_dump(mode="json", by_alias=True)["result"] == result


@pytest.mark.parametrize(
    ("spec_fields", "location"),
    [
        ({"priority": "Urgent"}, "priority"),
        ({"retryPolicy": {"maxRetries": -1}}, "maxRetries"),
        ({"retryPolicy": {"maxRetries": 101}}, "maxRetries"),
        ({"retryPolicy": {"backoffMultiplier": 0.5}}, "backoffMultiplier"),
        ({"timeout": "5 minutes"}, "timeout"),
        ({"retryPolicy": {"retryDelay": "1d"}}, "retryDelay"),
        ({"cache": {"ttl": "forever"}}, "ttl"),
        ({"estimatedDuration": "-5s"}, "estimatedDuration"),
        ({"constraints": {"timeWindows": [{"start": "24:00", "end": "06:00"}]}}, "start"),
        ({"constraints": {"timeWindows": [{"start": "22:00", "end": "6:00"}]}}, "end"),
        ({"constraints": {"deadline": "2026-12-01T12:00:00"}}, "deadline"),
        ({"resources": {"requests": {"memory": "lots"}}}, "memory"),
        ({"dependencies": [{"task": "a", "condition": "Maybe"}]}, "condition"),
    ],
)
def test_invalid_spec_values_are_refused(spec_fields: dict[str, Any], location: str) -> None:
    with pytest.raises(ValidationError) as caught:
        TaskSpec.model_validate(minimal_spec(**spec_fields))

    assert any(location in map(str, error["loc"]) for error in caught.value.errors())


@pytest.mark.parametrize(
    ("spec_fields", "expected"),
    [
        ({"timeout": "5 minutes"}, "expected a Go-style duration such as"),
        ({"resources": {"limits": {"cpu": "two"}}}, f"'two' {QUANTITY_MESSAGE}"),
        (
            {"constraints": {"timeWindows": [{"start": "7:30", "end": "09:00"}]}},
            f"'7:30' {TIME_OF_DAY_MESSAGE}",
        ),
        (
            {
                "constraints": {
                    "timeWindows": [{"start": "07:30", "end": "09:00", "timeZone": "Local"}]
                }
            },
            f"'Local' {TIME_ZONE_MESSAGE}",
        ),
        (
            {
                "constraints": {
                    "timeWindows": [{"start": "07:30", "end": "09:00", "timeZone": "Europe Berlin"}]
                }
            },
            f"'Europe Berlin' {TIME_ZONE_MESSAGE}",
        ),
    ],
    ids=["duration", "quantity", "time-of-day", "host-zone", "spaced-zone"],
)
def test_format_errors_name_the_expected_form_as_admission_does(
    spec_fields: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ValidationError, match=expected):
        TaskSpec.model_validate(minimal_spec(**spec_fields))


def test_the_model_checks_only_the_shape_of_a_time_zone_name() -> None:
    # Whether the zone exists depends on the time zone database at hand: the API server checks it
    # on admission, the scheduler when it evaluates the window.
    window = {"start": "07:30", "end": "09:00", "timeZone": "Mars/Olympus"}

    spec = TaskSpec.model_validate(minimal_spec(constraints={"timeWindows": [window]}))

    assert spec.constraints.time_windows[0].time_zone == "Mars/Olympus"


def test_quantities_may_be_integers_or_kubernetes_quantity_strings() -> None:
    spec = TaskSpec.model_validate(
        minimal_spec(resources={"requests": {"cpu": 2, "memory": "1.5Gi", "example.com/x": "1e3"}})
    )

    assert spec.resources.requests == {"cpu": 2, "memory": "1.5Gi", "example.com/x": "1e3"}


@pytest.mark.parametrize(
    ("input_schema", "expected"),
    [
        ({"type": "object", "required": "input"}, "required must be a list of parameter names"),
        ({"type": "object", "required": [1]}, "required must be a list of parameter names"),
        ({"type": "object", "properties": ["input"]}, "properties must be an object"),
    ],
    ids=["required-string", "required-numbers", "properties-list"],
)
def test_a_tool_input_schema_with_mistyped_keywords_is_refused(
    input_schema: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ValidationError, match=expected):
        ToolSpec.model_validate({"image": "busybox", "inputSchema": input_schema})


def test_a_tool_input_schema_is_otherwise_kept_as_written() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": ["object", "null"],
        "required": ["input"],
        "properties": {"input": {"type": "string"}, "any": True},
        "additionalProperties": False,
    }

    assert ToolSpec.model_validate({"image": "busybox", "inputSchema": schema}).input_schema == (
        schema
    )


def test_priority_rank_orders_low_to_critical() -> None:
    assert [p.rank for p in Priority] == [0, 1, 2, 3]
    assert sorted(Priority, key=lambda p: p.rank, reverse=True)[0] is Priority.CRITICAL
    assert Priority("Normal") == "Normal"


@pytest.mark.parametrize(
    ("phase", "terminal"),
    [
        (TaskPhase.PENDING, False),
        (TaskPhase.QUEUED, False),
        (TaskPhase.RUNNING, False),
        (TaskPhase.PAUSED, False),
        (TaskPhase.COMPLETED, True),
        (TaskPhase.FAILED, True),
        (TaskPhase.CANCELLED, True),
        (TaskPhase.TIMEOUT, True),
    ],
)
def test_only_completed_failed_cancelled_and_timeout_are_terminal(
    phase: TaskPhase, terminal: bool
) -> None:
    assert phase.is_terminal is terminal


def test_models_can_be_built_by_python_name() -> None:
    spec = TaskSpec(tool_ref=ToolReference(name="data-cleaner"), priority=Priority.CRITICAL)

    assert spec.model_dump(by_alias=True, exclude_none=True)["toolRef"] == {"name": "data-cleaner"}


def test_a_tool_body_round_trips_and_defaults_to_no_service_account_token() -> None:
    body: dict[str, Any] = {
        "apiVersion": "execflow.dev/v1alpha1",
        "kind": "Tool",
        "metadata": {"name": "data-cleaner"},
        "spec": {
            "description": "Cleans a CSV file",
            "image": "python:3.12-slim",
            "command": ["python", "/app/clean.py"],
            "args": [],
            "env": [],
            "inputSchema": {
                "type": "object",
                "required": ["input"],
                "properties": {"input": {"type": "string"}},
            },
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
            "defaults": {"timeout": "5m", "retryPolicy": {"maxRetries": 2}},
        },
    }

    tool = Tool.model_validate(body)

    assert tool.spec.automount_service_account_token is False
    assert tool.spec.input_schema["required"] == ["input"]
    assert tool.spec.defaults == {"timeout": "5m", "retryPolicy": {"maxRetries": 2}}
    dumped = tool.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert dumped["spec"] == {
        **body["spec"],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {}},
        "automountServiceAccountToken": False,
    }
