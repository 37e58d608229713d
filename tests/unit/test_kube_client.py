"""The typed API layer of execflow.kube.client against a scripted transport (no cluster).

The transport is the only thing replaced: each test scripts the replies the API server would
give (as the Kubernetes client raises them) and checks what the layer does with them: which
errors are retried and after which delays, which are raised at once and as what class, and what
is counted as a write.
"""

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import urllib3
from kubernetes.client.rest import ApiException

from execflow.api.task import TaskPhase, TaskStatus
from execflow.kube.client import JOBS, TASKS, Kube, Request
from execflow.kube.errors import (
    AlreadyExistsError,
    ConflictError,
    ForbiddenError,
    InvalidError,
    NotFoundError,
    UnavailableError,
    from_reply,
)


def api_error(status: int, reason: str = "", message: str = "", retry_after: str = "") -> Any:
    error = ApiException(status=status, reason=reason)
    error.body = json.dumps({"reason": reason, "message": message})
    error.headers = {"Retry-After": retry_after} if retry_after else {}
    return error


class Script:
    """A transport that plays replies in order and records the requests it got."""

    def __init__(self, *replies: Any) -> None:
        self._replies: Iterator[Any] = iter(replies)
        self.requests: list[Request] = []

    def __call__(self, request: Request) -> Any:
        self.requests.append(request)
        reply = next(self._replies)
        if isinstance(reply, BaseException):
            raise reply
        return reply


def run(script: Script, call: Callable[[Kube], Any], attempts: int = 5) -> tuple[Any, list[float]]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def transport(request: Request) -> Any:
        return script(request)

    async def main() -> Any:
        return await call(Kube(transport, sleep=sleep, attempts=attempts))

    return asyncio.run(main()), slept


def status_patch(kube: Kube) -> Any:
    return kube.patch_status(TASKS, "ns", "t", TaskStatus(phase=TaskPhase.RUNNING))


def test_transient_errors_are_retried_with_exponential_backoff() -> None:
    script = Script(
        api_error(503, "ServiceUnavailable"),
        urllib3.exceptions.ProtocolError("connection reset"),
        api_error(500, "InternalError"),
        {"status": {"phase": "Running"}},
    )

    reply, slept = run(script, status_patch)

    assert reply == {"status": {"phase": "Running"}}
    assert len(script.requests) == 4
    assert slept == [0.1, 0.2, 0.4]


def test_throttling_honours_retry_after() -> None:
    script = Script(api_error(429, "TooManyRequests", retry_after="3"), {"status": {}})

    _, slept = run(script, status_patch)

    assert slept == [3.0]


def test_transient_errors_give_up_after_the_last_attempt() -> None:
    script = Script(*[api_error(503, "ServiceUnavailable")] * 3)

    with pytest.raises(UnavailableError):
        run(script, status_patch, attempts=3)
    assert len(script.requests) == 3


@pytest.mark.parametrize(
    ("status", "reason", "raised"),
    [
        (422, "Invalid", InvalidError),
        (400, "BadRequest", InvalidError),
        (403, "Forbidden", ForbiddenError),
        (404, "NotFound", NotFoundError),
        (409, "Conflict", ConflictError),
    ],
)
def test_permanent_errors_are_raised_at_once_with_the_server_message(
    status: int, reason: str, raised: type[Exception]
) -> None:
    script = Script(api_error(status, reason, message="spec.template: Invalid value"))

    with pytest.raises(raised) as error:
        run(script, status_patch)
    assert len(script.requests) == 1
    assert "spec.template: Invalid value" in str(error.value)


def test_status_patch_writes_only_the_fields_set_with_the_field_manager() -> None:
    script = Script({"status": {}})

    run(
        script,
        lambda kube: kube.patch_status(
            TASKS, "ns", "t", TaskStatus(phase=TaskPhase.QUEUED, next_retry_at=None)
        ),
    )

    [request] = script.requests
    assert request.method == "PATCH"
    assert request.path == "/apis/execflow.dev/v1alpha1/namespaces/ns/tasks/t/status"
    assert request.body == {"status": {"phase": "Queued", "nextRetryAt": None}}
    assert request.content_type == "application/merge-patch+json"
    assert ("fieldManager", "execflow") in request.query


def test_create_of_an_existing_name_returns_the_existing_object() -> None:
    existing = {"metadata": {"name": "t-1", "uid": "old"}}
    script = Script(api_error(409, "AlreadyExists"), existing)

    reply, _ = run(script, lambda kube: kube.create(JOBS, "ns", {"metadata": {"name": "t-1"}}))

    assert reply == existing
    assert [r.method for r in script.requests] == ["POST", "GET"]


def test_delete_of_a_missing_object_is_not_an_error() -> None:
    script = Script(api_error(404, "NotFound"))

    gone, _ = run(script, lambda kube: kube.delete(JOBS, "ns", "t-1", uid="u1"))

    assert gone is False
    assert script.requests[0].body["preconditions"] == {"uid": "u1"}


def test_writes_are_counted_reads_are_not() -> None:
    script = Script({"metadata": {}}, {"metadata": {}}, {"status": {}})

    async def calls(kube: Kube) -> int:
        await kube.get(JOBS, "ns", "a")
        await kube.create(JOBS, "ns", {"metadata": {"name": "b"}})
        await kube.patch_status(TASKS, "ns", "t", TaskStatus())
        return kube.writes

    writes, _ = run(script, calls)

    assert writes == 2


def test_a_transport_raising_classified_errors_is_retried_the_same_way() -> None:
    replies: list[Any] = [
        from_reply(503, "Service Unavailable", b'{"reason": "ServiceUnavailable"}', {}),
        from_reply(429, "Too Many Requests", b"{}", {"Retry-After": "3"}),
        {"status": {"phase": "Running"}},
    ]
    slept: list[float] = []

    async def transport(request: Request) -> Any:
        reply = replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        return reply

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    reply = asyncio.run(status_patch(Kube(transport, sleep=sleep)))

    assert reply == {"status": {"phase": "Running"}}
    assert slept == [0.1, 3.0]


def test_replies_are_classified_by_status_and_reason() -> None:
    gone = from_reply(
        404, "Not Found", b'{"reason": "NotFound", "message": "tasks x not found"}', {}
    )
    taken = from_reply(409, "Conflict", b'{"reason": "AlreadyExists", "message": "exists"}', {})
    refused = from_reply(422, "Unprocessable Entity", b"not json", None)

    assert isinstance(gone, NotFoundError) and gone.message == "tasks x not found"
    assert isinstance(taken, AlreadyExistsError)
    assert isinstance(refused, InvalidError) and refused.message == "Unprocessable Entity"
