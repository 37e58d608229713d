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
The decision itself is made by `execflow.core.admission`, which `execflow lint` applies too;
this module turns reviews into it and it into replies.

An update that leaves the spec as it was (annotations, labels, finalizers, status) or that
touches an object being deleted is always allowed: a workflow stored before a stricter operator
version, or admitted while the webhook was unreachable, can still be annotated, resumed and
deleted. A malformed review gets a 400 reply, never an exception.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from execflow.api import timestamps
from execflow.core.admission import (
    AdmissionProblem,
    refusal,
    result_set_problems,
    workflow_problems,
)

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


def _workflow_problems(
    request: Mapping[str, Any], workflow: Mapping[str, Any]
) -> list[AdmissionProblem]:
    metadata = _mapping(workflow.get("metadata") or {}, "request.object.metadata")
    spec = _mapping(workflow.get("spec") or {}, "request.object.spec")
    annotations = metadata.get("annotations") or {}
    generation = metadata.get("generation")
    return workflow_problems(
        namespace=str(request.get("namespace") or metadata.get("namespace") or ""),
        name=str(metadata.get("name") or request.get("name") or ""),
        spec=spec,
        uid=str(metadata.get("uid") or ""),
        generation=generation if isinstance(generation, int) else 1,
        created_at=timestamps.parse_time(metadata.get("creationTimestamp")),
        annotations=annotations if isinstance(annotations, Mapping) else {},
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
    if admitted.get("kind") == "ResultSet":
        spec = _mapping(admitted.get("spec") or {}, "request.object.spec")
        return refusal(result_set_problems(spec, "spec"))
    return refusal(_workflow_problems(request, admitted))


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
