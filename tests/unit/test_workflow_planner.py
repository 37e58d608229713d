"""The workflow planner, behaviour by behaviour, on a simulated set of children (no cluster).

Each test writes a small spec, drives `Simulation` (plan → apply → children end with scripted
outcomes) and asserts on what was created, in which order, and on the status the planner wrote.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from typing import Any

import pytest

from execflow.core.workflows.planner import plan
from execflow.core.workflows.units import RUN_LABEL, STEP_LABEL, TASK_LABEL, WORKFLOW_LABEL
from execflow.core.workflows.view import RESUME_ANNOTATION, build_view
from tests.unit.workflow_simulation import Outcome, Simulation, step_status, succeed


def task(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "container": {"image": "busybox"}, **extra}


def step(name: str, *tasks: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "tasks": list(tasks), **extra}


def failing(*names: str) -> Any:
    """Children whose name is listed fail; the others succeed."""

    def outcome(name: str, _body: Mapping[str, Any]) -> Outcome:
        return ("Failed", None) if name in names else ("Completed", {"ok": True})

    return outcome


def units(simulation: Simulation, step_name: str) -> list[tuple[str, Any, str, str]]:
    return [
        (t["name"], t.get("index"), t["phase"], t.get("reason", ""))
        for t in step_status(simulation, step_name)["tasks"]
    ]


def created_per_round(simulation: Simulation) -> list[list[str]]:
    return [[c.name for c in p.creations] for p in simulation.plans if p.creations]


# ----- modes --------------------------------------------------------------------------------------
def test_sequential_runs_one_task_at_a_time_in_list_order() -> None:
    sim = Simulation({"steps": [step("s", task("a"), task("b"), task("c"))]})
    assert sim.run(succeed) == "Completed"
    assert created_per_round(sim) == [["wf-a"], ["wf-b"], ["wf-c"]]
    assert sim.status["progress"] == "3/3"


def test_parallel_starts_every_task_at_once_within_the_step_parallelism() -> None:
    tasks = [task(f"t{i}") for i in range(5)]
    sim = Simulation({"steps": [step("s", *tasks, executionMode="Parallel", parallelism=2)]})
    assert sim.run(succeed) == "Completed"
    assert [len(r) for r in created_per_round(sim)] == [2, 2, 1]


def test_workflow_parallelism_bounds_children_across_steps() -> None:
    spec = {
        "parallelism": 3,
        "steps": [
            step("a", *[task(f"a{i}") for i in range(4)], executionMode="Parallel"),
            step("b", *[task(f"b{i}") for i in range(4)], executionMode="Parallel", dependsOn=[]),
        ],
    }
    sim = Simulation(spec)
    most = 0
    for _ in range(20):
        sim.step()
        running = sum(1 for c in sim.children.values() if not c["status"].get("phase"))
        most = max(most, running)
        if sim.phase == "Completed":
            break
        sim.finish(succeed)
    assert sim.phase == "Completed"
    assert most == 3


def test_hybrid_follows_task_dependencies_not_list_order() -> None:
    spec = {
        "steps": [
            step(
                "dag",
                task("d", dependencies=[{"task": "b"}, {"task": "c"}]),
                task("b", dependencies=[{"task": "a"}]),
                task("c", dependencies=[{"task": "a"}]),
                task("a"),
                executionMode="Hybrid",
            )
        ]
    }
    sim = Simulation(spec)
    assert sim.run(succeed) == "Completed"
    assert created_per_round(sim) == [["wf-a"], ["wf-b", "wf-c"], ["wf-d"]]
    for name in ("wf-b", "wf-c"):
        assert "wf-a" in sim.ended_before[name]
    assert {"wf-b", "wf-c"} <= sim.ended_before["wf-d"]


def test_conditional_runs_the_first_task_whose_when_holds() -> None:
    spec = {
        "variables": {"size": 50},
        "steps": [
            step(
                "pick",
                task("small", when="variables.size < 10"),
                task("medium", when="variables.size < 100"),
                task("large", when="true"),
                task("fallback"),
                executionMode="Conditional",
            )
        ],
    }
    sim = Simulation(spec)
    assert sim.run(succeed) == "Completed"
    assert sim.created == ["wf-medium"]
    assert units(sim, "pick") == [
        ("small", None, "Skipped", "NotChosen"),
        ("medium", None, "Completed", ""),
        ("large", None, "Skipped", "NotChosen"),
        ("fallback", None, "Skipped", "NotChosen"),
    ]


def test_conditional_without_a_true_when_runs_the_task_without_when() -> None:
    spec = {
        "steps": [
            step(
                "pick",
                task("never", when="false"),
                task("default"),
                executionMode="Conditional",
            )
        ]
    }
    sim = Simulation(spec)
    assert sim.run(succeed) == "Completed"
    assert sim.created == ["wf-default"]


def test_conditional_with_no_candidate_skips_every_task() -> None:
    spec = {"steps": [step("pick", task("x", when="false"), executionMode="Conditional")]}
    sim = Simulation(spec)
    assert sim.run(succeed) == "Completed"
    assert sim.created == []
    assert units(sim, "pick") == [("x", None, "Skipped", "NotChosen")]


# ----- steps: dependsOn and when ------------------------------------------------------------------
def test_steps_run_in_order_by_default_and_empty_depends_on_starts_at_once() -> None:
    spec = {
        "steps": [
            step("one", task("a")),
            step("two", task("b")),
            step("side", task("c"), dependsOn=[]),
        ]
    }
    sim = Simulation(spec)
    assert sim.run(succeed) == "Completed"
    assert created_per_round(sim) == [["wf-a", "wf-c"], ["wf-b"]]


def test_a_step_whose_when_is_false_is_skipped_and_later_steps_still_run() -> None:
    spec = {
        "steps": [
            step("measure", task("count")),
            step("train", task("fit"), when="steps.measure.tasks['count'].result.rows > 0"),
            step("report", task("publish"), dependsOn=["train"]),
        ]
    }
    sim = Simulation(spec)
    assert sim.run(lambda n, b: ("Completed", {"rows": 0})) == "Completed"
    assert sim.created == ["wf-count", "wf-publish"]
    skipped = step_status(sim, "train")
    assert (skipped["phase"], skipped["reason"]) == ("Skipped", "ConditionFalse")
    assert units(sim, "train") == [("fit", None, "Skipped", "ConditionFalse")]


def test_step_when_reads_the_phase_of_an_earlier_step() -> None:
    spec = {
        "steps": [
            step("first", task("a"), onError="Continue"),
            step("recover", task("r"), when="steps.first.tasks['a'].phase == 'Failed'"),
        ]
    }
    sim = Simulation(spec)
    assert sim.run(failing("wf-a")) == "Completed"
    assert sim.created == ["wf-a", "wf-r"]


# ----- templates, results, fan-out ----------------------------------------------------------------
def test_results_flow_forward_into_templates_with_their_json_types() -> None:
    spec = {
        "variables": {"dataset": "raw.csv", "epochs": 100},
        "steps": [
            step("prep", task("clean", parameters={"input": "{{ variables.dataset }}"})),
            step(
                "train",
                task(
                    "fit",
                    parameters={
                        "epochs": "{{ variables.epochs }}",
                        "data": "{{ steps.prep.tasks['clean'].result.path }}",
                        "label": "rows={{ steps.prep.tasks['clean'].result.rows }}",
                    },
                    container={"image": "x", "env": [{"name": "N", "value": "{{ 1 + 1 }}"}]},
                ),
            ),
        ],
    }
    sim = Simulation(spec)
    assert sim.run(lambda n, b: ("Completed", {"path": "s3://b/k", "rows": 7})) == "Completed"
    assert sim.children["wf-clean"]["spec"]["parameters"] == {"input": "raw.csv"}
    fit = sim.children["wf-fit"]["spec"]
    assert fit["parameters"] == {"epochs": 100, "data": "s3://b/k", "label": "rows=7"}
    assert fit["container"]["env"] == [{"name": "N", "value": 2}]
    assert sim.status["outputs"]["clean"] == {"path": "s3://b/k", "rows": 7}


def test_a_child_is_labelled_and_owned_by_its_workflow() -> None:
    sim = Simulation({"steps": [step("s", task("a"))]})
    sim.step()
    metadata = sim.children["wf-a"]["metadata"]
    assert metadata["labels"] == {
        WORKFLOW_LABEL: "wf",
        STEP_LABEL: "s",
        TASK_LABEL: "a",
        RUN_LABEL: "0.0",
    }
    owner = metadata["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "Workflow",
        "wf",
        "uid-wf",
        True,
    )
    assert "name" not in sim.children["wf-a"]["spec"]


def test_fan_out_makes_one_child_per_item_and_skips_items_whose_when_is_false() -> None:
    spec = {
        "steps": [
            step(
                "train",
                task(
                    "fit",
                    forEach="[0.1, 0.01, 0.001, 0.0001]",
                    when="item > 0.0005",
                    parameters={"rate": "{{ item }}", "slot": "{{ index }}"},
                ),
                executionMode="Parallel",
            ),
            step("pick", task("best", parameters={"scores": "{{ steps.train.tasks['fit'] }}"})),
        ]
    }
    sim = Simulation(spec)
    assert sim.run(lambda n, b: ("Completed", {"score": b["spec"]["parameters"].get("slot")})) == (
        "Completed"
    )
    assert sim.created[:3] == ["wf-fit-0", "wf-fit-1", "wf-fit-2"]
    assert sim.children["wf-fit-1"]["spec"]["parameters"] == {"rate": 0.01, "slot": 1}
    assert units(sim, "train")[3] == ("fit", 3, "Skipped", "ConditionFalse")
    scores = sim.children["wf-best"]["spec"]["parameters"]["scores"]
    assert [entry["phase"] for entry in scores] == ["Completed"] * 3 + ["Skipped"]
    assert [entry["result"] for entry in scores] == [{"score": 0}, {"score": 1}, {"score": 2}, None]
    assert sim.status["outputs"]["fit"] == [{"score": 0}, {"score": 1}, {"score": 2}, None]
    assert sim.status["progress"] == "5/5"


def test_fan_out_over_a_previous_result_waits_for_it() -> None:
    spec = {
        "steps": [
            step("list", task("ls")),
            step("each", task("work", forEach="steps.list.tasks['ls'].result.files")),
        ]
    }
    sim = Simulation(spec)
    sim.step()
    assert sim.status["progress"] == "0/2"
    sim.finish(lambda n, b: ("Completed", {"files": ["a", "b", "c"]}))
    sim.step()
    assert sim.created == ["wf-ls", "wf-work-0", "wf-work-1", "wf-work-2"]
    assert sim.status["progress"] == "1/4"


def test_a_large_output_is_referenced_not_copied() -> None:
    spec = {"steps": [step("s", task("big"), task("small"))]}
    sim = Simulation(spec)

    def outcome(name: str, _body: Mapping[str, Any]) -> Outcome:
        return ("Completed", {"blob": "x" * 20_000} if name == "wf-big" else {"n": 1})

    assert sim.run(outcome) == "Completed"
    assert sim.status["outputs"]["small"] == {"n": 1}
    reference = sim.status["outputs"]["big"]
    assert reference["size"] > 16 * 1024
    assert "execflow.dev/workflow-task=big" in reference["ref"]


def test_a_template_that_fails_to_render_fails_its_task_with_the_field() -> None:
    spec = {
        "steps": [
            step("a", task("x")),
            step("b", task("y", parameters={"v": "{{ steps.a.tasks['x'].result.missing }}"})),
        ]
    }
    sim = Simulation(spec)
    assert sim.run(succeed) == "Failed"
    assert units(sim, "b") == [("y", None, "Failed", "ExpressionError")]
    assert "missing" in step_status(sim, "b")["message"] or "missing" in sim.status["message"]


def test_for_each_that_is_not_a_list_fails_the_task() -> None:
    spec = {"steps": [step("s", task("x", forEach="{'a': 1}"))]}
    sim = Simulation(spec)
    assert sim.run(succeed) == "Failed"
    assert units(sim, "s") == [("x", None, "Failed", "ExpressionError")]


# ----- dependencies across steps ------------------------------------------------------------------
def test_finish_to_start_with_condition_failed_runs_only_after_a_failure() -> None:
    spec = {
        "steps": [
            step("work", task("job"), onError="Continue"),
            step(
                "handle",
                task("on-fail", dependencies=[{"task": "job", "condition": "Failed"}]),
                task("on-ok", dependencies=[{"task": "job", "condition": "Succeeded"}]),
                executionMode="Parallel",
            ),
        ]
    }
    sim = Simulation(spec)
    assert sim.run(failing("wf-job")) == "Completed"
    assert sim.created == ["wf-job", "wf-on-fail"]
    assert ("on-ok", None, "Skipped", "DependencyNotMet") in units(sim, "handle")


def test_to_finish_dependencies_are_passed_to_the_child_by_child_name() -> None:
    spec = {
        "steps": [
            step(
                "s",
                task("a", forEach="[1, 2]"),
                task("b", dependencies=[{"task": "a", "type": "StartToFinish"}]),
                executionMode="Hybrid",
            )
        ]
    }
    sim = Simulation(spec)
    sim.step()
    assert sorted(sim.created) == ["wf-a-0", "wf-a-1", "wf-b"]
    deps = sim.children["wf-b"]["spec"]["dependencies"]
    assert sorted(d["task"] for d in deps) == ["wf-a-0", "wf-a-1"]
    assert {d["type"] for d in deps} == {"StartToFinish"}


# ----- onError ------------------------------------------------------------------------------------
def test_on_error_stop_fails_the_workflow_skips_the_rest_and_runs_finally() -> None:
    spec = {
        "steps": [step("a", task("x")), step("b", task("y"))],
        "finally": [step("notify", task("n", parameters={"outcome": "{{ workflow.status }}"}))],
    }
    sim = Simulation(spec)
    assert sim.run(failing("wf-x")) == "Failed"
    assert sim.created == ["wf-x", "wf-n"]
    assert sim.children["wf-n"]["spec"]["parameters"] == {"outcome": "Failed"}
    assert (step_status(sim, "b")["phase"], step_status(sim, "b")["reason"]) == (
        "Skipped",
        "NotRun",
    )
    assert sim.status["reason"] == "StepFailed"
    assert "step a" in sim.status["message"]


def test_on_error_continue_tolerates_the_failure_and_completes() -> None:
    spec = {"steps": [step("a", task("x"), task("y"), onError="Continue"), step("b", task("z"))]}
    sim = Simulation(spec)
    assert sim.run(failing("wf-x")) == "Completed"
    assert sim.created == ["wf-x", "wf-y", "wf-z"]
    a = step_status(sim, "a")
    assert (a["phase"], a["reason"]) == ("Completed", "FailuresTolerated")


def test_on_error_stop_in_parallel_waits_for_running_siblings_before_failing() -> None:
    spec = {"steps": [step("p", task("x"), task("y"), executionMode="Parallel")]}
    sim = Simulation(spec)
    sim.step()
    sim.finish(failing("wf-x"), only=lambda n: n == "wf-x")
    sim.step()
    assert sim.phase == "Running"
    assert step_status(sim, "p")["phase"] == "Running"
    sim.finish(succeed)
    sim.step()
    assert sim.phase == "Failed"


def test_on_error_retry_runs_the_failed_tasks_again_with_a_new_run() -> None:
    spec = {"steps": [step("s", task("ok"), task("flaky"), onError="Retry", maxRetries=2)]}
    sim = Simulation(spec)
    failures = {"wf-flaky": 2}

    def outcome(name: str, _body: Mapping[str, Any]) -> Outcome:
        if failures.get(name, 0) > 0:
            failures[name] -= 1
            return ("Failed", None)
        return ("Completed", {"ok": True})

    assert sim.run(outcome) == "Completed"
    assert sim.created == ["wf-ok", "wf-flaky", "wf-flaky", "wf-flaky"]
    assert sim.children["wf-flaky"]["metadata"]["labels"][RUN_LABEL] == "0.2"
    assert step_status(sim, "s")["retries"] == 2


def test_on_error_retry_fails_once_retries_are_used_up() -> None:
    spec = {"steps": [step("s", task("bad"), onError="Retry", maxRetries=1)]}
    sim = Simulation(spec)
    assert sim.run(failing("wf-bad")) == "Failed"
    assert sim.created == ["wf-bad", "wf-bad"]
    assert step_status(sim, "s")["retries"] == 1


# ----- finally, cancel, timeout, suspend, TTL -----------------------------------------------------
def test_finally_runs_after_success_and_sees_completed() -> None:
    spec = {
        "steps": [step("a", task("x"))],
        "finally": [step("f", task("n", parameters={"o": "{{ workflow.status }}"}))],
    }
    sim = Simulation(spec)
    assert sim.run(succeed) == "Completed"
    assert sim.children["wf-n"]["spec"]["parameters"] == {"o": "Completed"}
    assert "wf-x" in sim.ended_before["wf-n"]


def test_a_failing_finally_step_fails_an_otherwise_successful_workflow() -> None:
    spec = {"steps": [step("a", task("x"))], "finally": [step("f", task("n"))]}
    sim = Simulation(spec)
    assert sim.run(failing("wf-n")) == "Failed"


def test_cancel_cancels_running_children_then_runs_finally() -> None:
    spec = {
        "steps": [step("a", task("x"), task("y"), executionMode="Parallel"), step("b", task("z"))],
        "finally": [step("f", task("n", parameters={"o": "{{ workflow.status }}"}))],
    }
    sim = Simulation(spec)
    sim.step()
    sim.spec = {**spec, "cancel": True}
    decision = sim.step()
    assert sorted(p.name for p in decision.patches if p.cancel) == ["wf-x", "wf-y"]
    assert sim.phase == "Running"
    assert sim.run(succeed) == "Cancelled"
    assert sim.children["wf-x"]["status"]["phase"] == "Cancelled"
    assert "wf-z" not in sim.children
    assert sim.children["wf-n"]["spec"]["parameters"] == {"o": "Cancelled"}
    assert sim.status["reason"] == "Cancelled"


def test_global_timeout_stops_children_and_ends_timeout() -> None:
    spec = {
        "globalTimeout": "30s",
        "steps": [step("a", task("x"))],
        "finally": [step("f", task("n", parameters={"o": "{{ workflow.status }}"}))],
    }
    sim = Simulation(spec)
    decision = sim.step()
    assert decision.requeue_at == sim.now + datetime.timedelta(seconds=30)
    sim.now += datetime.timedelta(seconds=31)
    decision = sim.step()
    assert [p.name for p in decision.patches if p.cancel] == ["wf-x"]
    assert sim.run(succeed) == "Timeout"
    assert sim.children["wf-n"]["spec"]["parameters"] == {"o": "Timeout"}
    assert sim.status["reason"] == "DeadlineExceeded"


def test_suspend_pauses_children_and_starts_nothing_until_resumed() -> None:
    spec: dict[str, Any] = {"steps": [step("a", task("x")), step("b", task("y"))]}
    sim = Simulation(spec)
    sim.step()
    sim.spec = {**spec, "suspend": True}
    decision = sim.step()
    assert [(p.name, p.suspend) for p in decision.patches] == [("wf-x", True)]
    assert sim.phase == "Paused"
    assert [e.reason for e in decision.events] == ["Suspended"]
    sim.children["wf-x"]["status"] = {"phase": "Completed", "result": {}}
    sim.step()
    assert "wf-y" not in sim.children
    assert sim.phase == "Paused"
    sim.spec = spec
    decision = sim.step()
    assert "wf-y" in sim.children
    assert sim.phase == "Running"
    assert [e.reason for e in decision.events] == ["Resumed"]
    assert sim.run(succeed) == "Completed"


def test_ttl_after_finished_deletes_the_workflow_once_it_expires() -> None:
    spec = {"ttlAfterFinished": "1m", "steps": [step("a", task("x"))]}
    sim = Simulation(spec)
    assert sim.run(succeed) == "Completed"
    finished = sim.now
    decision = sim.step()
    assert not decision.delete_workflow
    assert decision.requeue_at is not None
    assert decision.requeue_at >= finished + datetime.timedelta(seconds=59)
    sim.now = decision.requeue_at
    assert sim.step().delete_workflow


# ----- resume from checkpoint ---------------------------------------------------------------------
def test_resume_reruns_exactly_the_tasks_that_did_not_complete() -> None:
    spec = {
        "steps": [
            step("a", task("x"), task("y"), executionMode="Parallel", onError="Stop"),
            step("b", task("z")),
        ]
    }
    sim = Simulation(spec)
    assert sim.run(failing("wf-y")) == "Failed"
    assert sim.created == ["wf-x", "wf-y"]
    sim.annotations[RESUME_ANNOTATION] = "1"
    decision = sim.step()
    assert [e.reason for e in decision.events] == ["Resumed"]
    assert sim.phase == "Running"
    assert sim.status["resumes"] == 1
    assert sim.run(succeed) == "Completed"
    assert sim.created == ["wf-x", "wf-y", "wf-y", "wf-z"]
    assert sim.children["wf-y"]["metadata"]["labels"][RUN_LABEL] == "1.0"
    assert sim.children["wf-x"]["metadata"]["labels"][RUN_LABEL] == "0.0"


def test_resume_renders_from_the_current_spec() -> None:
    spec: dict[str, Any] = {
        "variables": {"input": "bad"},
        "steps": [step("a", task("x", parameters={"in": "{{ variables.input }}"}))],
    }
    sim = Simulation(spec)
    assert sim.run(failing("wf-x")) == "Failed"
    sim.spec = {**spec, "variables": {"input": "fixed"}}
    sim.annotations[RESUME_ANNOTATION] = "again"
    assert sim.run(succeed) == "Completed"
    assert sim.children["wf-x"]["spec"]["parameters"] == {"in": "fixed"}


def test_resuming_a_completed_workflow_is_ignored_with_an_event() -> None:
    sim = Simulation({"steps": [step("a", task("x"))]})
    assert sim.run(succeed) == "Completed"
    sim.annotations[RESUME_ANNOTATION] = "1"
    decision = sim.step()
    assert [e.reason for e in decision.events] == ["ResumeIgnored"]
    assert sim.phase == "Completed"
    assert sim.status["resumes"] == 0
    assert sim.step().events == ()


def test_the_same_resume_value_twice_resumes_once() -> None:
    sim = Simulation({"steps": [step("a", task("x"))]})
    assert sim.run(failing("wf-x")) == "Failed"
    sim.annotations[RESUME_ANNOTATION] = "1"
    assert sim.run(failing("wf-x")) == "Failed"
    assert sim.status["resumes"] == 1
    sim.step()
    assert sim.phase == "Failed"
    assert sim.created == ["wf-x", "wf-x"]


# ----- bad specs and the safety net ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "reason", "fragment"),
    [
        (
            {"steps": [step("a", task("x", when="1 +"))]},
            "InvalidExpression",
            "spec.steps[0].tasks[0].when",
        ),
        (
            {"steps": [step("a", task("x", parameters={"p": "{{ nope }}"}))]},
            "InvalidExpression",
            "spec.steps[0].tasks[0].parameters",
        ),
        (
            {
                "steps": [
                    step("a", task("x", when="steps.b.phase == 'Completed'")),
                    step("b", task("y")),
                ]
            },
            "InvalidSpec",
            "not a task or step of its own step or of a step listed before it",
        ),
        (
            {
                "steps": [
                    step(
                        "a",
                        task("x", dependencies=[{"task": "y"}]),
                        task("y", dependencies=[{"task": "x"}]),
                        executionMode="Hybrid",
                    )
                ]
            },
            "InvalidSpec",
            "cycle",
        ),
    ],
)
def test_a_spec_that_cannot_run_fails_with_reason_and_field(
    spec: dict[str, Any], reason: str, fragment: str
) -> None:
    sim = Simulation(spec)
    decision = sim.step()
    assert sim.phase == "Failed"
    assert sim.status["reason"] == reason
    assert fragment in sim.status["message"]
    assert [e.reason for e in decision.events] == [reason]
    assert sim.created == []


def test_a_child_deleted_from_under_the_workflow_is_not_lost_silently() -> None:
    sim = Simulation({"steps": [step("a", task("x"))]})
    sim.step()
    sim.children["wf-x"]["status"] = {"phase": "Completed", "result": {"v": 1}}
    sim.step()
    assert sim.phase == "Completed"
    del sim.children["wf-x"]
    sim.step()
    assert sim.phase == "Completed"
    assert sim.status["outputs"] == {"x": {"v": 1}}


def test_progress_and_step_timestamps_are_recorded() -> None:
    sim = Simulation({"steps": [step("a", task("x")), step("b", task("y"))]})
    assert sim.run(succeed) == "Completed"
    a, b = step_status(sim, "a"), step_status(sim, "b")
    assert a["startedAt"] <= a["finishedAt"] <= b["startedAt"] <= b["finishedAt"]
    assert sim.status["startedAt"] <= sim.status["finishedAt"]
    assert sim.status["progress"] == "2/2"
    assert [t["taskName"] for t in a["tasks"]] == ["wf-x"]


def test_events_tell_the_story_of_a_run() -> None:
    spec = {"steps": [step("a", task("x")), step("b", task("y"), when="false")]}
    sim = Simulation(spec)
    sim.run(succeed)
    reasons = [e.reason for p in sim.plans for e in p.events]
    assert reasons == ["Started", "StepCompleted", "StepSkipped", "Completed"]


def test_only_progress_changes_are_not_urgent() -> None:
    sim = Simulation({"steps": [step("a", task("x"))]})
    assert sim.step().urgent
    sim.children["wf-x"]["status"] = {"phase": "Running"}
    assert not sim.step().urgent
    sim.children["wf-x"]["status"] = {"phase": "Completed", "result": {}}
    assert sim.step().urgent


def test_status_of_a_one_thousand_item_fan_out_stays_small() -> None:
    items = "[" + ",".join(str(i) for i in range(1000)) + "]"
    spec = {"steps": [step("s", task("t", forEach=items), executionMode="Parallel")]}
    sim = Simulation(spec)
    assert sim.run(lambda n, b: ("Completed", {"score": 0.5, "model": "s3://bucket/" + n})) == (
        "Completed"
    )
    assert len(sim.created) == 1000
    size = len(json.dumps(sim.status))
    assert size < 256 * 1024, size


def test_plan_is_idempotent_on_the_same_snapshot() -> None:
    sim = Simulation({"steps": [step("a", task("x"), task("y"), executionMode="Parallel")]})
    sim.step()
    first = plan(build_view(sim.snapshot()), sim.now)
    second = plan(build_view(sim.snapshot()), sim.now)
    assert first == second
    assert first.creations == ()


def test_child_names_too_long_for_a_label_fail_the_workflow() -> None:
    sim = Simulation({"steps": [step("a", task("t" * 40, forEach="[1]"))]}, name="w" * 20)
    sim.step()
    assert (sim.phase, sim.status["reason"]) == ("Failed", "InvalidSpec")
    assert "63 characters" in sim.status["message"]


def test_a_step_retry_is_told_by_an_event() -> None:
    sim = Simulation({"steps": [step("s", task("bad"), onError="Retry", maxRetries=1)]})
    sim.run(failing("wf-bad"))
    reasons = [e.reason for p in sim.plans for e in p.events]
    assert reasons == ["Started", "RetryingStep", "StepFailed", "Failed"]


def test_templates_reading_several_tasks_of_one_step_see_them_all() -> None:
    spec = {
        "steps": [
            step("a", task("x"), task("y"), executionMode="Parallel"),
            step(
                "b",
                task(
                    "z",
                    parameters={
                        "x": "{{ steps.a.tasks['x'].result.n }}",
                        "y": "{{ steps.a.tasks['y'].result.n }}",
                    },
                ),
            ),
        ]
    }
    sim = Simulation(spec)
    assert sim.run(lambda n, b: ("Completed", {"n": n})) == "Completed"
    assert sim.children["wf-z"]["spec"]["parameters"] == {"x": "wf-x", "y": "wf-y"}
