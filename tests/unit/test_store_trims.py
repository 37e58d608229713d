"""The stores keep only part of each Job and pod: exactly what their readers look at.

Reading an attempt from a trimmed Job and pod gives the same attempt as from the whole objects,
capacity accounting sees the same requests and node, and the indexes find the same owners.
"""

import datetime
from typing import Any

from execflow.core.cluster_capacity import pod_requests
from execflow.core.tasks.attempts import CONTAINER_NAME, JobObservation, attempt_of
from execflow.handlers.stores import Stores, controller_uid

NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)
MANAGED = [{"manager": "kube-controller-manager", "fieldsV1": {"f:status": {}}}]


def whole_job(**status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "t-1",
            "namespace": "ns",
            "uid": "j1",
            "resourceVersion": "10",
            "labels": {"execflow.dev/task": "t", "execflow.dev/attempt": "1"},
            "annotations": {"execflow.dev/stopped": '{"reason": "Timeout"}'},
            "ownerReferences": [{"uid": "t1", "controller": True, "kind": "Task", "name": "t"}],
            "creationTimestamp": "2026-01-01T11:59:00Z",
            "managedFields": MANAGED,
        },
        "spec": {"suspend": False, "template": {"spec": {"containers": [{"name": "tool"}]}}},
        "status": status,
    }


def whole_pod(state: dict[str, Any], **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "t-1-abc",
            "namespace": "ns",
            "uid": "p1",
            "resourceVersion": "11",
            "labels": {"execflow.dev/task": "t"},
            "annotations": {"sim.execflow.dev/duration": "0s"},
            "ownerReferences": [{"uid": "j1", "controller": True, "kind": "Job", "name": "t-1"}],
            "creationTimestamp": "2026-01-01T11:59:01Z",
            "managedFields": MANAGED,
        },
        "spec": {
            "nodeName": "node-1",
            "volumes": [{"name": "x", "emptyDir": {}}],
            "containers": [
                {
                    "name": CONTAINER_NAME,
                    "image": "busybox",
                    "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}},
                }
            ],
        },
        "status": {
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Ready", "status": "False", "reason": "PodCompleted"},
            ],
            "containerStatuses": [
                {"name": CONTAINER_NAME, "imageID": "sha256:abc", "state": state, "ready": False}
            ],
            **status,
        },
    }


DONE = {
    "terminated": {
        "exitCode": 3,
        "reason": "Error",
        "message": "boom",
        "startedAt": "2026-01-01T11:59:02Z",
        "finishedAt": "2026-01-01T11:59:29Z",
    }
}
FAILED = {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}


def test_attempts_read_from_trimmed_jobs_and_pods_are_the_same() -> None:
    stores = Stores()
    for job in (whole_job(failed=1, conditions=[FAILED]), whole_job(active=1)):
        for pod in (
            whole_pod(DONE, phase="Failed"),
            whole_pod(DONE, phase="Failed", reason="Evicted"),
        ):
            stores.jobs.put(job)
            stores.pods.put(pod)
            kept_job = stores.jobs.get("j1")
            kept_pod = stores.pods.get("p1")
            assert kept_job is not None and kept_pod is not None
            assert "managedFields" not in kept_job["metadata"]
            assert "template" not in kept_job["spec"]
            assert "volumes" not in kept_pod["spec"]
            whole = attempt_of(JobObservation(job, [pod]), NOW)
            trimmed = attempt_of(JobObservation(kept_job, [kept_pod]), NOW)
            assert trimmed == whole
            stores.jobs.delete(job)
            stores.pods.delete(pod)


def test_capacity_and_owners_read_from_a_trimmed_pod_are_the_same() -> None:
    stores = Stores()
    pod = whole_pod(DONE, phase="Running")
    stores.pods.put(pod)
    kept = stores.pods.get("p1")
    assert kept is not None
    assert pod_requests(kept) == pod_requests(pod)
    assert kept["spec"]["nodeName"] == "node-1"
    assert controller_uid(kept) == "j1"
    assert stores.pods.indexed("owner", "j1") == [kept]
