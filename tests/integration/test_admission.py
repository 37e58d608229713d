"""What the API server admits: value formats, time zones, Tool input schemas, immutable Task specs.

Runs against the real control plane with the generated CRDs installed and no operator, so every
answer is the API server's own: a refused object gets a 422 whose message names the field and the
expected form in words, which is what `kubectl apply` shows a user.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from execflow.api.common import QUANTITY_MESSAGE
from execflow.api.constraints import TIME_OF_DAY_MESSAGE, TIME_ZONE_MESSAGE
from execflow.api.durations import DURATION_MESSAGE
from execflow.api.task import TASK_SPEC_IMMUTABLE_MESSAGE
from execflow.kube.crds import install_crds
from tests.task_specs import reference_task_spec

GROUP, VERSION = "execflow.dev", "v1alpha1"
PLURALS = {"Task": "tasks", "Tool": "tools"}
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# The reference spec, with values at the edges of what admission accepts.
FULL_TASK_SPEC: dict[str, Any] = reference_task_spec(
    parameters={"input": "raw_data.csv", "nested": {"rows": [1, 2]}, "empty": None},
    constraints={
        "deadline": "2026-12-01T12:00:00Z",
        "timeWindows": [
            {"start": "22:00", "end": "06:00", "timeZone": "Europe/Berlin"},
            {"start": "00:00", "end": "23:59", "timeZone": "America/Argentina/Salta"},
            {"start": "09:30", "end": "17:00", "timeZone": "Etc/GMT+5"},
            {"start": "09:30", "end": "17:00"},
        ],
        "exclusive": False,
        "mutex": "gpu-0",
    },
    estimatedDuration="1h30m0.5s",
    resources={
        "requests": {"cpu": "500m", "memory": "256Mi", "nvidia.com/gpu": 1},
        "limits": {"memory": "1.5Gi", "ephemeral-storage": "2e9"},
    },
    podTemplate={
        "metadata": {"labels": {"tier": "batch"}, "annotations": {"a": "b"}},
        "spec": {
            "serviceAccountName": "",
            "nodeSelector": {},
            "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
            "affinity": {"nodeAffinity": {}},
        },
    },
)


@pytest.fixture(scope="module", autouse=True)
def crds(api: client.ApiClient) -> None:
    install_crds(api)


def body(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }


def task_spec(**fields: Any) -> dict[str, Any]:
    return {"container": {"image": "example.invalid/job:1"}, **fields}


def tool_spec(**fields: Any) -> dict[str, Any]:
    return {"image": "example.invalid/tool:1", **fields}


def create(api: client.ApiClient, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
    created: dict[str, Any] = client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURALS[manifest["kind"]], manifest
    )
    return created


def patch_task(api: client.ApiClient, namespace: str, name: str, patch: Any) -> dict[str, Any]:
    """A merge patch (a dict) or a JSON patch (a list of operations), as kubectl patch sends."""
    kind = "json-patch" if isinstance(patch, list) else "merge-patch"
    patched: dict[str, Any] = client.CustomObjectsApi(api).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "tasks", name, patch, _content_type=f"application/{kind}+json"
    )
    return patched


def refusal(call: Callable[[], object]) -> str:
    """The message of the 422 the API server answers `call` with."""
    with pytest.raises(ApiException) as caught:
        call()
    assert caught.value.status == 422, caught.value.body
    message: str = json.loads(caught.value.body)["message"]
    return message


def example_documents() -> list[Any]:
    documents = [
        pytest.param(document, id=f"{path.name}:{document['metadata']['name']}")
        for path in sorted(EXAMPLES.glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if document and document.get("kind") in PLURALS
    ]
    assert documents, f"no Task or Tool in {EXAMPLES}"
    return documents


@pytest.mark.parametrize("manifest", example_documents())
def test_every_shipped_example_is_admitted(
    api: client.ApiClient, namespace: str, manifest: dict[str, Any]
) -> None:
    created = create(api, namespace, manifest)

    # A Tool's schema fills defaults for fields the example leaves out; the rest is as written.
    assert {field: created["spec"][field] for field in manifest["spec"]} == manifest["spec"]


def test_a_task_with_every_field_set_is_admitted_as_written(
    api: client.ApiClient, namespace: str
) -> None:
    created = create(api, namespace, body("Task", "everything", FULL_TASK_SPEC))

    assert created["spec"] == FULL_TASK_SPEC


def test_a_tool_with_a_full_input_schema_is_admitted_as_written(
    api: client.ApiClient, namespace: str
) -> None:
    input_schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": ["object", "null"],
        "required": ["input"],
        "properties": {"input": {"type": "string"}, "anything": True, "nothing": None},
        "additionalProperties": False,
    }
    spec = tool_spec(inputSchema=input_schema, resources={"requests": {"cpu": 1}})

    created = create(api, namespace, body("Tool", "full-schema", spec))

    assert created["spec"]["inputSchema"] == input_schema


def window(**fields: str) -> dict[str, Any]:
    return {"constraints": {"timeWindows": [{"start": "22:00", "end": "06:00", **fields}]}}


REFUSALS = [
    pytest.param(
        "Task",
        task_spec(timeout="5 minutes"),
        f'spec.timeout: Invalid value: "5 minutes": {DURATION_MESSAGE}',
        id="timeout",
    ),
    pytest.param(
        "Task",
        task_spec(retryPolicy={"retryDelay": "1d"}),
        f'spec.retryPolicy.retryDelay: Invalid value: "1d": {DURATION_MESSAGE}',
        id="retry-delay",
    ),
    pytest.param(
        "Task",
        task_spec(retryPolicy={"maxRetryDelay": "-5m"}),
        f'spec.retryPolicy.maxRetryDelay: Invalid value: "-5m": {DURATION_MESSAGE}',
        id="max-retry-delay",
    ),
    pytest.param(
        "Task",
        task_spec(estimatedDuration="5"),
        f'spec.estimatedDuration: Invalid value: "5": {DURATION_MESSAGE}',
        id="estimated-duration",
    ),
    pytest.param(
        "Task",
        task_spec(cache={"enabled": True, "ttl": "forever"}),
        f'spec.cache.ttl: Invalid value: "forever": {DURATION_MESSAGE}',
        id="cache-ttl",
    ),
    pytest.param(
        "Task",
        task_spec(resources={"requests": {"memory": "lots"}}),
        f'spec.resources.requests[memory]: Invalid value: "lots": {QUANTITY_MESSAGE}',
        id="request-quantity",
    ),
    pytest.param(
        "Task",
        task_spec(resources={"limits": {"cpu": "1.5 cores"}}),
        f'spec.resources.limits[cpu]: Invalid value: "1.5 cores": {QUANTITY_MESSAGE}',
        id="limit-quantity",
    ),
    pytest.param(
        "Tool",
        tool_spec(resources={"requests": {"cpu": "a lot"}}),
        f'spec.resources.requests[cpu]: Invalid value: "a lot": {QUANTITY_MESSAGE}',
        id="tool-quantity",
    ),
    pytest.param(
        "Task",
        task_spec(**window(start="25:00")),
        f'spec.constraints.timeWindows[0].start: Invalid value: "25:00": {TIME_OF_DAY_MESSAGE}',
        id="window-start",
    ),
    pytest.param(
        "Task",
        task_spec(constraints={"timeWindows": [{"start": "22:00", "end": "6pm"}]}),
        f'spec.constraints.timeWindows[0].end: Invalid value: "6pm": {TIME_OF_DAY_MESSAGE}',
        id="window-end",
    ),
    pytest.param(
        "Task",
        task_spec(**window(timeZone="Europe Berlin")),
        "spec.constraints.timeWindows[0].timeZone: Invalid value: "
        f'"Europe Berlin": {TIME_ZONE_MESSAGE}',
        id="malformed-time-zone",
    ),
    pytest.param(
        "Task",
        task_spec(**window(timeZone="Mars/Olympus")),
        'spec.constraints.timeWindows[0].timeZone: Invalid value: "string": unknown time zone '
        f"Mars/Olympus evaluating rule: {TIME_ZONE_MESSAGE}",
        id="unknown-time-zone",
    ),
    pytest.param(
        "Task",
        task_spec(**window(timeZone="Local")),
        f'spec.constraints.timeWindows[0].timeZone: Invalid value: "Local": {TIME_ZONE_MESSAGE}',
        id="host-time-zone",
    ),
    pytest.param(
        "Tool",
        tool_spec(inputSchema={"type": "object", "required": "input"}),
        'spec.inputSchema.required: Invalid value: "string": spec.inputSchema.required in body '
        'must be of type array: "string"',
        id="input-schema-required",
    ),
    pytest.param(
        "Tool",
        tool_spec(inputSchema={"type": "object", "required": ["input", 7]}),
        'spec.inputSchema.required[1]: Invalid value: "integer": '
        'spec.inputSchema.required[1] in body must be of type string: "integer"',
        id="input-schema-required-names",
    ),
    pytest.param(
        "Tool",
        tool_spec(inputSchema={"type": "object", "properties": ["input"]}),
        'spec.inputSchema.properties: Invalid value: "array": spec.inputSchema.properties in '
        'body must be of type object: "array"',
        id="input-schema-properties",
    ),
]


@pytest.mark.parametrize(("kind", "spec", "expected"), REFUSALS)
def test_malformed_values_are_refused_with_the_field_and_the_expected_form(
    api: client.ApiClient, namespace: str, kind: str, spec: Any, expected: str
) -> None:
    message = refusal(lambda: create(api, namespace, body(kind, "refused", spec)))

    assert expected in message
    assert "^" not in message


def test_suspend_cancel_labels_and_status_may_change_after_creation(
    api: client.ApiClient, namespace: str
) -> None:
    create(api, namespace, body("Task", "pausable", FULL_TASK_SPEC))

    patch_task(api, namespace, "pausable", {"spec": {"suspend": True}})
    patch_task(api, namespace, "pausable", {"spec": {"suspend": False, "cancel": True}})
    patch_task(api, namespace, "pausable", {"metadata": {"labels": {"team": "ml"}}})
    client.CustomObjectsApi(api).patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, "tasks", "pausable", {"status": {"phase": "Cancelled"}}
    )

    task = client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, "tasks", "pausable"
    )
    assert task["spec"] == {**FULL_TASK_SPEC, "suspend": False, "cancel": True}
    assert task["metadata"]["labels"] == {"team": "ml"}
    assert task["status"]["phase"] == "Cancelled"


def test_suspend_and_cancel_may_be_added_and_removed(api: client.ApiClient, namespace: str) -> None:
    create(api, namespace, body("Task", "bare", task_spec()))

    patch_task(api, namespace, "bare", {"spec": {"suspend": True, "cancel": False}})
    patch_task(api, namespace, "bare", [{"op": "remove", "path": "/spec/suspend"}])

    task = client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, "tasks", "bare"
    )
    assert task["spec"] == {**task_spec(), "cancel": False}


CHANGES = [
    pytest.param({"spec": {"queue": "other"}}, id="queue"),
    pytest.param({"spec": {"priority": "Critical"}}, id="priority"),
    pytest.param({"spec": {"retryPolicy": {"maxRetries": 4}}}, id="nested-field"),
    pytest.param({"spec": {"toolRef": {"name": "other-tool"}}}, id="tool-ref"),
    pytest.param({"spec": {"parameters": {"input": "other.csv"}}}, id="parameter-value"),
    pytest.param({"spec": {"parameters": {"nested": {"rows": [1, 3]}}}}, id="deep-parameter"),
    pytest.param({"spec": {"parameters": {"input": None, "file": "raw_data.csv"}}}, id="renamed"),
    pytest.param({"spec": {"parameters": {"extra": 1}}}, id="added-parameter"),
    pytest.param(
        [
            {"op": "remove", "path": "/spec/parameters/input"},
            {"op": "add", "path": "/spec/parameters/x", "value": "raw_data.csv"},
        ],
        id="renamed-parameter-by-json-patch",
    ),
    pytest.param({"spec": {"constraints": {"timeWindows": []}}}, id="time-windows"),
    pytest.param(
        {"spec": {"podTemplate": {"spec": {"affinity": {"podAffinity": {}}}}}},
        id="pod-affinity",
    ),
    pytest.param({"spec": {"timeout": None}}, id="removed-optional-field"),
    pytest.param([{"op": "remove", "path": "/spec/parameters"}], id="removed-parameters"),
    pytest.param({"spec": {"suspend": True, "queue": "other"}}, id="queue-beside-suspend"),
    pytest.param(
        {"spec": {"suspend": True, "parameters": {"input": "x.csv"}}}, id="parameter-beside-suspend"
    ),
    pytest.param({"spec": {"cancel": True, "tags": []}}, id="tags-beside-cancel"),
]


@pytest.mark.parametrize("change", CHANGES)
def test_any_other_change_to_a_task_spec_is_refused(
    api: client.ApiClient, namespace: str, change: Any
) -> None:
    create(api, namespace, body("Task", "fixed", FULL_TASK_SPEC))

    message = refusal(lambda: patch_task(api, namespace, "fixed", change))

    assert f"spec: Invalid value: {TASK_SPEC_IMMUTABLE_MESSAGE}" in message


def test_an_optional_field_cannot_be_added_later(api: client.ApiClient, namespace: str) -> None:
    create(api, namespace, body("Task", "minimal", task_spec()))

    message = refusal(lambda: patch_task(api, namespace, "minimal", {"spec": {"timeout": "1m"}}))

    assert TASK_SPEC_IMMUTABLE_MESSAGE in message


def test_large_parameters_are_compared_within_the_cost_budget(
    api: client.ApiClient, namespace: str
) -> None:
    parameters = {
        f"key-{index}": {"values": list(range(20)), "label": f"value {index}"}
        for index in range(5_000)
    }
    create(api, namespace, body("Task", "large", task_spec(parameters=parameters)))

    patch_task(api, namespace, "large", {"spec": {"suspend": True}})
    message = refusal(
        lambda: patch_task(
            api,
            namespace,
            "large",
            [{"op": "replace", "path": "/spec/parameters/key-4999/values/19", "value": -1}],
        )
    )

    assert TASK_SPEC_IMMUTABLE_MESSAGE in message


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        ({"container": {"image": "x"}, "priority": "Urgent"}, "priority"),
        ({"container": {"image": "x"}, "retryPolicy": {"maxRetries": -1}}, "maxRetries"),
        ({"container": {"image": "x"}, "retryPolicy": {"maxRetries": 1000}}, "maxRetries"),
        ({"container": {"image": "x"}, "retryPolicy": {"backoffMultiplier": 0.5}}, "backoff"),
        ({"container": {"image": "x"}, "timeout": "5 minutes"}, "timeout"),
        (
            {
                "container": {"image": "x"},
                "constraints": {"timeWindows": [{"start": "25:00", "end": "06:00"}]},
            },
            "start",
        ),
        ({"toolRef": {"name": "t"}, "container": {"image": "x"}}, "exactly one of"),
        ({"parameters": {"a": 1}}, "exactly one of"),
    ],
)
def test_out_of_range_values_and_exclusive_fields_are_refused(
    api: client.ApiClient,
    namespace: str,
    spec: dict[str, Any],
    complaint: str,
) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Task",
        "metadata": {"name": "invalid"},
        "spec": spec,
    }
    with pytest.raises(ApiException) as rejected:
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            GROUP, VERSION, namespace, "tasks", body
        )
    assert rejected.value.status == 422
    assert complaint in rejected.value.body
