"""One thing a check found in a document, before it is placed at a line of the file.

Every check (schema, CEL rules, model, admission) reports `Finding`s: the severity, the field
path, the message as the API server (or the operator's webhook) words it, and which check found
it. Values inside a message are written as the API server writes them (`show`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from execflow.core.linting.paths import Path


class Severity(StrEnum):
    ERROR = "error"
    """The API server (or the operator's admission webhook) would refuse the object."""
    WARNING = "warning"
    """Accepted, but not as written (an unknown field is dropped), or not checked offline."""
    INFO = "info"
    """Said only when asked (-v): a document that was skipped, a rule that applies later."""


class Check(StrEnum):
    """Which check found it, in the order the API server applies them."""

    YAML = "yaml"
    KIND = "kind"
    METADATA = "metadata"
    SCHEMA = "schema"
    RULE = "rule"
    MODEL = "model"
    ADMISSION = "admission"


@dataclass(frozen=True)
class Finding:
    severity: Severity
    check: Check
    path: Path
    message: str


def error(check: Check, path: Path, message: str) -> Finding:
    return Finding(Severity.ERROR, check, path, message)


def warning(check: Check, path: Path, message: str) -> Finding:
    return Finding(Severity.WARNING, check, path, message)


def info(check: Check, path: Path, message: str) -> Finding:
    return Finding(Severity.INFO, check, path, message)


def show(value: Any) -> str:
    """A value as the API server quotes it in "Invalid value: ...": strings quoted, numbers and
    booleans bare, whole numbers without a fraction, null as null."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(type_name(value))


_TYPE_NAMES: tuple[tuple[type | None, str], ...] = (
    (type(None), "null"),
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (list, "array"),
)


def type_name(value: Any) -> str:
    """The JSON type of `value`, as the API server names it in messages."""
    for kind, name in _TYPE_NAMES:
        if isinstance(value, kind or type(None)):
            return name
    return "object"
