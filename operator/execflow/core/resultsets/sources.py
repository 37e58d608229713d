"""Which Tasks a ResultSet selects, and each selected Task as plain data for the collection plan.

A source is a label selector (Kubernetes semantics: every matchLabels pair and every
matchExpressions requirement must hold; an empty selector selects every Task of the namespace),
a workflow (the Tasks it owns) or a list of Task names. The controller finds the Tasks; this
module decides whether one is selected and turns its body into a `Candidate`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from execflow.api import timestamps
from execflow.api.result_set import LabelSelector, ResultSource, SelectorOperator
from execflow.core.resultsets.collection import Candidate


def selects(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    """Whether `labels` satisfy the selector, as the API server decides it."""
    for key, value in selector.match_labels.items():
        if labels.get(key) != value:
            return False
    for requirement in selector.match_expressions:
        present = requirement.key in labels
        label = labels.get(requirement.key)
        operator = requirement.operator
        if operator is SelectorOperator.IN and label not in requirement.values:
            return False
        if operator is SelectorOperator.NOT_IN and present and label in requirement.values:
            return False
        if operator is SelectorOperator.EXISTS and not present:
            return False
        if operator is SelectorOperator.DOES_NOT_EXIST and present:
            return False
    return True


def source_selects(source: ResultSource, task: Mapping[str, Any], workflow_uid: str | None) -> bool:
    """Whether the source selects this Task body (`workflow_uid`: the referenced workflow's)."""
    metadata = task["metadata"]
    if source.selector is not None:
        return selects(source.selector, metadata.get("labels") or {})
    if source.workflow_ref is not None:
        return workflow_uid is not None and any(
            reference.get("controller") and reference.get("uid") == workflow_uid
            for reference in metadata.get("ownerReferences") or []
        )
    return metadata.get("name") in (source.task_refs or ())


def candidate(task: Mapping[str, Any]) -> Candidate:
    """A Task body as the collection plan sees it."""
    metadata = task["metadata"]
    spec = task.get("spec") or {}
    status = task.get("status") or {}
    result = status.get("result")
    return Candidate(
        uid=str(metadata.get("uid") or ""),
        name=str(metadata.get("name") or ""),
        phase=str(status.get("phase") or "Pending"),
        finished_at=timestamps.parse_time(status.get("completionTime")),
        source=str((spec.get("toolRef") or {}).get("name") or ""),
        tags=tuple(str(tag) for tag in spec.get("tags") or ()),
        result=result,
        size=len(json.dumps(result, separators=(",", ":"))) if result is not None else 0,
    )
