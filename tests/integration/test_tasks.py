"""Tools and Tasks end to end: the operator process against the real local control plane.

Every assertion reads real objects (Tasks, Jobs, pods, Events) from the API server; pods on kwok
nodes follow the simulation annotations, so outcomes (results, exit codes, durations) are chosen
by each test.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client

from tests.integration.objects import (
    TERMINAL,
    create_task,
    create_tool,
    events_of,
    jobs_of,
    patch_spec,
)
from tests.integration.operator_process import OperatorProcess, wait_phase
from tests.integration.waiting import wait_for


def test_task_runs_its_tool_and_records_the_json_result(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_tool(
        api,
        namespace,
        "cleaner",
        command=["python", "/app/clean.py"],
        args=["--input", "{{ parameters.input }}", "--limit={{ parameters.limit }}"],
        inputSchema={
            "type": "object",
            "required": ["input"],
            "properties": {"input": {"type": "string"}, "limit": {"type": "integer"}},
        },
        resources={"requests": {"cpu": "100m", "memory": "128Mi"}},
        defaults={"timeout": "5m"},
    )
    create_task(
        api,
        namespace,
        "clean",
        sim={"message": '{"rows": 42, "path": "s3://b/clean.csv"}', "duration": "200ms"},
        toolRef={"name": "cleaner"},
        parameters={"input": "raw.csv", "limit": 10},
        resources={"requests": {"cpu": "250m"}},
    )
    task = wait_phase(api, namespace, "clean", TERMINAL)
    status = task["status"]
    assert status["phase"] == "Completed"
    assert status["result"] == {"rows": 42, "path": "s3://b/clean.csv"}
    assert (status["exitCode"], status["attempts"], status["jobName"]) == (0, 1, "clean-1")
    assert status["observedGeneration"] == 1
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {
        "Reconciling": "False",
        "Stalled": "False",
        "Ready": "True",
        "Succeeded": "True",
    }
    status_managers = {
        entry["manager"]
        for entry in task["metadata"]["managedFields"]
        if entry.get("subresource") == "status"
    }
    assert status_managers == {"execflow"}, "the operator's writes name it"

    [job] = jobs_of(api, namespace, "clean")
    assert job.metadata.name == "clean-1"
    assert job.metadata.labels["execflow.dev/attempt"] == "1"
    owner = job.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.controller) == ("Task", "clean", True)
    assert job.spec.backoff_limit == 0
    assert job.spec.active_deadline_seconds == 300, "timeout from the Tool's defaults"
    pod_spec = job.spec.template.spec
    container = pod_spec.containers[0]
    assert container.args == ["--input", "raw.csv", "--limit=10"]
    assert container.resources.requests == {"cpu": "250m", "memory": "128Mi"}
    env = {e.name: e.value for e in container.env}
    assert env["EXECFLOW_PARAMETERS"] == '{"input":"raw.csv","limit":10}'
    assert pod_spec.automount_service_account_token is False
    assert pod_spec.security_context.run_as_non_root is True
    assert container.security_context.allow_privilege_escalation is False
    mount = container.volume_mounts[0]
    assert mount.mount_path == "/execflow"
    pods = (
        client.CoreV1Api(api)
        .list_namespaced_pod(namespace, label_selector="execflow.dev/task=clean")
        .items
    )
    assert pods[0].metadata.labels["execflow.dev/attempt"] == "1"
    assert pods[0].metadata.annotations["execflow.dev/parameters"] == env["EXECFLOW_PARAMETERS"]
    assert events_of(api, namespace, "clean") == [], "a routine success posts no Event"


def test_failed_attempts_are_retried_with_exponential_backoff(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_task(
        api,
        namespace,
        "flaky",
        sim={"fail-attempts": "2", "exit-code": "7", "message": '{"ok": true}'},
        retryPolicy={"maxRetries": 3, "retryDelay": "2s", "backoffMultiplier": 2},
    )
    status = wait_phase(api, namespace, "flaky", TERMINAL, timeout=90)["status"]
    assert (status["phase"], status["attempts"], status["result"]) == ("Completed", 3, {"ok": True})
    jobs = jobs_of(api, namespace, "flaky")
    assert [j.metadata.name for j in jobs] == ["flaky-1", "flaky-2", "flaky-3"]
    pods = {
        p.metadata.labels["execflow.dev/attempt"]: p
        for p in client.CoreV1Api(api)
        .list_namespaced_pod(namespace, label_selector="execflow.dev/task=flaky")
        .items
    }
    assert pods["1"].status.container_statuses[0].state.terminated.exit_code == 7
    # Timestamps have one-second resolution: allow one second of truncation on each gap.
    finished_1 = pods["1"].status.container_statuses[0].state.terminated.finished_at
    finished_2 = pods["2"].status.container_statuses[0].state.terminated.finished_at
    first_gap = (jobs[1].metadata.creation_timestamp - finished_1).total_seconds()
    second_gap = (jobs[2].metadata.creation_timestamp - finished_2).total_seconds()
    assert first_gap >= 1, "retry 1 waits retryDelay (2s)"
    assert second_gap >= 3, "retry 2 waits retryDelay x backoffMultiplier (4s)"
    reasons = wait_for(lambda: events_of(api, namespace, "flaky"), 30, "the BackOff Events")
    assert reasons.count("BackOff") == 2, "each retried failure is an Event"


def test_failure_not_listed_in_retry_on_is_not_retried(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_task(
        api,
        namespace,
        "strict",
        sim={"exit-code": "3", "message": "bad input"},
        retryPolicy={"maxRetries": 3, "retryOn": {"exitCodes": [7], "reasons": ["OOMKilled"]}},
    )
    status = wait_phase(api, namespace, "strict", TERMINAL)["status"]
    assert (status["phase"], status["reason"], status["exitCode"]) == ("Failed", "Error", 3)
    assert status["attempts"] == 1
    assert "bad input" in status["message"]
    assert len(jobs_of(api, namespace, "strict")) == 1


def test_attempt_longer_than_timeout_ends_in_timeout(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_task(api, namespace, "slow", sim={"duration": "60s"}, timeout="1s")
    status = wait_phase(api, namespace, "slow", TERMINAL)["status"]
    assert (status["phase"], status["reason"]) == ("Timeout", "DeadlineExceeded")
    [job] = jobs_of(api, namespace, "slow")
    assert job.spec.active_deadline_seconds == 1


def test_suspend_pauses_the_task_and_resume_runs_a_new_attempt(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_task(api, namespace, "pausable", sim={"duration": "4s"})
    wait_phase(api, namespace, "pausable", {"Running"})
    patch_spec(api, namespace, "pausable", suspend=True)
    status = wait_phase(api, namespace, "pausable", {"Paused"})["status"]
    assert status["reason"] == "Suspended"
    wait_for(lambda: not jobs_of(api, namespace, "pausable"), 30, "the attempt's Job to go")
    patch_spec(api, namespace, "pausable", suspend=False)
    status = wait_phase(api, namespace, "pausable", {"Completed"}, timeout=60)["status"]
    assert status["attempts"] == 2, "the stopped attempt is not reused"
    assert [j.metadata.name for j in jobs_of(api, namespace, "pausable")] == ["pausable-2"]


def test_cancel_stops_the_task_and_removes_its_pods(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_task(api, namespace, "doomed", sim={"duration": "120s"})
    wait_phase(api, namespace, "doomed", {"Running"})
    wait_for(
        lambda: (
            client.CoreV1Api(api)
            .list_namespaced_pod(namespace, label_selector="execflow.dev/task=doomed")
            .items
        ),
        30,
        "the attempt's pod",
    )
    patch_spec(api, namespace, "doomed", cancel=True)
    status = wait_phase(api, namespace, "doomed", {"Cancelled"})["status"]
    assert status["reason"] == "Cancelled"
    wait_for(
        lambda: (
            not client.CoreV1Api(api)
            .list_namespaced_pod(namespace, label_selector="execflow.dev/task=doomed")
            .items
        ),
        60,
        "the cancelled task's pods to be gone",
    )


def test_parameters_violating_the_input_schema_fail_with_the_validator_message(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_tool(
        api,
        namespace,
        "typed",
        inputSchema={
            "type": "object",
            "required": ["count"],
            "properties": {"count": {"type": "integer", "minimum": 1}},
        },
    )
    create_task(api, namespace, "bad-params", toolRef={"name": "typed"}, parameters={"count": 0})
    status = wait_phase(api, namespace, "bad-params", TERMINAL)["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "InvalidParameters")
    assert "count" in status["message"] and "minimum of 1" in status["message"]
    assert jobs_of(api, namespace, "bad-params") == []


def test_task_waits_for_a_missing_tool_and_proceeds_once_it_exists(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_task(api, namespace, "early", toolRef={"name": "late-tool"})

    def pending_for_tool() -> bool:
        task = wait_phase(api, namespace, "early", {"Pending"})
        return bool(task["status"].get("reason") == "ToolNotFound")

    wait_for(pending_for_tool, 30, "reason ToolNotFound")
    assert jobs_of(api, namespace, "early") == []
    create_tool(api, namespace, "late-tool")
    assert wait_phase(api, namespace, "early", TERMINAL)["status"]["phase"] == "Completed"


def test_identical_execution_is_served_from_the_cache_even_after_a_restart(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_tool(api, namespace, "pure")
    common: dict[str, Any] = {
        "toolRef": {"name": "pure"},
        "parameters": {"x": 1},
        "cache": {"enabled": True, "ttl": "1h"},
    }
    create_task(api, namespace, "first", sim={"message": '{"answer": 42}'}, **common)
    assert wait_phase(api, namespace, "first", TERMINAL)["status"]["phase"] == "Completed"
    create_task(api, namespace, "second", **common)
    status = wait_phase(api, namespace, "second", TERMINAL)["status"]
    assert (status["phase"], status["reason"], status["cacheHit"]) == (
        "Completed",
        "CacheHit",
        True,
    )
    assert status["result"] == {"answer": 42}
    assert jobs_of(api, namespace, "second") == []

    operator.stop()
    operator.start()
    create_task(api, namespace, "third", **common)
    status = wait_phase(api, namespace, "third", TERMINAL)["status"]
    assert (status["reason"], status["result"]) == ("CacheHit", {"answer": 42})
    create_task(api, namespace, "different", **{**common, "parameters": {"x": 2}})
    status = wait_phase(api, namespace, "different", TERMINAL)["status"]
    assert status["reason"] == "Succeeded" and not status.get("cacheHit")


def test_operator_killed_at_any_moment_never_duplicates_an_attempt_or_loses_a_result(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    names = [f"survivor-{i}" for i in range(12)]
    for index, name in enumerate(names):
        create_task(
            api,
            namespace,
            name,
            sim={"duration": f"{200 + 150 * index}ms", "message": f'{{"n": {index}}}'},
            retryPolicy={"maxRetries": 1, "retryDelay": "500ms"},
        )
    batch = client.BatchV1Api(api)
    for crash in range(1, 4):
        # Crash at different points of the run: after 3, 6 and 9 Jobs exist.
        wait_for(
            lambda crash=crash: len(batch.list_namespaced_job(namespace).items) >= 3 * crash,
            60,
            f"{3 * crash} Jobs before crash {crash}",
        )
        operator.kill()
        operator.start()
    for index, name in enumerate(names):
        status = wait_phase(api, namespace, name, TERMINAL, timeout=90)["status"]
        assert status["phase"] == "Completed", (name, status)
        assert status["result"] == {"n": index}
        jobs = jobs_of(api, namespace, name)
        attempts = [j.metadata.labels["execflow.dev/attempt"] for j in jobs]
        assert len(attempts) == len(set(attempts)) == status["attempts"] == 1, (name, attempts)


def test_metrics_count_tasks_by_phase(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_task(api, namespace, "counted")
    wait_phase(api, namespace, "counted", TERMINAL)
    text = operator.metrics()
    assert 'execflow_tasks{phase="Completed"}' in text
    assert "execflow_task_attempts_total" in text
    assert "execflow_task_queue_wait_seconds_bucket" in text
