"""What the API server admits for Workflows: names, step order, retries, child names and limits.

Runs against the real control plane with the generated CRDs installed and no operator, so every
answer is the API server's own: a refused Workflow gets a 422 whose message names the field and the
offending step or task, which is what `kubectl apply` shows a user. The largest workflow the list
limits allow is admitted, which shows the CEL rules stay within the API server's cost limit per
evaluation, not only within its estimate. The operator's own parse refuses every spec admission
refuses, so the two cannot drift apart.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from pydantic import ValidationError

from execflow.api.workflow import (
    Workflow,
    workflow_problems,
)
from execflow.api.workflow_limits import (
    CHILD_NAME_MESSAGE,
    DEPENDS_ON_MAX,
    DEPENDS_ON_MESSAGE,
    FINALLY_MAX,
    LABEL_MAX,
    MAX_RETRIES_MESSAGE,
    NAME_MESSAGE,
    STEP_NAMES_MESSAGE,
    STEPS_MAX,
    TASK_NAMES_MESSAGE,
    TASKS_PER_STEP_MAX,
)

GROUP, VERSION, PLURAL = "execflow.dev", "v1alpha1", "workflows"

# The Workflow example of the API reference, as written there (without its status).
ML_PIPELINE: dict[str, Any] = {
    "apiVersion": f"{GROUP}/{VERSION}",
    "kind": "Workflow",
    "metadata": {"name": "ml-pipeline"},
    "spec": {
        "variables": {"dataset": "raw_data.csv", "epochs": 100},
        "globalTimeout": "10m",
        "parallelism": 0,
        "ttlAfterFinished": "24h",
        "suspend": False,
        "cancel": False,
        "steps": [
            {
                "name": "preprocess",
                "executionMode": "Sequential",
                "onError": "Stop",
                "maxRetries": 0,
                "parallelism": 0,
                "tasks": [
                    {
                        "name": "clean-data",
                        "toolRef": {"name": "data-cleaner"},
                        "parameters": {"input": "{{ variables.dataset }}"},
                    }
                ],
            },
            {
                "name": "train",
                "dependsOn": ["preprocess"],
                "executionMode": "Parallel",
                "when": "steps.preprocess.tasks['clean-data'].result.rows > 0",
                "tasks": [
                    {
                        "name": "train-model",
                        "forEach": "[0.1, 0.01, 0.001]",
                        "when": "item > 0.0005",
                        "toolRef": {"name": "model-trainer"},
                        "parameters": {
                            "learningRate": "{{ item }}",
                            "epochs": "{{ variables.epochs }}",
                            "data": "{{ steps.preprocess.tasks['clean-data'].result.path }}",
                        },
                        "dependencies": [{"task": "clean-data", "type": "FinishToStart"}],
                    }
                ],
            },
        ],
        "finally": [
            {
                "name": "notify",
                "tasks": [
                    {
                        "name": "notify",
                        "container": {"image": "busybox"},
                        "parameters": {"outcome": "{{ workflow.status }}"},
                    }
                ],
            }
        ],
        "resultSet": {"aggregations": [{"name": "total_rows", "function": "sum", "field": "rows"}]},
    },
}


def task(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "container": {"image": "example.invalid/job:1"}, **fields}


def step(name: str, *tasks: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "tasks": [task(t) for t in tasks], **fields}


def workflow(spec: dict[str, Any], name: str = "wf") -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": spec,
    }


def create(
    api: client.ApiClient, namespace: str, manifest: dict[str, Any], *, dry_run: bool = False
) -> dict[str, Any]:
    """Create the Workflow; a dry run is validated in full but stored nowhere."""
    options = {"dry_run": "All"} if dry_run else {}
    created: dict[str, Any] = client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, manifest, **options
    )
    return created


def refusal(call: Callable[[], object]) -> str:
    """The message of the 422 the API server answers `call` with."""
    with pytest.raises(ApiException) as caught:
        call()
    assert caught.value.status == 422, caught.value.body
    message: str = json.loads(caught.value.body)["message"]
    return message


def get_json(api: client.ApiClient, path: str, accept: str) -> dict[str, Any]:
    """GET `path` asking for `accept`, as kubectl asks for the table it prints."""
    response = api.call_api(
        path,
        "GET",
        header_params={"Accept": accept},
        auth_settings=["BearerToken"],
        _preload_content=False,
        _return_http_data_only=True,
    )
    answer: dict[str, Any] = json.loads(response.data)
    return answer


def test_the_api_example_is_admitted_as_written(api: client.ApiClient, namespace: str) -> None:
    created = create(api, namespace, ML_PIPELINE)

    # No defaults written, nothing pruned: a task's unset fields stay unset for the Tool to fill.
    assert created["spec"] == ML_PIPELINE["spec"]
    parsed = Workflow.model_validate(created)
    assert workflow_problems(parsed.spec) == []
    assert parsed.spec.steps[1].tasks[0].queue == "default"


def test_workflows_are_served_as_wf_with_phase_and_progress_columns(
    api: client.ApiClient, namespace: str
) -> None:
    create(api, namespace, workflow({"steps": [step("only", "one")]}, name="columns"))

    resources = client.CustomObjectsApi(api).get_api_resources(GROUP, VERSION).resources
    table = get_json(
        api,
        f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}",
        accept="application/json;as=Table;v=v1;g=meta.k8s.io",
    )

    served = {resource.name: resource for resource in resources}
    assert served[PLURAL].short_names == ["wf"]
    assert served[PLURAL].categories == ["execflow"]
    assert f"{PLURAL}/status" in served
    assert [column["name"] for column in table["columnDefinitions"]][:4] == [
        "Name",
        "Phase",
        "Progress",
        "Age",
    ]


BASE: dict[str, Any] = {"steps": [step("a", "x"), step("b", "y", dependsOn=["a"])]}
WORKFLOW_NAME = "w"
LONGEST = LABEL_MAX - len(f"{WORKFLOW_NAME}-")
"""The longest task name whose child Task name, `w-<task>`, fits a label value."""
TOO_LONG = "t" * (LONGEST + 1)
FAN_OUT_TOO_LONG = "t" * (LONGEST - len("-9999") + 1)


def changed(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    spec = copy.deepcopy(BASE)
    change(spec)
    return spec


REFUSALS = [
    pytest.param(
        changed(lambda s: s["steps"][1].update(name="a", dependsOn=[])),
        f"spec.steps: Invalid value: step name 'a' is used twice; {STEP_NAMES_MESSAGE}",
        id="step-name-twice",
    ),
    pytest.param(
        changed(lambda s: s.update({"finally": [step("b", "z")]})),
        f"spec.finally: Invalid value: step name 'b' is used twice; {STEP_NAMES_MESSAGE}",
        id="finally-reuses-a-step-name",
    ),
    pytest.param(
        changed(lambda s: s.update({"finally": [step("f", "z"), step("f", "w")]})),
        f"spec.finally: Invalid value: step name 'f' is used twice; {STEP_NAMES_MESSAGE}",
        id="finally-step-name-twice",
    ),
    pytest.param(
        changed(lambda s: s["steps"][0]["tasks"].append(task("x"))),
        "spec.steps[0].tasks: Invalid value: task name 'x' is used twice in this step; "
        + TASK_NAMES_MESSAGE,
        id="task-name-twice-in-a-step",
    ),
    pytest.param(
        changed(lambda s: s["steps"][1]["tasks"].append(task("x"))),
        f"spec.steps: Invalid value: task name 'x' is used twice; {TASK_NAMES_MESSAGE}",
        id="task-name-in-two-steps",
    ),
    pytest.param(
        changed(lambda s: s.update({"finally": [step("f", "z", "y")]})),
        f"spec.finally: Invalid value: task name 'y' is used twice; {TASK_NAMES_MESSAGE}",
        id="task-name-in-a-step-and-finally",
    ),
    pytest.param(
        changed(lambda s: s.update({"finally": [step("f", "z"), step("g", "z")]})),
        f"spec.finally: Invalid value: task name 'z' is used twice; {TASK_NAMES_MESSAGE}",
        id="task-name-in-two-finally-steps",
    ),
    pytest.param(
        changed(lambda s: s["steps"][0].update(dependsOn=["b"])),
        "spec.steps: Invalid value: step 'a' depends on 'b', which is not a step listed before "
        f"it; {DEPENDS_ON_MESSAGE}",
        id="depends-on-a-later-step",
    ),
    pytest.param(
        changed(lambda s: s["steps"][1].update(dependsOn=["a", "b"])),
        "spec.steps: Invalid value: step 'b' depends on 'b', which is not a step listed before "
        f"it; {DEPENDS_ON_MESSAGE}",
        id="depends-on-itself",
    ),
    pytest.param(
        changed(lambda s: s.update({"finally": [step("f", "z", dependsOn=["a", "nope"])]})),
        "spec.finally: Invalid value: step 'f' depends on 'nope', which is not a step listed "
        f"before it; {DEPENDS_ON_MESSAGE}",
        id="finally-depends-on-no-step",
    ),
    pytest.param(
        changed(lambda s: s["steps"][1].update(dependsOn=["a", "a"])),
        'spec.steps[1].dependsOn[1]: Duplicate value: "a"',
        id="depends-on-a-step-twice",
    ),
    pytest.param(
        changed(lambda s: s["steps"][0].update(maxRetries=2, onError="Continue")),
        f"spec.steps[0].maxRetries: Invalid value: {MAX_RETRIES_MESSAGE}",
        id="max-retries-without-retry",
    ),
    pytest.param(
        changed(lambda s: s["steps"][1].update(maxRetries=1)),
        f"spec.steps[1].maxRetries: Invalid value: {MAX_RETRIES_MESSAGE}",
        id="max-retries-with-default-on-error",
    ),
    pytest.param(
        changed(lambda s: s["steps"][0].update(name="Pre_process")),
        f'spec.steps[0].name: Invalid value: "Pre_process": {NAME_MESSAGE}',
        id="step-name-no-dns-label",
    ),
    pytest.param(
        changed(lambda s: s["steps"][1]["tasks"][0].update(name="train-")),
        f'spec.steps[1].tasks[0].name: Invalid value: "train-": {NAME_MESSAGE}',
        id="task-name-no-dns-label",
    ),
    pytest.param(
        changed(lambda s: s["steps"][1].update(dependsOn=["A"])),
        f'spec.steps[1].dependsOn[0]: Invalid value: "A": {NAME_MESSAGE}',
        id="depends-on-no-dns-label",
    ),
    pytest.param(
        changed(lambda s: s["steps"][1]["tasks"].append(task(TOO_LONG))),
        f"spec.steps: Invalid value: task '{TOO_LONG}' gives child Task names over {LABEL_MAX} "
        f"characters; {CHILD_NAME_MESSAGE}",
        id="child-name-too-long",
    ),
    pytest.param(
        changed(lambda s: s.update({"finally": [step("f", "z"), step("g", TOO_LONG)]})),
        f"spec.finally: Invalid value: task '{TOO_LONG}' gives child Task names over "
        f"{LABEL_MAX} characters; {CHILD_NAME_MESSAGE}",
        id="finally-child-name-too-long",
    ),
    pytest.param(
        changed(lambda s: s["steps"][0]["tasks"][0].update(name=FAN_OUT_TOO_LONG, forEach="[1]")),
        f"spec.steps: Invalid value: task '{FAN_OUT_TOO_LONG}' gives child Task names over "
        f"{LABEL_MAX} characters; {CHILD_NAME_MESSAGE}",
        id="fan-out-child-name-too-long",
    ),
    pytest.param(
        {"steps": [step(f"s{i}", f"t{i}") for i in range(STEPS_MAX + 1)]},
        f"spec.steps: Too many: {STEPS_MAX + 1}: must have at most {STEPS_MAX} items",
        id="too-many-steps",
    ),
    pytest.param(
        {"steps": [step("s", *(f"t{i}" for i in range(TASKS_PER_STEP_MAX + 1)))]},
        f"spec.steps[0].tasks: Too many: {TASKS_PER_STEP_MAX + 1}: must have at most "
        f"{TASKS_PER_STEP_MAX} items",
        id="too-many-tasks-in-a-step",
    ),
    pytest.param(
        changed(
            lambda s: s.update(
                {"finally": [step(f"f{i}", f"z{i}") for i in range(FINALLY_MAX + 1)]}
            )
        ),
        f"spec.finally: Too many: {FINALLY_MAX + 1}: must have at most {FINALLY_MAX} items",
        id="too-many-finally-steps",
    ),
]


@pytest.mark.parametrize(("spec", "expected"), REFUSALS)
def test_a_bad_workflow_is_refused_with_a_message_naming_the_field(
    api: client.ApiClient, namespace: str, spec: dict[str, Any], expected: str
) -> None:
    manifest = workflow(spec, name=WORKFLOW_NAME)

    message = refusal(lambda: create(api, namespace, manifest))

    assert expected in message
    with pytest.raises(ValidationError):
        Workflow.model_validate(manifest)


def test_child_names_of_exactly_a_label_values_length_are_admitted(
    api: client.ApiClient, namespace: str
) -> None:
    longest = "t" * LONGEST
    fan_out = "f" * (LONGEST - len("-9999"))
    spec = {
        "steps": [step("a", longest)],
        "finally": [{"name": "f", "tasks": [task(fan_out, forEach="[1]")]}],
    }

    created = create(api, namespace, workflow(spec, name=WORKFLOW_NAME))

    assert len(f"{created['metadata']['name']}-{longest}") == LABEL_MAX
    assert len(f"{created['metadata']['name']}-{fan_out}-9999") == LABEL_MAX


def largest_workflow() -> dict[str, Any]:
    """Every list at its limit and every name at its longest: the dearest case for the rules.

    Each step depends on every step listed before it (as many as dependsOn holds).
    """
    steps: list[dict[str, Any]] = []
    for section, prefix, count in (("steps", "s", STEPS_MAX), ("finally", "f", FINALLY_MAX)):
        for index in range(count):
            earlier = [earlier_step["name"] for earlier_step in steps][-DEPENDS_ON_MAX:]
            steps.append(
                {
                    "section": section,
                    "name": f"{prefix}{index:02d}".ljust(LABEL_MAX, "x"),
                    "dependsOn": earlier,
                    "tasks": [
                        task(f"{prefix}{index:02d}-{number:02d}".ljust(LONGEST, "t"))
                        for number in range(TASKS_PER_STEP_MAX)
                    ],
                }
            )
    spec: dict[str, Any] = {"steps": [], "finally": []}
    for each in steps:
        spec[each.pop("section")].append(each)
    return workflow(spec, name=WORKFLOW_NAME)


def test_the_largest_workflow_the_limits_allow_is_admitted(
    api: client.ApiClient, namespace: str
) -> None:
    manifest = largest_workflow()

    created = create(api, namespace, manifest, dry_run=True)

    assert created["spec"] == manifest["spec"]
    assert sum(len(step["tasks"]) for step in manifest["spec"]["steps"]) == 1000


@pytest.mark.parametrize("section", ["steps", "finally"])
def test_a_duplicate_in_the_largest_workflow_is_named_by_the_message(
    api: client.ApiClient, namespace: str, section: str
) -> None:
    manifest = largest_workflow()
    first = manifest["spec"]["steps"][0]["tasks"][0]["name"]
    manifest["spec"][section][-1]["tasks"][-1]["name"] = first

    message = refusal(lambda: create(api, namespace, manifest, dry_run=True))

    assert f"spec.{section}: Invalid value: task name '{first}' is used twice" in message
