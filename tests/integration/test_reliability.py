"""No Task left stuck without a reason: the operator process against the real local control plane.

Each test provokes one way a Task could go wrong — a name reused, a cache entry deleted, a Job
or a pod the cluster refuses, an operator that cannot watch while objects are deleted, every node
cordoned — and asserts on real objects that the Task ends (or waits) with a reason and that
nothing stale survives. The status carries kstatus conditions and the operator's writes are
attributed to it.
"""

from __future__ import annotations

import datetime
import socket
import subprocess
import sys
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from execflow.devcluster.cluster import LocalCluster
from tests.integration.objects import (
    GROUP,
    TERMINAL,
    VERSION,
    create_task,
    create_tool,
    custom_api,
    events_of,
    jobs_of,
    patch_spec,
)
from tests.integration.operator_process import OperatorProcess, wait_phase
from tests.integration.waiting import wait_for


def _get(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    task: dict[str, Any] = custom_api(api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, "tasks", name
    )
    return task


def _delete(api: client.ApiClient, namespace: str, name: str) -> None:
    custom_api(api).delete_namespaced_custom_object(GROUP, VERSION, namespace, "tasks", name)

    def gone() -> bool:
        try:
            _get(api, namespace, name)
        except ApiException as error:
            return error.status == 404
        return False

    wait_for(gone, 30, f"task {name} to be deleted")


def _reason(api: client.ApiClient, namespace: str, name: str, reason: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        status: dict[str, Any] = _get(api, namespace, name).get("status") or {}
        return status if status.get("reason") == reason else None

    return wait_for(reached, 60, f"task {name} to show reason {reason}")


def _conditions(status: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in status.get("conditions") or []}


def _time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_task_recreated_under_an_old_name_starts_clean(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    past = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)).isoformat()
    create_task(api, namespace, "again", constraints={"deadline": past})
    assert wait_phase(api, namespace, "again", TERMINAL)["status"]["reason"] == "DeadlineMissed"
    _delete(api, namespace, "again")

    create_task(api, namespace, "again", sim={"message": '{"n": 2}'})
    status = wait_phase(api, namespace, "again", TERMINAL)["status"]
    assert (status["phase"], status["result"], status["attempts"]) == ("Completed", {"n": 2}, 1)

    # Deleted and re-created at once: the predecessor's Job again-1 may still exist for a moment.
    _delete(api, namespace, "again")
    create_task(api, namespace, "again", sim={"message": '{"n": 3}'})
    task = wait_phase(api, namespace, "again", TERMINAL)
    status = task["status"]
    assert (status["phase"], status["result"], status["attempts"]) == ("Completed", {"n": 3}, 1)
    [job] = wait_for(
        lambda: (jobs := jobs_of(api, namespace, "again")) and len(jobs) == 1 and jobs,
        60,
        "only the new incarnation's Job",
    )
    assert job.metadata.owner_references[0].uid == task["metadata"]["uid"]


def test_a_deleted_completed_task_no_longer_serves_cache_hits_even_after_a_restart(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    cached: dict[str, Any] = {"parameters": {"x": 7}, "cache": {"enabled": True, "ttl": "1h"}}
    create_task(api, namespace, "original", sim={"message": '{"v": 1}'}, **cached)
    assert wait_phase(api, namespace, "original", TERMINAL)["status"]["reason"] == "Succeeded"
    create_task(api, namespace, "hit", **cached)
    assert wait_phase(api, namespace, "hit", TERMINAL)["status"]["reason"] == "CacheHit"

    _delete(api, namespace, "original")
    _delete(api, namespace, "hit")
    create_task(api, namespace, "after-delete", sim={"message": '{"v": 2}'}, **cached)
    status = wait_phase(api, namespace, "after-delete", TERMINAL)["status"]
    assert (status["reason"], status["result"]) == ("Succeeded", {"v": 2})

    _delete(api, namespace, "after-delete")
    operator.stop()
    operator.start()
    create_task(api, namespace, "after-restart", sim={"message": '{"v": 3}'}, **cached)
    status = wait_phase(api, namespace, "after-restart", TERMINAL)["status"]
    assert (status["reason"], status["result"]) == ("Succeeded", {"v": 3})


def test_a_job_the_api_server_refuses_fails_the_task_with_its_message(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    impossible = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}}
    create_task(api, namespace, "refused", podTemplate={"spec": {"affinity": impossible}})

    status = wait_phase(api, namespace, "refused", TERMINAL, timeout=15)["status"]

    assert (status["phase"], status["reason"]) == ("Failed", "JobRejected")
    assert "nodeSelectorTerms" in status["message"], "the API server's own message"
    assert jobs_of(api, namespace, "refused") == []
    assert "JobRejected" in wait_for(
        lambda: events_of(api, namespace, "refused"), 30, "the JobRejected Event"
    )


def test_a_pod_that_cannot_be_created_is_reported_then_fails_after_the_grace(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_task(
        api, namespace, "no-account", podTemplate={"spec": {"serviceAccountName": "missing"}}
    )

    waiting = _reason(api, namespace, "no-account", "PodCreateFailed")
    assert waiting["phase"] == "Running"
    assert "missing" in waiting["message"], "the Job controller's message names the account"
    status = wait_phase(api, namespace, "no-account", TERMINAL, timeout=60)["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "PodCreateFailed")
    [job] = jobs_of(api, namespace, "no-account")
    assert job.spec.suspend is True, "the stuck Job is stopped, not left retrying"
    assert "execflow.dev/stopped" in job.metadata.annotations


def test_a_task_deleted_while_the_operator_cannot_watch_is_forgotten_after_the_relist(
    api: client.ApiClient,
    namespace: str,
    operator: OperatorProcess,
    local_cluster: LocalCluster | None,
) -> None:
    if local_cluster is None:
        pytest.skip("restarting the API server needs the local control plane")
    create_task(api, namespace, "ghost", sim={"duration": "120s"})
    wait_phase(api, namespace, "ghost", {"Running"})
    wait_for(lambda: jobs_of(api, namespace, "ghost"), 30, "the ghost's Job")
    creates_before = operator.metric("execflow_api_writes_total", verb="create", resource="jobs")

    operator.pause()
    try:
        _delete(api, namespace, "ghost")
        wait_for(lambda: not jobs_of(api, namespace, "ghost"), 60, "the garbage collector")
        local_cluster.compact_etcd()
        local_cluster.restart("kube-apiserver")
    finally:
        operator.resume()

    # The operator is back and past its relists once a new Task runs to the end.
    create_task(api, namespace, "alive")
    assert wait_phase(api, namespace, "alive", TERMINAL, timeout=120)["status"]["phase"] == (
        "Completed"
    )
    creates = operator.metric("execflow_api_writes_total", verb="create", resource="jobs")
    assert creates - creates_before == 1, "only the new Task's Job was created"
    assert jobs_of(api, namespace, "ghost") == []
    assert "Traceback" not in operator.log_text()


def test_cordoning_every_node_keeps_tasks_waiting_with_a_reason(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    core = client.CoreV1Api(api)
    nodes = [n.metadata.name for n in core.list_node(label_selector="type=kwok").items]
    try:
        for node in nodes:
            core.patch_node(node, {"spec": {"unschedulable": True}})
        create_task(api, namespace, "patient", resources={"requests": {"cpu": "64"}})
        create_task(api, namespace, "small")
        for name in ("patient", "small"):
            status = _reason(api, namespace, name, "NoSchedulableNodes")
            assert status["phase"] == "Queued"
        assert jobs_of(api, namespace, "small") == []
    finally:
        for node in nodes:
            core.patch_node(node, {"spec": {"unschedulable": False}})
    assert wait_phase(api, namespace, "small", TERMINAL)["status"]["phase"] == "Completed"
    status = _reason(api, namespace, "patient", "Unschedulable")
    assert status["phase"] == "Queued", "64 CPU fit no 8-CPU node: waits, never starts blind"


def test_the_spec_of_a_task_cannot_change_except_suspend_and_cancel(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_task(api, namespace, "fixed", sim={"duration": "30s"}, parameters={"n": 1})
    wait_phase(api, namespace, "fixed", {"Running"})

    with pytest.raises(ApiException) as refused:
        patch_spec(api, namespace, "fixed", parameters={"n": 2})
    assert refused.value.status == 422
    assert "immutable" in refused.value.body

    patch_spec(api, namespace, "fixed", cancel=True)
    assert wait_phase(api, namespace, "fixed", TERMINAL)["status"]["phase"] == "Cancelled"


def test_conditions_follow_kstatus_in_every_phase(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_task(api, namespace, "busy", sim={"duration": "20s"}, queue="one-slot")
    running = wait_phase(api, namespace, "busy", {"Running"})["status"]
    create_task(api, namespace, "behind", queue="one-slot")
    queued = wait_phase(api, namespace, "behind", {"Queued"})["status"]
    create_task(api, namespace, "broken", sim={"exit-code": "2"})
    failed = wait_phase(api, namespace, "broken", TERMINAL)["status"]
    patch_spec(api, namespace, "busy", cancel=True)
    completed = wait_phase(api, namespace, "behind", TERMINAL)["status"]

    progressing = {"Reconciling": "True", "Stalled": "False", "Ready": "False"}
    assert _conditions(running) == {**progressing, "Succeeded": "Unknown"}
    assert _conditions(queued) == {**progressing, "Succeeded": "Unknown"}
    assert _conditions(failed) == {
        "Reconciling": "False",
        "Stalled": "True",
        "Ready": "False",
        "Succeeded": "False",
    }
    assert _conditions(completed) == {
        "Reconciling": "False",
        "Stalled": "False",
        "Ready": "True",
        "Succeeded": "True",
    }
    for status in (running, queued, failed, completed):
        assert {c["observedGeneration"] for c in status["conditions"]} == {
            status["observedGeneration"]
        }


def test_zero_length_tasks_never_complete_before_they_start(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    names = [f"instant-{i}" for i in range(8)]
    for name in names:
        create_task(api, namespace, name, sim={"duration": "0s"})
    for name in names:
        status = wait_phase(api, namespace, name, TERMINAL)["status"]
        assert _time(status["completionTime"]) >= _time(status["startTime"]), status
        [job] = jobs_of(api, namespace, name)
        assert {m.manager for m in job.metadata.managed_fields} >= {"execflow"}


def test_a_tool_reports_whether_it_is_usable_and_its_tasks_fail_clearly(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_tool(api, namespace, "good", inputSchema={"type": "object"})
    create_tool(
        api,
        namespace,
        "bad",
        inputSchema={"type": "object", "properties": {"n": {"type": "integr"}}},
    )

    def tool_ready(name: str) -> dict[str, str] | None:
        tool = custom_api(api).get_namespaced_custom_object(
            GROUP, VERSION, namespace, "tools", name
        )
        conditions = _conditions(tool.get("status") or {})
        return conditions or None

    assert wait_for(lambda: tool_ready("good"), 30, "the good Tool's status")["Ready"] == "True"
    bad = wait_for(lambda: tool_ready("bad"), 30, "the bad Tool's status")
    assert (bad["Ready"], bad["Stalled"]) == ("False", "True")
    create_task(api, namespace, "uses-bad", toolRef={"name": "bad"}, parameters={"n": 1})
    status = wait_phase(api, namespace, "uses-bad", TERMINAL)["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "InvalidTool")
    assert "inputSchema" in status["message"]


def test_a_metrics_port_in_use_is_one_clear_line(kubeconfig: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "execflow.cli.main", "run", "--metrics-port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            env={"KUBECONFIG": str(kubeconfig), "PATH": "/usr/bin:/bin"},
            check=False,
        )
    assert result.returncode == 2
    output = (result.stdout + result.stderr).strip()
    assert "Traceback" not in output
    assert f"cannot serve metrics on port {port}" in output
