"""Pydantic's JSON Schema rewritten into the structural OpenAPI v3 schema Kubernetes accepts.

Kubernetes only accepts structural schemas, which pydantic's JSON Schema is not: it uses `$ref`,
`title`, `anyOf` for Optional and int-or-string unions, and `additionalProperties` for free-form
objects. This module inlines references, collapses Optional, writes the Kubernetes extensions for
free-form and int-or-string values, refuses anything it cannot express (a property without a
description included, so `kubectl explain` stays useful, and an OpenAPI `pattern`, which the API
server would answer with the bare regular expression), and builds the CEL transition rule that
keeps a spec immutable.

A free-form map (`dict[str, Any]`) becomes a map of arbitrary JSON values rather than an object
that keeps unknown fields: the API server then compares such maps key by key, which the
immutability rule relies on (its CEL equality skips unknown fields that only one side has).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from execflow.api.admission import cel_field

JsonSchema = dict[str, Any]

_COPIED_KEYWORDS = frozenset(
    {
        "description",
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
        "type",
    }
)
_DROPPED_KEYWORDS = frozenset({"title"})
_PRESERVE_UNKNOWN = "x-kubernetes-preserve-unknown-fields"
_INT_OR_STRING = "x-kubernetes-int-or-string"
# Any JSON value, null included: without `nullable` the API server would silently drop a null.
_ANY_VALUE: JsonSchema = {_PRESERVE_UNKNOWN: True, "nullable": True}


class SchemaError(ValueError):
    """A model's JSON Schema cannot be expressed as a structural Kubernetes schema."""


@dataclass(frozen=True)
class Context:
    """What the conversion of one kind needs: its definitions, and whether defaults are kept."""

    definitions: Mapping[str, JsonSchema]
    keep_defaults: bool


def immutability_rule(spec: JsonSchema, mutable: Sequence[str], path: str = "spec") -> str:
    """A CEL transition rule on `spec`: no field but the `mutable` ones changed.

    Each other field must be present in both the old and the new spec or in neither, and equal when
    present, so adding or removing an optional field is a change too. (Optional equality,
    `self.?f == oldSelf.?f`, would say the same in fewer words, but the API server cannot bound
    its cost.) A field CEL cannot see, such as a map of arbitrary JSON values, is reached through
    `dyn()`, which defers the lookup to evaluation time.
    """
    properties: Mapping[str, JsonSchema] = spec.get("properties", {})
    unknown = [name for name in mutable if name not in properties]
    if unknown:
        raise SchemaError(f"{path}: mutable fields {unknown} are not in the spec")
    clauses = []
    for name, child in properties.items():
        if name in mutable:
            continue
        field = cel_field(name)
        new, old = ("self", "oldSelf") if _cel_visible(child) else ("dyn(self)", "dyn(oldSelf)")
        clauses.append(
            f"has({new}.{field}) == has({old}.{field})"
            f" && (!has({new}.{field}) || {new}.{field} == {old}.{field})"
        )
    return " && ".join(clauses) or "true"


def structural(node: JsonSchema, context: Context, path: str) -> JsonSchema:
    node = _flatten(node, context, path)
    result: JsonSchema = {}
    for keyword, value in node.items():
        if keyword not in _DROPPED_KEYWORDS:
            _convert(keyword, value, node=node, result=result, context=context, path=path)
    untyped = "type" not in result and not result.get(_INT_OR_STRING)
    free_form_object = result.get("type") == "object" and not (
        "properties" in result or "additionalProperties" in result
    )
    if untyped or free_form_object:
        result[_PRESERVE_UNKNOWN] = True
    return result


def _convert(
    keyword: str, value: Any, *, node: JsonSchema, result: JsonSchema, context: Context, path: str
) -> None:
    """Write one JSON Schema keyword of `node` into `result` in its structural form."""
    match keyword:
        case "default":
            if context.keep_defaults and value is not None:
                result["default"] = value
        case "description":
            result["description"] = " ".join(str(value).split())
        case "properties":
            result["properties"] = {
                name: _property(name, schema, context, path) for name, schema in value.items()
            }
        case "items":
            result["items"] = structural(value, context, f"{path}[]")
        case "additionalProperties":
            _additional_properties(value, node, result, context, path)
        case "exclusiveMinimum" | "exclusiveMaximum":
            # JSON Schema 2020-12 gives the bound; OpenAPI v3.0 wants minimum/maximum plus a flag.
            result["minimum" if keyword == "exclusiveMinimum" else "maximum"] = value
            result[keyword] = True
        case "const":
            result["enum"] = [value]
        case "pattern":
            raise SchemaError(
                f"{path}: the API server answers a `pattern` mismatch with the bare regular "
                "expression; declare the format as an AdmissionRule with a message in words"
            )
        case _ if keyword in _COPIED_KEYWORDS or keyword.startswith("x-kubernetes-"):
            result[keyword] = value
        case _:
            raise SchemaError(f"{path}: JSON Schema keyword {keyword!r} has no structural form")


def _property(name: str, schema: JsonSchema, context: Context, path: str) -> JsonSchema:
    converted = structural(schema, context, f"{path}.{name}")
    if not converted.get("description"):
        raise SchemaError(
            f"{path}.{name}: every property needs a description (Field(description=))"
        )
    return converted


def _additional_properties(
    value: Any, node: JsonSchema, result: JsonSchema, context: Context, path: str
) -> None:
    if value is True and "properties" in node:
        result[_PRESERVE_UNKNOWN] = True
    elif value is True:
        result["additionalProperties"] = dict(_ANY_VALUE)
    elif value is False:
        return  # unknown fields are pruned anyway; Kubernetes forbids it beside properties
    elif "properties" in node:
        raise SchemaError(f"{path}: a schema cannot have both properties and additionalProperties")
    else:
        result["additionalProperties"] = structural(value, context, f"{path}{{}}")


def _cel_visible(schema: JsonSchema) -> bool:
    """Whether CEL rules can refer to a value of this structural schema.

    Mirrors how the API server declares schemas to CEL: an int-or-string is dynamic, an untyped
    value is hidden, and a list or map is hidden when its items or values are.
    """
    if schema.get(_INT_OR_STRING):
        return True
    kind = schema.get("type")
    if kind == "array":
        return _cel_visible(schema["items"])
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return _cel_visible(schema["additionalProperties"])
    return kind is not None


def _flatten(node: JsonSchema, context: Context, path: str) -> JsonSchema:
    """Inline `$ref` and single `allOf`, collapse Optional, turn int|str into int-or-string."""
    while True:
        if "$ref" in node:
            reference = str(node["$ref"])
            name = reference.removeprefix("#/$defs/")
            if name not in context.definitions:
                raise SchemaError(f"{path}: unresolvable reference {reference!r}")
            siblings = {key: value for key, value in node.items() if key != "$ref"}
            node = {**context.definitions[name], **siblings}
        elif "allOf" in node and len(node["allOf"]) == 1:
            siblings = {key: value for key, value in node.items() if key != "allOf"}
            node = {**node["allOf"][0], **siblings}
        elif "anyOf" in node:
            siblings = {key: value for key, value in node.items() if key != "anyOf"}
            branches = [_flatten(b, context, path) for b in node["anyOf"] if b != {"type": "null"}]
            if len(branches) == 1:
                node = {**branches[0], **siblings}
            elif sorted(branch.get("type", "") for branch in branches) == ["integer", "string"]:
                string = next(branch for branch in branches if branch.get("type") == "string")
                string_constraints = {k: v for k, v in string.items() if k != "type"}
                return {**string_constraints, **siblings, _INT_OR_STRING: True}
            else:
                raise SchemaError(f"{path}: unions other than Optional[X] and int | str")
        else:
            return node
