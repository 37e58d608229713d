"""The text of a CEL expression, tokenized: what it reads, and where a `{{ }}` placeholder ends.

The CEL library only parses, and lists every identifier, including the variables that
comprehension macros bind (the `x` of `list.map(x, x * 2)`). So the text is also tokenized here:
a macro call (`all`, `exists`, `exists_one`/`existsOne`, `filter` with two arguments, `map` with two
or three) after an operand binds its first argument for the span of its parentheses, and an
identifier inside that span with the same name is local. The same tokens give the steps and tasks
an expression reads (`steps.NAME.tasks['TASK']`) and where each function is called, so text inside
string literals never counts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import NamedTuple

import cel

_MACRO_ARITIES: Mapping[str, frozenset[int]] = {
    "all": frozenset({2}),
    "exists": frozenset({2}),
    "exists_one": frozenset({2}),
    "existsOne": frozenset({2}),
    "filter": frozenset({2}),
    "map": frozenset({2, 3}),
}
"""The comprehension macros the library runs, by the argument counts that make them macros."""


_STRING = (
    r"[bB]?[rR](?:'''.*?'''|\"\"\".*?\"\"\"|'[^'\n\r]*'|\"[^\"\n\r]*\")"
    r"|[bB]?(?:'''(?:\\.|[^\\])*?'''|\"\"\"(?:\\.|[^\\])*?\"\"\""
    r"|'(?:\\.|[^\\'\n\r])*'|\"(?:\\.|[^\\\"\n\r])*\")"
)


_NUMBER = (
    r"0[xX][0-9a-fA-F]+[uU]?|\d+\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+"
    r"|\.\d+(?:[eE][+-]?\d+)?|\d+[uU]?"
)


_LEXEME = re.compile(
    rf"(?P<space>\s+|//[^\n]*)|(?P<string>{_STRING})|(?P<number>{_NUMBER})"
    r"|(?P<ident>[A-Za-z_][A-Za-z0-9_]*)|(?P<punct>.)",
    re.DOTALL,
)


_OPERAND_ENDS = frozenset({"ident", "string", "number"})


@dataclass(frozen=True)
class Reference:
    """A step of the workflow an expression reads, and the task of it when it names one (None:
    the step itself, such as its phase, or tasks it does not name literally)."""

    step: str
    task: str | None = None


class Token(NamedTuple):
    kind: str
    text: str
    start: int
    end: int


class Scan(NamedTuple):
    """Identifier uses of an expression: the tokens that read the context, and the names that
    are read only where a macro binds them."""

    tokens: list[Token]
    free: list[int]
    bound: frozenset[str]


def placeholder_end(text: str, start: int) -> int | None:
    """Where the `}}` closing a placeholder whose expression begins at `start` is, or None.

    The first `}}` outside the expression's string literals and its own braces closes it, so
    `{{ {'a': 1}}}` and `{{ '}}' }}` are whole placeholders.
    """
    depth = 0
    for token in lex(text, start):
        if token.kind != "punct":
            continue
        if token.text == "{":
            depth += 1
        elif token.text == "}":
            if depth == 0 and text.startswith("}", token.end):
                return token.start
            depth = max(depth - 1, 0)
    return None


def lex(text: str, start: int = 0) -> Iterator[Token]:
    position = start
    while position < len(text):
        match = _LEXEME.match(text, position)
        # The last alternative takes any one character, so a match always exists.
        assert match is not None and match.lastgroup is not None
        if match.lastgroup != "space":
            yield Token(match.lastgroup, match.group(), match.start(), match.end())
        position = match.end()


def scan(text: str) -> Scan:
    tokens = list(lex(text))
    closing, commas = _brackets(tokens)
    scopes: list[tuple[str, int]] = []
    binders: set[int] = set()
    free: list[int] = []
    bound: set[str] = set()
    for index, token in enumerate(tokens):
        while scopes and scopes[-1][1] < index:
            scopes.pop()
        if token.kind != "ident" or index in binders:
            continue
        binding = _macro_binding(tokens, index, closing, commas)
        if binding is not None:
            scopes.append(binding)
            binders.add(index + 2)
        elif _is_use(tokens, index):
            if any(name == token.text for name, _ in scopes):
                bound.add(token.text)
            else:
                free.append(index)
    return Scan(tokens, free, frozenset(bound))


def _brackets(tokens: list[Token]) -> tuple[dict[int, int], dict[int, int]]:
    """For each opening bracket, the index of its closing one and its top-level comma count."""
    closing: dict[int, int] = {}
    commas: dict[int, int] = {}
    open_brackets: list[int] = []
    for index, token in enumerate(tokens):
        if token.kind != "punct":
            continue
        if token.text in "([{":
            open_brackets.append(index)
            commas[index] = 0
        elif token.text in ")]}" and open_brackets:
            closing[open_brackets.pop()] = index
        elif token.text == "," and open_brackets:
            commas[open_brackets[-1]] += 1
    return closing, commas


def _macro_binding(
    tokens: list[Token], index: int, closing: dict[int, int], commas: dict[int, int]
) -> tuple[str, int] | None:
    """The variable a macro call at `index` binds and where its scope ends, or None."""
    arities = _MACRO_ARITIES.get(tokens[index].text)
    if arities is None or index < 2 or index + 3 >= len(tokens):
        return None
    receiver, dot, _, paren, variable, comma = tokens[index - 2 : index + 4]
    is_member_call = dot.text == "." and (
        receiver.kind in _OPERAND_ENDS or receiver.text in (")", "]", "}")
    )
    if not is_member_call or paren.text != "(" or variable.kind != "ident" or comma.text != ",":
        return None
    if commas[index + 1] + 1 not in arities or index + 1 not in closing:
        return None
    return variable.text, closing[index + 1]


def _is_use(tokens: list[Token], index: int) -> bool:
    """Whether the identifier at `index` names a variable: not a field after `.`, not a call."""
    after_dot = index > 0 and tokens[index - 1].text == "." and tokens[index - 1].kind == "punct"
    called = index + 1 < len(tokens) and tokens[index + 1].text == "("
    return not after_dot and not called


def call_offsets(tokens: list[Token]) -> dict[str, int]:
    """Where each name that is called first is called: an identifier followed by `(`, as a
    function (`size(x)`) or a method (`x.size()`), by the offset of the name."""
    offsets: dict[str, int] = {}
    for index, token in enumerate(tokens[:-1]):
        if token.kind == "ident" and tokens[index + 1].text == "(":
            offsets.setdefault(token.text, token.start)
    return offsets


def field_at(tokens: list[Token], index: int) -> tuple[str | None, int]:
    """A literal field access at `index` (`.name` or `['name']`): the name and the index after
    it, or None and `index` when the access is not literal."""
    window = tokens[index : index + 3]
    if len(window) >= 2 and window[0].text == "." and window[1].kind == "ident":
        if len(window) == 3 and window[2].text == "(":
            return None, index
        return window[1].text, index + 2
    is_index = len(window) == 3 and window[0].text == "[" and window[2].text == "]"
    if is_index and window[1].kind == "string":
        name = cel.compile(window[1].text).execute()
        if isinstance(name, str):
            return name, index + 3
    return None, index


def step_references(scan: Scan) -> tuple[frozenset[Reference], int | None]:
    """The references of `steps.STEP[.tasks.TASK]` forms, and the offset of the first `steps`
    that names no step literally (None when each does)."""
    references: set[Reference] = set()
    for index in scan.free:
        if scan.tokens[index].text != "steps":
            continue
        step, after_step = field_at(scan.tokens, index + 1)
        if step is None:
            return frozenset(references), scan.tokens[index].start
        tasks, after_tasks = field_at(scan.tokens, after_step)
        task = field_at(scan.tokens, after_tasks)[0] if tasks == "tasks" else None
        references.add(Reference(step, task))
    return frozenset(references), None


def line_and_column(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1
