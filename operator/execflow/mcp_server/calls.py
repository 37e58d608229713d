"""One `tools/call`: check the arguments, create the Task, follow it, say how it ended.

Nothing is created for a call whose arguments do not satisfy the Tool's inputSchema (the same
check the operator applies): that is the caller's error, answered at once. A valid call becomes one
Task (`generateName: TOOL-`, labelled `execflow.dev/called-by: mcp` and with the caller's
identity), so it gets execflow's queueing, priorities, retries, timeouts, cache and resources;
the Tool's defaults apply as to any Task, and the call's `_meta` may override some of them:

| `_meta` key | Task field |
|---|---|
| `execflow.dev/priority` | `spec.priority` (Low, Normal, High, Critical) |
| `execflow.dev/timeout` | `spec.timeout` (a duration such as `30s`) |
| `execflow.dev/queue` | `spec.queue` |
| `execflow.dev/cache` | `spec.cache` (`true`, `false` or `{enabled, ttl}`) |

The caller hears of every move (Queued, Running, attempt n) while it waits, and of the end: the
result as structured content for Completed, an error result with the reason and message for
Failed, Timeout and Cancelled. When the caller cancels, the Task is cancelled (its pods go).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio

from execflow.api.durations import parse_duration
from execflow.api.task import Priority
from execflow.core.tools import call_task, parameter_problem
from execflow.kube.client import TASKS, Kube
from execflow.kube.errors import ApiError
from execflow.mcp_server.catalogue import CALLED_BY, Catalogue, CatalogueTool

log = logging.getLogger("execflow.mcp")

META_PREFIX = "execflow.dev/"
CLIENT_LABEL = "execflow.dev/mcp-client"
TERMINAL = frozenset({"Completed", "Failed", "Timeout", "Cancelled"})
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")

Progress = Callable[[str], Awaitable[None]]
"""Tells the caller how its call moves (a short message per change)."""


class CallError(ValueError):
    """The call itself is wrong (unknown tool, bad arguments or overrides): no Task exists."""

    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.data = data


@dataclass(frozen=True)
class Outcome:
    """How a call ended: the Task's name and phase, and what the caller gets."""

    task: str
    phase: str
    content: dict[str, Any]

    @property
    def failed(self) -> bool:
        return self.phase != "Completed"


def label_value(identity: str) -> str:
    """`identity` as a label value: safe characters, at most 63, a hash when it had to change."""
    safe = _LABEL_UNSAFE.sub("-", identity).strip("-_.")
    if safe == identity and len(safe) <= 63:
        return safe
    digest = hashlib.sha256(identity.encode()).hexdigest()[:8]
    return f"{safe[:54].strip('-_.')}-{digest}".strip("-")


def overrides(meta: Mapping[str, Any] | None) -> dict[str, Any]:
    """The Task fields a call's `_meta` sets; CallError for a value the Task would refuse."""
    fields: dict[str, Any] = {}
    for key, given in (meta or {}).items():
        if not isinstance(key, str) or not key.startswith(META_PREFIX):
            continue
        value = given
        field = key.removeprefix(META_PREFIX)
        if field == "priority":
            if value not in {priority.value for priority in Priority}:
                raise CallError(f"_meta {key}: {value!r} is not one of Low, Normal, High, Critical")
        elif field == "timeout":
            try:
                parse_duration(str(value))
            except ValueError as error:
                raise CallError(f"_meta {key}: {error}") from None
        elif field == "cache":
            value = {"enabled": value} if isinstance(value, bool) else value
            if not isinstance(value, Mapping):
                raise CallError(f"_meta {key}: expected true, false or {{enabled, ttl}}")
        elif field != "queue":
            raise CallError(f"_meta {key}: not a Task field a call may set")
        fields[field] = value
    return fields


def check_arguments(tool: CatalogueTool, arguments: Mapping[str, Any]) -> None:
    problem = parameter_problem(tool.input_schema, arguments)
    if problem is not None:
        raise CallError(f"invalid arguments for tool {tool.name}: {problem}")


def _progress_message(status: Mapping[str, Any]) -> str:
    phase = str(status.get("phase") or "Pending")
    attempts = int(status.get("attempts") or 0)
    reason = status.get("reason") or ""
    text = f"{phase} (attempt {attempts})" if phase == "Running" and attempts else phase
    return f"{text}: {reason}" if reason and reason not in (phase, "Succeeded") else text


def outcome_of(name: str, status: Mapping[str, Any]) -> Outcome:
    phase = str(status.get("phase"))
    content: dict[str, Any] = {
        "task": name,
        "phase": phase,
        "reason": status.get("reason") or "",
        "attempts": int(status.get("attempts") or 0),
    }
    if phase == "Completed":
        content["result"] = status.get("result")
        if status.get("resultRef"):
            content["resultRef"] = status["resultRef"]
        content["cacheHit"] = bool(status.get("cacheHit"))
    else:
        content["message"] = status.get("message") or ""
        if status.get("exitCode") is not None:
            content["exitCode"] = status["exitCode"]
    return Outcome(name, phase, content)


class Caller:
    """Runs calls against one namespace's Tools."""

    def __init__(self, kube: Kube, catalogue: Catalogue) -> None:
        self.kube = kube
        self.catalogue = catalogue

    async def call(
        self,
        tool_name: str,
        arguments: Mapping[str, Any],
        *,
        meta: Mapping[str, Any] | None,
        client: str,
        progress: Progress,
    ) -> Outcome:
        tool = self.catalogue.tool(tool_name)
        if tool is None:
            raise CallError(f"unknown tool {tool_name!r} in namespace {self.catalogue.namespace}")
        check_arguments(tool, arguments)
        body = call_task(
            tool.name,
            arguments,
            called_by=CALLED_BY,
            fields=overrides(meta),
            labels={CLIENT_LABEL: label_value(client)},
            annotations={CLIENT_LABEL: client},
        )
        created = await self.kube.create(TASKS, self.catalogue.namespace, body)
        name = str(created["metadata"]["name"])
        return await self.follow(name, created, progress)

    async def follow(self, name: str, created: Mapping[str, Any], progress: Progress) -> Outcome:
        """Wait for the Task's end, telling each change; cancel the Task when cancelled."""
        changed = self.catalogue.subscribe(name)
        told = ""
        try:
            while True:
                body = self.catalogue.task(name) or created
                status = body.get("status") or {}
                message = _progress_message(status)
                if status.get("phase") and message != told:
                    told = message
                    await progress(message)
                if status.get("phase") in TERMINAL:
                    return outcome_of(name, status)
                changed.clear()
                await changed.wait()
        except BaseException:
            await self._cancel_unfinished(name)
            raise
        finally:
            self.catalogue.unsubscribe(name, changed)

    async def _cancel_unfinished(self, name: str) -> None:
        """The caller went away (cancelled, disconnected): nobody wants the result any more."""
        with anyio.CancelScope(shield=True):
            body = self.catalogue.task(name)
            if body is not None and (body.get("status") or {}).get("phase") in TERMINAL:
                return
            patch = {"spec": {"cancel": True}}
            try:
                await self.kube.patch(TASKS, self.catalogue.namespace, name, patch)
            except ApiError as error:
                log.warning("could not cancel Task %s of a cancelled call: %s", name, error)
