"""What the operator refuses at admission, decided from the object alone (no review, no I/O).

The Workflow/ResultSet admission webhook (`execflow.handlers.admission`) and the offline
`execflow lint` must refuse exactly the same specs with the same words, so the decision lives
here once. For a Workflow it is the failure of the view the Workflow controller builds
(`execflow.core.workflows.view.build_view`) from the object with no status and no children,
then any expression of its `spec.resultSet` that does not compile; for a ResultSet, any of its
aggregation or transform expressions that does not compile (an unparsable expression, an unknown
name or an unknown function, with the field and position).

Each problem keeps the field path it is about where one is known, so a caller can point at it;
`refusal` joins them into the one message the webhook answers with.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from execflow.api.result_set import ResultSetTemplate
from execflow.core.resultsets.transforms import expression_problems
from execflow.core.workflows.view import WorkflowSnapshot, build_view

MESSAGES_SHOWN = 3
"""Most expression problems of a ResultSet spec joined into one refusal."""


@dataclass(frozen=True)
class AdmissionProblem:
    """Why the object is refused; `where` is the field path (spec.steps[0].when) when the check
    that found it names one, None when the message alone says where."""

    message: str
    where: str | None = None


def workflow_problems(
    namespace: str,
    name: str,
    spec: Mapping[str, Any],
    *,
    uid: str = "",
    generation: int = 1,
    created_at: datetime.datetime | None = None,
    annotations: Mapping[str, str] | None = None,
) -> list[AdmissionProblem]:
    """What a Workflow with this spec is refused for: the controller's failure, else the
    problems of its resultSet template's expressions; empty to admit it."""
    snapshot = WorkflowSnapshot(
        namespace=namespace,
        name=name,
        uid=uid,
        generation=generation,
        created_at=created_at,
        annotations=annotations or {},
        spec=spec,
        status={},
    )
    failure = build_view(snapshot).failure
    if failure is not None:
        return [AdmissionProblem(failure.message)]
    template = spec.get("resultSet")
    return [] if template is None else result_set_problems(template, "spec.resultSet")


def result_set_problems(spec: Any, where: str = "spec") -> list[AdmissionProblem]:
    """Expressions of a ResultSet spec (at `where`) that do not compile, in spec order.

    A spec that does not parse gives none: its shape is the CRD schema's to refuse, with its own
    message, or the operator's to report.
    """
    try:
        parsed = ResultSetTemplate.model_validate(spec)
    except ValidationError:
        return []
    problems = []
    for problem in expression_problems(parsed.aggregations, parsed.transforms):
        message, path = str(problem), problem.where
        if where != "spec":
            message = message.replace("spec.", f"{where}.", 1)
            path = path.replace("spec.", f"{where}.", 1)
        problems.append(AdmissionProblem(message, path))
    return problems


def refusal(problems: Sequence[AdmissionProblem]) -> str | None:
    """The webhook's one message for `problems` (the first few), None when there are none."""
    if not problems:
        return None
    return "; ".join(problem.message for problem in problems[:MESSAGES_SHOWN])
