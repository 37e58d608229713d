"""CEL expressions over a workflow's context: compiled once, checked, evaluated to plain JSON.

A Workflow's `when` conditions, `forEach` lists and `{{ }}` placeholders are CEL. This module
decides three things about an expression without a cluster:

- whether it is acceptable: it must parse, stay within `MAX_EXPRESSION_LENGTH` and read only the
  names the context provides (for a workflow: variables, steps, item, index, workflow);
- which steps and tasks it reads (`Expression.references`), so the controller evaluates it only
  once they have finished;
- its value as plain JSON (`Expression.evaluate`), with failures explained in words.

The library only parses (it has no type checker) and lists comprehension variables among the
names an expression reads, so the text is tokenized as well (`cel_text`): a name the library
reports is refused unless it is allowed or every use of it was seen bound by a macro, and the
same tokens give the references.

Functions: what the library runs natively (`STANDARD_FUNCTIONS`: size, contains, startsWith,
endsWith, matches, the conversions, timestamp accessors, ...) plus `EXTENSION_FUNCTIONS`, the
"core" library of the package's opt-in stdlib (`cel.stdlib`): `sum`, `min` and `max` of a list
(`[1, 2].max()`, as Kubernetes' CEL list library spells them) and the `bool` conversion. The library
has none of these natively, so enabling them only gives a meaning to calls that failed before; every
expression gets them (Workflows too). They run as Python callbacks, so an expression calling one is
evaluated with a `cel.Context` holding just the functions it calls. Unknown functions fail when
evaluated, or at compile time where the caller asks for it (`known_functions_only`), with the name
and its position.

Results come back as the library's Python values and are made JSON: CEL timestamps become RFC 3339
strings in UTC (as execflow writes every time), durations Go-style strings as execflow writes
durations ("1h30m", negative ones with a leading "-"), bytes base64 text (CEL's own JSON mapping),
map keys their JSON text (`{1: "a"}` gives `{"1": "a"}`). NaN and infinities are refused:
Kubernetes objects are JSON and cannot carry them.
"""

from __future__ import annotations

import base64
import datetime
import difflib
import functools
import json
import math
import re
from collections.abc import Callable, Mapping, Set
from typing import Any

import cel
import cel.stdlib

from execflow.api.durations import format_duration
from execflow.api.timestamps import format_time
from execflow.core.cel_text import (
    Reference,
    Scan,
    call_offsets,
    field_at,
    line_and_column,
    placeholder_end,
    scan,
    step_references,
)

__all__ = [
    "CACHE_SIZE",
    "EXTENSION_FUNCTIONS",
    "KNOWN_FUNCTIONS",
    "MAX_EXPRESSION_LENGTH",
    "STANDARD_FUNCTIONS",
    "WORKFLOW_VARIABLES",
    "Expression",
    "ExpressionError",
    "Reference",
    "compile_expression",
    "placeholder_end",
]

WORKFLOW_VARIABLES: frozenset[str] = frozenset({"variables", "steps", "item", "index", "workflow"})
"""The names a workflow's expressions may read."""

MAX_EXPRESSION_LENGTH = 4096
"""Longest expression accepted. The library recurses once per operator and crashes the process
(no exception) when it exhausts the thread's stack: a chain of 16,000 additions overflows the
8 MiB of a Linux thread, 2,000 can overflow 1 MiB. 4096 characters hold at most about 2,000
operators, a quarter of what overflows 8 MiB."""

CACHE_SIZE = 1024
"""Compiled expressions kept for the whole process, the least recently used dropped first."""

STANDARD_FUNCTIONS: frozenset[str] = frozenset(
    {
        # macros, expanded by the parser
        "has", "all", "exists", "exists_one", "existsOne", "filter", "map",
        # conversions and types
        "bool", "bytes", "double", "duration", "dyn", "int", "string", "timestamp", "type", "uint",
        # strings and sizes
        "contains", "endsWith", "matches", "size", "startsWith",
        # timestamps and durations
        "getDate", "getDayOfMonth", "getDayOfWeek", "getDayOfYear", "getFullYear", "getHours",
        "getMilliseconds", "getMinutes", "getMonth", "getSeconds",
        # optionals
        "hasValue", "none", "of", "ofNonZeroValue", "or", "orValue", "value",
    }
)  # fmt: skip
"""The functions and macros CEL defines that the library runs natively (probed one by one: each
answers a call of the right shape), plus `bool`, which it lacks and `EXTENSION_FUNCTIONS` adds."""

EXTENSION_FUNCTIONS: Mapping[str, Callable[..., Any]] = dict(cel.stdlib.EXTENSIONS["core"])
"""The opt-in functions every expression may call: bool, min, max and sum."""

KNOWN_FUNCTIONS: frozenset[str] = STANDARD_FUNCTIONS | frozenset(EXTENSION_FUNCTIONS)
"""Every function name an expression may call."""


_SYNTAX_ERROR = re.compile(r"ERROR: <input>:(\d+):(\d+): (?:Syntax error: )?(.*)")
_INNER_MESSAGE = re.compile(r'msg: "([^"]*)"')
_EXPECTING = re.compile(r" expecting (?:\{.*\}|\S+)$")
_SYNTAX_WORDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?:mismatched|extraneous) input '<EOF>'"), "the expression ends too early"),
    (re.compile(r"(?:mismatched|extraneous) input '(.*)'"), r"unexpected '\1'"),
    (re.compile(r"missing '(.*)' at '.*'"), r"missing '\1'"),
    (re.compile(r"no viable alternative at input '(.*)'"), r"cannot read '\1'"),
    (re.compile(r"token recognition error at: '(.*)'"), r"unexpected text '\1'"),
)
_UNDEFINED = re.compile(r"Undefined variable or function: '([^']*)'")
_CALLBACK_FAILED = re.compile(
    r"Function '([^']*)' error: Python function call failed: \w+: (.*?)\.? Check function"
)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NEAR_LENGTH = 24
_QUOTED_LENGTH = 200
_KEYS_SHOWN = 8


class ExpressionError(ValueError):
    """An expression that does not compile, reads what it may not, or fails to evaluate.

    `reason` says what went wrong in words, `expression` is the text, `position` the (line,
    column) of a syntax error, `where` the field path it came from once a caller has said so with
    `at`. A `{{ }}` placeholder's error says so (`placeholder`), so the message quotes it as
    written.
    """

    def __init__(
        self,
        reason: str,
        expression: str,
        *,
        where: str | None = None,
        position: tuple[int, int] | None = None,
        placeholder: bool = False,
    ) -> None:
        self.reason = reason
        self.expression = expression
        self.where = where
        self.position = position
        self.placeholder = placeholder
        shown = expression
        if len(shown) > _QUOTED_LENGTH:
            shown = shown[:_QUOTED_LENGTH] + "..."
        subject = f"{{{{ {shown} }}}}" if placeholder else shown
        kind = "placeholder" if placeholder else "expression"
        located = f"{where}: " if where else ""
        quoted = json.dumps(subject, ensure_ascii=False)
        super().__init__(f"{located}{reason}, in {kind} {quoted}")

    def at(self, where: str) -> ExpressionError:
        """This error located at the field path `where`, under which a path it has already is
        taken to be (`at("spec.steps[1]")` of an error at `when` is at `spec.steps[1].when`)."""
        if self.where:
            separator = "" if self.where.startswith("[") else "."
            where = f"{where}{separator}{self.where}"
        return ExpressionError(
            self.reason,
            self.expression,
            where=where,
            position=self.position,
            placeholder=self.placeholder,
        )

    def in_placeholder(self) -> ExpressionError:
        """This error as the error of a `{{ }}` placeholder holding the expression."""
        return ExpressionError(
            self.reason,
            self.expression,
            where=self.where,
            position=self.position,
            placeholder=True,
        )


class _NotJsonError(ValueError):
    """A result JSON cannot carry."""


class Expression:
    """A compiled expression: evaluate it as often as needed, it is never parsed again.

    `text` is the expression as written, `names` the context names it reads (comprehension
    variables excluded): evaluation hands the library only those. `calls` maps each function it
    calls to the offset of its first call (None where the text does not show it).
    """

    __slots__ = (
        "_fields",
        "_functions",
        "_program",
        "_references",
        "_unnamed_step",
        "calls",
        "names",
        "text",
    )

    def __init__(self, text: str, program: cel.Program, scanned: Scan) -> None:
        self.text = text
        self._program = program
        free_names = {scanned.tokens[index].text for index in scanned.free}
        self.names: frozenset[str] = frozenset(
            name for name in program.variables() if name in free_names or name not in scanned.bound
        )
        offsets = call_offsets(scanned.tokens)
        # The library lists operators too (`_+_`, `@in`); only named functions are calls.
        self.calls: Mapping[str, int | None] = {
            name: offsets.get(name)
            for name in program.functions()
            if _IDENTIFIER.fullmatch(name) is not None
        }
        self._functions = {
            name: EXTENSION_FUNCTIONS[name] for name in self.calls if name in EXTENSION_FUNCTIONS
        }
        references, unnamed = step_references(scanned)
        self._references = references
        self._unnamed_step = unnamed
        self._fields = _fields_read(scanned)

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def paths_read(self, name: str) -> frozenset[tuple[str, ...]] | None:
        """The field paths of the context value `name` the expression reads, each as far as it
        is literal (`r.result.score` gives ("result", "score"); `r.tags.exists(...)` gives
        ("tags",)), or None when it uses the value itself (as a whole, or with a computed key).
        A name the expression does not read gives no paths."""
        return self._fields.get(name, frozenset())

    def references(self) -> frozenset[Reference]:
        """The steps and tasks the expression reads: what must have finished before it can be
        evaluated."""
        return self._references

    def evaluate(self, context: Mapping[str, Any]) -> Any:
        """The expression's value over `context`, as plain JSON (dict, list, str, int, float,
        bool, None). Raises ExpressionError explaining a failure in words."""
        scope = {name: context[name] for name in self.names if name in context}
        try:
            if self._functions:
                value = self._program.execute(cel.Context(scope, self._functions))
            else:
                value = self._program.execute(scope)
        except (ArithmeticError, LookupError, RuntimeError, TypeError, ValueError) as error:
            raise ExpressionError(_explain(error, self, scope), self.text) from error
        try:
            return _plain(value)
        except _NotJsonError as error:
            raise ExpressionError(str(error), self.text) from error


def compile_expression(
    text: str, names: Set[str] = WORKFLOW_VARIABLES, *, known_functions_only: bool = False
) -> Expression:
    """The compiled expression for `text`, from a cache when it was compiled before.

    Raises ExpressionError when it does not parse (with the position), is longer than
    `MAX_EXPRESSION_LENGTH`, reads a name outside `names`, or reads `steps` without naming the
    step literally (then nobody could tell what it waits for). With `known_functions_only`, a
    call of a function outside `KNOWN_FUNCTIONS` is refused too, with its name and position.
    """
    expression = _compile(text)
    unknown = sorted(expression.names - names)
    if unknown:
        raise ExpressionError(_unknown_names(unknown, names), text)
    if known_functions_only:
        _refuse_unknown_functions(expression)
    if expression._unnamed_step is not None:
        line, column = line_and_column(text, expression._unnamed_step)
        raise ExpressionError(
            f"reads steps at line {line}, column {column} without naming a step: write "
            "steps.NAME or steps['NAME'] so that it is known which step it waits for",
            text,
        )
    return expression


@functools.lru_cache(maxsize=CACHE_SIZE)
def _compile(text: str) -> Expression:
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(
            f"is {len(text)} characters long, more than the {MAX_EXPRESSION_LENGTH} allowed", text
        )
    try:
        program = cel.compile(text)
    except ValueError as error:
        reason, position = _syntax_error(str(error), text)
        raise ExpressionError(reason, text, position=position) from None
    return Expression(text, program, scan(text))


def _refuse_unknown_functions(expression: Expression) -> None:
    unknown = sorted(
        (name for name in expression.calls if name not in KNOWN_FUNCTIONS),
        key=lambda name: (expression.calls[name] or 0, name),
    )
    if not unknown:
        return
    name = unknown[0]
    offset = expression.calls[name]
    position = None if offset is None else line_and_column(expression.text, offset)
    where = "" if position is None else f" at line {position[0]}, column {position[1]}"
    close = difflib.get_close_matches(name, sorted(KNOWN_FUNCTIONS), n=1)
    hint = (
        f"did you mean {close[0]!r}?"
        if close
        else "the functions are " + ", ".join(sorted(KNOWN_FUNCTIONS))
    )
    raise ExpressionError(
        f"calls unknown function {name!r}{where}; {hint}", expression.text, position=position
    )


def _syntax_error(message: str, text: str) -> tuple[str, tuple[int, int] | None]:
    """The library's parse error in words, with its position and the text found there."""
    errors = _SYNTAX_ERROR.findall(message)
    if not errors:
        return f"does not parse: {message}", None
    # The first error is the cause; later ones follow from it. An internal complaint
    # ("Incomplete IndexContext") may come first, so a proper syntax error is preferred.
    line, column, detail = next((e for e in errors if "Incomplete" not in e[2]), errors[0])
    inner = _INNER_MESSAGE.search(detail)
    words = inner.group(1) if inner else _EXPECTING.sub("", detail)
    for pattern, replacement in _SYNTAX_WORDS:
        if pattern.fullmatch(words):
            words = pattern.sub(replacement, words)
            break
    position = (int(line), int(column))
    return (
        f"syntax error at line {line}, column {column} {_near(text, position)}: {words}",
        position,
    )


def _near(text: str, position: tuple[int, int]) -> str:
    lines = text.split("\n")
    line = lines[min(position[0], len(lines)) - 1]
    rest = line[position[1] - 1 :].strip()
    if not rest:
        return "(at the end)"
    if len(rest) > _NEAR_LENGTH:
        rest = rest[:_NEAR_LENGTH] + "..."
    return f"(near {json.dumps(rest, ensure_ascii=False)})"


def _unknown_names(unknown: list[str], names: Set[str]) -> str:
    described = []
    for name in unknown:
        close = difflib.get_close_matches(name, sorted(names), n=1)
        described.append(f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name))
    noun = "name" if len(unknown) == 1 else "names"
    allowed = ", ".join(sorted(names))
    return f"reads unknown {noun} {', '.join(described)}; an expression can read {allowed}"


def _explain(error: Exception, expression: Expression, scope: Mapping[str, Any]) -> str:
    """An evaluation failure in words."""
    if isinstance(error, KeyError):
        key = error.args[0] if error.args else ""
        return _missing_key(expression.text, str(key), scope)
    if isinstance(error, ZeroDivisionError):
        return "division by zero"
    return _library_words(" ".join(str(error).split()), expression)


def _library_words(message: str, expression: Expression) -> str:
    """The library's evaluation error message in words."""
    failed = _CALLBACK_FAILED.search(message)
    if failed:
        return f"{failed.group(1)}() failed: {failed.group(2)}"
    undefined = _UNDEFINED.search(message)
    if undefined:
        name = undefined.group(1)
        if name in expression.names:
            return f"{name!r} has no value here"
        return f"no function {name!r} that takes these arguments"
    first = message.split(". ", 1)[0].rstrip(".")
    if first.startswith("No such overload"):
        return f"{first} (CEL does not convert between int, uint, double and string by itself)"
    return first


def _missing_key(text: str, key: str, scope: Mapping[str, Any]) -> str:
    """Names the map that lacks `key` by following the expression's literal field accesses
    through the context, as written (`steps.preprocess.tasks['clean-data']`)."""
    scanned = scan(text)
    for index in scanned.free:
        root = scanned.tokens[index]
        value = scope.get(root.text)
        end, cursor = root.end, index + 1
        while isinstance(value, Mapping):
            name, after = field_at(scanned.tokens, cursor)
            if name is None:
                break
            if name not in value:
                if name == key:
                    return f"no such key {key!r} in {text[root.start : end]}{_keys_of(value)}"
                break
            value, end, cursor = value[name], scanned.tokens[after - 1].end, after
    return f"no such key {key!r}"


def _keys_of(value: Mapping[str, Any]) -> str:
    keys = sorted(str(key) for key in value)
    if not keys:
        return " (it is empty)"
    shown = ", ".join(keys[:_KEYS_SHOWN]) + (", ..." if len(keys) > _KEYS_SHOWN else "")
    return f" (its keys: {shown})"


def _plain(value: Any) -> Any:
    """`value` as plain JSON; raises _NotJsonError for what JSON cannot carry."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _NotJsonError(f"gives {value}, which JSON cannot carry")
        return value
    if isinstance(value, dict):
        return {_key_text(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return _scalar_text(value)


def _key_text(key: Any) -> str:
    return json.dumps(key) if isinstance(key, bool) else str(key)


def _scalar_text(value: Any) -> str:
    if isinstance(value, datetime.datetime):
        # The library's timestamps are always timezone-aware (UTC or the offset written).
        return format_time(value)
    if isinstance(value, datetime.timedelta):
        negative = value < datetime.timedelta(0)
        return ("-" if negative else "") + format_duration(abs(value))
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise _NotJsonError(f"gives a {type(value).__name__}, which has no JSON form")


def _fields_read(scanned: Scan) -> dict[str, frozenset[tuple[str, ...]] | None]:
    paths: dict[str, set[tuple[str, ...]] | None] = {}
    for index in scanned.free:
        name = scanned.tokens[index].text
        path: list[str] = []
        field, cursor = field_at(scanned.tokens, index + 1)
        while field is not None:
            path.append(field)
            field, cursor = field_at(scanned.tokens, cursor)
        known = paths.setdefault(name, set())
        if not path:
            paths[name] = None
        elif known is not None:
            known.add(tuple(path))
    return {name: None if read is None else frozenset(read) for name, read in paths.items()}
