"""Which changes of a Job or a pod wake its Task: exactly those that can change its attempt.

The operator skips a Task's reconcile when a Job or pod changed only outside its signature, so
the signature must cover everything `attempt_of` reads: a change inside it changes the signature,
and along a Job's real life (the Job controller's counter updates) the attempt read from any two
bodies with the same signature is the same.
"""

import copy
import datetime
from typing import Any

from execflow.core.tasks.attempts import (
    CONTAINER_NAME,
    JobObservation,
    attempt_of,
    job_signature,
    pod_signature,
)

NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)


def job(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "t-1",
            "uid": "j1",
            "labels": {"execflow.dev/attempt": "1"},
            "creationTimestamp": "2026-01-01T11:59:00Z",
        },
        "status": status,
    }


def pod(state: dict[str, Any] | None = None, **status: Any) -> dict[str, Any]:
    container = [{"name": CONTAINER_NAME, "state": state}] if state is not None else []
    return {
        "metadata": {"name": "t-1-x", "creationTimestamp": "2026-01-01T11:59:01Z"},
        "status": {"containerStatuses": container, **status},
    }


def condition(kind: str, status: str = "True", **fields: str) -> dict[str, str]:
    return {"type": kind, "status": status, "lastTransitionTime": "2026-01-01T11:59:30Z", **fields}


RUNNING = {"running": {"startedAt": "2026-01-01T11:59:02Z"}}
DONE = {
    "terminated": {
        "exitCode": 0,
        "reason": "Completed",
        "startedAt": "2026-01-01T11:59:02Z",
        "finishedAt": "2026-01-01T11:59:29Z",
    }
}


def test_counter_updates_of_the_job_controller_keep_the_signature_and_the_attempt() -> None:
    bodies = [
        job(),
        job(active=1, startTime="2026-01-01T11:59:00Z"),
        job(active=1, ready=1, startTime="2026-01-01T11:59:00Z"),
        job(active=0, uncountedTerminatedPods={"succeeded": ["p"]}),
        job(succeeded=1, conditions=[condition("SuccessCriteriaMet")]),
    ]
    observed = [pod(RUNNING, phase="Running")]
    signatures = {job_signature(body) for body in bodies}
    attempts = {attempt_of(JobObservation(body, observed), NOW) for body in bodies}
    assert len(signatures) == 1
    assert len(attempts) == 1


def test_an_ending_or_a_stop_mark_changes_the_job_signature() -> None:
    base = job(active=1)
    complete = job(succeeded=1, conditions=[condition("Complete")])
    failed = job(failed=1, conditions=[condition("Failed", reason="BackoffLimitExceeded")])
    stopped = copy.deepcopy(base)
    stopped["metadata"]["annotations"] = {"execflow.dev/stopped": "{}"}
    deleting = copy.deepcopy(base)
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T12:00:00Z"
    signatures = [job_signature(body) for body in (base, complete, failed, stopped, deleting)]
    assert len(set(signatures)) == len(signatures)


def test_pod_signatures_follow_the_container_and_scheduling_but_not_readiness() -> None:
    pending = pod()
    scheduled = pod(conditions=[condition("PodScheduled")])
    ready = pod(RUNNING, phase="Running", conditions=[condition("Ready")])
    running = pod(RUNNING, phase="Running")
    unschedulable = pod(conditions=[condition("PodScheduled", "False", message="0/4 nodes")])
    done = pod(DONE, phase="Succeeded")
    evicted = pod(DONE, phase="Failed", reason="Evicted")

    assert pod_signature(pending) == pod_signature(scheduled)
    assert pod_signature(running) == pod_signature(ready)
    distinct = [pod_signature(body) for body in (pending, running, unschedulable, done, evicted)]
    assert len(set(distinct)) == len(distinct)
    complete = job(succeeded=1, conditions=[condition("Complete")])
    for same in ((pending, scheduled), (running, ready)):
        first, second = (attempt_of(JobObservation(complete, [body]), NOW) for body in same)
        assert first == second
