"""Admission of Workflows and ResultSets: the operator's own spec check, before they are stored.

CRD validation rules cannot compile CEL, so without this a bad `when`, `forEach` or `{{ }}`
template, or a ResultSet's aggregation or transform expression, is found only when the operator
first reconciles the object, which then ends Failed (InvalidExpression). The admission webhook
(`execflow.kube.webhook`) asks `admit` at every create and update instead. For a Workflow it
builds the view the Workflow controller builds
(`execflow.core.workflows.view.build_view`) from the admitted object, with no status and no
children, and refuses exactly the specs that view fails, with the same message, so admission and
reconcile cannot disagree; then it compiles its `spec.resultSet` expressions. For a ResultSet it
compiles every expression as the ResultSet controller does, refusing one that does not parse,
reads an unknown name or calls an unknown function, with the field and position.

An update that leaves the spec as it was (annotations, labels, finalizers, status) or that
touches an object being deleted is always allowed: a workflow stored before a stricter operator
version, or admitted while the webhook was unreachable, can still be annotated, resumed and
deleted. A malformed review gets a 400 reply, never an exception.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from execflow.api import timestamps
from execflow.api.result_set import ResultSetTemplate
from execflow.core.resultsets.transforms import expression_problems
from execflow.core.workflows.view import WorkflowSnapshot, build_view

log = logging.getLogger("execflow.admission")

API_VERSION = "admission.k8s.io/v1"
KIND = "AdmissionReview"
CHECKED = frozenset({"CREATE", "UPDATE"})
INVALID = 422

Reply = tuple[int, dict[str, Any]]
"""The HTTP status and the JSON body the webhook answers with."""


class MalformedReviewError(ValueError):
    """Not an AdmissionReview v1 this webhook can answer."""


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise MalformedReviewError(f"{what} is not an object")
    return value


def _request(review: Any) -> Mapping[str, Any]:
    review = _mapping(review, "the review")
    if review.get("apiVersion") != API_VERSION or review.get("kind") != KIND:
        raise MalformedReviewError(f"expected an {KIND} of {API_VERSION}")
    request = _mapping(review.get("request"), "request")
    if not isinstance(request.get("uid"), str) or not request["uid"]:
        raise MalformedReviewError("request.uid is missing")
    if not isinstance(request.get("operation"), str):
        raise MalformedReviewError("request.operation is missing")
    return request


def _snapshot(request: Mapping[str, Any], workflow: Mapping[str, Any]) -> WorkflowSnapshot:
    metadata = _mapping(workflow.get("metadata") or {}, "request.object.metadata")
    spec = _mapping(workflow.get("spec") or {}, "request.object.spec")
    annotations = metadata.get("annotations") or {}
    generation = metadata.get("generation")
    return WorkflowSnapshot(
        namespace=str(request.get("namespace") or metadata.get("namespace") or ""),
        name=str(metadata.get("name") or request.get("name") or ""),
        uid=str(metadata.get("uid") or ""),
        generation=generation if isinstance(generation, int) else 1,
        created_at=timestamps.parse_time(metadata.get("creationTimestamp")),
        annotations=annotations if isinstance(annotations, Mapping) else {},
        spec=spec,
        status={},
    )


def _problem(request: Mapping[str, Any]) -> str | None:
    """The message the operator would fail this object with; None to admit it."""
    if request["operation"] not in CHECKED:
        return None
    admitted = _mapping(request.get("object"), "request.object")
    metadata = admitted.get("metadata")
    if isinstance(metadata, Mapping) and metadata.get("deletionTimestamp"):
        return None
    old = request.get("oldObject")
    if (
        request["operation"] == "UPDATE"
        and isinstance(old, Mapping)
        and old.get("spec") == admitted.get("spec")
    ):
        return None
    spec = _mapping(admitted.get("spec") or {}, "request.object.spec")
    if admitted.get("kind") == "ResultSet":
        return _result_set_problem(spec, "spec")
    failure = build_view(_snapshot(request, admitted)).failure
    if failure is not None:
        return failure.message
    template = spec.get("resultSet")
    return None if template is None else _result_set_problem(template, "spec.resultSet")


def _result_set_problem(spec: Any, where: str) -> str | None:
    """Expressions of a ResultSet spec that do not compile (the shape is the CRD's to check)."""
    try:
        parsed = ResultSetTemplate.model_validate(spec)
    except ValidationError:
        return None  # the CRD schema refuses it with its own message, or the operator reports it
    problems = expression_problems(parsed.aggregations, parsed.transforms)
    if not problems:
        return None
    messages = [str(problem) for problem in problems[:3]]
    if where != "spec":
        messages = [message.replace("spec.", f"{where}.", 1) for message in messages]
    return "; ".join(messages)


def admit(review: Any) -> Reply:
    """Answer one AdmissionReview for a Workflow or a ResultSet (decoded JSON, possibly
    malformed)."""
    try:
        request = _request(review)
        problem = _problem(request)
    except MalformedReviewError as error:
        return 400, {
            "apiVersion": "v1",
            "kind": "Status",
            "status": "Failure",
            "code": 400,
            "reason": "BadRequest",
            "message": f"malformed admission review: {error}",
        }
    response: dict[str, Any] = {"uid": request["uid"], "allowed": problem is None}
    if problem is not None:
        response["status"] = {
            "status": "Failure",
            "code": INVALID,
            "reason": "Invalid",
            "message": problem,
        }
        log.info(
            "refused %s of %s %s/%s: %s",
            str(request["operation"]).lower(),
            str((request.get("kind") or {}).get("kind") or "object").lower(),
            request.get("namespace") or "",
            request.get("name") or "",
            problem,
        )
    return 200, {"apiVersion": API_VERSION, "kind": KIND, "response": response}
