"""The operator's own checks of an object: its pydantic model, and its admission webhook.

The CRD schema and the models have one source (`execflow.api.crdgen`), so the model mostly
repeats what the schema and its rules already said; its errors are reported only where they add
something (a path no schema or rule finding covers). The admission webhook's decision
(`execflow.core.admission`) is what the operator refuses for Workflows and ResultSets beyond the
schema; the API server calls it only for an object the schema admitted, and so does the lint.

Both report paths partly inside their messages ("steps[1].dependsOn: ..."), so a path written at
the start of a message is taken as the finding's path when the object has that field; a message
that names a task and step ("task x (step y) ...") is placed at that task.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from execflow.core.admission import AdmissionProblem, result_set_problems, workflow_problems
from execflow.core.linting.findings import Check, Finding, error
from execflow.core.linting.paths import JsonSchema, Path, covers, exists, parse, split_leading
from execflow.core.linting.paths import typed as typed_path

OPERATOR_REFUSES = "the API server accepts this, but the operator fails the object (InvalidSpec)"
"""Before a model's message: the API server stores such an object; the operator cannot run it."""
_VALUE_ERROR = "Value error, "
_TASK_OF_STEP = re.compile(r"\btasks? (\S+?),? .*?\(?\bstep ([^\s),]+)")
_STEP = re.compile(r"\bstep '?([^\s'),]+)")


def model_findings(
    model: type[BaseModel], schema: JsonSchema, value: Mapping[str, Any], reported: Sequence[Path]
) -> list[Finding]:
    """The model's errors about `value` that no path in `reported` covers."""
    try:
        model.model_validate(value)
    except ValidationError as failure:
        chosen: dict[Path, tuple[bool, str]] = {}
        for item in failure.errors(include_url=False):
            path = _existing(value, item["loc"], missing=item["type"] == "missing")
            message = str(item["msg"]).removeprefix(_VALUE_ERROR)
            path, message = _refined(value, path, message)
            preferred = item["type"] == "value_error"
            if path not in chosen or (preferred and not chosen[path][0]):
                chosen[path] = (preferred, message)
        return [
            error(Check.MODEL, typed_path(schema, path), f"{OPERATOR_REFUSES}: {message}")
            for path, (_, message) in chosen.items()
            if not any(covers(path, other) for other in reported)
        ]
    return []


def admission_findings(
    kind: str, schema: JsonSchema, value: Mapping[str, Any], namespace: str
) -> list[Finding]:
    """What the operator's admission webhook refuses the object for (Workflow, ResultSet)."""
    spec = value.get("spec")
    if not isinstance(spec, Mapping):
        return []
    problems: list[AdmissionProblem]
    if kind == "Workflow":
        metadata = value.get("metadata") or {}
        name = str(metadata.get("name") or metadata.get("generateName") or "")
        problems = workflow_problems(namespace, name, spec)
    elif kind == "ResultSet":
        problems = result_set_problems(spec, "spec")
    else:
        return []
    findings = []
    for problem in problems:
        path, message = _admission_path(value, problem)
        findings.append(error(Check.ADMISSION, typed_path(schema, path), message))
    return findings


def _admission_path(value: Mapping[str, Any], problem: AdmissionProblem) -> tuple[Path, str]:
    message = problem.message
    if problem.where is not None:
        where = parse(problem.where)
        if where is not None:
            message = message.removeprefix(f"{problem.where}: ")
            return where, message
    leading, rest = split_leading(message)
    if leading is not None and exists(value, leading[:1]):
        return leading, rest
    return _named(value, message), message


def _named(value: Mapping[str, Any], message: str) -> Path:
    """The task or step a message names, or the spec."""
    spec = value.get("spec") or {}
    task_of_step = _TASK_OF_STEP.search(message)
    step = task_of_step.group(2) if task_of_step else None
    if step is None:
        named = _STEP.search(message)
        step = named.group(1) if named else None
    for section in ("steps", "finally"):
        for index, candidate in enumerate(spec.get(section) or ()):
            if not isinstance(candidate, Mapping) or candidate.get("name") != step:
                continue
            tasks = candidate.get("tasks") or ()
            wanted = task_of_step.group(1) if task_of_step else None
            for position, task in enumerate(tasks):
                if isinstance(task, Mapping) and task.get("name") == wanted:
                    return ("spec", section, index, "tasks", position)
            return ("spec", section, index)
    return ("spec",)


def _existing(value: Any, loc: Sequence[Any], *, missing: bool) -> Path:
    """The part of a pydantic location that is in the object (a union's branch names are not);
    a missing field's name is kept."""
    path: list[str | int] = []
    for position, segment in enumerate(loc):
        candidate = (*path, segment)
        last = position == len(loc) - 1
        if isinstance(segment, str | int) and (exists(value, candidate) or (missing and last)):
            path.append(segment)
        else:
            break
    return tuple(path)


def _refined(value: Any, path: Path, message: str) -> tuple[Path, str]:
    """A path written at the start of the message, below `path`, at the root or in spec."""
    leading, rest = split_leading(message)
    if not leading:
        return path, message
    for candidate in ((*path, *leading), leading, ("spec", *leading)):
        if exists(value, candidate):
            return candidate, rest
    return path, message
