"""One pass through every feature of the operator, for the chart's permissions to be tried on.

Everything is created at once and then awaited, so the whole pass takes about as long as its
slowest part (a Workflow that fails, is fixed and resumed). Each part is there for the API calls
it makes the operator do:

- a Tool and a Task that runs it (watches, the Task read before its Job, Job create, statuses);
- a Task that fails once and is retried (a BackOff Event);
- a Task whose pod cannot be created (the Job controller's Events watched, the Job stopped);
- Workflows: one that fails, is fixed and resumed (child Tasks created and the failed one deleted,
  its ResultSet created), one cancelled while it runs (its child patched, the child's Job
  deleted), one deleted after its ttlAfterFinished;
- ResultSets: in ConfigMaps over two Tasks that end apart (a ConfigMap created, then appended
  to), encrypted with a key from a Secret, in the local S3 server with credentials from a Secret
  and then deleted (its finalizer added and removed), and one that expires (its ConfigMaps
  deleted).
"""

from __future__ import annotations

import os
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.integration.chart_rbac import Request
from tests.integration.objects import (
    GROUP,
    TERMINAL,
    VERSION,
    children_of,
    create_task,
    create_tool,
    create_workflow,
    custom_api,
    events_of,
    jobs_of,
    patch_workflow,
)
from tests.integration.operator_process import wait_phase
from tests.integration.resultsets import (
    Bucket,
    config_maps_of,
    copy_local_s3_secret,
    create_key_secret,
    create_result_set,
    read_back,
    result_set_gone,
    wait_result_set,
)
from tests.integration.waiting import wait_for
from tests.integration.workflows import sim, wait_workflow

SETTINGS = "podCreateTimeout: 2s\nstorageCleanupTimeout: 5s\n"
"""A pod that cannot be created fails its attempt after 2 s instead of 2 minutes."""

KEY = os.urandom(32)


def start(api: client.ApiClient, namespace: str, bucket: Bucket) -> None:
    """Create every object of the pass."""
    create_tool(api, namespace, "echo")
    create_task(api, namespace, "tooled", sim={"message": '{"v": 1}'}, toolRef={"name": "echo"})
    create_task(
        api,
        namespace,
        "flaky",
        sim={"fail-attempts": "1", "message": '{"v": 2}'},
        retryPolicy={"maxRetries": 1, "retryDelay": "1s"},
    )
    create_task(api, namespace, "no-account", podTemplate={"spec": {"serviceAccountName": "none"}})
    create_workflow(
        api,
        namespace,
        "resumed",
        variables={"code": "1"},
        steps=[
            {
                "name": "work",
                "tasks": [sim("fix", message='{"v": 3}', exit_code="{{ variables.code }}")],
            }
        ],
        resultSet={"aggregations": [{"name": "total", "function": "sum", "field": "v"}]},
    )
    create_workflow(
        api, namespace, "halted", steps=[{"name": "work", "tasks": [sim("slow", "5m")]}]
    )
    create_workflow(
        api,
        namespace,
        "brief",
        ttlAfterFinished="1s",
        steps=[{"name": "work", "tasks": [sim("quick")]}],
    )
    create_result_set(api, namespace, "in-maps", source={"taskRefs": ["tooled", "flaky"]})
    create_key_secret(api, namespace, "results-key", key=KEY)
    encryption = {"secretRef": {"name": "results-key", "key": "key"}}
    create_result_set(
        api,
        namespace,
        "sealed",
        source={"taskRefs": ["tooled"]},
        storage={"backend": "ConfigMap", "encryption": encryption},
    )
    copy_local_s3_secret(api, namespace, "s3-credentials")
    s3 = {"bucket": bucket.name, "prefix": "helm/", "secretRef": {"name": "s3-credentials"}}
    create_result_set(
        api,
        namespace,
        "in-s3",
        source={"taskRefs": ["tooled"]},
        storage={"backend": "S3", "s3": s3},
    )
    create_result_set(api, namespace, "expiring", source={"taskRefs": ["tooled"]}, ttl="2s")


def check(api: client.ApiClient, kubeconfig: Any, namespace: str, bucket: Bucket) -> None:
    """Wait for every part of the pass to end as its feature promises."""
    tooled = wait_phase(api, namespace, "tooled", TERMINAL)["status"]
    assert (tooled["phase"], tooled["result"]) == ("Completed", {"v": 1})
    wait_for(lambda: _tool_ready(api, namespace, "echo"), 30, "the Tool to be Ready")

    flaky = wait_phase(api, namespace, "flaky", TERMINAL)["status"]
    assert (flaky["phase"], flaky["attempts"]) == ("Completed", 2)
    assert "BackOff" in wait_for(lambda: events_of(api, namespace, "flaky"), 30, "a BackOff Event")

    stuck = wait_phase(api, namespace, "no-account", TERMINAL)["status"]
    assert (stuck["phase"], stuck["reason"]) == ("Failed", "PodCreateFailed")
    [job] = jobs_of(api, namespace, "no-account")
    assert job.spec.suspend is True, "the Job that could not create its pod is stopped"

    _check_workflows(api, namespace)
    _check_result_sets(api, kubeconfig, namespace, bucket)


def _check_workflows(api: client.ApiClient, namespace: str) -> None:
    wait_workflow(api, namespace, "resumed", {"Failed"})
    failed_uid = children_of(api, namespace, "resumed")["resumed-fix"]["metadata"]["uid"]
    resume = {
        "metadata": {"annotations": {"execflow.dev/resume": "1"}},
        "spec": {"variables": {"code": "0"}},
    }
    patch_workflow(api, namespace, "resumed", resume)

    wait_for(
        lambda: (
            (children_of(api, namespace, "halted").get("halted-slow") or {})
            .get("status", {})
            .get("phase")
            == "Running"
        ),
        60,
        "the halted workflow's child to run",
    )
    patch_workflow(api, namespace, "halted", {"spec": {"cancel": True}})
    assert wait_workflow(api, namespace, "halted", TERMINAL)["status"]["phase"] == "Cancelled"
    assert wait_phase(api, namespace, "halted-slow", TERMINAL)["status"]["phase"] == "Cancelled"
    wait_for(
        lambda: not jobs_of(api, namespace, "halted-slow"), 30, "the cancelled child's Job to go"
    )

    workflow = wait_workflow(api, namespace, "resumed", {"Completed"})
    assert workflow["status"]["resumes"] == 1
    child = children_of(api, namespace, "resumed")["resumed-fix"]
    assert child["metadata"]["uid"] != failed_uid, "the failed child was replaced"
    result_set = wait_result_set(api, namespace, "resumed", {"Ready"}, count=1)
    assert result_set["status"]["aggregations"] == {"total": 3}

    wait_for(lambda: _gone(api, namespace, "workflows", "brief"), 60, "the brief workflow's ttl")


def _check_result_sets(
    api: client.ApiClient, kubeconfig: Any, namespace: str, bucket: Bucket
) -> None:
    in_maps = wait_result_set(api, namespace, "in-maps", {"Ready"}, count=2)
    assert in_maps["status"]["storage"]["segments"] == 2
    assert len(config_maps_of(api, namespace, in_maps["metadata"]["uid"])) == 1, "both in one"
    assert sorted(r["result"]["v"] for r in read_back(kubeconfig, namespace, "in-maps")) == [1, 2]

    sealed = wait_result_set(api, namespace, "sealed", {"Ready"}, count=1)
    assert sealed["status"]["storage"]["keyId"]
    assert [r["result"] for r in read_back(kubeconfig, namespace, "sealed")] == [{"v": 1}]

    wait_result_set(api, namespace, "in-s3", {"Ready"}, count=1)
    assert bucket.objects("helm/"), "stored in the bucket"
    custom_api(api).delete_namespaced_custom_object(
        GROUP, VERSION, namespace, "resultsets", "in-s3"
    )
    wait_for(lambda: result_set_gone(api, namespace, "in-s3"), 30, "the S3 set to be let go")
    assert bucket.objects("helm/") == {}, "its objects were deleted first"

    expiring = wait_result_set(api, namespace, "expiring", {"Expired"}, timeout=30)
    assert config_maps_of(api, namespace, expiring["metadata"]["uid"]) == []


def _tool_ready(api: client.ApiClient, namespace: str, name: str) -> bool:
    tool = custom_api(api).get_namespaced_custom_object(GROUP, VERSION, namespace, "tools", name)
    conditions = (tool.get("status") or {}).get("conditions") or []
    return {c["type"]: c["status"] for c in conditions}.get("Ready") == "True"


def _gone(api: client.ApiClient, namespace: str, plural: str, name: str) -> bool:
    try:
        custom_api(api).get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
    except ApiException as error:
        if error.status == 404:
            return True
        raise
    return False


def task(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    body: dict[str, Any] = custom_api(api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, "tasks", name
    )
    return body


def task_names(api: client.ApiClient, namespace: str) -> list[str]:
    listed = custom_api(api).list_namespaced_custom_object(GROUP, VERSION, namespace, "tasks")
    return sorted(item["metadata"]["name"] for item in listed["items"])


def blocking_owner_references(api: client.ApiClient, namespace: str) -> list[Request]:
    """The finalizer checks the operator's creates implied: where the OwnerReferencesPermission-
    Enforcement admission plugin runs, an object whose owner reference blocks its owner's deletion
    needs `update` on the owner's finalizers. The audit log does not record these checks, so they
    are read off the objects the operator created: the Jobs of a Task, a Workflow's children."""
    created = [
        *(api.sanitize_for_serialization(job) for job in jobs_of(api, namespace, "tooled")),
        *children_of(api, namespace, "resumed").values(),
    ]
    plurals = {"Task": "tasks", "Workflow": "workflows"}
    return [
        Request(
            "update",
            GROUP,
            f"{plurals[owner['kind']]}/finalizers",
            namespace,
            owner["name"],
            200,
            "allow",
        )
        for body in created
        for owner in body["metadata"].get("ownerReferences") or ()
        if owner.get("blockOwnerDeletion")
    ]
