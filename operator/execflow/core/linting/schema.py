"""A CRD's structural schema applied offline, as the API server applies it to a new object.

The API server first prunes what the schema does not know (and, asked for field validation
"Warn", the default of the API, says so; `kubectl apply` asks for "Strict" and refuses instead),
drops nulls where the schema does not allow them, and fills defaults. Then it validates types,
required fields, enums, bounds, lengths and formats (`normalize`, then `validate`).

The validation itself is jsonschema's: an OpenAPI v3.0 schema is JSON Schema draft 4 (boolean
`exclusiveMinimum`) once `nullable` and the `x-kubernetes-*` extensions are translated
(`json_schema`). jsonschema's errors are reworded into the API server's messages
("spec.priority: Unsupported value: ...", "spec.x: Invalid value: ...: spec.x in body must be of
type integer: ..."), and list types `set` and `map` are checked for duplicates as it checks them.
"""

from __future__ import annotations

import copy
import datetime
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema

from execflow.core.linting.findings import Check, Finding, error, show, type_name
from execflow.core.linting.paths import JsonSchema, MapKey, Path, child, render, typed

_PRESERVE = "x-kubernetes-preserve-unknown-fields"
_INT_OR_STRING = "x-kubernetes-int-or-string"
_LIST_TYPE = "x-kubernetes-list-type"
_MAP_KEYS = "x-kubernetes-list-map-keys"
_COPIED = (
    "enum",
    "format",
    "maxItems",
    "maxLength",
    "maxProperties",
    "maximum",
    "minItems",
    "minLength",
    "minProperties",
    "minimum",
    "multipleOf",
    "required",
    "exclusiveMinimum",
    "exclusiveMaximum",
)
# Errors after which the API server evaluates no CEL rule ("some validation rules were not
# checked because the object was invalid"): the value may not be of the type a rule expects.
_BLOCKING = frozenset(
    {"type", "enum", "required", "maxLength", "maxItems", "maxProperties", "format"}
)
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


@dataclass(frozen=True)
class SchemaFinding:
    """A finding of the schema, and whether the API server stops before the CEL rules."""

    finding: Finding
    blocking: bool


def json_schema(schema: JsonSchema) -> dict[str, Any]:
    """`schema` (structural OpenAPI v3.0) as a JSON Schema draft 4 that jsonschema validates."""
    result: dict[str, Any] = {key: schema[key] for key in _COPIED if key in schema}
    if schema.get(_INT_OR_STRING):
        kinds: list[str] = ["integer", "string"]
    elif "type" in schema:
        kinds = [schema["type"]]
    else:
        kinds = []
    if kinds:
        if schema.get("nullable"):
            kinds.append("null")
            if "enum" in result:
                result["enum"] = [*result["enum"], None]
        result["type"] = kinds[0] if len(kinds) == 1 else kinds
    if "properties" in schema:
        result["properties"] = {
            name: json_schema(value) for name, value in schema["properties"].items()
        }
    if isinstance(schema.get("items"), Mapping):
        result["items"] = json_schema(schema["items"])
    if isinstance(schema.get("additionalProperties"), Mapping):
        result["additionalProperties"] = json_schema(schema["additionalProperties"])
    return result


def normalize(schema: JsonSchema, value: Any, path: Path = ()) -> tuple[Any, list[Path]]:
    """`value` as the API server stores it before validating: unknown fields pruned, nulls the
    schema does not allow dropped, defaults filled. Also returns the pruned fields' paths."""
    pruned: list[Path] = []
    return _normalize(schema, value, path, pruned), pruned


def _normalize(schema: JsonSchema | None, value: Any, path: Path, pruned: list[Path]) -> Any:
    if schema is None:
        return value
    if isinstance(value, list):
        items = schema.get("items")
        return [_normalize(items, item, (*path, n), pruned) for n, item in enumerate(value)]
    if not isinstance(value, Mapping):
        return value
    properties: Mapping[str, JsonSchema] | None = schema.get("properties")
    additional = schema.get("additionalProperties")
    if properties is None and not isinstance(additional, Mapping):
        return dict(value)  # free-form: kept as written
    result: dict[str, Any] = {}
    for key, item in value.items():
        below = child(schema, key)
        if below is None and not schema.get(_PRESERVE):
            pruned.append((*path, MapKey(key) if properties is None else key))
            continue
        if item is None and below is not None and not below.get("nullable"):
            continue  # a null the schema does not allow is dropped (then defaulted)
        result[key] = _normalize(below, item, (*path, key), pruned)
    for key, below in (properties or {}).items():
        if key not in result and "default" in below:
            result[key] = _normalize(below, copy.deepcopy(below["default"]), (*path, key), [])
    return result


def validate(schema: JsonSchema, value: Any, translated: Mapping[str, Any]) -> list[SchemaFinding]:
    """What the API server's schema validation says about the normalized `value`."""
    validator = jsonschema.Draft4Validator(translated, format_checker=_FORMATS)
    found = [_reworded(schema, problem) for problem in validator.iter_errors(value)]
    found.extend(
        SchemaFinding(error(Check.SCHEMA, typed(schema, path), message), False)
        for path, message in _duplicates(schema, value, ())
    )
    return found


def _is_date_time(text: object) -> bool:
    if not isinstance(text, str):
        return True
    if _DATE_TIME.match(text) is None:
        return False
    try:
        datetime.datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


_FORMATS = jsonschema.FormatChecker(formats=())
_FORMATS.checks("date-time")(_is_date_time)


def _reworded(schema: JsonSchema, problem: jsonschema.ValidationError) -> SchemaFinding:
    path = typed(schema, problem.absolute_path)
    where = render(path)
    value: Any = problem.instance
    bound: Any = problem.validator_value
    owner: Mapping[str, Any] = problem.schema if isinstance(problem.schema, Mapping) else {}
    match problem.validator:
        case "type":
            kinds = [bound] if isinstance(bound, str) else [k for k in bound if k != "null"]
            expected = "/".join(map(str, kinds))
            actual = type_name(value)
            message = f'Invalid value: "{actual}": {where} in body must be of type {expected}: '
            message += f'"{actual}"'
        case "enum":
            supported = ", ".join(show(item) for item in bound if item is not None)
            message = f"Unsupported value: {show(value)}: supported values: {supported}"
        case "required":
            missing = [name for name in bound if name not in value]
            named = next((name for name in missing if repr(name) in problem.message), None)
            path = typed(schema, (*problem.absolute_path, named or missing[0]))
            message = "Required value"
        case "minimum" | "maximum":
            exclusive = owner.get(f"exclusive{str(problem.validator).capitalize()}", False)
            relation = "greater than" if problem.validator == "minimum" else "less than"
            relation += "" if exclusive else " or equal to"
            message = f"Invalid value: {show(value)}: {where} in body should be {relation} "
            message += show(bound)
        case "minLength":
            message = f"Invalid value: {show(value)}: {where} in body should be at least "
            message += f"{bound} chars long"
        case "maxLength":
            message = f"Too long: may not be more than {bound} bytes"
        case "minItems" | "minProperties":
            unit = "items" if problem.validator == "minItems" else "properties"
            message = f"Invalid value: {len(value)}: {where} in body should have at least "
            message += f"{bound} {unit}"
        case "maxItems" | "maxProperties":
            message = f"Too many: {len(value)}: must have at most {bound} items"
        case "format":
            message = f"Invalid value: {show(value)}: {where} in body must be of type {bound}: "
            message += show(value)
        case "multipleOf":
            message = f"Invalid value: {show(value)}: {where} in body should be a multiple of "
            message += show(bound)
        case _:
            message = f"Invalid value: {show(value)}: {problem.message}"
    return SchemaFinding(error(Check.SCHEMA, path, message), problem.validator in _BLOCKING)


def _duplicates(
    schema: JsonSchema | None, value: Any, path: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Items given twice in a list of type set, or keys given twice in a list of type map."""
    if schema is None:
        return
    if isinstance(value, list):
        list_type = schema.get(_LIST_TYPE)
        seen: list[Any] = []
        for index, item in enumerate(value):
            key = item
            if list_type == "map" and isinstance(item, Mapping):
                key = {name: item.get(name) for name in schema.get(_MAP_KEYS, ())}
            if list_type in ("set", "map") and key in seen:
                shown = show(key) if list_type == "set" else json.dumps(key, sort_keys=True)
                yield (*path, index), f"Duplicate value: {shown}"
            seen.append(key)
            yield from _duplicates(schema.get("items"), item, (*path, index))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _duplicates(child(schema, key), item, (*path, key))
