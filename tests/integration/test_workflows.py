"""Workflows on the real control plane: the operator process, child Tasks, Jobs, statuses, Events.

Every behaviour of the Workflow contract is driven through the API server and asserted on real
objects: which child Tasks exist (found by label, as a user would), what their specs were rendered
to, when they started relative to each other (the Tasks' own timestamps), how many Jobs each has,
the workflow's status as checkpoint and the Events it posted.
"""

from __future__ import annotations

import itertools

from kubernetes import client

from tests.integration.objects import (
    TERMINAL,
    children_of,
    create_workflow,
    jobs_of,
)
from tests.integration.operator_process import OperatorProcess
from tests.integration.workflows import (
    sim,
    span,
    step_of,
    units,
    wait_reasons,
    wait_workflow,
    when,
)


# ----- the contract's example, end to end -------------------------------------------------------
def test_the_ml_pipeline_runs_with_results_flowing_between_steps(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_workflow(
        api,
        namespace,
        "ml",
        variables={"dataset": "raw_data.csv", "epochs": 100},
        steps=[
            {
                "name": "preprocess",
                "tasks": [
                    sim(
                        "clean-data",
                        message='{"rows": 3, "path": "s3://data/clean.csv"}',
                        parameters={"input": "{{ variables.dataset }}"},
                    )
                ],
            },
            {
                "name": "train",
                "dependsOn": ["preprocess"],
                "executionMode": "Parallel",
                "when": "steps.preprocess.tasks['clean-data'].result.rows > 0",
                "tasks": [
                    sim(
                        "train-model",
                        message='{"rate": {{ item }}, "score": {{ int(item * 1000.0) }}}',
                        forEach="[0.1, 0.01, 0.001]",
                        when="item > 0.005",
                        parameters={
                            "learningRate": "{{ item }}",
                            "epochs": "{{ variables.epochs }}",
                            "data": "{{ steps.preprocess.tasks['clean-data'].result.path }}",
                        },
                        dependencies=[{"task": "clean-data", "type": "FinishToStart"}],
                    )
                ],
            },
            {
                "name": "pick",
                "tasks": [
                    sim(
                        "deploy",
                        when="steps.train.tasks['train-model']"
                        ".exists(t, t.phase == 'Completed' && t.result.score >= 100)",
                        parameters={
                            "best": "{{ steps.train.tasks['train-model']"
                            ".filter(t, t.phase == 'Completed' && t.result.score >= 100)"
                            "[0].result.rate }}"
                        },
                    )
                ],
            },
        ],
        **{
            "finally": [
                {
                    "name": "notify",
                    "tasks": [sim("notify", parameters={"outcome": "{{ workflow.status }}"})],
                }
            ]
        },
    )
    workflow = wait_workflow(api, namespace, "ml", TERMINAL)
    status = workflow["status"]
    assert (status["phase"], status["reason"]) == ("Completed", "Succeeded"), status
    assert status["progress"] == "6/6"

    children = children_of(api, namespace, "ml")
    assert sorted(children) == [
        "ml-clean-data",
        "ml-deploy",
        "ml-notify",
        "ml-train-model-0",
        "ml-train-model-1",
    ]
    uid = workflow["metadata"]["uid"]
    for name, child in children.items():
        owner = child["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["uid"], owner["controller"]) == ("Workflow", uid, True)
        assert child["metadata"]["labels"]["execflow.dev/workflow"] == "ml"
        assert child["status"]["phase"] == "Completed", (name, child["status"])
        assert len(jobs_of(api, namespace, name)) == 1, name
    assert children["ml-train-model-1"]["metadata"]["labels"]["execflow.dev/step"] == "train"

    # Templates rendered from finished results, whole-string placeholders keeping their types.
    assert children["ml-clean-data"]["spec"]["parameters"] == {"input": "raw_data.csv"}
    assert children["ml-train-model-1"]["spec"]["parameters"] == {
        "learningRate": 0.01,
        "epochs": 100,
        "data": "s3://data/clean.csv",
    }
    assert children["ml-deploy"]["spec"]["parameters"] == {"best": 0.1}
    assert children["ml-notify"]["spec"]["parameters"] == {"outcome": "Completed"}
    # Each child was created only once what it reads had finished.
    cleaned = span(children["ml-clean-data"])[1]
    for name in ("ml-train-model-0", "ml-train-model-1"):
        assert span(children[name])[0] >= cleaned
    assert span(children["ml-deploy"])[0] >= max(
        span(children[n])[1] for n in ("ml-train-model-0", "ml-train-model-1")
    )
    assert span(children["ml-notify"])[0] >= span(children["ml-deploy"])[1]

    assert units(workflow, "train") == [
        ("train-model", 0, "Completed", "Succeeded"),
        ("train-model", 1, "Completed", "Succeeded"),
        ("train-model", 2, "Skipped", "ConditionFalse"),
    ]
    assert status["outputs"]["clean-data"] == {"rows": 3, "path": "s3://data/clean.csv"}
    assert status["outputs"]["train-model"] == [
        {"rate": 0.1, "score": 100},
        {"rate": 0.01, "score": 10},
        None,
    ]
    assert when(status["startedAt"]) <= when(status["finishedAt"])
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Ready"]["status"] == "True"
    assert conditions["Ready"]["observedGeneration"] == workflow["metadata"]["generation"]
    found = wait_reasons(api, namespace, "ml", {"Started", "StepCompleted", "Completed"})
    assert found.count("StepCompleted") == 4


# ----- execution modes --------------------------------------------------------------------------
def test_sequential_and_parallel_steps_order_their_tasks(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_workflow(
        api,
        namespace,
        "modes",
        steps=[
            {"name": "one-by-one", "tasks": [sim(f"s{i}", "300ms") for i in range(3)]},
            {
                "name": "two-at-a-time",
                "executionMode": "Parallel",
                "parallelism": 2,
                "tasks": [sim(f"p{i}", "1s") for i in range(4)],
            },
        ],
    )
    assert wait_workflow(api, namespace, "modes", TERMINAL)["status"]["phase"] == "Completed"
    children = children_of(api, namespace, "modes")
    sequence = [span(children[f"modes-s{i}"]) for i in range(3)]
    for before, after in itertools.pairwise(sequence):
        assert after[0] >= before[1]
    parallel = [span(children[f"modes-p{i}"]) for i in range(4)]
    assert min(start for start, _ in parallel) >= sequence[-1][1]
    overlap = max(
        sum(1 for start, end in parallel if start <= moment < end) for moment, _ in parallel
    )
    assert overlap == 2


def test_a_diamond_dag_runs_each_task_after_its_dependencies(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_workflow(
        api,
        namespace,
        "diamond",
        steps=[
            {
                "name": "dag",
                "executionMode": "Hybrid",
                "tasks": [
                    sim("join", dependencies=[{"task": "left"}, {"task": "right"}]),
                    sim("left", "1s", dependencies=[{"task": "root"}]),
                    sim("right", "1s", dependencies=[{"task": "root"}]),
                    sim("root"),
                ],
            }
        ],
    )
    assert wait_workflow(api, namespace, "diamond", TERMINAL)["status"]["phase"] == "Completed"
    c = {
        n.removeprefix("diamond-"): span(t)
        for n, t in children_of(api, namespace, "diamond").items()
    }
    assert c["left"][0] >= c["root"][1] and c["right"][0] >= c["root"][1]
    assert c["join"][0] >= max(c["left"][1], c["right"][1])
    assert c["left"][0] < c["right"][1] and c["right"][0] < c["left"][1], "left and right overlap"


def test_conditional_runs_the_first_task_whose_condition_holds(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_workflow(
        api,
        namespace,
        "pick",
        variables={"size": 50},
        steps=[
            {
                "name": "route",
                "executionMode": "Conditional",
                "tasks": [
                    sim("small", when="variables.size < 10"),
                    sim("medium", when="variables.size < 100"),
                    sim("fallback"),
                ],
            }
        ],
    )
    workflow = wait_workflow(api, namespace, "pick", TERMINAL)
    assert workflow["status"]["phase"] == "Completed"
    assert sorted(children_of(api, namespace, "pick")) == ["pick-medium"]
    assert units(workflow, "route") == [
        ("small", None, "Skipped", "NotChosen"),
        ("medium", None, "Completed", "Succeeded"),
        ("fallback", None, "Skipped", "NotChosen"),
    ]


def test_to_finish_dependencies_reach_the_child_tasks(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_workflow(
        api,
        namespace,
        "ftf",
        steps=[
            {
                "name": "both",
                "executionMode": "Hybrid",
                "tasks": [
                    sim("slow", "2s"),
                    sim("quick", dependencies=[{"task": "slow", "type": "FinishToFinish"}]),
                ],
            }
        ],
    )
    assert wait_workflow(api, namespace, "ftf", TERMINAL)["status"]["phase"] == "Completed"
    children = children_of(api, namespace, "ftf")
    quick = children["ftf-quick"]
    assert [(d["task"], d["type"]) for d in quick["spec"]["dependencies"]] == [
        ("ftf-slow", "FinishToFinish")
    ]
    assert span(quick)[0] < span(children["ftf-slow"])[1] <= span(quick)[1]


# ----- onError and finally ----------------------------------------------------------------------
def test_on_error_continue_tolerates_a_failure_and_finally_sees_completed(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_workflow(
        api,
        namespace,
        "tolerant",
        steps=[
            {
                "name": "best-effort",
                "onError": "Continue",
                "executionMode": "Parallel",
                "tasks": [sim("flaky", exit_code="3"), sim("fine")],
            },
            {"name": "after", "tasks": [sim("next")]},
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
    workflow = wait_workflow(api, namespace, "tolerant", TERMINAL)
    assert workflow["status"]["phase"] == "Completed"
    tolerated = step_of(workflow, "best-effort")
    assert (tolerated["phase"], tolerated["reason"]) == ("Completed", "FailuresTolerated")
    assert "task flaky failed" in tolerated["message"]
    children = children_of(api, namespace, "tolerant")
    assert children["tolerant-flaky"]["status"]["phase"] == "Failed"
    assert children["tolerant-report"]["spec"]["parameters"] == {"outcome": "Completed"}
    assert span(children["tolerant-report"])[0] >= span(children["tolerant-next"])[1]


def test_on_error_stop_fails_the_workflow_and_finally_still_runs(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_workflow(
        api,
        namespace,
        "strict",
        steps=[
            {"name": "first", "tasks": [sim("breaks", exit_code="2")]},
            {"name": "second", "tasks": [sim("never")]},
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
    workflow = wait_workflow(api, namespace, "strict", TERMINAL)
    status = workflow["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "StepFailed")
    assert "step first: task breaks failed" in status["message"]
    assert (step_of(workflow, "second")["phase"], step_of(workflow, "second")["reason"]) == (
        "Skipped",
        "NotRun",
    )
    children = children_of(api, namespace, "strict")
    assert sorted(children) == ["strict-breaks", "strict-report"]
    assert children["strict-report"]["spec"]["parameters"] == {"outcome": "Failed"}
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "False"
    wait_reasons(api, namespace, "strict", {"Started", "StepFailed", "StepSkipped", "Failed"})


def test_a_tasks_own_retries_come_before_its_steps_retry(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_workflow(
        api,
        namespace,
        "retry",
        steps=[
            {
                "name": "work",
                "executionMode": "Parallel",
                "onError": "Retry",
                "maxRetries": 1,
                "tasks": [
                    {
                        **sim("recovers"),
                        "retryPolicy": {"maxRetries": 1, "retryDelay": "100ms"},
                        "podTemplate": {
                            "metadata": {"annotations": {"sim.execflow.dev/fail-attempts": "1"}}
                        },
                    },
                    sim("broken", exit_code="4"),
                ],
            }
        ],
    )
    workflow = wait_workflow(api, namespace, "retry", TERMINAL)
    assert workflow["status"]["phase"] == "Failed"
    assert step_of(workflow, "work")["retries"] == 1
    children = children_of(api, namespace, "retry")
    recovers = children["retry-recovers"]
    assert recovers["status"]["phase"] == "Completed"
    assert recovers["status"]["attempts"] == 2
    assert recovers["metadata"]["labels"]["execflow.dev/run"] == "0.0"
    assert len(jobs_of(api, namespace, "retry-recovers")) == 2
    broken = children["retry-broken"]
    assert broken["metadata"]["labels"]["execflow.dev/run"] == "0.1"
    assert broken["status"]["phase"] == "Failed"
    wait_reasons(api, namespace, "retry", {"RetryingStep", "StepFailed", "Failed"})
