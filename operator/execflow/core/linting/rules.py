"""The CRD's CEL validation rules (x-kubernetes-validations), evaluated offline.

Every rule is evaluated where the schema declares it, with `self` bound to the value there, by
the same CEL library the operator uses (`cel`). At the root `self.metadata` holds only `name`
and `generateName`, as the API server shows it. Rules call a few functions of Kubernetes' CEL
libraries the library lacks, so they are supplied as host functions with the same meaning:

- `isQuantity(string)`: the string parses as a resource.Quantity (`execflow.api.common`);
- `list.indexOf(value)` (Kubernetes' list library; on strings, the strings library's);
- `timestamp.getHours(timeZone)` and the other timestamp accessors with a time zone, refusing an
  unknown zone with the API server's words ("unknown time zone X");
- `sets.contains`, `sets.equivalent`, `sets.intersects` (the library's opt-in `cel.stdlib`).

A rule that calls anything else the library does not run is not skipped silently: it is
reported as a warning that it could not be checked offline. Transition rules (those reading
`oldSelf`) apply to updates only; the API server does not evaluate them when an object is
created, and neither does the lint (said with -v). The API server's cost limits are not
estimated.

A failed rule is worded as the API server words it: `Invalid value: "<value>": message` on a
scalar, `Invalid value: message` on an object or at a `fieldPath`, the messageExpression's value
when it gives one, and `... evaluating rule: message` when the rule fails to evaluate.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import logging
import re
import threading
import zoneinfo
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import cel
import cel.stdlib

from execflow.api.admission import VALIDATIONS
from execflow.api.common import QUANTITY_PATTERN
from execflow.core.expressions import STANDARD_FUNCTIONS
from execflow.core.linting.findings import Check, Finding, error, info, show, type_name, warning
from execflow.core.linting.paths import JsonSchema, child, parse, typed

_QUANTITY = re.compile(QUANTITY_PATTERN)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CALLBACK_FAILED = re.compile(r"Python function call failed: \w+: (.*?)\.? Check function")
_REASONS = {
    "FieldValueInvalid": "Invalid value",
    "FieldValueForbidden": "Forbidden",
    "FieldValueRequired": "Required value",
    "FieldValueDuplicate": "Duplicate value",
}
_TIMESTAMP_PARTS: Mapping[str, Callable[[datetime.datetime], int]] = {
    "getFullYear": lambda t: t.year,
    "getMonth": lambda t: t.month - 1,
    "getDayOfYear": lambda t: t.timetuple().tm_yday - 1,
    "getDayOfMonth": lambda t: t.day - 1,
    "getDate": lambda t: t.day,
    "getDayOfWeek": lambda t: (t.weekday() + 1) % 7,
    "getHours": lambda t: t.hour,
    "getMinutes": lambda t: t.minute,
    "getSeconds": lambda t: t.second,
    "getMilliseconds": lambda t: t.microsecond // 1000,
}


class _Quiet(logging.Filter):
    """Drops the library's log line for a host function's failure while a rule is evaluated
    here: the failure is reported as a finding instead."""

    def __init__(self) -> None:
        super().__init__()
        self.local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(self.local, "quiet", False)

    @contextlib.contextmanager
    def quiet(self) -> Iterator[None]:
        self.local.quiet = True
        try:
            yield
        finally:
            self.local.quiet = False


_QUIET = _Quiet()
logging.getLogger("cel").addFilter(_QUIET)


def _is_quantity(text: Any) -> bool:
    if not isinstance(text, str):
        raise TypeError("isQuantity takes a string")
    return _QUANTITY.fullmatch(text) is not None


def _index_of(container: Any, item: Any, offset: int = 0) -> int:
    if isinstance(container, str):
        return container.find(str(item), offset)
    for index, candidate in enumerate(container):
        if candidate == item and isinstance(candidate, bool) == isinstance(item, bool):
            return index
    return -1


def _zone(name: str) -> datetime.tzinfo:
    if name in ("", "UTC"):
        return datetime.UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name}") from None


def _accessor(part: Callable[[datetime.datetime], int]) -> Callable[..., int]:
    def accessor(moment: datetime.datetime, time_zone: str | None = None) -> int:
        local = moment.astimezone(datetime.UTC if time_zone is None else _zone(time_zone))
        return part(local)

    return accessor


HOST_FUNCTIONS: Mapping[str, Callable[..., Any]] = {
    "isQuantity": _is_quantity,
    "indexOf": _index_of,
    **{name: _accessor(part) for name, part in _TIMESTAMP_PARTS.items()},
    **cel.stdlib.EXTENSIONS["sets"],
}
"""Kubernetes CEL functions the library lacks, supplied with the same meaning."""

SUPPORTED_FUNCTIONS: frozenset[str] = (
    STANDARD_FUNCTIONS
    | frozenset(HOST_FUNCTIONS)
    | frozenset(name.rpartition(".")[2] for name in HOST_FUNCTIONS)
)
"""Every function a rule may call and still be checked offline."""


@functools.lru_cache(maxsize=512)
def _program(text: str) -> cel.Program | str:
    """The compiled rule, or why it cannot be evaluated offline."""
    try:
        program = cel.compile(text)
    except ValueError as failure:
        return f"the CEL library cannot parse it ({' '.join(str(failure).split())[:200]})"
    lacking = sorted(
        name
        for name in program.functions()
        if _IDENTIFIER.fullmatch(name) and name not in SUPPORTED_FUNCTIONS
    )
    if lacking:
        return "the CEL library lacks " + ", ".join(f"{name}()" for name in lacking)
    return program


def evaluate_rules(schema: JsonSchema, value: Any) -> list[Finding]:
    """Every rule of `schema` (the root of a kind) over the normalized object `value`."""
    root = dict(value) if isinstance(value, Mapping) else value
    if isinstance(root, dict) and isinstance(root.get("metadata"), Mapping):
        metadata = root["metadata"]
        root["metadata"] = {k: metadata[k] for k in ("name", "generateName") if k in metadata}
    findings: list[Finding] = []
    for path, rule, target in _rules(schema, root, ()):
        findings.extend(_check(schema, rule, path, target))
    return findings


def _rules(
    schema: JsonSchema | None, value: Any, path: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], Mapping[str, Any], Any]]:
    """Each rule with the path and value it applies to, outermost first."""
    if schema is None or value is None:
        return
    for rule in schema.get(VALIDATIONS, ()):
        yield path, rule, value
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from _rules(schema.get("items"), item, (*path, index))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _rules(child(schema, key), item, (*path, key))


def _check(
    root: JsonSchema, rule: Mapping[str, Any], at: tuple[str | int, ...], value: Any
) -> list[Finding]:
    text = str(rule["rule"])
    message = str(rule.get("message") or f"failed rule: {' '.join(text.split())}")
    path = typed(root, at)
    program = _program(text)
    if isinstance(program, str):
        return [warning(Check.RULE, path, f"rule not checked offline: {program}: {message}")]
    if "oldSelf" in program.variables():
        return [info(Check.RULE, path, f"rule applies to updates only, not checked: {message}")]
    context = cel.Context({"self": value}, dict(HOST_FUNCTIONS))
    try:
        with _QUIET.quiet():
            verdict = program.execute(context)
    except (ArithmeticError, LookupError, RuntimeError, TypeError, ValueError) as failure:
        reason = _failure_words(failure)
        detail = f'Invalid value: "{type_name(value)}": {reason} evaluating rule: {message}'
        return [error(Check.RULE, path, detail)]
    if verdict is True:
        return []
    if verdict is not False:
        return [warning(Check.RULE, path, f"rule gives {verdict!r}, not a bool: {message}")]
    return [_failed(root, rule, at, value, message=message, context=context)]


def _failed(
    root: JsonSchema,
    rule: Mapping[str, Any],
    at: tuple[str | int, ...],
    value: Any,
    *,
    message: str,
    context: cel.Context,
) -> Finding:
    """A rule that evaluated to false, worded as the API server words it."""
    expressed = rule.get("messageExpression")
    if isinstance(expressed, str):
        message = _message(expressed, context) or message
    path = typed(root, at)
    field_path = rule.get("fieldPath")
    if isinstance(field_path, str) and field_path:
        relative = parse(field_path)
        if relative is not None:
            path = typed(root, (*at, *relative))
    reason = _REASONS.get(str(rule.get("reason") or "FieldValueInvalid"), "Invalid value")
    scalar = not isinstance(value, Mapping | list) and not field_path
    if reason == "Invalid value" and scalar:
        return error(Check.RULE, path, f"{reason}: {show(value)}: {message}")
    return error(Check.RULE, path, f"{reason}: {message}")


def _message(expression: str, context: cel.Context) -> str | None:
    program = _program(expression)
    if isinstance(program, str):
        return None
    try:
        with _QUIET.quiet():
            text = program.execute(context)
    except (ArithmeticError, LookupError, RuntimeError, TypeError, ValueError):
        return None
    return text if isinstance(text, str) and text.strip() else None


def _failure_words(failure: Exception) -> str:
    if isinstance(failure, KeyError):
        return f"no such key: {failure.args[0] if failure.args else ''}"
    text = " ".join(str(failure).split())
    called = _CALLBACK_FAILED.search(text)
    return called.group(1) if called else text.split(". ", 1)[0].rstrip(".")
