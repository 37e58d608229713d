"""Whether a Tool is usable, and checking parameters against its input schema.

A Tool is usable when its spec parses, its `inputSchema` is a valid JSON Schema (draft 2020-12)
and its `defaults` make a valid Task spec. The Tool's status says which of these fails, and a Task
that references an unusable Tool fails with `InvalidTool` and the same message instead of raising
in every reconcile. Compiled validators are cached by the schema's canonical JSON, so a Tool's
schema is compiled once however many Tasks use it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema
from pydantic import ValidationError

from execflow.api.common import GROUP_VERSION
from execflow.api.reasons import Reason
from execflow.api.tool import ToolSpec
from execflow.core.task_spec import SpecError, effective_spec


@dataclass(frozen=True, slots=True)
class ToolProblem:
    reason: Reason
    message: str


@dataclass(frozen=True, slots=True)
class ToolCheck:
    """A parsed Tool, or why it cannot be used."""

    spec: ToolSpec | None
    problem: ToolProblem | None = None


def _describe(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or 'spec'}: {item['msg']}"
        for item in error.errors(include_url=False)
    )


@functools.lru_cache(maxsize=512)
def _validator(schema_json: str) -> jsonschema.Draft202012Validator:
    schema = json.loads(schema_json)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _canonical(schema: Mapping[str, Any]) -> str:
    return json.dumps(schema, sort_keys=True, separators=(",", ":"))


def check_tool(raw_spec: Mapping[str, Any]) -> ToolCheck:
    try:
        spec = ToolSpec.model_validate(raw_spec)
    except ValidationError as error:
        return ToolCheck(None, ToolProblem(Reason.INVALID_SPEC, _describe(error)))
    if spec.input_schema:
        try:
            _validator(_canonical(spec.input_schema))
        except jsonschema.exceptions.SchemaError as error:
            where = "/".join(str(part) for part in error.absolute_path) or "(root)"
            return ToolCheck(
                spec,
                ToolProblem(
                    Reason.INVALID_SCHEMA,
                    f"inputSchema is not a valid JSON Schema (draft 2020-12) at {where}: "
                    f"{error.message}",
                ),
            )
    try:
        effective_spec({"toolRef": {"name": "check"}}, spec.defaults)
    except SpecError as error:
        return ToolCheck(spec, ToolProblem(Reason.INVALID_DEFAULTS, str(error)))
    return ToolCheck(spec)


def parameter_problem(schema: Mapping[str, Any], parameters: Mapping[str, Any]) -> str | None:
    """Why `parameters` do not satisfy `schema` (a schema already checked), or None."""
    if not schema:
        return None
    validator = _validator(_canonical(schema))
    error = jsonschema.exceptions.best_match(validator.iter_errors(parameters))
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path) or "(root)"
    return f"parameters {where}: {error.message}"


CALLED_BY_LABEL = "execflow.dev/called-by"
"""Which front end created a Task for a call of its Tool: `cli` or `mcp`."""


def call_task(
    tool: str,
    parameters: Mapping[str, Any],
    *,
    called_by: str,
    fields: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    pod_annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The Task of one call of `tool` (a generated name), with the Task spec `fields` given (the
    Tool's defaults fill in the rest when the operator reads it)."""
    spec: dict[str, Any] = {"toolRef": {"name": tool}, "parameters": dict(parameters)}
    spec.update({field: value for field, value in (fields or {}).items() if value is not None})
    if pod_annotations:
        spec["podTemplate"] = {"metadata": {"annotations": dict(pod_annotations)}}
    metadata: dict[str, Any] = {
        "generateName": f"{tool}-",
        "labels": {**(labels or {}), CALLED_BY_LABEL: called_by},
    }
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {"apiVersion": GROUP_VERSION, "kind": "Task", "metadata": metadata, "spec": spec}
