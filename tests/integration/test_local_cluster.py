"""The local control plane and the simulation contract, exercised with plain Kubernetes objects.

Runs against the real API server, Job controller, scheduler and kwok nodes (no operator): these
are the facts every execflow test builds on.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from kubernetes.utils import parse_quantity

from execflow.devcluster import processes
from execflow.devcluster.cluster import LocalCluster
from tests.integration.conftest import LOCAL_SHAPE
from tests.integration.waiting import wait_for


def _pod(
    name: str, annotations: dict[str, str], labels: dict[str, str] | None = None, cpu: str = "100m"
) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, annotations=annotations, labels=labels or {}),
        spec=client.V1PodSpec(
            restart_policy="Never",
            automount_service_account_token=False,
            containers=[
                client.V1Container(
                    name="main",
                    image="example.invalid/tool:1",
                    resources=client.V1ResourceRequirements(requests={"cpu": cpu}),
                )
            ],
        ),
    )


def _finished_pod(core: client.CoreV1Api, namespace: str, name: str) -> Any:
    def finished() -> Any:
        pod = core.read_namespaced_pod(name, namespace)
        return pod if pod.status.phase in ("Succeeded", "Failed") else None

    return wait_for(finished, 60, f"pod {name} to finish")


def test_nodes_are_ready_with_requested_allocatable(
    api: client.ApiClient, local_cluster: Any
) -> None:
    nodes = client.CoreV1Api(api).list_node().items
    ready = [
        n
        for n in nodes
        if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions)
    ]
    if local_cluster is None:
        # Another cluster's shape is its own; it must still have a Ready node with capacity.
        assert ready and all(parse_quantity(n.status.allocatable["cpu"]) > 0 for n in ready)
        return
    assert len(ready) == LOCAL_SHAPE.count
    for node in ready:
        assert parse_quantity(node.status.allocatable["cpu"]) == parse_quantity(LOCAL_SHAPE.cpu)
        assert parse_quantity(node.status.allocatable["memory"]) == parse_quantity(
            LOCAL_SHAPE.memory
        )


def test_plain_job_completes_with_termination_message(
    api: client.ApiClient, namespace: str
) -> None:
    batch = client.BatchV1Api(api)
    core = client.CoreV1Api(api)
    template = _pod("unused", {"sim.execflow.dev/message": '{"rows": 42}'})
    job = client.V1Job(
        metadata=client.V1ObjectMeta(name="plain"),
        spec=client.V1JobSpec(
            backoff_limit=0,
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(annotations=template.metadata.annotations),
                spec=template.spec,
            ),
        ),
    )
    batch.create_namespaced_job(namespace, job)

    def succeeded() -> Any:
        status = batch.read_namespaced_job_status("plain", namespace).status
        return status if (status.succeeded or 0) == 1 else None

    wait_for(succeeded, 60, "the Job to succeed")
    pods = core.list_namespaced_pod(namespace, label_selector="job-name=plain").items
    assert len(pods) == 1
    pod = pods[0]
    assert pod.spec.node_name.startswith("kwok-node-"), "kube-scheduler bound the pod"
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 0
    assert terminated.message == '{"rows": 42}'


def test_exit_code_annotation_fails_the_pod(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(namespace, _pod("exit3", {"sim.execflow.dev/exit-code": "3"}))
    pod = _finished_pod(core, namespace, "exit3")
    assert pod.status.phase == "Failed"
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 3
    assert terminated.reason == "Error"


def test_duration_annotation_makes_the_container_run_that_long(
    api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(namespace, _pod("slow", {"sim.execflow.dev/duration": "2s"}))
    pod = _finished_pod(core, namespace, "slow")
    terminated = pod.status.container_statuses[0].state.terminated
    assert pod.status.phase == "Succeeded"
    assert (terminated.finished_at - terminated.started_at).total_seconds() >= 2.0


def test_reason_annotation_sets_the_terminated_reason(
    api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    annotations = {"sim.execflow.dev/exit-code": "137", "sim.execflow.dev/reason": "OOMKilled"}
    core.create_namespaced_pod(namespace, _pod("oom", annotations))
    terminated = _finished_pod(core, namespace, "oom").status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (137, "OOMKilled")


def test_fail_attempts_fails_early_attempts_then_succeeds(
    api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    for attempt in (1, 2, 3):
        core.create_namespaced_pod(
            namespace,
            _pod(
                f"attempt-{attempt}",
                {"sim.execflow.dev/fail-attempts": "2"},
                labels={"execflow.dev/attempt": str(attempt)},
            ),
        )
    outcomes = {}
    for attempt in (1, 2, 3):
        pod = _finished_pod(core, namespace, f"attempt-{attempt}")
        outcomes[attempt] = (
            pod.status.phase,
            pod.status.container_statuses[0].state.terminated.exit_code,
        )
    assert outcomes == {1: ("Failed", 1), 2: ("Failed", 1), 3: ("Succeeded", 0)}


def test_pod_larger_than_any_node_stays_pending(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(namespace, _pod("huge", {}, cpu="1000"))

    def unschedulable() -> Any:
        pod = core.read_namespaced_pod("huge", namespace)
        return (
            any(
                c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable"
                for c in pod.status.conditions or []
            )
            and pod
        )

    pod = wait_for(unschedulable, 60, "the scheduler to report the pod Unschedulable")
    assert pod.status.phase == "Pending"
    assert pod.spec.node_name is None


def test_service_account_without_role_is_forbidden(
    api: client.ApiClient, namespace: str, kubeconfig: Any
) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="nobody"))
    )
    token = core.create_namespaced_service_account_token(
        "nobody",
        namespace,
        client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600)
        ),
    ).status.token
    configuration = client.Configuration()
    configuration.host = api.configuration.host
    configuration.ssl_ca_cert = api.configuration.ssl_ca_cert
    configuration.api_key = {"authorization": f"Bearer {token}"}
    as_nobody = client.CoreV1Api(client.ApiClient(configuration))
    with pytest.raises(ApiException) as refused:
        as_nobody.list_namespaced_pod(namespace)
    assert refused.value.status == 403
    assert f"system:serviceaccount:{namespace}:nobody" in refused.value.body


@pytest.mark.parametrize("victim", ["kwok", "kube-scheduler"])
def test_up_restarts_only_the_component_that_died(
    api: client.ApiClient, namespace: str, local_cluster: LocalCluster | None, victim: str
) -> None:
    if local_cluster is None:
        pytest.skip("needs the project's local cluster")
    state = local_cluster.state()
    assert state is not None
    before = dict(state.pids)
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="kept"), data={"a": "1"}),
    )
    os.killpg(before[victim], signal.SIGKILL)
    wait_for(lambda: not processes.alive(before[victim]), 10, f"{victim} to die")

    messages: list[str] = []
    local_cluster.up(LOCAL_SHAPE, messages.append)

    after = local_cluster.state()
    assert after is not None
    restarted = after.pids[victim]
    assert restarted != before[victim]
    assert processes.alive(restarted) and processes.runs(restarted, victim)
    assert {k: v for k, v in after.pids.items() if k != victim} == {
        k: v for k, v in before.items() if k != victim
    }, "the components that ran kept running"
    assert after.ports == state.ports
    assert not any("afresh" in message for message in messages), messages
    assert core.read_namespaced_config_map("kept", namespace).data == {"a": "1"}
    # The new process does its job: kwok simulates the pod, kube-scheduler binds it.
    core.create_namespaced_pod(namespace, _pod("after", {}))
    assert _finished_pod(core, namespace, "after").status.phase == "Succeeded"
