"""The batch/v1 Job built for one Task attempt by execflow.kube.job_builder (pure, no cluster).

Specs are parsed from camelCase bodies, as the API server stores them, and the returned manifest
is inspected as plain data.
"""

import json
from typing import Any

import pytest

from execflow.api.task import TaskSpec
from execflow.api.tool import ToolSpec
from execflow.core.templating import TemplateError
from execflow.kube.job_builder import (
    ATTEMPT_LABEL,
    MAX_NAME,
    PARAMETERS_ANNOTATION,
    TASK_LABEL,
    Owner,
    build_job,
    job_name,
)

OWNER = Owner(name="clean-data", namespace="ml", uid="0b5c2d8e-1111-2222-3333-444455556666")


def task(**fields: Any) -> TaskSpec:
    return TaskSpec.model_validate({"toolRef": {"name": "data-cleaner"}, **fields})


def tool(**fields: Any) -> ToolSpec:
    return ToolSpec.model_validate({"image": "registry.example/cleaner:1.0", **fields})


def build(
    spec: TaskSpec | None = None,
    tool_spec: ToolSpec | None = None,
    attempt: int = 1,
    owner: Owner = OWNER,
) -> dict[str, Any]:
    return build_job(owner, spec if spec is not None else task(), tool_spec or tool(), attempt)


def pod_template(job: dict[str, Any]) -> dict[str, Any]:
    template: dict[str, Any] = job["spec"]["template"]
    return template


def pod_spec(job: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = pod_template(job)["spec"]
    return spec


def container(job: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = pod_spec(job)["containers"]
    assert len(containers) == 1
    return containers[0]


def env(job: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item for item in container(job)["env"]}


# --- names ------------------------------------------------------------------------------------


def test_job_name_is_task_dash_attempt() -> None:
    assert job_name("clean-data", 1) == "clean-data-1"
    assert job_name("clean-data", 12) == "clean-data-12"


def test_job_is_named_deterministically_for_its_attempt() -> None:
    assert build(attempt=3)["metadata"]["name"] == "clean-data-3"
    assert build(attempt=3) == build(attempt=3)


def test_name_of_exactly_the_limit_is_not_hashed() -> None:
    name = "a" * (MAX_NAME - 2)

    assert job_name(name, 1) == f"{name}-1"
    assert len(job_name(name, 1)) == MAX_NAME


@pytest.mark.parametrize("length", [MAX_NAME - 1, MAX_NAME, 100, 253])
@pytest.mark.parametrize("attempt", [1, 42, 1000])
def test_long_names_are_hashed_to_at_most_63_chars(length: int, attempt: int) -> None:
    name = "x" * length

    shortened = job_name(name, attempt)

    assert len(shortened) <= MAX_NAME
    assert shortened.endswith(f"-{attempt}")
    assert shortened.startswith("x" * 20)


def test_hashed_names_are_stable_and_distinct() -> None:
    first = "pipeline-" + "a" * 80
    second = "pipeline-" + "a" * 79 + "b"

    assert job_name(first, 1) == job_name(first, 1)
    assert job_name(first, 1) != job_name(second, 1)
    assert job_name(first, 1) != job_name(first, 2)


def test_hashed_names_do_not_end_the_kept_prefix_with_a_separator() -> None:
    name = "a" * 50 + "-." + "b" * 40

    shortened = job_name(name, 7)

    assert "-.-" not in shortened
    assert "--" not in shortened
    assert len(shortened) <= MAX_NAME


# --- metadata ---------------------------------------------------------------------------------


def test_job_and_pod_template_carry_task_and_attempt_labels() -> None:
    job = build(attempt=2)

    for labels in (job["metadata"]["labels"], pod_template(job)["metadata"]["labels"]):
        assert labels[TASK_LABEL] == "clean-data"
        assert labels[ATTEMPT_LABEL] == "2"


def test_a_task_name_too_long_for_a_label_value_is_refused() -> None:
    owner = Owner(name="t" * 100, namespace="ml", uid="uid")

    with pytest.raises(ValueError, match="63"):
        build(owner=owner)


def test_job_lives_in_the_task_namespace() -> None:
    assert build()["metadata"]["namespace"] == "ml"


def test_job_is_controlled_by_its_task() -> None:
    (reference,) = build()["metadata"]["ownerReferences"]

    assert reference == {
        "apiVersion": "execflow.dev/v1alpha1",
        "kind": "Task",
        "name": "clean-data",
        "uid": OWNER.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def test_job_never_retries_by_itself() -> None:
    job = build()

    assert job["spec"]["backoffLimit"] == 0
    assert pod_spec(job)["restartPolicy"] == "Never"


# --- timeout ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timeout", "seconds"),
    [("30s", 30), ("1.5s", 2), ("500ms", 1), ("1h30m", 5400), ("2m0.001s", 121)],
)
def test_active_deadline_is_the_timeout_rounded_up(timeout: str, seconds: int) -> None:
    assert build(task(timeout=timeout))["spec"]["activeDeadlineSeconds"] == seconds


def test_no_active_deadline_without_a_timeout() -> None:
    assert "activeDeadlineSeconds" not in build()["spec"]


# --- container --------------------------------------------------------------------------------


def test_resources_of_the_task_override_the_tool_per_key() -> None:
    job = build(
        task(resources={"requests": {"memory": "1Gi"}, "limits": {"nvidia.com/gpu": 1}}),
        tool(resources={"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"cpu": 2}}),
    )

    assert container(job)["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "2", "nvidia.com/gpu": "1"},
    }


def test_no_resources_means_an_empty_resources_block() -> None:
    assert container(build())["resources"] == {}


def test_parameters_arrive_as_compact_json_in_the_environment() -> None:
    parameters = {"input": "raw.csv", "limit": 10, "options": {"b": 1, "a": 2}}

    variables = env(build(task(parameters=parameters), attempt=4))

    assert json.loads(variables["EXECFLOW_PARAMETERS"]["value"]) == parameters
    assert " " not in variables["EXECFLOW_PARAMETERS"]["value"]
    assert variables["EXECFLOW_TASK"]["value"] == "clean-data"
    assert variables["EXECFLOW_ATTEMPT"]["value"] == "4"


def test_tool_env_is_kept_before_the_execflow_variables() -> None:
    tool_env = [
        {"name": "MODE", "value": "fast"},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
    ]

    items = container(build(tool_spec=tool(env=tool_env)))["env"]

    assert items[:2] == tool_env
    assert [item["name"] for item in items[2:]] == [
        "EXECFLOW_PARAMETERS",
        "EXECFLOW_TASK",
        "EXECFLOW_ATTEMPT",
    ]


def test_parameters_file_is_projected_from_the_pod_annotation() -> None:
    parameters = {"input": "raw.csv"}
    job = build(task(parameters=parameters))

    annotations = pod_template(job)["metadata"]["annotations"]
    assert json.loads(annotations[PARAMETERS_ANNOTATION]) == parameters
    assert annotations[PARAMETERS_ANNOTATION] == env(job)["EXECFLOW_PARAMETERS"]["value"]

    (mount,) = container(job)["volumeMounts"]
    (volume,) = pod_spec(job)["volumes"]
    assert mount["name"] == volume["name"]
    assert mount["readOnly"] is True
    (item,) = volume["downwardAPI"]["items"]
    assert f"{mount['mountPath']}/{item['path']}" == "/execflow/parameters.json"
    assert item["fieldRef"]["fieldPath"] == f"metadata.annotations['{PARAMETERS_ANNOTATION}']"


def test_parameter_placeholders_are_rendered_in_args() -> None:
    job = build(
        task(parameters={"input": "raw.csv", "limit": 10}),
        tool(args=["--input={{ parameters.input }}", "--limit", "{{parameters.limit}}"]),
    )

    assert container(job)["args"] == ["--input=raw.csv", "--limit", "10"]


def test_missing_parameter_in_args_raises_template_error() -> None:
    with pytest.raises(TemplateError, match="'input'"):
        build(task(), tool(args=["{{ parameters.input }}"]))


def test_command_is_passed_through_and_omitted_when_empty() -> None:
    with_command = container(build(tool_spec=tool(command=["python", "-m", "cleaner"])))

    assert with_command["command"] == ["python", "-m", "cleaner"]
    assert "command" not in container(build())
    assert container(build())["image"] == "registry.example/cleaner:1.0"


# --- pod template -----------------------------------------------------------------------------


def test_pod_template_extras_are_merged_into_the_pod() -> None:
    toleration = {"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}
    job = build(
        task(
            podTemplate={
                "metadata": {"labels": {"team": "ml"}, "annotations": {"note": "hi"}},
                "spec": {
                    "serviceAccountName": "runner",
                    "nodeSelector": {"zone": "a"},
                    "tolerations": [toleration],
                },
            }
        )
    )

    template = pod_template(job)
    assert template["metadata"]["labels"]["team"] == "ml"
    assert template["metadata"]["annotations"]["note"] == "hi"
    assert pod_spec(job)["serviceAccountName"] == "runner"
    assert pod_spec(job)["nodeSelector"] == {"zone": "a"}
    assert pod_spec(job)["tolerations"] == [toleration]


def test_pod_template_cannot_override_execflow_labels_or_annotations() -> None:
    job = build(
        task(
            parameters={"real": True},
            podTemplate={
                "metadata": {
                    "labels": {TASK_LABEL: "other", ATTEMPT_LABEL: "99"},
                    "annotations": {PARAMETERS_ANNOTATION: "{}"},
                }
            },
        ),
        attempt=1,
    )

    metadata = pod_template(job)["metadata"]
    assert metadata["labels"][TASK_LABEL] == "clean-data"
    assert metadata["labels"][ATTEMPT_LABEL] == "1"
    assert json.loads(metadata["annotations"][PARAMETERS_ANNOTATION]) == {"real": True}


def test_empty_pod_template_adds_no_placement_fields() -> None:
    spec = pod_spec(build())

    for key in ("serviceAccountName", "nodeSelector", "tolerations", "affinity"):
        assert key not in spec


# --- security ---------------------------------------------------------------------------------


def test_pod_runs_with_a_restricted_security_context() -> None:
    job = build()

    pod_security = pod_spec(job)["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}
    container_security = container(job)["securityContext"]
    assert container_security["allowPrivilegeEscalation"] is False
    assert container_security["capabilities"] == {"drop": ["ALL"]}


def test_service_account_token_is_not_mounted_by_default() -> None:
    assert pod_spec(build())["automountServiceAccountToken"] is False


def test_service_account_token_is_mounted_when_the_tool_asks() -> None:
    job = build(tool_spec=tool(automountServiceAccountToken=True))

    assert pod_spec(job)["automountServiceAccountToken"] is True


# --- inline containers ------------------------------------------------------------------------


def test_inline_container_task_runs_without_a_tool() -> None:
    spec = TaskSpec.model_validate(
        {
            "container": {
                "image": "busybox:1.36",
                "command": ["sh", "-c"],
                "args": ["echo {{ parameters.greeting }}"],
                "env": [{"name": "X", "value": "1"}],
            },
            "parameters": {"greeting": "hello"},
            "resources": {"limits": {"memory": "64Mi"}},
        }
    )

    job = build_job(OWNER, spec, None, 1)

    assert container(job)["image"] == "busybox:1.36"
    assert container(job)["command"] == ["sh", "-c"]
    assert container(job)["args"] == ["echo hello"]
    assert env(job)["X"]["value"] == "1"
    assert container(job)["resources"] == {"limits": {"memory": "64Mi"}}
    assert pod_spec(job)["automountServiceAccountToken"] is False
