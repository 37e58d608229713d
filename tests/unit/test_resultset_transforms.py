"""ResultSet expressions of execflow.core.resultsets.transforms: compiled, checked, evaluated.

Pure core against the real CEL library, no cluster: what each kind of expression reads, what
compiling refuses (with field paths and positions), the outputs of filter, map, group, reduce
and custom over item records, the errors that name the expression and the task, and the limit
on whole-list expressions. Hypothesis checks that folding items one by one gives the outputs
computed from scratch.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from execflow.api.reasons import Reason
from execflow.api.result_set import Aggregation, Transform
from execflow.core.resultsets.errors import (
    ExpressionFailedError,
    InvalidExpressionError,
    TooLargeError,
)
from execflow.core.resultsets.items import Item, item_record
from execflow.core.resultsets.transforms import (
    MAX_WHOLE_LIST_RESULTS,
    compile_programs,
    custom_aggregation_values,
    expression_problems,
    group_key,
    initial_accumulators,
    item_outputs,
    transform_outputs,
)


def record(index: int, score: float, tags: tuple[str, ...] = ("a",), **extra: Any) -> Any:
    result = {"score": score, "rows": index, **extra}
    return item_record(
        Item(
            f"u{index}", f"task-{index}", "Completed", "tool", tags, "2024-05-01T00:00:00Z", result
        )
    )


RECORDS = [record(0, 0.25, ("a",)), record(1, 0.75, ("b", "a")), record(2, 0.5, ("a",))]

TRANSFORMS = [
    Transform(name="passed", type="filter", expression="r.result.score >= 0.5"),
    Transform(name="scores", type="map", expression="r.result.score * 100.0"),
    Transform(name="by_team", type="group", expression="r.tags[0]"),
    Transform(name="total", type="reduce", expression="acc + r.result.rows", initial=0),
    Transform(name="tasks", type="custom", expression="results.map(r, r.task)"),
]
AGGREGATIONS = [
    Aggregation(name="avg_score", function="avg", field="score"),
    Aggregation(name="best", function="custom", expression="results.map(r, r.result.score).max()"),
]


def test_the_api_examples_give_their_outputs() -> None:
    programs = compile_programs(AGGREGATIONS, TRANSFORMS)

    assert [p.name for p in programs.aggregations] == ["best"]
    assert custom_aggregation_values(programs, RECORDS) == {"best": 0.75}
    assert transform_outputs(programs, RECORDS) == {
        "passed": [RECORDS[1], RECORDS[2]],
        "scores": [25.0, 75.0, 50.0],
        "by_team": {"a": [RECORDS[0], RECORDS[2]], "b": [RECORDS[1]]},
        "total": 3,
        "tasks": ["task-0", "task-1", "task-2"],
    }


def test_outputs_over_no_records_are_empty_and_reduce_gives_its_initial() -> None:
    programs = compile_programs([], TRANSFORMS)

    assert transform_outputs(programs, []) == {
        "passed": [],
        "scores": [],
        "by_team": {},
        "total": 0,
        "tasks": [],
    }


def test_a_reduce_starts_from_its_initial_and_builds_any_json() -> None:
    reduce = Transform(name="seen", type="reduce", expression="acc + [r.task]", initial=["start"])
    programs = compile_programs([], [reduce])

    assert initial_accumulators(programs) == {"seen": ["start"]}
    assert transform_outputs(programs, RECORDS[:2])["seen"] == ["start", "task-0", "task-1"]


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("a", "a"),
        (1, "1"),
        (1.5, "1.5"),
        (True, "true"),
        (None, "null"),
        ({"b": 1, "a": [2]}, '{"a":[2],"b":1}'),
        ("ü", "ü"),
    ],
)
def test_group_keys_that_are_not_strings_become_their_json_text(value: Any, key: str) -> None:
    assert group_key(value) == key


def test_a_group_by_a_number_groups_under_its_text() -> None:
    # Numbers are doubles to CEL (JSON has one number type): `%` takes int() first.
    programs = compile_programs(
        [], [Transform(name="by", type="group", expression="int(r.result.rows) % 2")]
    )

    assert transform_outputs(programs, RECORDS)["by"] == {
        "0": [RECORDS[0], RECORDS[2]],
        "1": [RECORDS[1]],
    }


def test_numbers_are_doubles_so_an_integral_score_multiplies_by_a_double() -> None:
    record = {**RECORDS[0], "result": {"score": 1, "rows": 3}}
    programs = compile_programs(
        [],
        [
            Transform(name="percent", type="map", expression="r.result.score * 100.0"),
            Transform(name="by", type="group", expression="r.result.score"),
            Transform(name="rows", type="reduce", expression="acc + r.result.rows", initial=0),
        ],
    )

    outputs = transform_outputs(programs, [record])

    assert outputs["percent"] == [100.0]
    assert list(outputs["by"]) == ["1"]
    assert outputs["rows"] == 3


@pytest.mark.parametrize(
    ("transform", "words", "position"),
    [
        (Transform(name="t", type="map", expression="r.result.score +"), "syntax error", (1, 17)),
        (Transform(name="t", type="map", expression="results.size()"), "'results'", None),
        (Transform(name="t", type="filter", expression="acc > 1"), "unknown name 'acc'", None),
        (Transform(name="t", type="custom", expression="r.task"), "unknown name 'r'", None),
        (
            Transform(name="t", type="map", expression="r.result.scores.average()"),
            "unknown function 'average' at line 1, column 17",
            (1, 17),
        ),
    ],
)
def test_compiling_refuses_with_the_field_path_and_position(
    transform: Transform, words: str, position: tuple[int, int] | None
) -> None:
    with pytest.raises(InvalidExpressionError) as raised:
        compile_programs([], [transform])

    assert raised.value.reason is Reason.INVALID_EXPRESSION
    assert str(raised.value).startswith("spec.transforms[0].expression: ")
    assert words in str(raised.value)
    assert raised.value.position == position
    assert raised.value.expression == transform.expression


def test_a_reduce_reads_acc_and_r() -> None:
    reduce = Transform(name="t", type="reduce", expression="acc + r.result.rows", initial=0)

    assert compile_programs([], [reduce]).transforms[0].expression.names == {"acc", "r"}


def test_every_problem_of_a_spec_is_listed_in_order() -> None:
    aggregations = [
        Aggregation(name="ok", function="sum", field="score"),
        Aggregation(name="bad", function="custom", expression="results.nope()"),
    ]
    transforms = [
        Transform(name="fine", type="map", expression="r.task"),
        Transform(name="broken", type="filter", expression="r.task =="),
    ]

    problems = expression_problems(aggregations, transforms)

    assert [p.where for p in problems] == [
        "spec.aggregations[1].expression",
        "spec.transforms[1].expression",
    ]


def test_a_missing_key_names_the_output_the_expression_and_the_task() -> None:
    programs = compile_programs(
        [], [Transform(name="f1", type="map", expression="r.result.metrics.f1")]
    )

    with pytest.raises(ExpressionFailedError) as raised:
        transform_outputs(programs, RECORDS)

    assert raised.value.reason is Reason.EXPRESSION_ERROR
    assert raised.value.task == "task-0"
    assert str(raised.value) == (
        "map transform 'f1' (spec.transforms[0].expression) failed on the item of task "
        "'task-0': no such key 'metrics' in r.result (its keys: rows, score), in expression "
        '"r.result.metrics.f1"'
    )


def test_a_filter_must_give_true_or_false() -> None:
    programs = compile_programs([], [Transform(name="f", type="filter", expression="r.task")])

    with pytest.raises(ExpressionFailedError, match='gives "task-0", not true or false'):
        transform_outputs(programs, RECORDS)


def test_a_wrong_type_fails_on_the_item_that_has_it() -> None:
    records = [*RECORDS, record(3, 0.5, score_text="high")]
    programs = compile_programs(
        [], [Transform(name="m", type="map", expression="r.result.score_text + 1")]
    )

    with pytest.raises(ExpressionFailedError) as raised:
        item_outputs(programs, {}, records[3])

    assert raised.value.task == "task-3"
    assert "string + int" in str(raised.value)


def test_a_failing_whole_list_expression_says_so() -> None:
    programs = compile_programs(
        [Aggregation(name="best", function="custom", expression="results.map(r, r.x).max()")],
        [],
    )

    with pytest.raises(ExpressionFailedError, match="over the whole list") as raised:
        custom_aggregation_values(programs, RECORDS)

    assert raised.value.task is None


def test_whole_list_expressions_read_up_to_the_limit() -> None:
    records = [record(i, i / 10) for i in range(MAX_WHOLE_LIST_RESULTS)]
    programs = compile_programs(
        [Aggregation(name="n", function="custom", expression="size(results)")],
        [Transform(name="top", type="custom", expression="results.map(r, r.result.rows).max()")],
    )

    assert custom_aggregation_values(programs, records) == {"n": MAX_WHOLE_LIST_RESULTS}
    assert transform_outputs(programs, records) == {"top": MAX_WHOLE_LIST_RESULTS - 1}


def test_beyond_the_limit_a_whole_list_expression_is_too_large() -> None:
    records = [record(i, 0.5) for i in range(MAX_WHOLE_LIST_RESULTS + 1)]
    programs = compile_programs(
        [Aggregation(name="n", function="custom", expression="size(results)")], []
    )

    with pytest.raises(TooLargeError) as raised:
        custom_aggregation_values(programs, records)

    assert raised.value.reason is Reason.TOO_LARGE
    assert (raised.value.limit, raised.value.count) == (MAX_WHOLE_LIST_RESULTS, 251)
    assert "there are 251: more than the 250 a whole-list expression may read" in str(raised.value)


def test_per_result_transforms_have_no_limit() -> None:
    records = [record(i, 0.5) for i in range(MAX_WHOLE_LIST_RESULTS + 1)]
    programs = compile_programs([], TRANSFORMS[:4])

    assert transform_outputs(programs, records)["total"] == sum(range(len(records)))


@settings(max_examples=100, deadline=None)
@given(
    scores=st.lists(st.integers(0, 100).map(lambda n: n / 100), max_size=12),
    tags=st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3),
)
def test_folding_items_one_by_one_gives_the_outputs_from_scratch(
    scores: list[float], tags: list[str]
) -> None:
    records = [
        record(i, score, tuple(tags[i % len(tags) :] or tags)) for i, score in enumerate(scores)
    ]
    programs = compile_programs([], TRANSFORMS[:4])
    accumulators = initial_accumulators(programs)
    kept: list[Any] = []
    mapped: list[Any] = []
    groups: dict[str, list[Any]] = {}
    for each in records:
        contribution = item_outputs(programs, accumulators, each)
        kept.extend([each] if contribution.kept["passed"] else [])
        mapped.append(contribution.mapped["scores"])
        groups.setdefault(contribution.groups["by_team"], []).append(each)
        accumulators = {**accumulators, **contribution.accumulators}

    assert transform_outputs(programs, records) == {
        "passed": kept,
        "scores": mapped,
        "by_team": groups,
        "total": accumulators["total"],
    }
    assert kept == [r for r in records if r["result"]["score"] >= 0.5]
    assert accumulators["total"] == sum(range(len(records)))
