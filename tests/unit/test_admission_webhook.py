"""The admission webhook without a cluster: review in, response out.

`execflow.handlers.admission.admit` is pure (an AdmissionReview as JSON in, the HTTP
status and reply out), so the decisions are tested directly: it must refuse exactly what the
Workflow controller's view refuses, with the same message, allow updates that leave the spec
alone and objects being deleted, and answer malformed reviews with a 400. The HTTPS server of
`execflow.kube.webhook` is then exercised for real on loopback, with a client that trusts only
the generated CA, as the API server would. Registration against a real API server is in
tests/integration/test_workflow_webhook.py.
"""

import asyncio
import copy
import datetime
import json
import ssl
import urllib.error
import urllib.request
from typing import Any

import pytest

from execflow.core.workflows.view import WorkflowSnapshot, build_view
from execflow.devcluster.cluster import free_port
from execflow.handlers.admission import admit
from execflow.kube import webhook
from execflow.kube.certificates import generate

UID = "705ab4f5-6393-11e8-b7cc-42010a800002"


def workflow(name: str = "wf", **task: Any) -> dict[str, Any]:
    return {
        "apiVersion": "execflow.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name, "namespace": "team-a", "uid": "1", "generation": 1},
        "spec": {
            "steps": [
                {
                    "name": "s",
                    "tasks": [{"name": "a", "container": {"image": "example.invalid/a:1"}, **task}],
                }
            ]
        },
    }


def result_set(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "execflow.dev/v1alpha1",
        "kind": "ResultSet",
        "metadata": {"name": "rs", "namespace": "team-a", "uid": "2", "generation": 1},
        "spec": {"source": {"selector": {}}, **spec},
    }


def review(
    obj: Any, operation: str = "CREATE", old: dict[str, Any] | None = None
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "uid": UID,
        "kind": {"group": "execflow.dev", "version": "v1alpha1", "kind": "Workflow"},
        "resource": {"group": "execflow.dev", "version": "v1alpha1", "resource": "workflows"},
        "name": "wf",
        "namespace": "team-a",
        "operation": operation,
        "object": obj,
        "oldObject": old,
        "dryRun": False,
    }
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def response_of(reply: tuple[int, dict[str, Any]]) -> dict[str, Any]:
    status, body = reply
    assert status == 200
    assert (body["apiVersion"], body["kind"]) == ("admission.k8s.io/v1", "AdmissionReview")
    response: dict[str, Any] = body["response"]
    assert response["uid"] == UID
    return response


def operator_verdict(manifest: dict[str, Any]) -> str | None:
    """What the Workflow controller's view says about the same object."""
    view = build_view(
        WorkflowSnapshot(
            namespace="team-a",
            name=manifest["metadata"]["name"],
            uid="1",
            generation=1,
            created_at=None,
            annotations={},
            spec=manifest["spec"],
            status={},
        )
    )
    return None if view.failure is None else view.failure.message


def test_a_valid_workflow_is_allowed() -> None:
    response = response_of(admit(review(workflow(when="1 + 1 == 2"))))

    assert response == {"uid": UID, "allowed": True}


@pytest.mark.parametrize(
    ("task", "field"),
    [
        ({"when": "1 +"}, "spec.steps[0].tasks[0].when"),
        ({"forEach": "[1, 2"}, "spec.steps[0].tasks[0].forEach"),
        ({"parameters": {"x": "{{ nope }}"}}, "spec.steps[0].tasks[0].parameters"),
        (
            {"container": {"image": "i", "args": ["{{ 1 + }}"]}},
            "spec.steps[0].tasks[0].container",
        ),
        (
            {"podTemplate": {"metadata": {"annotations": {"a": "{{ steps.later.phase }}"}}}},
            "task a (step s) reads or depends on later",
        ),
    ],
)
def test_a_workflow_the_operator_would_fail_is_refused_with_its_message(
    task: dict[str, Any], field: str
) -> None:
    manifest = workflow(**task)

    response = response_of(admit(review(manifest)))

    assert response["allowed"] is False
    assert response["status"]["code"] == 422
    assert response["status"]["reason"] == "Invalid"
    assert response["status"]["message"] == operator_verdict(manifest)
    assert field in response["status"]["message"]


def test_the_refusal_gives_the_position_in_the_expression() -> None:
    response = response_of(admit(review(workflow(when="1 +"))))

    assert "line 1, column 4" in response["status"]["message"]


def test_an_invalid_spec_is_refused_as_the_controller_would_fail_it() -> None:
    manifest = workflow()
    manifest["spec"]["steps"][0]["tasks"][0]["retryPolicy"] = {"maxRetries": "many"}

    response = response_of(admit(review(manifest)))

    assert response["allowed"] is False
    assert response["status"]["message"] == operator_verdict(manifest)
    assert response["status"]["message"].startswith("spec.steps.0.tasks.0.retryPolicy")


def test_an_update_that_breaks_the_spec_is_refused() -> None:
    old = workflow()
    new = workflow(when="1 +")

    response = response_of(admit(review(new, "UPDATE", old)))

    assert response["allowed"] is False
    assert "spec.steps[0].tasks[0].when" in response["status"]["message"]


def test_an_update_that_leaves_the_spec_alone_is_allowed_even_if_the_spec_is_bad() -> None:
    old = workflow(when="1 +")
    new = copy.deepcopy(old)
    new["metadata"]["annotations"] = {"execflow.dev/resume": "1"}

    response = response_of(admit(review(new, "UPDATE", old)))

    assert response == {"uid": UID, "allowed": True}


def test_an_object_being_deleted_is_allowed_whatever_changes() -> None:
    old = workflow(when="1 +")
    new = workflow(when="2 +")
    new["metadata"]["deletionTimestamp"] = "2026-05-01T12:00:00Z"

    response = response_of(admit(review(new, "UPDATE", old)))

    assert response["allowed"] is True


def test_an_operation_the_webhook_does_not_check_is_allowed() -> None:
    response = response_of(admit(review(None, "DELETE", workflow(when="1 +"))))

    assert response["allowed"] is True


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        "AdmissionReview",
        {"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {}},
        {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"},
        {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": []},
        review(workflow()) | {"request": {"operation": "CREATE", "object": workflow()}},
        review(workflow()) | {"request": {"uid": UID, "object": workflow()}},
        review(None),
        review("a string"),
        review(workflow() | {"spec": ["not", "a", "mapping"]}),
        review(workflow() | {"metadata": "nope"}),
    ],
    ids=[
        "null",
        "list",
        "string",
        "v1beta1",
        "no-request",
        "request-not-an-object",
        "no-uid",
        "no-operation",
        "no-object",
        "object-not-an-object",
        "spec-not-an-object",
        "metadata-not-an-object",
    ],
)
def test_a_malformed_review_gets_a_400_naming_the_problem(body: Any) -> None:
    status, reply = admit(body)

    assert status == 400
    assert (reply["kind"], reply["code"], reply["reason"]) == ("Status", 400, "BadRequest")
    assert reply["message"].startswith("malformed admission review: ")


def test_a_result_set_with_a_bad_expression_is_refused_with_the_field_and_position() -> None:
    manifest = result_set(
        transforms=[{"name": "t", "type": "map", "expression": "r.result.score +"}]
    )

    response = response_of(admit(review(manifest)))

    assert response["allowed"] is False
    message = response["status"]["message"]
    assert "spec.transforms[0].expression" in message
    assert "line 1, column 17" in message


def test_a_result_set_calling_an_unknown_function_is_refused_naming_it() -> None:
    manifest = result_set(
        aggregations=[
            {"name": "a", "function": "custom", "expression": "results.map(r, r).average()"}
        ]
    )

    response = response_of(admit(review(manifest)))

    assert response["allowed"] is False
    assert "unknown function 'average'" in response["status"]["message"]
    assert "spec.aggregations[0].expression" in response["status"]["message"]


def test_a_result_set_with_good_expressions_is_allowed() -> None:
    manifest = result_set(
        aggregations=[
            {"name": "best", "function": "custom", "expression": "results.map(r, r.result.s).max()"}
        ],
        transforms=[{"name": "t", "type": "filter", "expression": "r.result.s >= 0.5"}],
    )

    assert response_of(admit(review(manifest)))["allowed"] is True


def test_a_workflow_whose_result_set_expression_is_bad_is_refused() -> None:
    manifest = workflow()
    manifest["spec"]["resultSet"] = {
        "transforms": [{"name": "t", "type": "map", "expression": "q.result"}]
    }

    response = response_of(admit(review(manifest)))

    assert response["allowed"] is False
    assert "spec.resultSet.transforms[0].expression" in response["status"]["message"]


def test_the_configuration_checks_workflow_creates_and_updates_and_ignores_failures() -> None:
    manifest = webhook.configuration(webhook.local_endpoint(9443), b"CA")

    assert manifest["metadata"]["name"] == "execflow.dev"
    (hook,) = manifest["webhooks"]
    assert hook["clientConfig"] == {
        "caBundle": "Q0E=",
        "url": "https://127.0.0.1:9443/validate",
    }
    assert hook["rules"] == [
        {
            "apiGroups": ["execflow.dev"],
            "apiVersions": ["v1alpha1"],
            "resources": ["workflows", "resultsets"],
            "operations": ["CREATE", "UPDATE"],
            "scope": "Namespaced",
        }
    ]
    assert (hook["failurePolicy"], hook["sideEffects"], hook["timeoutSeconds"]) == (
        "Ignore",
        "None",
        5,
    )
    assert hook["admissionReviewVersions"] == ["v1"]


def test_in_a_cluster_the_configuration_names_the_service_and_its_certificate_its_host() -> None:
    endpoint = webhook.service_endpoint("execflow-system", "execflow-webhook")

    config = webhook.configuration(endpoint, b"CA")["webhooks"][0]["clientConfig"]

    assert config["service"] == {
        "namespace": "execflow-system",
        "name": "execflow-webhook",
        "path": "/validate",
        "port": 443,
    }
    assert "url" not in config
    assert "execflow-webhook.execflow-system.svc" in endpoint.hosts
    assert webhook.secret_name("execflow-webhook") == "execflow-webhook-tls"


# ----- the HTTPS server, for real on loopback ----------------------------------------------------
def post(port: int, ca: bytes, body: bytes, path: str = webhook.PATH) -> tuple[int, Any]:
    """POST as the API server does: HTTPS, trusting only `ca`, checking the host name."""
    context = ssl.create_default_context(cadata=ca.decode())
    request = urllib.request.Request(
        f"https://127.0.0.1:{port}{path}",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def serve_and_post(
    *bodies: bytes, path: str = webhook.PATH, decide: webhook.Decide = admit
) -> list[tuple[int, Any]]:
    pair = generate(["127.0.0.1"], datetime.datetime.now(datetime.UTC))
    port = free_port()

    async def main() -> list[tuple[int, Any]]:
        server = webhook.WebhookServer(decide)
        await server.start("127.0.0.1", port, pair)
        try:
            return [await asyncio.to_thread(post, port, pair.ca, body, path) for body in bodies]
        finally:
            await server.stop()

    return asyncio.run(main())


def test_the_server_answers_reviews_over_tls_the_ca_vouches_for() -> None:
    bad = json.dumps(review(workflow(when="1 +"))).encode()
    good = json.dumps(review(workflow())).encode()

    (refused, status_refused), (allowed, status_allowed) = [
        (reply["response"]["allowed"], status) for status, reply in serve_and_post(bad, good)
    ]

    assert (refused, status_refused) == (False, 200)
    assert (allowed, status_allowed) == (True, 200)


def test_the_server_answers_a_body_that_is_not_json_with_a_400() -> None:
    ((status, body),) = serve_and_post(b"{not json")

    assert status == 400
    assert json.loads(body)["message"].startswith("the request body is not JSON")


def test_the_server_answers_a_malformed_review_with_a_400() -> None:
    ((status, body),) = serve_and_post(b'{"kind": "AdmissionReview"}')

    assert status == 400
    assert json.loads(body)["reason"] == "BadRequest"


def test_the_server_serves_only_its_path() -> None:
    ((status, _),) = serve_and_post(json.dumps(review(workflow())).encode(), path="/other")

    assert status == 404


def test_a_failing_decision_is_a_500_so_the_api_server_falls_back_to_admitting() -> None:
    def broken(_review: Any) -> tuple[int, dict[str, Any]]:
        raise RuntimeError("a bug in the decision")

    ((status, body),) = serve_and_post(json.dumps(review(workflow())).encode(), decide=broken)

    assert status == 500
    assert json.loads(body)["code"] == 500
