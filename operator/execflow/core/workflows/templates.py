"""`{{ EXPR }}` placeholders in a workflow task's parameters, args, env values and pod annotations.

Each placeholder holds a CEL expression over the workflow's context (see
`execflow.core.expressions`). A string that is exactly one placeholder becomes the expression's
value with its JSON type, so `"{{ item }}"` over a fan-out of floats gives a float and a list
stays a list. Inside a longer string each placeholder becomes text: strings verbatim, anything
else compact JSON (`null`, `3`, `[1,2]`, `{"a":1}` with sorted keys).

`{{ parameters.NAME }}` is not ours: the Task renders it into its args from its own parameters
later, so a placeholder whose expression starts with `parameters.` is left exactly as written.

A placeholder ends at the first `}}` outside its expression's string literals and braces, so
`{{ {'a': 1}}}` and `{{ '}}' }}` are single placeholders. A `{{` with no closing `}}` after it is
plain text, as is a lone `}}`; to produce a literal `{{ x }}`, write `{{ '{{ x }}' }}`. Dict keys
are never rendered, only values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from execflow.core.expressions import ExpressionError, compile_expression, placeholder_end

_TASK_PARAMETER = re.compile(r"\s*parameters\.")
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


class _Placeholder(NamedTuple):
    """One `{{ }}` in a string: where it starts and ends, and its expression (stripped)."""

    start: int
    end: int
    expression: str
    evaluated: bool


def expressions_in(value: Any) -> list[str]:
    """Every placeholder expression in `value` (nested dicts, lists and strings), each once, in
    the order they first appear; `parameters.` placeholders are not included."""
    found: dict[str, None] = {}
    for text in _strings(value):
        for placeholder in _placeholders(text):
            if placeholder.evaluated:
                found.setdefault(placeholder.expression)
    return list(found)


def render(value: Any, context: Mapping[str, Any]) -> Any:
    """A copy of `value` with every placeholder replaced by its value over `context`.

    Raises ExpressionError naming the placeholder that failed and, in `where`, its path inside
    `value` (`parameters.data`, `args[2]`), to be placed under the spec's path with `at`.
    """
    return _render(value, context, "")


def _render(value: Any, context: Mapping[str, Any], path: str) -> Any:
    if isinstance(value, str):
        try:
            return _render_string(value, context)
        except ExpressionError as error:
            located = error.in_placeholder()
            raise (located.at(path) if path else located) from error
    if isinstance(value, Mapping):
        return {key: _render(item, context, _key_path(path, key)) for key, item in value.items()}
    if isinstance(value, list):
        return [_render(item, context, f"{path}[{index}]") for index, item in enumerate(value)]
    return value


def _render_string(text: str, context: Mapping[str, Any]) -> Any:
    placeholders = [p for p in _placeholders(text) if p.evaluated]
    if not placeholders:
        return text
    whole = placeholders[0]
    if len(placeholders) == 1 and whole.start == 0 and whole.end == len(text):
        return compile_expression(whole.expression).evaluate(context)
    pieces: list[str] = []
    done = 0
    for placeholder in placeholders:
        value = compile_expression(placeholder.expression).evaluate(context)
        pieces += [text[done : placeholder.start], _as_text(value)]
        done = placeholder.end
    pieces.append(text[done:])
    return "".join(pieces)


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _placeholders(text: str) -> Iterator[_Placeholder]:
    search_from = 0
    while (opening := text.find("{{", search_from)) != -1:
        closing = placeholder_end(text, opening + 2)
        if closing is None:
            if text.find("}}", opening) == -1:
                return
            # This `{{` is text, but a string literal it opened may have hidden a `}}` that
            # closes a later one.
            search_from = opening + 1
            continue
        inner = text[opening + 2 : closing]
        evaluated = _TASK_PARAMETER.match(inner) is None
        yield _Placeholder(opening, closing + 2, inner.strip(), evaluated)
        search_from = closing + 2


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _key_path(path: str, key: Any) -> str:
    text = str(key)
    if _PLAIN_KEY.fullmatch(text) is None:
        return f"{path}[{json.dumps(text, ensure_ascii=False)}]"
    return f"{path}.{text}" if path else text
