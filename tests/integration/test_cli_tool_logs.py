"""`execflow tool call` and `execflow logs task` as a user runs them, against the real control
plane and operator.

Each command is a separate process with the test cluster's kubeconfig; assertions are on what it
printed, its exit code, and the Tasks it made (or did not make). The Tool's container does not
run on kwok nodes: the pod annotations `--pod-annotation` sets are the simulation contract, so
each test chooses the outcome (result, exit code, duration). On the local cluster, kwok serves
every fake pod's log (one line, `FAKE_POD_LOG`) through the API server's real pods/log path.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from kubernetes import client

from execflow.devcluster.cluster import FAKE_POD_LOG, LocalCluster
from tests.integration.cli import EXECFLOW, execflow
from tests.integration.objects import GROUP, VERSION, create_task, create_tool, custom_api, jobs_of
from tests.integration.operator_process import OperatorProcess, wait_phase
from tests.integration.waiting import wait_for

SCHEMA = {
    "type": "object",
    "required": ["input"],
    "properties": {
        "input": {"type": "string"},
        "limit": {"type": "integer", "minimum": 1},
        "version": {"type": "string"},
    },
}


def _tasks(api: client.ApiClient, namespace: str) -> list[dict[str, Any]]:
    listed = custom_api(api).list_namespaced_custom_object(GROUP, VERSION, namespace, "tasks")
    items: list[dict[str, Any]] = listed["items"]
    return items


def _sim(**values: str) -> list[str]:
    flags: list[str] = []
    for key, value in values.items():
        flags += ["--pod-annotation", f"sim.execflow.dev/{key.replace('_', '-')}={value}"]
    return flags


def _call(kubeconfig: Path, namespace: str, *args: str) -> subprocess.CompletedProcess[str]:
    return execflow(kubeconfig, "tool", "call", *args, "-n", namespace)


def test_call_waits_and_prints_the_result_as_json(
    api: client.ApiClient, kubeconfig: Path, namespace: str, operator: OperatorProcess
) -> None:
    create_tool(api, namespace, "cleaner", inputSchema=SCHEMA)
    done = _call(
        kubeconfig,
        namespace,
        "cleaner",
        "-p",
        "input=raw.csv",
        "-p",
        "limit=10",
        "-p",
        "version=3.10",
        "--label",
        "team=ml",
        *_sim(message='{"rows": 42, "path": "s3://b/clean.csv"}', duration="200ms"),
        "--wait",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"rows": 42, "path": "s3://b/clean.csv"}
    assert done.stderr == "", "no progress when stderr is not a terminal"
    [task] = _tasks(api, namespace)
    assert task["metadata"]["name"].startswith("cleaner-")
    assert task["metadata"]["labels"] == {"team": "ml", "execflow.dev/called-by": "cli"}
    assert task["spec"]["toolRef"] == {"name": "cleaner"}
    assert task["spec"]["parameters"] == {"input": "raw.csv", "limit": 10, "version": "3.10"}
    assert task["status"]["phase"] == "Completed"


def test_call_without_wait_prints_the_task_name_and_verbose_shows_progress(
    api: client.ApiClient, kubeconfig: Path, namespace: str, operator: OperatorProcess
) -> None:
    create_tool(api, namespace, "echo")
    created = _call(kubeconfig, namespace, "echo", "--parameters-json", '{"a": {"b": [1, 2]}}')
    assert created.returncode == 0, created.stderr
    name = created.stdout.strip()
    assert re.fullmatch(r"echo-[a-z0-9]{5}", name), created.stdout
    task = wait_phase(api, namespace, name, {"Completed"})
    assert task["spec"]["parameters"] == {"a": {"b": [1, 2]}}

    verbose = _call(kubeconfig, namespace, "echo", "--wait", "-v", *_sim(message="plain text"))
    assert verbose.returncode == 0, verbose.stderr
    assert json.loads(verbose.stdout) == "plain text", "a result that is not JSON is a string"
    assert "created" in verbose.stderr and ": Completed" in verbose.stderr, verbose.stderr


def test_parameters_against_the_schema_are_refused_before_any_task_exists(
    api: client.ApiClient, kubeconfig: Path, namespace: str, operator: OperatorProcess
) -> None:
    create_tool(api, namespace, "cleaner", inputSchema=SCHEMA)
    too_small = _call(kubeconfig, namespace, "cleaner", "-p", "input=a.csv", "-p", "limit=0")
    assert too_small.returncode == 1
    assert "no Task was created" in too_small.stderr
    assert "limit" in too_small.stderr and "minimum of 1" in too_small.stderr
    missing = _call(kubeconfig, namespace, "cleaner", "-p", "limit=3", "--wait")
    assert missing.returncode == 1
    assert "'input' is a required property" in missing.stderr
    not_a_number = _call(kubeconfig, namespace, "cleaner", "-p", "input=a", "-p", "limit=ten")
    assert not_a_number.returncode == 1
    assert "'ten' is not of type 'integer'" in not_a_number.stderr
    bad_flag = _call(kubeconfig, namespace, "cleaner", "-p", "input=a", "--timeout", "soon")
    assert bad_flag.returncode == 1 and "--timeout" in bad_flag.stderr
    unknown = _call(kubeconfig, namespace, "no-such-tool", "-p", "input=a")
    assert unknown.returncode == 1
    assert f"there is no tool {namespace}/no-such-tool" in unknown.stderr
    for refused in (too_small, missing, not_a_number, bad_flag, unknown):
        assert refused.stdout == "" and "Traceback" not in refused.stderr
    assert _tasks(api, namespace) == []


def test_a_failing_call_exits_1_with_the_reason_and_message(
    api: client.ApiClient, kubeconfig: Path, namespace: str, operator: OperatorProcess
) -> None:
    create_tool(api, namespace, "cleaner", inputSchema=SCHEMA)
    failed = _call(
        kubeconfig,
        namespace,
        "cleaner",
        "-p",
        "input=a.csv",
        *_sim(exit_code="3", message="bad input"),
        "--wait",
    )
    assert failed.returncode == 1
    assert failed.stdout == ""
    assert re.search(r"task \S+/cleaner-\w+ Failed \(Error\): .*bad input", failed.stderr)
    assert "exit code 3" in failed.stderr
    [task] = _tasks(api, namespace)
    assert task["status"]["phase"] == "Failed"


def test_a_call_past_its_timeout_exits_124_and_one_past_the_wait_exits_4(
    api: client.ApiClient, kubeconfig: Path, namespace: str, operator: OperatorProcess
) -> None:
    create_tool(api, namespace, "slow")
    timed_out = _call(
        kubeconfig, namespace, "slow", "--timeout", "1s", *_sim(duration="60s"), "--wait"
    )
    assert timed_out.returncode == 124, timed_out.stderr
    assert "Timeout (DeadlineExceeded)" in timed_out.stderr

    waited = _call(
        kubeconfig, namespace, "slow", *_sim(duration="5m"), "--wait", "--wait-timeout", "2s"
    )
    assert waited.returncode == 4, waited.stderr
    assert "has not ended after 2s; it keeps running" in waited.stderr
    name = re.search(r"task \S+/(slow-\w+) has not ended", waited.stderr)
    assert name is not None
    task = wait_phase(api, namespace, name.group(1), {"Running"})
    assert task["status"]["phase"] == "Running", "giving up the wait leaves the task alone"


def test_a_call_whose_task_is_cancelled_exits_3(
    api: client.ApiClient, kubeconfig: Path, namespace: str, operator: OperatorProcess
) -> None:
    create_tool(api, namespace, "slow")
    args = ["tool", "call", "slow", *_sim(duration="5m"), "--wait", "-n", namespace]
    with subprocess.Popen(
        [*EXECFLOW, *args, "--kubeconfig", str(kubeconfig)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as waiting:
        [task] = wait_for(lambda: _tasks(api, namespace), 30, "the call's Task")
        name = task["metadata"]["name"]
        wait_phase(api, namespace, name, {"Running"})
        custom_api(api).patch_namespaced_custom_object(
            GROUP, VERSION, namespace, "tasks", name, {"spec": {"cancel": True}}
        )
        out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 3, err
    assert out == ""
    assert f"task {namespace}/{name} Cancelled" in err


def test_logs_of_a_task_attempt_and_when_its_pod_is_gone(
    api: client.ApiClient,
    kubeconfig: Path,
    namespace: str,
    operator: OperatorProcess,
    local_cluster: LocalCluster | None,
) -> None:
    create_task(
        api,
        namespace,
        "flaky",
        sim={"fail-attempts": "1", "message": '{"rows": 7}'},
        retryPolicy={"maxRetries": 1, "retryDelay": "100ms"},
    )
    status = wait_phase(api, namespace, "flaky", {"Completed", "Failed"})["status"]
    assert (status["phase"], status["attempts"]) == ("Completed", 2)

    for attempt in ([], ["--attempt", "1"], ["--attempt", "2"]):
        shown = execflow(kubeconfig, "logs", "task", "flaky", *attempt, "-n", namespace)
        assert shown.returncode == 0, shown.stderr
        if local_cluster is not None:
            # kwok's log for every fake pod, served through the API server's pods/log proxy.
            assert shown.stdout == FAKE_POD_LOG + "\n"
    followed = execflow(kubeconfig, "logs", "task", "flaky", "-f", "--tail", "1", "-n", namespace)
    assert followed.returncode == 0, followed.stderr
    if local_cluster is not None:
        assert followed.stdout == FAKE_POD_LOG + "\n"

    beyond = execflow(kubeconfig, "logs", "task", "flaky", "--attempt", "3", "-n", namespace)
    assert beyond.returncode == 1
    assert f"task {namespace}/flaky has no attempt 3 (it started 2)" in beyond.stderr

    batch = client.BatchV1Api(api)
    for job in jobs_of(api, namespace, "flaky"):
        batch.delete_namespaced_job(job.metadata.name, namespace, propagation_policy="Background")
    core = client.CoreV1Api(api)
    wait_for(
        lambda: (
            not core.list_namespaced_pod(namespace, label_selector="execflow.dev/task=flaky").items
        ),
        60,
        "the attempts' pods to be gone",
    )
    gone = execflow(kubeconfig, "logs", "task", "flaky", "-n", namespace)
    assert gone.returncode == 1
    assert gone.stdout == ""
    assert f"the pod of attempt 2 of task {namespace}/flaky is gone" in gone.stderr
    assert "phase: Completed" in gone.stderr
    assert 'result: {"rows": 7}' in gone.stderr


def test_following_the_log_of_a_running_attempt_ends_when_it_ends(
    api: client.ApiClient,
    kubeconfig: Path,
    namespace: str,
    operator: OperatorProcess,
    local_cluster: LocalCluster | None,
) -> None:
    create_task(api, namespace, "steady", sim={"duration": "6s"})
    wait_phase(api, namespace, "steady", {"Running"})
    core = client.CoreV1Api(api)
    wait_for(
        lambda: any(
            pod.status.phase == "Running"
            for pod in core.list_namespaced_pod(
                namespace, label_selector="execflow.dev/task=steady"
            ).items
        ),
        30,
        "the attempt's pod to run",
    )
    followed = execflow(kubeconfig, "logs", "task", "steady", "-f", "-n", namespace, timeout=60)
    assert followed.returncode == 0, followed.stderr
    if local_cluster is not None:
        assert followed.stdout == FAKE_POD_LOG + "\n"
    [pod] = core.list_namespaced_pod(namespace, label_selector="execflow.dev/task=steady").items
    assert pod.status.phase == "Succeeded", "following ended only once the container had ended"


def test_logs_of_a_task_that_has_not_started_and_of_no_task(
    api: client.ApiClient, kubeconfig: Path, namespace: str, operator: OperatorProcess
) -> None:
    create_task(api, namespace, "waiting", toolRef={"name": "not-yet"})
    wait_for(
        lambda: (
            custom_api(api)
            .get_namespaced_custom_object(GROUP, VERSION, namespace, "tasks", "waiting")
            .get("status", {})
            .get("reason")
            == "ToolNotFound"
        ),
        30,
        "reason ToolNotFound",
    )
    early = execflow(kubeconfig, "logs", "task", "waiting", "-n", namespace)
    assert early.returncode == 1
    assert f"task {namespace}/waiting has not started an attempt yet (Pending, ToolNotFound)" in (
        early.stderr
    )
    absent = execflow(kubeconfig, "logs", "task", "nothing", "-n", namespace)
    assert absent.returncode == 1
    assert "not found" in absent.stderr and "Traceback" not in absent.stderr
