"""`{{ EXPR }}` templates of execflow.core.workflows.templates: typed and textual rendering,
`parameters.` placeholders left for the Task, literal braces, error locations.

Pure core against the real CEL library, no cluster. Hypothesis checks that text without
placeholders is untouched, that a whole-string placeholder keeps its value's JSON type, and that
`expressions_in` lists exactly the expressions `render` evaluates.
"""

import json
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from execflow.core import expressions
from execflow.core.expressions import ExpressionError
from execflow.core.workflows import templates
from execflow.core.workflows.templates import expressions_in, render

CONTEXT: dict[str, Any] = {
    "variables": {"dataset": "raw_data.csv", "epochs": 100, "tags": ["a", "b"]},
    "steps": {
        "preprocess": {
            "phase": "Completed",
            "tasks": {
                "clean-data": {
                    "phase": "Completed",
                    "result": {"rows": 42, "path": "s3://bucket/clean.csv"},
                }
            },
        }
    },
    "item": 0.01,
    "index": 1,
    "workflow": {"name": "ml-pipeline", "namespace": "default", "status": "Failed"},
}


# --- the examples of the API ---


def test_parameters_of_the_api_render_with_their_types() -> None:
    parameters = {
        "input": "{{ variables.dataset }}",
        "learningRate": "{{ item }}",
        "epochs": "{{ variables.epochs }}",
        "data": "{{ steps.preprocess.tasks['clean-data'].result.path }}",
    }

    assert render(parameters, CONTEXT) == {
        "input": "raw_data.csv",
        "learningRate": 0.01,
        "epochs": 100,
        "data": "s3://bucket/clean.csv",
    }


def test_finally_parameter_of_the_api_sees_the_outcome() -> None:
    assert render({"outcome": "{{ workflow.status }}"}, CONTEXT) == {"outcome": "Failed"}


# --- whole-string and textual placeholders ---


def test_a_whole_string_placeholder_keeps_the_json_type() -> None:
    assert render("{{variables.tags}}", CONTEXT) == ["a", "b"]
    assert render("{{ index > 0 }}", CONTEXT) is True
    assert render("{{ null }}", CONTEXT) is None
    assert render("{{\n  variables.epochs\n}}", CONTEXT) == 100


def test_placeholders_inside_text_become_text() -> None:
    text = (
        "--data={{ variables.dataset }} --lr={{ item }} --tags={{ variables.tags }} --x={{ null }}"
    )

    assert render(text, CONTEXT) == '--data=raw_data.csv --lr=0.01 --tags=["a","b"] --x=null'


def test_maps_inside_text_are_compact_json_with_sorted_keys() -> None:
    assert render("v={{ {'b': 1, 'a': [true]} }}", CONTEXT) == 'v={"a":[true],"b":1}'


def test_whitespace_around_a_placeholder_makes_it_text() -> None:
    assert render(" {{ variables.epochs }}", CONTEXT) == " 100"


def test_two_placeholders_are_text_even_without_anything_between() -> None:
    assert render("{{ index }}{{ index }}", CONTEXT) == "11"


# --- what is not rendered ---


def test_task_parameter_placeholders_are_left_for_the_task() -> None:
    args = ["--in={{ parameters.input }}", "{{parameters.mode}}", "{{ index }}-{{ parameters.x }}"]

    assert render(args, CONTEXT) == [
        "--in={{ parameters.input }}",
        "{{parameters.mode}}",
        "1-{{ parameters.x }}",
    ]
    assert expressions_in(args) == ["index"]


def test_keys_and_non_string_values_are_not_rendered() -> None:
    value = {"{{ index }}": "{{ index }}", "n": 3, "f": 1.5, "b": False, "none": None}

    assert render(value, CONTEXT) == {"{{ index }}": 1, "n": 3, "f": 1.5, "b": False, "none": None}


def test_rendering_leaves_the_input_unchanged() -> None:
    value = {"args": ["{{ index }}"], "env": {"A": "{{ item }}"}}
    before = json.loads(json.dumps(value))

    render(value, CONTEXT)

    assert value == before


# --- braces that are not placeholders ---


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        ("a {{ b", "a {{ b"),
        ("}} {{ index }}", "}} 1"),
        ("{{ {{ index }}", "{{ 1"),
        ("{{ '{{ x }}' }}", "{{ x }}"),
        ("{{ {'a': 1}}}", {"a": 1}),
        ("{{ '}}' }}", "}}"),
        ("{ index }", "{ index }"),
    ],
)
def test_braces_that_do_not_close_a_placeholder_are_text(text: str, rendered: Any) -> None:
    assert render(text, CONTEXT) == rendered


# --- expressions_in ---


def test_expressions_are_listed_once_in_order_of_appearance() -> None:
    value = {
        "parameters": {"a": "{{ item }}", "b": "{{ index }}/{{ item }}"},
        "args": ["{{ parameters.a }}", "{{ steps.preprocess.phase }}"],
        "env": [{"name": "X", "value": "{{ variables.dataset }}"}],
    }

    assert expressions_in(value) == [
        "item",
        "index",
        "steps.preprocess.phase",
        "variables.dataset",
    ]


def test_a_value_without_placeholders_has_no_expressions() -> None:
    assert expressions_in({"a": ["x", 1, None, {"b": "}} {{"}]}) == []


# --- errors ---


def test_a_failing_placeholder_is_named_with_its_path() -> None:
    value = {"env": [{"name": "X", "value": "{{ steps.preprocess.tasks['clean-data'].result.n }}"}]}

    with pytest.raises(ExpressionError) as raised:
        render(value, CONTEXT)

    error = raised.value.at("spec.steps[0].tasks[1]")
    assert error.where == "spec.steps[0].tasks[1].env[0].value"
    assert str(error) == (
        "spec.steps[0].tasks[1].env[0].value: no such key 'n' in "
        "steps.preprocess.tasks['clean-data'].result (its keys: path, rows), in placeholder "
        "\"{{ steps.preprocess.tasks['clean-data'].result.n }}\""
    )


def test_an_annotation_key_with_dots_is_quoted_in_the_path() -> None:
    with pytest.raises(ExpressionError) as raised:
        render({"example.com/owner": "{{ owner }}"}, CONTEXT)

    assert raised.value.where == '["example.com/owner"]'
    assert raised.value.at("annotations").where == 'annotations["example.com/owner"]'
    assert "reads unknown name 'owner'" in raised.value.reason


def test_a_syntax_error_in_a_placeholder_keeps_its_position() -> None:
    with pytest.raises(ExpressionError) as raised:
        render("x={{ 1 + }}", CONTEXT)

    assert raised.value.where is None
    assert raised.value.position == (1, 4)
    assert raised.value.expression == "1 +"
    assert str(raised.value).endswith('in placeholder "{{ 1 + }}"')


def test_a_placeholder_reading_task_parameters_otherwise_is_refused() -> None:
    with pytest.raises(ExpressionError, match="unknown name 'parameters'"):
        render("{{ parameters['x'] }}", CONTEXT)


# --- properties ---

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(codec="utf-8"), max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(st.characters(codec="utf-8"), max_size=8), inner, max_size=4),
    ),
    max_leaves=12,
)


def same_json(left: Any, right: Any) -> bool:
    """Equal, and of the same JSON type at every level (1 is not 1.0, True is not 1)."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(same_json(left[k], right[k]) for k in left)
    if isinstance(left, list):
        return len(left) == len(right) and all(map(same_json, left, right))
    return bool(left == right)


@given(text=st.text().filter(lambda text: "{{" not in text))
def test_text_without_placeholders_is_unchanged(text: str) -> None:
    assert render(text, CONTEXT) == text
    assert render([text, {"k": text}], CONTEXT) == [text, {"k": text}]


@given(value=json_values)
def test_a_whole_string_placeholder_round_trips_a_json_value(value: Any) -> None:
    rendered = render("{{ variables.value }}", {"variables": {"value": value}})

    assert same_json(rendered, value)


@given(value=json_values, prefix=st.text(max_size=5), suffix=st.text(max_size=5))
def test_a_placeholder_inside_text_gives_its_json_text(
    value: Any, prefix: str, suffix: str
) -> None:
    prefix, suffix = prefix.replace("{", ""), suffix.replace("}", "").replace("{", "")
    rendered = render(
        f"<{prefix}{{{{ variables.value }}}}{suffix}>", {"variables": {"value": value}}
    )

    text = (
        value
        if isinstance(value, str)
        else json.dumps(value, separators=(",", ":"), sort_keys=True)
    )
    assert rendered == f"<{prefix}{text}{suffix}>"


placeholder_texts = st.sampled_from(
    [
        "{{ index }}",
        "{{item}}",
        "{{ index + 1 }}",
        "{{ variables.dataset }}",
        "{{ parameters.input }}",
        "{{ {'a': index} }}",
        "{{ '}}' }}",
        "{{ unclosed",
        "plain",
        "}}",
    ]
)
templated_values = st.recursive(
    st.lists(placeholder_texts, max_size=3).map("".join) | st.integers(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abc"), inner),
    max_leaves=10,
)


@settings(deadline=None)
@given(value=templated_values)
def test_expressions_in_lists_what_render_evaluates(value: Any) -> None:
    evaluated: list[str] = []

    def recording(text: str) -> expressions.Expression:
        evaluated.append(text)
        return expressions.compile_expression(text)

    listed = set(expressions_in(value))
    with mock.patch.object(templates, "compile_expression", recording):
        try:
            render(value, CONTEXT)
        except ExpressionError:
            # Pieces such as "{{ unclosed" + "}}" make placeholders that fail; rendering stops
            # at the first, having evaluated only listed expressions.
            assert set(evaluated) <= listed
            return

    assert set(evaluated) == listed
