"""`execflow lint` agrees with the real API server: what it refuses, the server refuses, in the
same words; what it passes, the server admits.

Each bad manifest is linted offline, then created on the real control plane (generated CRDs
installed). The lint must report an error, the server must answer 422, and every error the lint
takes from the CRD (schema, CEL rules, metadata) must appear in the server's message as
`path: message`. The checks of the operator's admission webhook are compared with the webhook
in force (the session's operator serving it), where the server's refusal carries the webhook's
message. The shipped examples lint clean and are admitted as they are.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from execflow.core.linting import Check, Problem, Severity, lint_text
from execflow.kube.crds import install_crds
from tests.integration.operator_process import OperatorProcess
from tests.integration.test_workflow_webhook import wait_enforced, wait_registered

GROUP, VERSION = "execflow.dev", "v1alpha1"
PLURALS = {"Tool": "tools", "Task": "tasks", "Workflow": "workflows", "ResultSet": "resultsets"}
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FROM_THE_CRD = {Check.SCHEMA, Check.RULE, Check.METADATA}
DENIED = 'admission webhook "validate.execflow.dev" denied the request: '


@pytest.fixture(scope="module", autouse=True)
def crds(api: client.ApiClient) -> None:
    install_crds(api)


def manifest(kind: str, spec: str, name: str = "linted") -> str:
    return f"apiVersion: {GROUP}/{VERSION}\nkind: {kind}\nmetadata:\n  name: {name}\nspec:\n{spec}"


TASK = "  container: {image: example.invalid/job:1}\n"
STEP = "  - name: a\n    tasks:\n    - {name: t, container: {image: example.invalid/job:1}}\n"

REFUSED_BY_THE_CRD = [
    pytest.param(manifest("Task", TASK + "  retryPolicy: {maxRetries: '3'}\n"), id="wrong-type"),
    pytest.param(manifest("Task", TASK + "  priority: Urgent\n"), id="priority-enum"),
    pytest.param(manifest("Task", TASK + "  timeout: 5 minutes\n"), id="duration-rule"),
    pytest.param(manifest("Task", TASK + "  retryPolicy: {maxRetries: -1}\n"), id="minimum"),
    pytest.param(manifest("Task", TASK + "  toolRef: {name: t}\n"), id="tool-xor-container"),
    pytest.param(
        manifest(
            "Task",
            TASK + "  constraints:\n    timeWindows: [{start: '22:00', end: '06:00', "
            "timeZone: Mars/Olympus}]\n",
        ),
        id="unknown-time-zone",
    ),
    pytest.param(manifest("Task", TASK, name="Bad_Name"), id="metadata-name"),
    pytest.param(
        manifest("Tool", "  image: x\n  resources: {requests: {cpu: a lot}}\n"), id="quantity"
    ),
    pytest.param(manifest("Tool", "  command: [run]\n"), id="required-image"),
    pytest.param(
        manifest("Workflow", "  steps:\n" + STEP + "  - {name: b, dependsOn: [zz], tasks: []}\n"),
        id="unknown-depends-on",
    ),
    pytest.param(
        manifest(
            "Workflow",
            "  steps:\n  - name: a\n    tasks:\n    - {name: t, container: {image: x}}\n"
            "    - {name: t, container: {image: y}}\n",
        ),
        id="task-named-twice",
    ),
    pytest.param(manifest("Workflow", "  steps:\n" + STEP, name="w" * 62), id="child-names"),
    pytest.param(
        manifest("ResultSet", "  source: {taskRefs: [a], workflowRef: {name: w}}\n"),
        id="two-sources",
    ),
    pytest.param(
        manifest(
            "ResultSet",
            "  source: {taskRefs: [a]}\n  aggregations: [{name: m, function: median}]\n",
        ),
        id="aggregation-enum",
    ),
    pytest.param(
        manifest("ResultSet", "  source: {taskRefs: [a]}\n  strategy: Batch\n"),
        id="batch-without-size",
    ),
]

REFUSED_BY_THE_WEBHOOK = [
    pytest.param(
        manifest(
            "Workflow",
            "  steps:\n  - name: a\n    tasks:\n    - {name: t, container: {image: x}, "
            "when: '1 +'}\n",
        ),
        id="when-syntax",
    ),
    pytest.param(
        manifest(
            "Workflow",
            "  steps:\n  - name: a\n    tasks:\n"
            "    - {name: x, container: {image: x}, dependencies: [{task: y}]}\n"
            "    - {name: y, container: {image: x}, dependencies: [{task: x}]}\n",
        ),
        id="task-cycle",
    ),
    pytest.param(
        manifest(
            "ResultSet",
            "  source: {taskRefs: [a]}\n  aggregations:\n"
            "  - {name: best, function: custom, expression: 'results.map(r, r.score).maxx()'}\n",
        ),
        id="aggregation-expression",
    ),
]


def errors_of(text: str) -> list[Problem]:
    return [problem for problem in lint_text(text) if problem.severity is Severity.ERROR]


def create(api: client.ApiClient, namespace: str, body: dict[str, Any]) -> None:
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURALS[body["kind"]], body
    )


def refusal(api: client.ApiClient, namespace: str, body: dict[str, Any]) -> str:
    """The message of the 422 the API server refuses to create `body` with."""
    with pytest.raises(ApiException) as caught:
        create(api, namespace, body)
    assert caught.value.status == 422, caught.value.body
    message: str = json.loads(caught.value.body)["message"]
    return message


@pytest.mark.parametrize("text", REFUSED_BY_THE_CRD)
def test_what_lint_refuses_from_the_crd_the_api_server_refuses_in_the_same_words(
    api: client.ApiClient, namespace: str, text: str
) -> None:
    errors = errors_of(text)

    message = refusal(api, namespace, yaml.safe_load(text))

    assert errors, "lint found nothing"
    from_the_crd = [problem for problem in errors if problem.check in FROM_THE_CRD]
    assert from_the_crd, errors
    for problem in from_the_crd:
        assert f"{problem.path}: {problem.message}" in message, (problem, message)


@pytest.fixture
def webhook(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> Iterator[OperatorProcess]:
    """The session's operator, serving the admission webhook, registered and in force."""
    if not operator.running:
        operator.start()
    wait_registered(api, operator)
    wait_enforced(api, namespace)
    yield operator


@pytest.mark.parametrize("text", REFUSED_BY_THE_WEBHOOK)
def test_what_lint_refuses_as_the_webhook_would_the_webhook_refuses_with_that_message(
    api: client.ApiClient, namespace: str, webhook: OperatorProcess, text: str
) -> None:
    errors = errors_of(text)

    message = refusal(api, namespace, yaml.safe_load(text))

    assert [problem.check for problem in errors] == [Check.ADMISSION], errors
    assert message.startswith(DENIED), message
    assert errors[0].message in message


def example_documents() -> list[Any]:
    documents = [
        pytest.param(path, index, id=f"{path.name}:{index}")
        for path in sorted(EXAMPLES.glob("*.yaml"))
        for index, document in enumerate(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        if document and document.get("kind") in PLURALS
    ]
    assert len(documents) >= 7, f"expected the shipped examples in {EXAMPLES}"
    return documents


@pytest.mark.parametrize(("path", "index"), example_documents())
def test_every_example_lints_clean_and_is_admitted(
    api: client.ApiClient, namespace: str, path: Path, index: int
) -> None:
    text = path.read_text(encoding="utf-8")
    body = list(yaml.safe_load_all(text))[index]
    problems = [
        problem
        for problem in lint_text(text)
        if problem.document == index and problem.severity is not Severity.INFO
    ]

    create(api, namespace, body)

    assert problems == []
    stored = client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURALS[body["kind"]], body["metadata"]["name"]
    )
    assert stored["metadata"]["name"] == body["metadata"]["name"]
