"""A workflow unit → the child Task that runs it.

The child's spec is the task as the user wrote it (so fields left unset stay unset and a Tool's
defaults can fill them), without the workflow's own keys (`name`, `when`, `forEach`), with its
`{{ ... }}` templates rendered from the finished results the context holds. Dependencies that gate
a start are the workflow's to judge (the child is created once they are met), so only the
*ToFinish ones are passed down, naming the predecessors' child Tasks. The child is owned by the
workflow (deleted with it) and labelled with its workflow, step, task, index and run.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any

from execflow.api.common import GROUP_VERSION
from execflow.api.task import DependencyType
from execflow.core.workflows.templates import render
from execflow.core.workflows.units import (
    INDEX_LABEL,
    RUN_LABEL,
    STEP_LABEL,
    TASK_LABEL,
    WORKFLOW_LABEL,
)
from execflow.core.workflows.view import TaskPlan, WorkflowView

WORKFLOW_KEYS = frozenset({"name", "when", "forEach"})
GATES_FINISH = (DependencyType.FINISH_TO_FINISH.value, DependencyType.START_TO_FINISH.value)


def _render_container(container: Any, context: Mapping[str, Any]) -> Any:
    if not isinstance(container, Mapping):
        return container
    rendered = dict(container)
    if "args" in rendered:
        rendered["args"] = render(rendered["args"], context)
    if isinstance(rendered.get("env"), list):
        rendered["env"] = [
            {**entry, "value": render(entry["value"], context)}
            if isinstance(entry, Mapping) and "value" in entry
            else entry
            for entry in rendered["env"]
        ]
    return rendered


def _render_annotations(template: Any, context: Mapping[str, Any]) -> Any:
    if not isinstance(template, Mapping):
        return template
    metadata = template.get("metadata")
    if not isinstance(metadata, Mapping) or not isinstance(metadata.get("annotations"), Mapping):
        return template
    annotations = {
        key: value if not isinstance(value, str) else _as_text(render(value, context))
        for key, value in metadata["annotations"].items()
    }
    return {**template, "metadata": {**metadata, "annotations": annotations}}


def _as_text(value: Any) -> str:
    # Annotation values are strings; a whole-string placeholder may have rendered a number.
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _dependencies(raw: Sequence[Any], predecessors: Mapping[str, Sequence[str]]) -> list[Any]:
    passed = []
    for dependency in raw:
        if not isinstance(dependency, Mapping) or dependency.get("type") not in GATES_FINISH:
            continue
        for child in predecessors.get(str(dependency.get("task")), ()):
            passed.append({**dependency, "task": child})
    return passed


def child_task(
    view: WorkflowView,
    *,
    step: str,
    run: str,
    task: TaskPlan,
    index: int | None,
    name: str,
    context: Mapping[str, Any],
    predecessors: Mapping[str, Sequence[str]],
) -> dict[str, Any]:
    """The Task body; raises ExpressionError when a template cannot be rendered."""
    spec = {k: copy.deepcopy(v) for k, v in task.raw.items() if k not in WORKFLOW_KEYS}
    if "parameters" in spec:
        spec["parameters"] = render(spec["parameters"], context)
    if "container" in spec:
        spec["container"] = _render_container(spec["container"], context)
    if "podTemplate" in spec:
        spec["podTemplate"] = _render_annotations(spec["podTemplate"], context)
    if "dependencies" in spec:
        passed = _dependencies(spec["dependencies"], predecessors)
        if passed:
            spec["dependencies"] = passed
        else:
            del spec["dependencies"]
    labels = {
        WORKFLOW_LABEL: view.name,
        STEP_LABEL: step,
        TASK_LABEL: task.spec.name,
        RUN_LABEL: run,
    }
    if index is not None:
        labels[INDEX_LABEL] = str(index)
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "Task",
        "metadata": {
            "name": name,
            "namespace": view.namespace,
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": GROUP_VERSION,
                    "kind": "Workflow",
                    "name": view.name,
                    "uid": view.uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec,
    }


def result_set(namespace: str, name: str, uid: str, template: Mapping[str, Any]) -> dict[str, Any]:
    """The ResultSet a workflow's `spec.resultSet` asks for: named as the workflow, over its
    Tasks (source workflowRef), owned by it and labelled with it."""
    spec = {**copy.deepcopy(dict(template)), "source": {"workflowRef": {"name": name}}}
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "ResultSet",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {WORKFLOW_LABEL: name},
            "ownerReferences": [
                {
                    "apiVersion": GROUP_VERSION,
                    "kind": "Workflow",
                    "name": name,
                    "uid": uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec,
    }
