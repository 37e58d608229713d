"""How `execflow tool call` reads parameters: `-p KEY=VALUE` typing, files, the Task it makes."""

from __future__ import annotations

from typing import Any

import pytest

from execflow.cli.tool import (
    ParameterError,
    base_parameters,
    parse_pairs,
    parse_parameters,
    parse_value,
    task_body,
)
from execflow.core.tools import CALLED_BY_LABEL, parameter_problem


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3", 3),
        ("-2.5", -2.5),
        ("true", True),
        ("false", False),
        ("null", None),
        ("[1, 2]", [1, 2]),
        ('{"a": {"b": 1}}', {"a": {"b": 1}}),
        ('"3"', "3"),
        ("hello", "hello"),
        ("", ""),
        ("yes", "yes"),
        ("2024-01-01", "2024-01-01"),
        ("NaN", "NaN"),
        ("Infinity", "Infinity"),
        ("a=b", "a=b"),
    ],
)
def test_a_value_is_json_when_it_parses_as_json_else_text(text: str, expected: Any) -> None:
    value = parse_value(text)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("text", "schema", "expected"),
    [
        ("3.10", {"type": "string"}, "3.10"),
        ("007", {"type": "string"}, "007"),
        ("true", {"type": "string"}, "true"),
        ("3", {"type": "integer"}, 3),
        ("3", {"type": "number"}, 3),
        ("3.5", {"type": "number"}, 3.5),
        ("3", {"type": ["string", "integer"]}, 3),
        ("null", {"type": ["string", "null"]}, None),
        ("3", {"type": ["string", "null"]}, "3"),
        ("3", {"type": ["number", "null"]}, 3),
        ("[1]", {"type": "string"}, "[1]"),
        ("abc", {"type": "integer"}, "abc"),
        ("3", {"enum": [3, "3"]}, 3),
    ],
)
def test_a_parameter_typed_as_a_string_keeps_its_text(
    text: str, schema: dict[str, Any], expected: Any
) -> None:
    value = parse_value(text, schema)
    assert value == expected
    assert type(value) is type(expected)


def test_parameters_from_pairs_override_the_base_and_the_last_of_a_key_wins() -> None:
    properties = {"version": {"type": "string"}, "n": {"type": "integer"}}
    parameters = parse_parameters(
        ["n=1", "version=3.10", "n=3", "flag=true", "empty="],
        properties,
        base={"n": 0, "nested": {"a": [1]}},
    )
    assert parameters == {
        "n": 3,
        "version": "3.10",
        "flag": True,
        "empty": "",
        "nested": {"a": [1]},
    }


def test_a_value_at_a_file_is_read_from_it_and_double_at_escapes() -> None:
    files = {"rows.json": '{"rows": [1, 2]}\n', "note.txt": "line one\nline two\n\n"}
    parameters = parse_parameters(
        ["data=@rows.json", "note=@note.txt", "user=@@admin"],
        {"note": {"type": "string"}},
        read=files.__getitem__,
    )
    assert parameters == {
        "data": {"rows": [1, 2]},
        "note": "line one\nline two\n",
        "user": "@admin",
    }


@pytest.mark.parametrize("item", ["novalue", "=3", ""])
def test_a_pair_without_a_key_and_an_equals_sign_is_refused(item: str) -> None:
    with pytest.raises(ParameterError, match="expected KEY=VALUE"):
        parse_pairs([item], "-p")


def test_pairs_keep_everything_after_the_first_equals_sign() -> None:
    assert parse_pairs(["a=b=c", "team=ml"], "--label") == {"a": "b=c", "team": "ml"}


def test_base_parameters_come_from_json_or_a_yaml_file() -> None:
    assert base_parameters('{"a": {"b": [1, 2]}}', None) == {"a": {"b": [1, 2]}}
    files = {"p.yaml": "a:\n  b: [1, 2]\nname: x\n", "p.json": '{"n": 1}'}
    assert base_parameters(None, "p.yaml", read=files.__getitem__) == {
        "a": {"b": [1, 2]},
        "name": "x",
    }
    assert base_parameters(None, "p.json", read=files.__getitem__) == {"n": 1}
    assert base_parameters(None, None) == {}


@pytest.mark.parametrize(
    ("given", "file_text", "message"),
    [
        ("{not json", None, "is not JSON"),
        ("[1, 2]", None, "must hold an object"),
        (None, "- a\n- b\n", "must hold an object"),
        (None, "a: [unclosed\n", "neither JSON nor YAML"),
        (None, "when: 2024-01-01\n", "JSON cannot carry"),
    ],
)
def test_base_parameters_that_are_not_an_object_of_json_values_are_refused(
    given: str | None, file_text: str | None, message: str
) -> None:
    with pytest.raises(ParameterError, match=message):
        base_parameters(
            given, None if file_text is None else "p.yaml", read=lambda _p: file_text or ""
        )


def test_typed_values_satisfy_the_schema_that_text_would_violate() -> None:
    schema: dict[str, Any] = {
        "type": "object",
        "required": ["n", "flag"],
        "properties": {"n": {"type": "integer", "minimum": 1}, "flag": {"type": "boolean"}},
    }
    good = parse_parameters(["n=3", "flag=true"], schema["properties"])
    assert parameter_problem(schema, good) is None
    bad = parse_parameters(["n=0", "flag=true"], schema["properties"])
    assert "minimum of 1" in (parameter_problem(schema, bad) or "")


def test_the_task_of_a_call_names_the_tool_and_carries_the_options() -> None:
    body = task_body(
        "cleaner",
        {"input": "a.csv"},
        labels={"team": "ml", CALLED_BY_LABEL: "someone"},
        pod_annotations={"sim.execflow.dev/message": "{}"},
        priority="High",
        timeout="30s",
    )
    assert body["metadata"] == {
        "generateName": "cleaner-",
        "labels": {"team": "ml", CALLED_BY_LABEL: "cli"},
    }
    assert body["spec"] == {
        "toolRef": {"name": "cleaner"},
        "parameters": {"input": "a.csv"},
        "priority": "High",
        "timeout": "30s",
        "podTemplate": {"metadata": {"annotations": {"sim.execflow.dev/message": "{}"}}},
    }
    plain = task_body("cleaner", {}, labels={}, pod_annotations={})
    assert set(plain["spec"]) == {"toolRef", "parameters"}
