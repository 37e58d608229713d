"""CEL expressions of execflow.core.expressions: compiling, refusing, references, evaluation.

Pure core against the real CEL library, no cluster. Hypothesis checks that syntax errors always
carry a position, that references of generated step/task accesses are exact, and that an
expression the module accepts never meets an undefined variable when it runs, whatever mix of
context names, comprehension macros and stray names it is built from.
"""

import datetime
import re
from typing import Any

import cel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from execflow.core.expressions import (
    MAX_EXPRESSION_LENGTH,
    WORKFLOW_VARIABLES,
    Expression,
    ExpressionError,
    Reference,
    compile_expression,
)

CONTEXT: dict[str, Any] = {
    "variables": {"dataset": "raw_data.csv", "epochs": 100},
    "steps": {
        "preprocess": {
            "phase": "Completed",
            "tasks": {
                "clean-data": {
                    "phase": "Completed",
                    "result": {"rows": 42, "path": "s3://bucket/clean.csv"},
                    "exitCode": 0,
                    "attempts": 1,
                }
            },
        }
    },
    "workflow": {"name": "ml-pipeline", "namespace": "default", "status": "Completed"},
}

RESERVED = frozenset(
    {
        *("as", "break", "const", "continue", "else", "false", "for", "function", "if"),
        *("import", "in", "let", "loop", "namespace", "null", "package", "return", "true"),
        *("var", "void", "while"),
    }
)
MACROS = ("all", "exists", "exists_one", "existsOne", "filter", "map")

labels = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,14}[a-z0-9])?", fullmatch=True)
identifiers = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(
    lambda name: name not in RESERVED
)


def evaluate(text: str, context: dict[str, Any] | None = None) -> Any:
    return compile_expression(text).evaluate(CONTEXT if context is None else context)


# --- the examples of the API ---


def test_step_condition_of_the_api_reads_a_task_result() -> None:
    when = compile_expression("steps.preprocess.tasks['clean-data'].result.rows > 0")

    assert when.evaluate(CONTEXT) is True
    assert when.references() == {Reference("preprocess", "clean-data")}
    assert when.names == {"steps"}


def test_task_condition_of_the_api_compares_the_item() -> None:
    when = compile_expression("item > 0.0005")

    assert [when.evaluate({"item": item}) for item in (0.1, 0.01, 0.0001)] == [True, True, False]
    assert when.references() == frozenset()


def test_for_each_of_the_api_gives_a_list_of_floats() -> None:
    for_each = compile_expression("[0.1, 0.01, 0.001]")

    assert for_each.evaluate({}) == [0.1, 0.01, 0.001]
    assert for_each.names == frozenset()


def test_finally_step_reads_the_workflow_status() -> None:
    assert evaluate("workflow.status") == "Completed"
    assert compile_expression("workflow.status").references() == frozenset()


# --- compiling ---


def test_compiling_the_same_text_twice_returns_the_cached_expression() -> None:
    text = "variables.epochs * 2"

    assert compile_expression(text) is compile_expression(text)


def test_syntax_error_says_where_in_one_line() -> None:
    with pytest.raises(ExpressionError) as raised:
        compile_expression("steps.preprocess.tasks['clean-data'].result.rows >")

    error = raised.value
    assert error.position == (1, 51)
    assert error.expression == "steps.preprocess.tasks['clean-data'].result.rows >"
    assert str(error) == (
        "syntax error at line 1, column 51 (at the end): the expression ends too early, in "
        "expression \"steps.preprocess.tasks['clean-data'].result.rows >\""
    )


def test_syntax_error_on_a_later_line_shows_the_text_found_there() -> None:
    with pytest.raises(ExpressionError) as raised:
        compile_expression("item > 1 &&\n  item item")

    assert raised.value.position == (2, 8)
    assert "line 2, column 8 (near \"item\"): unexpected 'item'" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_nesting_beyond_the_parser_limit_is_a_syntax_error() -> None:
    with pytest.raises(ExpressionError, match="Recursion limit") as raised:
        compile_expression("(" * 100 + "1" + ")" * 100)

    assert raised.value.position is not None


def test_an_overlong_expression_is_refused_before_the_library_sees_it() -> None:
    text = "1" + " + 1" * MAX_EXPRESSION_LENGTH

    with pytest.raises(ExpressionError, match=r"characters long, more than the 4096 allowed"):
        compile_expression(text)


def test_unknown_name_is_refused_with_a_suggestion() -> None:
    with pytest.raises(ExpressionError) as raised:
        compile_expression("stpes.preprocess.phase == 'Completed'")

    assert str(raised.value).startswith(
        "reads unknown name 'stpes' (did you mean 'steps'?); an expression can read index, item, "
        "steps, variables, workflow"
    )


def test_allowed_names_are_a_parameter() -> None:
    text = "result.rows > limit"

    assert compile_expression(text, {"result", "limit"}).names == {"result", "limit"}
    with pytest.raises(ExpressionError, match="unknown names 'limit', 'result'"):
        compile_expression(text)


@pytest.mark.parametrize(
    "text",
    [
        "[1, 2].map(x, x * 2) == [2, 4]",
        "[1, 2].map(x, x > 1, x * 10) == [20]",
        "[1, 2].filter(x, x > 1) == [2]",
        "[1, 2].all(x, x > 0)",
        "[1, 2].exists(x, x > 1)",
        "[1, 2].exists_one(x, x > 1)",
        "[1, 2].existsOne(x, x > 1)",
        "[[1], [2]].all(row, row.all(cell, cell > 0))",
        "{'a': 1}.map(key, key) == ['a']",
        "[1].map(x, x).map(y, y) == [1]",
        "[1] . map ( x ,\n x ) == [1]",
    ],
)
def test_comprehension_variables_are_not_context_names(text: str) -> None:
    expression = compile_expression(text)

    assert expression.names == frozenset()
    assert expression.evaluate({}) is True


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("[1].map(x, x) + [x]", "x"),
        ("[1].map(x, y)", "y"),
        (".map(x, x)", "x"),
        ("[1].filter(x, true, x)", "x"),
        ("[1].all(i, v, v > 0)", "v"),
        ("[x].map(x, x)", "x"),
        ("cel.bind(z, 1, z)", "cel"),
        (".item", ".item"),
    ],
)
def test_names_outside_a_macro_scope_are_refused(text: str, name: str) -> None:
    with pytest.raises(ExpressionError, match=rf"unknown names? [^;]*{re.escape(repr(name))}"):
        compile_expression(text)


def test_a_macro_may_bind_a_context_name_which_then_is_not_read() -> None:
    expression = compile_expression("[1, 2].exists(steps, steps > 1) && item > 0")

    assert expression.names == {"item"}
    assert expression.references() == frozenset()
    assert expression.evaluate({"item": 1}) is True


# --- references ---


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("steps.preprocess.phase == 'Completed'", {Reference("preprocess")}),
        ("steps['clean-up'].phase", {Reference("clean-up")}),
        ('steps["clean-up"].tasks["a-b"].result', {Reference("clean-up", "a-b")}),
        ("steps.train.tasks.model.phase", {Reference("train", "model")}),
        ("steps.train['tasks']['model'].phase", {Reference("train", "model")}),
        ("steps.train.tasks[variables.name].phase", {Reference("train")}),
        ("steps.train.tasks.exists(t, t == 'x')", {Reference("train")}),
        ("has(steps.train)", {Reference("train")}),
        (
            "steps.a.tasks['x'].result + steps.b.tasks['y'].result",
            {Reference("a", "x"), Reference("b", "y")},
        ),
        ("'steps.a.tasks[\"x\"]' + variables.name", set()),
        ("[{'x': 1}].map(steps, steps.x)", set()),
        (
            "steps.train.tasks['fan'].map(t, t.result.loss).exists(l, l < 0.1)",
            {Reference("train", "fan")},
        ),
    ],
)
def test_references_name_the_steps_and_tasks_read(text: str, expected: set[Reference]) -> None:
    assert compile_expression(text).references() == expected


@pytest.mark.parametrize(
    "text",
    ["size(steps) > 1", "'train' in steps", "steps[variables.step].phase", "steps.map(s, s)"],
)
def test_reading_steps_without_naming_one_is_refused(text: str) -> None:
    with pytest.raises(ExpressionError, match="without naming a step"):
        compile_expression(text)


@given(step=labels, task=labels, quote=st.sampled_from(["'", '"']))
def test_references_of_a_task_result_are_exactly_that_task(
    step: str, task: str, quote: str
) -> None:
    text = f"steps[{quote}{step}{quote}].tasks[{quote}{task}{quote}].result"

    assert compile_expression(text).references() == {Reference(step, task)}


@given(
    step=labels.filter(lambda s: s[0].isalpha() and "-" not in s and s not in RESERVED),
    task=labels,
)
def test_references_of_the_dotted_form_are_exactly_that_task(step: str, task: str) -> None:
    text = f"steps.{step}.tasks['{task}'].result"

    assert compile_expression(text).references() == {Reference(step, task)}


# --- evaluation ---


def test_missing_key_is_named_with_the_path_it_was_read_from() -> None:
    with pytest.raises(ExpressionError) as raised:
        evaluate("steps.preprocess.tasks['clean-data'].result.count > 0")

    assert raised.value.reason == (
        "no such key 'count' in steps.preprocess.tasks['clean-data'].result (its keys: path, rows)"
    )


def test_missing_step_is_named_with_the_steps_known() -> None:
    with pytest.raises(ExpressionError, match=r"no such key 'train' in steps \(its keys: preproc"):
        evaluate("steps.train.phase")


def test_a_context_name_without_a_value_says_so() -> None:
    with pytest.raises(ExpressionError, match="'item' has no value here"):
        evaluate("item > 1")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("variables.epochs / 0", "division by zero"),
        ("variables.dataset + 1", "Unsupported operation: string + int"),
        ("variables.epochs + 0.5", "No such overload"),
        ("variables.dataset.shout()", "no function 'shout' that takes these arguments"),
        ("[1][3]", "index out of bounds: 3"),
        ("variables.epochs.rows", "No such overload"),
    ],
)
def test_evaluation_errors_are_explained(text: str, reason: str) -> None:
    with pytest.raises(ExpressionError) as raised:
        evaluate(text)

    assert raised.value.reason.startswith(reason)
    assert raised.value.expression == text


def test_only_the_names_read_are_handed_to_the_library() -> None:
    unconvertible = object()

    assert compile_expression("item + 1").evaluate({"item": 1, "steps": unconvertible}) == 2


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("timestamp('2024-05-01T12:00:00Z')", "2024-05-01T12:00:00Z"),
        ("timestamp('2024-05-01T12:00:00.25+02:00')", "2024-05-01T10:00:00.250000Z"),
        ("duration('1h30m')", "1h30m"),
        ("duration('1.5s')", "1.5s"),
        ("duration('-90m')", "-1h30m"),
        ("duration('0s')", "0s"),
        ("b'execflow'", "ZXhlY2Zsb3c="),
        ("{2: 'two', false: 'no'}", {"2": "two", "false": "no"}),
        (
            "[timestamp('2024-05-01T12:00:00Z'), {'d': duration('5m')}]",
            ["2024-05-01T12:00:00Z", {"d": "5m"}],
        ),
        ("18446744073709551615u", 18446744073709551615),
        ("type(1)", "int"),
        ("null", None),
    ],
)
def test_results_are_plain_json(text: str, value: Any) -> None:
    assert evaluate(text, {}) == value


@pytest.mark.parametrize("text", ["1.0 / 0.0", "[-1.0 / 0.0]", "{'x': double('nan')}"])
def test_non_finite_numbers_are_refused(text: str) -> None:
    with pytest.raises(ExpressionError, match="which JSON cannot carry"):
        evaluate(text, {})


def test_a_timestamp_result_is_the_time_in_utc() -> None:
    text = evaluate("timestamp('2024-05-01T12:00:00+02:00')", {})

    moment = datetime.datetime.fromisoformat(text)
    assert moment == datetime.datetime(2024, 5, 1, 10, tzinfo=datetime.UTC)


# --- the error's location ---


def test_error_placed_at_a_field_path_starts_with_it() -> None:
    with pytest.raises(ExpressionError) as raised:
        compile_expression("1 +")

    placed = raised.value.at("spec.steps[1].when")

    assert placed.where == "spec.steps[1].when"
    assert str(placed).startswith("spec.steps[1].when: syntax error at line 1, column 4")
    assert (placed.expression, placed.position, placed.reason) == (
        "1 +",
        (1, 4),
        raised.value.reason,
    )
    assert raised.value.where is None


def test_a_relative_location_goes_under_the_path_given() -> None:
    error = ExpressionError("boom", "x", where="parameters.data")

    assert error.at("spec.steps[0].tasks[2]").where == "spec.steps[0].tasks[2].parameters.data"
    assert ExpressionError("boom", "x", where="[3]").at("args").where == "args[3]"


def test_expression_error_is_a_value_error() -> None:
    assert issubclass(ExpressionError, ValueError)


# --- properties ---

cel_text = st.lists(
    st.sampled_from([*"abxy01 .,()[]{}'\"+-*/<>=!&|?:\n_\\", "map", "item", "'''", " in "]),
    max_size=30,
).map("".join)


@settings(max_examples=500, deadline=None)
@given(text=cel_text)
def test_syntax_errors_always_carry_a_position(text: str) -> None:
    try:
        cel.compile(text)
    except ValueError:
        with pytest.raises(ExpressionError) as raised:
            compile_expression(text)
        line, column = raised.value.position or (0, 0)
        assert line >= 1 and column >= 1
        assert f"syntax error at line {line}, column {column}" in str(raised.value)
        assert "\n" not in str(raised.value)
    else:
        try:
            compile_expression(text)
        except ExpressionError as error:
            assert error.position is None


@given(
    variable=identifiers.filter(lambda name: name not in WORKFLOW_VARIABLES and name != "cel"),
    macro=st.sampled_from(MACROS),
)
def test_comprehension_variables_are_accepted_and_strays_refused(variable: str, macro: str) -> None:
    body = f"{variable} > 0" if macro != "map" else f"{variable} * 2"
    accepted = compile_expression(f"[1, 2].{macro}({variable}, {body})")

    assert accepted.names == frozenset()
    accepted.evaluate({})
    with pytest.raises(ExpressionError, match=re.escape(f"unknown name {variable!r}")):
        compile_expression(f"[1, 2].{macro}({variable}, {body}) == {variable}")


@st.composite
def expressions(draw: st.DrawFn, depth: int = 3) -> str:
    """Random CEL built from context names, stray names, literals and comprehension macros."""
    names = st.sampled_from(["item", "index", "variables", "x", "y", "z"])
    if depth == 0:
        return draw(st.one_of(names, st.sampled_from(["1", "[1]", "true", "'s'"])))
    inner = expressions(depth - 1)
    form = draw(st.integers(0, 5))
    if form == 0:
        return draw(names)
    if form == 1:
        return f"({draw(inner)} + {draw(inner)})"
    if form == 2:
        return f"[{draw(inner)}, {draw(inner)}]"
    macro = draw(st.sampled_from([*MACROS, "sortBy"]))
    arguments = [draw(names), draw(inner)] + ([draw(inner)] if draw(st.booleans()) else [])
    receiver = "" if form == 3 else draw(inner)
    return f"{receiver}.{macro}({', '.join(arguments)})"


@settings(max_examples=400, deadline=None)
@given(text=expressions())
def test_an_accepted_expression_never_meets_an_undefined_variable(text: str) -> None:
    try:
        expression: Expression = compile_expression(text)
    except ExpressionError:
        return
    context = {"item": 1, "index": 0, "variables": [1]}
    try:
        expression.evaluate(context)
    except ExpressionError as error:
        cause = str(error.__cause__)
        undefined = re.search(r"Undefined variable or function: '([^']*)'", cause)
        assert undefined is None or undefined.group(1) not in ("x", "y", "z"), text
