"""Workflows over time on the real control plane: timeout, cancel, suspend, TTL, resume, bad input,
an operator killed mid-run, a 1,000-item fan-out and the metrics.

Like test_workflows, every assertion is on real objects: child Tasks, Jobs, the status, Events.
"""

from __future__ import annotations

import datetime
import json

from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.integration.objects import (
    TERMINAL,
    children_of,
    create_task,
    create_workflow,
    get_workflow,
    jobs_of,
    patch_workflow,
)
from tests.integration.operator_process import OperatorProcess
from tests.integration.waiting import wait_for
from tests.integration.workflows import (
    sim,
    span,
    step_of,
    wait_reasons,
    wait_workflow,
    when,
)


# ----- timeout, cancel, suspend, TTL ------------------------------------------------------------
def test_global_timeout_stops_every_child_and_runs_finally(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_workflow(
        api,
        namespace,
        "late",
        globalTimeout="3s",
        steps=[
            {"name": "long", "executionMode": "Parallel", "tasks": [sim("a", "5m"), sim("b", "5m")]}
        ],
        **{
            "finally": [
                {
                    "name": "report",
                    "tasks": [sim("report", parameters={"outcome": "{{ workflow.status }}"})],
                }
            ]
        },
    )
    workflow = wait_workflow(api, namespace, "late", TERMINAL, timeout=60)
    status = workflow["status"]
    assert (status["phase"], status["reason"]) == ("Timeout", "DeadlineExceeded")
    took = when(status["finishedAt"]) - when(status["startedAt"])
    assert datetime.timedelta(seconds=3) <= took < datetime.timedelta(seconds=30), took
    children = children_of(api, namespace, "late")
    for name in ("late-a", "late-b"):
        assert children[name]["spec"]["cancel"] is True
        assert children[name]["status"]["phase"] == "Cancelled"
    assert children["late-report"]["spec"]["parameters"] == {"outcome": "Timeout"}
    wait_reasons(api, namespace, "late", {"Timeout"})


def test_cancel_cancels_the_running_children_and_starts_nothing_more(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_workflow(
        api,
        namespace,
        "stop",
        steps=[
            {"name": "long", "tasks": [sim("a", "5m")]},
            {"name": "later", "tasks": [sim("b")]},
        ],
        **{
            "finally": [
                {
                    "name": "report",
                    "tasks": [sim("report", parameters={"outcome": "{{ workflow.status }}"})],
                }
            ]
        },
    )
    wait_for(
        lambda: (
            (children_of(api, namespace, "stop").get("stop-a") or {}).get("status", {}).get("phase")
            == "Running"
        ),
        60,
        "the first child to run",
    )
    patch_workflow(api, namespace, "stop", {"spec": {"cancel": True}})
    workflow = wait_workflow(api, namespace, "stop", TERMINAL)
    assert (workflow["status"]["phase"], workflow["status"]["reason"]) == ("Cancelled", "Cancelled")
    children = children_of(api, namespace, "stop")
    assert sorted(children) == ["stop-a", "stop-report"]
    assert children["stop-a"]["status"]["phase"] == "Cancelled"
    assert children["stop-report"]["spec"]["parameters"] == {"outcome": "Cancelled"}
    assert step_of(workflow, "later")["phase"] == "Skipped"
    wait_reasons(api, namespace, "stop", {"Cancelled"})


def test_suspend_pauses_the_workflow_and_its_children_then_resumes(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_workflow(
        api,
        namespace,
        "nap",
        suspend=True,
        steps=[{"name": "one", "tasks": [sim("a", "3s")]}, {"name": "two", "tasks": [sim("b")]}],
    )
    workflow = wait_workflow(api, namespace, "nap", {"Paused"})
    assert workflow["status"]["reason"] == "Suspended"
    assert children_of(api, namespace, "nap") == {}, "a child started while paused"

    patch_workflow(api, namespace, "nap", {"spec": {"suspend": False}})
    wait_for(
        lambda: (
            (children_of(api, namespace, "nap").get("nap-a") or {}).get("status", {}).get("phase")
            == "Running"
        ),
        60,
        "the first child to run",
    )
    patch_workflow(api, namespace, "nap", {"spec": {"suspend": True}})
    wait_workflow(api, namespace, "nap", {"Paused"})
    child = wait_for(
        lambda: (
            (c := children_of(api, namespace, "nap")["nap-a"])["status"].get("phase") == "Paused"
            and c
        ),
        60,
        "the running child to pause",
    )
    assert child["spec"]["suspend"] is True
    assert "nap-b" not in children_of(api, namespace, "nap")

    patch_workflow(api, namespace, "nap", {"spec": {"suspend": False}})
    workflow = wait_workflow(api, namespace, "nap", TERMINAL)
    assert workflow["status"]["phase"] == "Completed"
    children = children_of(api, namespace, "nap")
    assert children["nap-a"]["spec"]["suspend"] is False
    assert span(children["nap-b"])[0] >= span(children["nap-a"])[1]
    found = wait_reasons(api, namespace, "nap", {"Suspended", "Resumed", "Completed"})
    assert found.count("Suspended") == 2 and found.count("Resumed") == 2


def test_a_finished_workflow_and_its_children_go_after_the_ttl(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_workflow(
        api, namespace, "brief", ttlAfterFinished="2s", steps=[{"name": "s", "tasks": [sim("a")]}]
    )
    finished = wait_workflow(api, namespace, "brief", TERMINAL)["status"]["finishedAt"]

    def gone() -> bool:
        try:
            get_workflow(api, namespace, "brief")
        except ApiException as error:
            return error.status == 404
        return False

    wait_for(gone, 60, "the workflow to be deleted after its TTL")
    assert datetime.datetime.now(datetime.UTC) - when(finished) >= datetime.timedelta(seconds=2)
    wait_for(lambda: children_of(api, namespace, "brief") == {}, 60, "its children to be collected")


# ----- resume from checkpoint -------------------------------------------------------------------
def test_resume_reruns_only_what_did_not_complete_from_the_current_spec(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_workflow(
        api,
        namespace,
        "again",
        variables={"code": "5"},
        steps=[
            {
                "name": "work",
                "executionMode": "Parallel",
                "tasks": [
                    sim("good", message='{"kept": true}'),
                    sim("bad", exit_code="{{ variables.code }}"),
                ],
            },
            {"name": "after", "tasks": [sim("next")]},
        ],
    )
    failed = wait_workflow(api, namespace, "again", TERMINAL)
    assert failed["status"]["phase"] == "Failed"
    before = children_of(api, namespace, "again")
    good_uid = before["again-good"]["metadata"]["uid"]
    assert sorted(before) == ["again-bad", "again-good"]

    patch_workflow(
        api,
        namespace,
        "again",
        {
            "metadata": {"annotations": {"execflow.dev/resume": "1"}},
            "spec": {"variables": {"code": "0"}},
        },
    )
    workflow = wait_for(
        lambda: (
            (w := get_workflow(api, namespace, "again"))["status"]["phase"] == "Completed" and w
        ),
        90,
        "the resumed workflow to complete",
    )
    assert workflow["status"]["resumes"] == 1
    children = children_of(api, namespace, "again")
    assert children["again-good"]["metadata"]["uid"] == good_uid
    assert len(jobs_of(api, namespace, "again-good")) == 1
    assert children["again-bad"]["metadata"]["labels"]["execflow.dev/run"] == "1.0"
    assert children["again-bad"]["status"]["phase"] == "Completed"
    assert workflow["status"]["outputs"]["good"] == {"kept": True}
    assert "again-next" in children
    wait_reasons(api, namespace, "again", {"Resumed", "Completed"})

    patch_workflow(
        api, namespace, "again", {"metadata": {"annotations": {"execflow.dev/resume": "2"}}}
    )
    wait_reasons(api, namespace, "again", {"ResumeIgnored"})
    assert get_workflow(api, namespace, "again")["status"]["resumes"] == 1


# ----- bad input --------------------------------------------------------------------------------
# An expression that does not compile is refused at admission by the operator's webhook, and
# fails the workflow with the same message if it got past an unreachable webhook: both in
# test_workflow_webhook.py.
def test_a_child_name_taken_by_another_task_fails_the_workflow_without_touching_it(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_task(api, namespace, "taken-a", sim={"duration": "100ms"})
    create_workflow(api, namespace, "taken", steps=[{"name": "s", "tasks": [sim("a")]}])
    status = wait_workflow(api, namespace, "taken", TERMINAL)["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "NameConflict")
    assert "taken-a" in status["message"]
    other = client.CustomObjectsApi(api).get_namespaced_custom_object(
        "execflow.dev", "v1alpha1", namespace, "tasks", "taken-a"
    )
    assert not other["metadata"].get("ownerReferences")


# ----- a restarted operator, a large fan-out, metrics -------------------------------------------
def test_an_operator_killed_three_times_finishes_a_sixty_task_workflow_exactly_once(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_workflow(
        api,
        namespace,
        "tough",
        steps=[
            {
                "name": "fan",
                "tasks": [
                    sim(
                        "item",
                        "{{ string(300 + 40 * index) + 'ms' }}",
                        message='{"item": {{ item }}}',
                        forEach="[" + ", ".join(str(i) for i in range(20)) + "]",
                    )
                ],
            },
            {
                "name": "chain",
                "executionMode": "Hybrid",
                "tasks": [
                    sim(
                        f"link-{i}",
                        "200ms",
                        message=f'{{"link": {i}}}',
                        **({"dependencies": [{"task": f"link-{i - 1}"}]} if i % 4 else {}),
                    )
                    for i in range(20)
                ],
            },
            {
                "name": "tail",
                "executionMode": "Parallel",
                "tasks": [sim(f"end-{i}", "400ms", message=f'{{"end": {i}}}') for i in range(20)],
            },
        ],
    )
    batch = client.BatchV1Api(api)
    uids: dict[str, set[str]] = {}

    def watch_uids() -> None:
        for name, child in children_of(api, namespace, "tough").items():
            uids.setdefault(name, set()).add(child["metadata"]["uid"])

    for crash in range(1, 4):
        wait_for(
            lambda crash=crash: (
                watch_uids() or len(batch.list_namespaced_job(namespace).items) >= 15 * crash
            ),
            120,
            f"{15 * crash} Jobs before crash {crash}",
        )
        operator.kill()
        operator.start()
    workflow = wait_for(
        lambda: (
            watch_uids()
            or (
                (w := get_workflow(api, namespace, "tough"))["status"].get("phase") in TERMINAL
                and w
            )
        ),
        180,
        "the workflow to end",
    )
    assert workflow["status"]["phase"] == "Completed", workflow["status"]
    children = children_of(api, namespace, "tough")
    assert len(children) == 60
    for name, child in children.items():
        assert len(uids.get(name, {child["metadata"]["uid"]})) == 1, f"{name} was created twice"
        jobs = jobs_of(api, namespace, name)
        attempts = [j.metadata.labels["execflow.dev/attempt"] for j in jobs]
        assert len(attempts) == len(set(attempts)) == child["status"]["attempts"] == 1, (
            name,
            attempts,
        )
    outputs = workflow["status"]["outputs"]
    assert outputs["item"] == [{"item": i} for i in range(20)]
    assert [outputs[f"link-{i}"] for i in range(20)] == [{"link": i} for i in range(20)]
    assert [outputs[f"end-{i}"] for i in range(20)] == [{"end": i} for i in range(20)]


def test_a_thousand_item_fan_out_completes_with_a_small_status(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_workflow(
        api,
        namespace,
        "wide",
        variables={"items": list(range(1000))},
        steps=[
            {
                "name": "fan",
                "tasks": [
                    sim(
                        "item",
                        "10ms",
                        message='{"score": {{ index }}, "model": "s3://models/{{ index }}"}',
                        forEach="variables.items",
                    )
                ],
            }
        ],
    )
    workflow = wait_workflow(api, namespace, "wide", TERMINAL, timeout=600)
    assert workflow["status"]["phase"] == "Completed"
    assert workflow["status"]["progress"] == "1000/1000"
    size = len(json.dumps(workflow["status"]))
    assert size < 256 * 1024, size
    assert len(children_of(api, namespace, "wide")) == 1000


def test_metrics_count_workflows_their_duration_and_children(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_workflow(api, namespace, "counted", steps=[{"name": "s", "tasks": [sim("a")]}])
    wait_workflow(api, namespace, "counted", TERMINAL)
    text = operator.metrics()
    assert 'execflow_workflows{phase="Completed"}' in text
    assert 'execflow_workflow_duration_seconds_bucket{le="+Inf",phase="Completed"}' in text
    assert "execflow_workflow_child_tasks_total" in text
