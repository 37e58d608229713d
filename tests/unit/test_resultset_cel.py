"""The CEL that ResultSets use, in execflow.core.expressions: functions known, enabled, refused.

Pure core against the real CEL library, no cluster. It pins what was measured about the
library: which standard functions it runs natively, that `sum`, `min`, `max` and `bool` exist
only through its opt-in stdlib (enabled for every expression), and that calls of unknown
functions are refused at compile time with their name and position when asked for, while
Workflow expressions keep failing only when evaluated.
"""

from __future__ import annotations

import cel
import pytest

from execflow.core.expressions import (
    EXTENSION_FUNCTIONS,
    KNOWN_FUNCTIONS,
    STANDARD_FUNCTIONS,
    ExpressionError,
    compile_expression,
)

TIME = 'timestamp("2024-05-01T12:00:00Z")'
NATIVE_CALLS = {
    "has": "has(r.a)",
    "all": "[1].all(x, x > 0)",
    "exists": "[1].exists(x, x > 0)",
    "exists_one": "[1].exists_one(x, x > 0)",
    "existsOne": "[1].existsOne(x, x > 0)",
    "filter": "[1].filter(x, x > 0)",
    "map": "[1].map(x, x * 2)",
    "bytes": 'bytes("a")',
    "double": "double(1)",
    "duration": 'duration("1s")',
    "dyn": "dyn(1)",
    "int": "int(1.5)",
    "string": "string(1)",
    "timestamp": TIME,
    "type": "type(1) == int",
    "uint": "uint(1)",
    "contains": '"abc".contains("b")',
    "endsWith": '"abc".endsWith("c")',
    "matches": '"abc".matches("^a")',
    "size": "size([1])",
    "startsWith": '"abc".startsWith("a")',
    "getDate": f"{TIME}.getDate()",
    "getDayOfMonth": f"{TIME}.getDayOfMonth()",
    "getDayOfWeek": f"{TIME}.getDayOfWeek()",
    "getDayOfYear": f"{TIME}.getDayOfYear()",
    "getFullYear": f"{TIME}.getFullYear()",
    "getHours": f"{TIME}.getHours()",
    "getMilliseconds": f"{TIME}.getMilliseconds()",
    "getMinutes": f"{TIME}.getMinutes()",
    "getMonth": f"{TIME}.getMonth()",
    "getSeconds": f"{TIME}.getSeconds()",
    "hasValue": "optional.of(1).hasValue()",
    "none": "optional.none()",
    "of": "optional.of(1)",
    "ofNonZeroValue": "optional.ofNonZeroValue(1)",
    "or": "optional.none().or(optional.of(2))",
    "orValue": "optional.none().orValue(1)",
    "value": "optional.of(1).value()",
}
"""A call of each standard function, run on the raw library (optionals come from `optional`,
which ResultSet and Workflow expressions cannot read)."""


def test_every_standard_function_but_bool_is_native_to_the_library() -> None:
    assert set(NATIVE_CALLS) | {"bool"} == STANDARD_FUNCTIONS
    for name, text in NATIVE_CALLS.items():
        try:
            cel.compile(text).execute({"r": {"a": 1}})
        except (RuntimeError, TypeError, ValueError) as error:
            assert f"Undefined variable or function: '{name}'" not in str(error), name


@pytest.mark.parametrize("name", ["sum", "min", "max", "bool"])
def test_the_library_lacks_the_extensions_natively(name: str) -> None:
    with pytest.raises(RuntimeError, match=f"Undefined variable or function: '{name}'"):
        cel.compile(f"{name}([1])").execute({})


def test_known_functions_are_the_standard_ones_and_the_extensions() -> None:
    assert set(EXTENSION_FUNCTIONS) == {"sum", "min", "max", "bool"}
    assert STANDARD_FUNCTIONS | set(EXTENSION_FUNCTIONS) == KNOWN_FUNCTIONS


def test_the_api_example_works() -> None:
    results = [{"result": {"score": 0.5}}, {"result": {"score": 0.75}}]
    expression = compile_expression(
        "results.map(r, r.result.score).max()", {"results"}, known_functions_only=True
    )

    assert expression.evaluate({"results": results}) == 0.75


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[3, 1, 2].max()", 3),
        ("[3, 1, 2].min()", 1),
        ("[1, 2.5].sum()", 3.5),
        ("[].sum()", 0),
        ("max(1, 2)", 2),
        ('bool("true")', True),
    ],
)
def test_the_extensions_serve_workflow_expressions_too(text: str, expected: object) -> None:
    assert compile_expression(text).evaluate({}) == expected


def test_a_failing_extension_is_explained() -> None:
    with pytest.raises(ExpressionError) as raised:
        compile_expression("[].max()").evaluate({})

    assert raised.value.reason == "max() failed: at least one argument is required"


def test_a_workflow_expression_with_an_unknown_function_fails_only_when_evaluated() -> None:
    expression = compile_expression("variables.name.shout()")

    with pytest.raises(ExpressionError, match="no function 'shout'"):
        expression.evaluate({"variables": {"name": "x"}})


def test_an_unknown_function_is_refused_with_its_name_and_position() -> None:
    with pytest.raises(ExpressionError) as raised:
        compile_expression(
            "r.result.score +\n  r.result.values.mx()", {"r"}, known_functions_only=True
        )

    assert raised.value.position == (2, 19)
    assert "calls unknown function 'mx' at line 2, column 19; did you mean 'max'?" in str(
        raised.value
    )


def test_an_unknown_global_function_is_refused_and_the_known_ones_are_listed() -> None:
    with pytest.raises(ExpressionError) as raised:
        compile_expression("size(r) + frobnicate(r)", {"r"}, known_functions_only=True)

    assert raised.value.position == (1, 11)
    assert "unknown function 'frobnicate'" in raised.value.reason
    assert "size, startsWith, string, sum" in raised.value.reason


def test_names_in_string_literals_and_field_names_are_not_calls() -> None:
    text = "r.foo == 'bar(1)' && r.size > 0"

    assert compile_expression(text, {"r"}, known_functions_only=True).calls == {}
