"""The MCP endpoint's decisions that need no cluster: call overrides from `_meta`, the caller's
label, how a Task's end reads to the caller, which Tools are offered, and how long the answers of
TokenReview and SubjectAccessReview are trusted."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from execflow.kube.client import Kube
from execflow.kube.http import Request
from execflow.mcp_server.access import REMEMBER, Access, Identity
from execflow.mcp_server.calls import CallError, label_value, outcome_of, overrides
from execflow.mcp_server.catalogue import as_mcp_tool

LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")


def test_meta_sets_the_task_fields_a_call_may_set() -> None:
    meta = {
        "execflow.dev/priority": "High",
        "execflow.dev/timeout": "30s",
        "execflow.dev/queue": "gpu",
        "execflow.dev/cache": True,
        "progress_token": 3,
        "io.modelcontextprotocol/related": "x",
    }
    assert overrides(meta) == {
        "priority": "High",
        "timeout": "30s",
        "queue": "gpu",
        "cache": {"enabled": True},
    }
    assert overrides(None) == {}


@pytest.mark.parametrize(
    ("meta", "said"),
    [
        ({"execflow.dev/priority": "Urgent"}, "not one of Low, Normal, High, Critical"),
        ({"execflow.dev/timeout": "soon"}, "execflow.dev/timeout"),
        ({"execflow.dev/cache": "yes"}, "expected true, false or {enabled, ttl}"),
        ({"execflow.dev/image": "evil:1"}, "not a Task field a call may set"),
    ],
)
def test_meta_a_task_would_refuse_is_the_callers_error(meta: dict[str, Any], said: str) -> None:
    with pytest.raises(CallError, match=re.escape(said)):
        overrides(meta)


@pytest.mark.parametrize(
    "identity",
    [
        "system:serviceaccount:tools:agent",
        "stdio:claude-desktop",
        "alice@example.com",
        "x" * 200,
        "plain-name",
        "-._weird_-",
    ],
)
def test_every_identity_becomes_a_valid_distinct_label(identity: str) -> None:
    value = label_value(identity)
    assert LABEL.match(value), value
    assert label_value(identity) == value
    if LABEL.match(identity):
        assert value == identity  # left alone when it was fine already
    else:
        assert value != label_value(identity + "!")


def test_outcomes_carry_the_result_or_the_reason() -> None:
    done = outcome_of(
        "t-1",
        {"phase": "Completed", "reason": "Succeeded", "attempts": 2, "result": {"rows": 3}},
    )
    assert not done.failed
    assert done.content == {
        "task": "t-1",
        "phase": "Completed",
        "reason": "Succeeded",
        "attempts": 2,
        "result": {"rows": 3},
        "cacheHit": False,
    }
    failed = outcome_of(
        "t-2",
        {"phase": "Timeout", "reason": "DeadlineExceeded", "message": "ran past 1s", "attempts": 1},
    )
    assert failed.failed
    assert failed.content["message"] == "ran past 1s" and "result" not in failed.content


def test_only_usable_tools_that_did_not_opt_out_are_offered() -> None:
    def tool(annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
        return {
            "metadata": {"name": "t", "annotations": annotations or {}},
            "spec": {"image": "x/y:1", **spec},
        }

    offered = as_mcp_tool(tool(description="Cleans", inputSchema={"type": "object"}))
    assert offered is not None
    assert (offered.description, offered.input_schema) == ("Cleans", {"type": "object"})
    assert as_mcp_tool(tool({"execflow.dev/mcp": "false"})) is None
    assert as_mcp_tool(tool({"execflow.dev/mcp": "Disabled"})) is None
    assert as_mcp_tool(tool(inputSchema={"type": "no-such-type"})) is None
    assert as_mcp_tool(tool()) is not None


class _Reviews:
    """The API server's answers to reviews, counted."""

    def __init__(self) -> None:
        self.requests: list[Request] = []

    async def __call__(self, request: Request) -> Any:
        self.requests.append(request)
        spec = (request.body or {})["spec"]
        if "token" in spec:
            ok = spec["token"] == "good"
            return {"status": {"authenticated": ok, "user": {"username": "alice", "groups": ["g"]}}}
        return {"status": {"allowed": spec["resourceAttributes"]["verb"] == "create"}}


def test_reviews_are_remembered_for_a_short_while() -> None:
    now = [0.0]
    reviews = _Reviews()
    access = Access(Kube(reviews), clock=lambda: now[0])

    async def ask() -> list[Any]:
        who = await access.identify("good")
        assert who is not None
        return [
            who,
            await access.identify("bad"),
            await access.allowed(who, "create", "tasks", "ns"),
            await access.allowed(who, "delete", "tasks", "ns"),
        ]

    first = asyncio.run(ask())
    assert first == [Identity("alice", groups=("g",)), None, True, False]
    assert len(reviews.requests) == 4
    asyncio.run(ask())
    assert len(reviews.requests) == 4  # all remembered
    now[0] += REMEMBER + 1
    asyncio.run(ask())
    assert len(reviews.requests) == 8  # asked again once they expired


def test_simultaneous_questions_share_one_review() -> None:
    reviews = _Reviews()
    access = Access(Kube(reviews))

    async def ask() -> list[Any]:
        who = Identity("alice", groups=("g",))
        return await asyncio.gather(
            *(access.identify("good") for _ in range(10)),
            *(access.allowed(who, "create", "tasks", "ns") for _ in range(10)),
        )

    answers = asyncio.run(ask())
    assert answers[:10] == [Identity("alice", groups=("g",))] * 10
    assert answers[10:] == [True] * 10
    assert len(reviews.requests) == 2
