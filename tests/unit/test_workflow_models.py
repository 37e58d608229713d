"""Workflow models refuse what admission refuses, and keep what it admits (pure, no cluster).

The operator parses a stored body with these models, so every check the CRD's CEL rules make at
admission (tests/integration/test_workflow_admission.py) is made here again: names that are DNS
labels, step and task names unique across steps and finally, dependsOn naming earlier steps only,
maxRetries only with onError Retry, child Task names that fit a label value, and the list limits.
"""

from typing import Any

import pytest
from pydantic import ValidationError

from execflow.api.workflow import (
    ExecutionMode,
    OnError,
    Workflow,
    WorkflowSpec,
    child_name_problems,
    workflow_problems,
)
from execflow.api.workflow_limits import (
    CHILD_NAME_MESSAGE,
    DEPENDS_ON_MAX,
    FINALLY_MAX,
    LABEL_MAX,
    MAX_RETRIES_MESSAGE,
    NAME_MESSAGE,
    STEPS_MAX,
    TASKS_PER_STEP_MAX,
)


def task(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "container": {"image": "busybox"}, **fields}


def step(name: str, *tasks: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "tasks": [task(t) for t in tasks or (f"{name}-task",)], **fields}


def spec(*steps: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"steps": list(steps), **fields}


def problems_of(body: dict[str, Any]) -> list[str]:
    """What the spec's validator refuses, one problem per entry, as the operator reports them."""
    with pytest.raises(ValidationError) as caught:
        WorkflowSpec.model_validate(body)
    (error,) = caught.value.errors()
    message: str = error["msg"]
    return message.removeprefix("Value error, ").split("; ")


def test_the_api_example_parses_with_its_defaults() -> None:
    workflow = Workflow.model_validate(
        {
            "metadata": {"name": "ml-pipeline"},
            "spec": spec(
                step("preprocess", "clean-data"),
                {
                    "name": "train",
                    "dependsOn": ["preprocess"],
                    "executionMode": "Parallel",
                    "when": "steps.preprocess.tasks['clean-data'].result.rows > 0",
                    "tasks": [
                        task(
                            "train-model",
                            forEach="[0.1, 0.01, 0.001]",
                            when="item > 0.0005",
                            dependencies=[{"task": "clean-data", "type": "FinishToStart"}],
                        )
                    ],
                },
                globalTimeout="10m",
                ttlAfterFinished="24h",
                variables={"dataset": "raw_data.csv", "epochs": 100},
                **{"finally": [step("notify", "notify")]},
            ),
        }
    )

    first, second = workflow.spec.steps
    assert (first.execution_mode, first.on_error, first.max_retries) == (
        ExecutionMode.SEQUENTIAL,
        OnError.STOP,
        0,
    )
    assert first.depends_on is None
    assert second.depends_on == ["preprocess"]
    assert second.tasks[0].for_each == "[0.1, 0.01, 0.001]"
    assert [s.name for s in workflow.spec.finally_] == ["notify"]
    assert workflow_problems(workflow.spec) == []
    assert child_name_problems("ml-pipeline", workflow.spec) == []


@pytest.mark.parametrize(
    "name", ["a", "train", "step-2", "0", "a" * LABEL_MAX, "x-1-y"], ids=lambda n: n[:10]
)
def test_step_and_task_names_may_be_any_dns_label(name: str) -> None:
    WorkflowSpec.model_validate(spec(step(name, name)))


@pytest.mark.parametrize(
    "name",
    ["Train", "pre_process", "-train", "train-", "train.model", "trän", "a b"],
)
@pytest.mark.parametrize("where", ["step", "task", "dependsOn"])
def test_names_that_are_no_dns_label_are_refused_with_the_admission_message(
    name: str, where: str
) -> None:
    bodies = {
        "step": spec(step(name, "t")),
        "task": spec(step("s", name)),
        "dependsOn": spec(step("s", "t", dependsOn=[name])),
    }

    with pytest.raises(ValidationError, match=NAME_MESSAGE.split("(")[0].strip()):
        WorkflowSpec.model_validate(bodies[where])


def test_names_longer_than_a_label_value_are_refused() -> None:
    with pytest.raises(ValidationError, match="at most 63 characters"):
        WorkflowSpec.model_validate(spec(step("a" * (LABEL_MAX + 1))))


def test_a_step_name_used_twice_is_refused_across_steps_and_finally() -> None:
    assert problems_of(spec(step("a"), step("a", "other"))) == [
        "steps[1].name: step 'a' is defined twice"
    ]
    assert problems_of(spec(step("a"), **{"finally": [step("a", "other")]})) == [
        "finally[0].name: step 'a' is defined twice"
    ]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (spec(step("a", "x", "x")), "steps[0].tasks: task 'x' is defined twice"),
        (spec(step("a", "x"), step("b", "y", "x")), "steps[1].tasks: task 'x' is defined twice"),
        (
            spec(step("a", "x"), **{"finally": [step("f", "x")]}),
            "finally[0].tasks: task 'x' is defined twice",
        ),
        (
            spec(step("a", "x"), **{"finally": [step("f", "y"), step("g", "y")]}),
            "finally[1].tasks: task 'y' is defined twice",
        ),
    ],
    ids=["in-one-step", "across-steps", "step-and-finally", "across-finally"],
)
def test_a_task_name_used_twice_anywhere_in_the_workflow_is_refused(
    body: dict[str, Any], problem: str
) -> None:
    assert problems_of(body) == [problem]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (
            spec(step("a", dependsOn=["b"]), step("b")),
            "steps[0].dependsOn: 'b' is not a step listed before it",
        ),
        (
            spec(step("a", dependsOn=["a"])),
            "steps[0].dependsOn: 'a' is not a step listed before it",
        ),
        (
            spec(step("a"), step("b", dependsOn=["nope"])),
            "steps[1].dependsOn: 'nope' is not a step listed before it",
        ),
        (
            spec(step("a"), step("b", dependsOn=["a", "a"])),
            "steps[1].dependsOn: 'a' is listed twice",
        ),
        (
            spec(step("a"), **{"finally": [step("f", dependsOn=["g"]), step("g")]}),
            "finally[0].dependsOn: 'g' is not a step listed before it",
        ),
    ],
    ids=["later-step", "itself", "unknown", "twice", "later-finally-step"],
)
def test_depends_on_may_only_name_steps_listed_before(body: dict[str, Any], problem: str) -> None:
    assert problems_of(body) == [problem]


def test_depends_on_may_name_every_earlier_step_including_steps_from_finally() -> None:
    names = [f"s{i}" for i in range(3)]
    body = spec(
        step("s0"),
        step("s1", dependsOn=[]),
        step("s2", dependsOn=["s1", "s0"]),
        **{"finally": [step("f0", dependsOn=names), step("f1", dependsOn=[*names, "f0"])]},
    )

    workflow = WorkflowSpec.model_validate(body)

    assert workflow.steps[1].depends_on == []
    assert workflow.finally_[1].depends_on == ["s0", "s1", "s2", "f0"]


def test_max_retries_needs_on_error_retry() -> None:
    assert problems_of(spec(step("a", maxRetries=2))) == [
        f"steps[0].maxRetries: {MAX_RETRIES_MESSAGE}"
    ]
    assert problems_of(spec(step("a", maxRetries=2, onError="Continue"))) == [
        f"steps[0].maxRetries: {MAX_RETRIES_MESSAGE}"
    ]
    retried = WorkflowSpec.model_validate(spec(step("a", maxRetries=2, onError="Retry")))
    assert retried.steps[0].max_retries == 2
    WorkflowSpec.model_validate(spec(step("a", maxRetries=0, onError="Stop")))


def test_every_problem_of_a_spec_is_reported_at_once() -> None:
    body = spec(step("a", "x", maxRetries=1), step("a", "x", dependsOn=["b"]))

    assert problems_of(body) == [
        f"steps[0].maxRetries: {MAX_RETRIES_MESSAGE}",
        "steps[1].name: step 'a' is defined twice",
        "steps[1].dependsOn: 'b' is not a step listed before it",
        "steps[1].tasks: task 'x' is defined twice",
    ]


@pytest.mark.parametrize(
    ("workflow", "task_name", "for_each", "fits"),
    [
        ("w" * 30, "t" * 32, None, True),
        ("w" * 30, "t" * 33, None, False),
        ("w" * 30, "t" * 27, "[1, 2]", True),
        ("w" * 30, "t" * 28, "[1, 2]", False),
        ("w", "t" * 61, None, True),
    ],
    ids=["63", "64", "foreach-63", "foreach-64", "short-workflow"],
)
def test_child_task_names_must_fit_a_label_value(
    workflow: str, task_name: str, for_each: str | None, fits: bool
) -> None:
    body = spec(step("s", "first"), **{"finally": [{"name": "f", "tasks": [task(task_name)]}]})
    if for_each is not None:
        body["finally"][0]["tasks"][0]["forEach"] = for_each
    workflow_spec = WorkflowSpec.model_validate(body)

    problems = child_name_problems(workflow, workflow_spec)

    if fits:
        assert problems == []
        Workflow.model_validate({"metadata": {"name": workflow}, "spec": body})
    else:
        longest = len(f"{workflow}-{task_name}") + (5 if for_each else 0)
        assert problems == [
            f"finally[0].tasks: task {task_name!r} gives child Task names of {longest} "
            f"characters; {CHILD_NAME_MESSAGE}"
        ]
        with pytest.raises(ValidationError, match="gives child Task names of"):
            Workflow.model_validate({"metadata": {"name": workflow}, "spec": body})


def test_a_workflow_built_without_a_name_skips_the_child_name_check() -> None:
    body = spec(step("s", "t" * LABEL_MAX))

    assert Workflow.model_validate({"spec": body}).spec.steps[0].tasks[0].name == "t" * LABEL_MAX


def test_lists_are_held_to_the_admission_limits() -> None:
    many_steps = [step(f"s{i}") for i in range(STEPS_MAX + 1)]
    many_tasks = [f"t{i}" for i in range(TASKS_PER_STEP_MAX + 1)]
    many_finally = [step(f"f{i}") for i in range(FINALLY_MAX + 1)]

    WorkflowSpec.model_validate(spec(*many_steps[:-1], **{"finally": many_finally[:-1]}))
    WorkflowSpec.model_validate(spec(step("s", *many_tasks[:-1])))
    for body in (
        spec(*many_steps),
        spec(step("s", *many_tasks)),
        spec(step("s"), **{"finally": many_finally}),
        spec(step("s"), step("t", dependsOn=[f"d{i}" for i in range(DEPENDS_ON_MAX + 1)])),
        spec(),
        spec(step("s", tasks=[])),
    ):
        with pytest.raises(ValidationError):
            WorkflowSpec.model_validate(body)


def test_workflow_problems_rechecks_a_spec_changed_after_parsing() -> None:
    workflow = WorkflowSpec.model_validate(spec(step("a"), step("b")))
    workflow.steps[1].name = "a"

    assert workflow_problems(workflow) == ["steps[1].name: step 'a' is defined twice"]
