"""The Workflow admission webhook, served by the operator process and called by the real API server.

The session's operator serves the webhook on loopback and registers it as the
ValidatingWebhookConfiguration `execflow.dev`; the local kube-apiserver then calls it for every
Workflow create and update. A spec the operator would fail (an expression that does not compile,
a template reading an unknown name) is refused by the API server with the operator's message,
naming the field; a valid one is admitted and runs; a finished workflow's metadata can still
change; a deleted registration comes back. With the operator killed or hung, the failure policy
Ignore admits Workflows anyway (after at most the webhook's timeout), and the operator, once
back, fails a bad one at reconcile with the same reason and message. The certificate replicas
share in a cluster is exercised against the real API server too (its Secret: created once,
reused, replaced when unfit).
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from execflow.kube.certificates import ServingCertificate, problems, shared_certificate
from execflow.kube.client import Kube
from execflow.kube.connection import Connection
from execflow.kube.webhook import (
    CONFIGURATION_NAME,
    REREGISTER_SECONDS,
    TIMEOUT_SECONDS,
    local_endpoint,
)
from tests.integration.objects import (
    GROUP,
    TERMINAL,
    VERSION,
    children_of,
    create_workflow,
    custom_api,
    get_workflow,
    patch_workflow,
    workflow_events,
)
from tests.integration.operator_process import OperatorProcess
from tests.integration.waiting import wait_for

DENIED = 'admission webhook "validate.execflow.dev" denied the request: '


def task(name: str = "a", **fields: Any) -> dict[str, Any]:
    """A workflow task whose pod the simulated nodes run briefly and end successfully."""
    return {
        "name": name,
        "container": {"image": "example.invalid/step:1"},
        "podTemplate": {"metadata": {"annotations": {"sim.execflow.dev/duration": "100ms"}}},
        **fields,
    }


def steps(**fields: Any) -> list[dict[str, Any]]:
    return [{"name": "s", "tasks": [task(**fields)]}]


def manifest(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {"steps": steps(**fields)},
    }


def refusal(call: Callable[[], object]) -> str:
    """The message the API server refuses `call` with (a 422 from the webhook)."""
    with pytest.raises(ApiException) as caught:
        call()
    assert caught.value.status == 422, caught.value.body
    body = json.loads(caught.value.body)
    assert body["reason"] == "Invalid"
    message: str = body["message"]
    assert message.startswith(DENIED), message
    return message


def registered_url(api: client.ApiClient) -> str | None:
    try:
        found = client.AdmissionregistrationV1Api(api).read_validating_webhook_configuration(
            CONFIGURATION_NAME
        )
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    url: str | None = found.webhooks[0].client_config.url
    return url


def wait_registered(api: client.ApiClient, operator: OperatorProcess) -> None:
    wait_for(
        lambda: registered_url(api) == local_endpoint(operator.webhook_port).url,
        REREGISTER_SECONDS + 15,
        "the configuration to point at the session's operator",
    )


def wait_enforced(api: client.ApiClient, namespace: str) -> None:
    """Until the API server calls the webhook (it reads configurations through a watch)."""

    def refused() -> bool:
        try:
            custom_api(api).create_namespaced_custom_object(
                GROUP, VERSION, namespace, "workflows", manifest("probe", when="1 +"), dry_run="All"
            )
        except ApiException as error:
            return error.status == 422
        return False

    wait_for(refused, 30, "the API server to call the operator's webhook")


@pytest.fixture
def webhook(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> Iterator[OperatorProcess]:
    """The session's operator, registered and in force.

    Another operator process started since (a leader-election replica, say) registers its own
    address in the same configuration; the session's operator takes it back within
    REREGISTER_SECONDS once that one has stopped.
    """
    if not operator.running:
        operator.start()
    wait_registered(api, operator)
    wait_enforced(api, namespace)
    yield operator
    if not operator.running:
        operator.start()


def wait_workflow(
    api: client.ApiClient, namespace: str, name: str, timeout: float = 90
) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        workflow = get_workflow(api, namespace, name)
        return workflow if (workflow.get("status") or {}).get("phase") in TERMINAL else None

    return wait_for(finished, timeout, f"workflow {name} to finish")


def assert_absent(api: client.ApiClient, namespace: str, name: str) -> None:
    with pytest.raises(ApiException) as caught:
        get_workflow(api, namespace, name)
    assert caught.value.status == 404


# ----- refused at admission ---------------------------------------------------------------------
def test_a_when_that_does_not_compile_is_refused_naming_the_field_and_position(
    api: client.ApiClient, namespace: str, webhook: OperatorProcess
) -> None:
    message = refusal(lambda: create_workflow(api, namespace, "typo", steps=steps(when="1 +")))

    assert "spec.steps[0].tasks[0].when" in message
    assert "line 1, column" in message
    assert_absent(api, namespace, "typo")


def test_a_template_reading_an_unknown_name_is_refused_naming_the_parameters(
    api: client.ApiClient, namespace: str, webhook: OperatorProcess
) -> None:
    message = refusal(
        lambda: create_workflow(
            api, namespace, "unknown", steps=steps(parameters={"x": "{{ nope }}"})
        )
    )

    assert "spec.steps[0].tasks[0].parameters" in message
    assert "nope" in message
    assert_absent(api, namespace, "unknown")


def test_a_valid_workflow_is_admitted_runs_and_once_finished_its_annotations_can_change(
    api: client.ApiClient, namespace: str, webhook: OperatorProcess
) -> None:
    create_workflow(
        api,
        namespace,
        "fine",
        variables={"size": 3},
        steps=steps(when="variables.size > 2", parameters={"n": "{{ variables.size }}"}),
    )
    status = wait_workflow(api, namespace, "fine")["status"]
    assert (status["phase"], status["reason"]) == ("Completed", "Succeeded"), status
    assert set(children_of(api, namespace, "fine")) == {"fine-a"}

    patch_workflow(api, namespace, "fine", {"metadata": {"annotations": {"team": "ml"}}})
    assert get_workflow(api, namespace, "fine")["metadata"]["annotations"]["team"] == "ml"
    message = refusal(
        lambda: patch_workflow(api, namespace, "fine", {"spec": {"steps": steps(when="1 +")}})
    )
    assert "spec.steps[0].tasks[0].when" in message


def test_a_deleted_registration_comes_back(
    api: client.ApiClient, namespace: str, webhook: OperatorProcess
) -> None:
    again = "registered the admission webhook again"
    before = webhook.log_text().count(again)
    client.AdmissionregistrationV1Api(api).delete_validating_webhook_configuration(
        CONFIGURATION_NAME
    )

    wait_registered(api, webhook)
    wait_enforced(api, namespace)
    assert webhook.log_text().count(again) == before + 1


# ----- failurePolicy Ignore -----------------------------------------------------------------------
def test_with_the_operator_down_a_bad_workflow_is_admitted_and_then_fails_at_reconcile(
    api: client.ApiClient, namespace: str, webhook: OperatorProcess
) -> None:
    address = local_endpoint(webhook.webhook_port).url
    webhook.kill()
    try:
        assert registered_url(api) == address, "a killed operator leaves its registration"
        create_workflow(api, namespace, "outage", steps=steps(when="1 +"))
    finally:
        webhook.start()

    status = wait_workflow(api, namespace, "outage")["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "InvalidExpression")
    assert "spec.steps[0].tasks[0].when" in status["message"]
    assert "line 1, column" in status["message"]
    assert children_of(api, namespace, "outage") == {}
    wait_for(
        lambda: "InvalidExpression" in {r for r, _ in workflow_events(api, namespace, "outage")},
        30,
        "an InvalidExpression Event on the workflow",
    )

    # Back in force: the stored spec stays as it is, its metadata can change, it can be deleted.
    wait_enforced(api, namespace)
    patch_workflow(api, namespace, "outage", {"metadata": {"annotations": {"seen": "yes"}}})
    message = refusal(
        lambda: patch_workflow(api, namespace, "outage", {"spec": {"steps": steps(when="2 +")}})
    )
    assert "spec.steps[0].tasks[0].when" in message
    custom_api(api).delete_namespaced_custom_object(
        GROUP, VERSION, namespace, "workflows", "outage"
    )
    wait_for(
        lambda: (
            "outage"
            not in {
                item["metadata"]["name"]
                for item in custom_api(api).list_namespaced_custom_object(
                    GROUP, VERSION, namespace, "workflows"
                )["items"]
            }
        ),
        30,
        "the workflow to be deleted",
    )


def test_a_hung_operator_delays_a_create_by_at_most_the_webhook_timeout(
    api: client.ApiClient, namespace: str, webhook: OperatorProcess
) -> None:
    webhook.pause()
    try:
        started = time.monotonic()
        create_workflow(api, namespace, "hung", steps=steps(when="1 +"))
        waited = time.monotonic() - started
    finally:
        webhook.resume()

    assert TIMEOUT_SECONDS <= waited < TIMEOUT_SECONDS + 10, waited
    status = wait_workflow(api, namespace, "hung")["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "InvalidExpression")


# ----- the certificate replicas share in a cluster ------------------------------------------------
def run_with_kube(kubeconfig: Path, body: Callable[[Kube], Any]) -> Any:
    async def main() -> Any:
        connection = Connection(str(kubeconfig))
        try:
            return await body(Kube.connect(connection))
        finally:
            await connection.close()

    return asyncio.run(main())


def stored_pair(api: client.ApiClient, namespace: str, name: str) -> ServingCertificate:
    secret = client.CoreV1Api(api).read_namespaced_secret(name, namespace)
    assert secret.type == "kubernetes.io/tls"
    data = {key: base64.b64decode(value) for key, value in secret.data.items()}
    return ServingCertificate(ca=data["ca.crt"], certificate=data["tls.crt"], key=data["tls.key"])


def test_replicas_share_one_certificate_through_a_secret_replaced_when_it_no_longer_fits(
    api: client.ApiClient, kubeconfig: Path, namespace: str
) -> None:
    name = "execflow-webhook-tls"
    hosts = (f"execflow-webhook.{namespace}.svc",)
    now = datetime.datetime.now(datetime.UTC)

    async def racing(kube: Kube) -> list[ServingCertificate]:
        return list(
            await asyncio.gather(
                *(shared_certificate(kube, namespace, name, hosts, now=now) for _ in range(3))
            )
        )

    first, *others = run_with_kube(kubeconfig, racing)
    assert all(other == first for other in others), "racing replicas end with one pair"
    assert stored_pair(api, namespace, name) == first
    assert problems(first, hosts, now) == []

    again = run_with_kube(
        kubeconfig, lambda kube: shared_certificate(kube, namespace, name, hosts, now=now)
    )
    assert again == first, "a later start reuses the stored pair"

    renamed = ("execflow-hooks.other.svc",)
    replaced = run_with_kube(
        kubeconfig, lambda kube: shared_certificate(kube, namespace, name, renamed, now=now)
    )
    assert replaced != first
    assert problems(replaced, renamed, now) == []
    assert stored_pair(api, namespace, name) == replaced
