"""Finished Task results, Workflows and ResultSets as read-only MCP resources.

URIs are `execflow://NAMESPACE/tasks/NAME`, `.../workflows/NAME` and `.../resultsets/NAME`; a
resource's text is JSON of what a caller wants from the object: a Task's outcome and result, a
Workflow's phase, progress, steps and outputs, a ResultSet's count, aggregations, transforms and
where its items are stored (read them with `execflow results get`). Reads go to the API server
each time, so a resource is never stale; only finished Tasks are listed, since an unfinished one
has no result yet.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError

from execflow.kube.client import RESULTSETS, TASKS, WORKFLOWS, Kube, Resource
from execflow.kube.errors import NotFoundError

SCHEME = "execflow://"
KINDS: dict[str, Resource] = {"tasks": TASKS, "workflows": WORKFLOWS, "resultsets": RESULTSETS}
FINISHED = frozenset({"Completed", "Failed", "Timeout", "Cancelled"})
JSON = "application/json"


def _task(body: Mapping[str, Any]) -> dict[str, Any]:
    status = body.get("status") or {}
    keep = ("phase", "reason", "message", "attempts", "exitCode", "result", "resultRef")
    view = {key: status[key] for key in keep if key in status}
    view.update(
        cacheHit=bool(status.get("cacheHit")),
        startTime=status.get("startTime"),
        completionTime=status.get("completionTime"),
        tool=((body.get("spec") or {}).get("toolRef") or {}).get("name"),
    )
    return view


def _workflow(body: Mapping[str, Any]) -> dict[str, Any]:
    status = body.get("status") or {}
    keep = ("phase", "reason", "message", "progress", "startedAt", "finishedAt", "outputs")
    view = {key: status[key] for key in keep if key in status}
    view["steps"] = [
        {
            "name": step.get("name"),
            "phase": step.get("phase"),
            "tasks": [
                {key: task.get(key) for key in ("name", "taskName", "phase", "reason")}
                for task in step.get("tasks") or []
            ],
        }
        for step in status.get("steps") or []
    ]
    return view


def _result_set(body: Mapping[str, Any]) -> dict[str, Any]:
    status = body.get("status") or {}
    keep = ("phase", "reason", "message", "count", "aggregations", "transforms", "storage")
    return {key: status[key] for key in keep if key in status}


VIEWS = {"tasks": _task, "workflows": _workflow, "resultsets": _result_set}


class Resources:
    def __init__(self, kube: Kube, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace

    def uri(self, kind: str, name: str) -> str:
        return f"{SCHEME}{self.namespace}/{kind}/{name}"

    def parse(self, uri: str) -> tuple[str, str]:
        """(kind, name) of a URI of this namespace; MCP's not-found error otherwise."""
        parts = uri.removeprefix(SCHEME).split("/") if uri.startswith(SCHEME) else []
        if len(parts) != 3 or parts[0] != self.namespace or parts[1] not in KINDS or not parts[2]:
            raise MCPError(types.INVALID_PARAMS, f"Resource not found: {uri}")
        return parts[1], parts[2]

    def templates(self) -> list[types.ResourceTemplate]:
        return [
            types.ResourceTemplate(
                uri_template=f"{SCHEME}{self.namespace}/{kind}/{{name}}",
                name=kind,
                mime_type=JSON,
                description=f"an execflow {kind[:-1]} of namespace {self.namespace}",
            )
            for kind in KINDS
        ]

    async def listed(self, kinds: list[str]) -> list[types.Resource]:
        """The objects of these kinds (finished ones for Tasks), as resources."""
        found = []
        for kind in kinds:
            for body in await self.kube.list(KINDS[kind], self.namespace):
                phase = (body.get("status") or {}).get("phase")
                if kind == "tasks" and phase not in FINISHED:
                    continue
                name = str(body["metadata"]["name"])
                found.append(
                    types.Resource(
                        uri=self.uri(kind, name),
                        name=name,
                        mime_type=JSON,
                        description=f"{kind[:-1]} {name}: {phase or 'Pending'}",
                    )
                )
        return found

    async def read(self, kind: str, name: str) -> types.TextResourceContents:
        try:
            body = await self.kube.get(KINDS[kind], self.namespace, name)
        except NotFoundError:
            raise MCPError(
                types.INVALID_PARAMS, f"Resource not found: {self.uri(kind, name)}"
            ) from None
        view = {"name": name, **VIEWS[kind](body)}
        return types.TextResourceContents(
            uri=self.uri(kind, name), mime_type=JSON, text=json.dumps(view, ensure_ascii=False)
        )
