"""The Task CRD's own schema as plain JSON Schema, for hypothesis-jsonschema to draw specs from.

hypothesis-jsonschema knows JSON Schema, not Kubernetes' structural dialect: the `x-kubernetes-*`
keys are translated into what they mean for generation, and sizes are bounded so a run is fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import yaml

from execflow.api.crdgen import render_crds

TASK_CRD_FILE: Final = "execflow.dev_tasks.yaml"
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
# Small sizes keep a run fast; a CRD's own limit applies where it is smaller.
MAX_STRING: Final = 16
MAX_ITEMS: Final = 3
MAX_PROPERTIES: Final = 3


def task_spec_crd_schema() -> dict[str, Any]:
    """The openAPIV3Schema of Task.spec exactly as the generated CRD carries it."""
    crd = yaml.safe_load(render_crds()[TASK_CRD_FILE])
    spec: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"][
        "spec"
    ]
    return spec


def json_schema(node: Mapping[str, Any]) -> dict[str, Any]:
    """A Kubernetes structural schema as plain JSON Schema with the same meaning for generation.

    CEL rules (`x-kubernetes-validations`) are dropped: the API server enforces them, and values
    that break them are what the refusal messages are judged on. A field that preserves unknown
    fields takes any value (or, with properties, any further keys); other objects get
    `additionalProperties: false`, since the API server prunes unknown fields and generating
    them would only cost time. Free values come from hypothesis-jsonschema's own JSON strategy,
    whose integers are unbounded: generate_specs bounds them afterwards.
    """
    if node.get("x-kubernetes-int-or-string"):
        string: dict[str, Any] = {"type": "string"}
        if "maxLength" in node:
            string["maxLength"] = node["maxLength"]
        return {"anyOf": [_bounded({"type": "integer"}), _bounded(string)]}
    open_object = bool(node.get("x-kubernetes-preserve-unknown-fields"))
    converted: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key in ("description", "nullable"):
            continue
        if key == "properties":
            converted[key] = {name: json_schema(child) for name, child in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, Mapping):
            converted[key] = json_schema(value)
        elif key in ("anyOf", "oneOf", "allOf"):
            converted[key] = [json_schema(child) for child in value]
        else:
            converted[key] = value
    if "properties" in converted and not open_object:
        converted.setdefault("additionalProperties", False)
    converted = _bounded(converted)
    if node.get("nullable") and converted:
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


def _bounded(schema: dict[str, Any]) -> dict[str, Any]:
    """Integers within int64 (the API server refuses larger ones before anything else), and small
    strings, lists and maps. Formatted or patterned strings keep their length: a shorter cap
    would leave no valid value."""
    kind = schema.get("type")
    bounded = dict(schema)
    if kind == "integer":
        bounded["minimum"] = max(schema.get("minimum", INT64_MIN), INT64_MIN)
        bounded["maximum"] = min(schema.get("maximum", INT64_MAX), INT64_MAX)
    elif kind == "string" and not {"format", "pattern", "enum"} & schema.keys():
        bounded["maxLength"] = max(
            schema.get("minLength", 0), min(schema.get("maxLength", MAX_STRING), MAX_STRING)
        )
    elif kind == "array":
        bounded["maxItems"] = max(
            schema.get("minItems", 0), min(schema.get("maxItems", MAX_ITEMS), MAX_ITEMS)
        )
    elif kind == "object" and "properties" not in schema:
        bounded["maxProperties"] = max(
            schema.get("minProperties", 0),
            min(schema.get("maxProperties", MAX_PROPERTIES), MAX_PROPERTIES),
        )
    return bounded
