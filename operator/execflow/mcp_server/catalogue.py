"""What the endpoint watches: the namespace's Tools (its tool list) and the Tasks its calls made.

Both come from the runtime's watch caches (list, then watch with resume and relist, as the
operator's own), so `tools/list` reads memory, a Tool added or removed tells every client at once
(`notifications/tools/list_changed`), and a call waiting for its Task wakes on the Task's own
watch events instead of polling the API server: a hundred calls in flight cost one watch.

A Tool opts out of MCP with the annotation `execflow.dev/mcp: "false"` (or `disabled`); a Tool
that is not usable (its status says why) is left out too, since every call of it would fail.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from execflow.core.tools import CALLED_BY_LABEL, check_tool
from execflow.kube.client import TASKS, TOOLS
from execflow.kube.http import HttpTransport
from execflow.kube.watch import LISTED, Watch, stream
from execflow.runtime.informer import Informer
from execflow.runtime.store import Change, ChangeType, Store

OPT_OUT = "execflow.dev/mcp"
OPTED_OUT = frozenset({"false", "disabled", "off", "no"})
CALLED_BY = "mcp"


@dataclass(frozen=True)
class CatalogueTool:
    """One Tool as an MCP tool."""

    name: str
    description: str
    input_schema: dict[str, Any]
    defaults: Mapping[str, Any]


def as_mcp_tool(body: Mapping[str, Any]) -> CatalogueTool | None:
    """The MCP view of a Tool, or None when it opted out or cannot be used."""
    metadata = body.get("metadata") or {}
    if str((metadata.get("annotations") or {}).get(OPT_OUT, "")).lower() in OPTED_OUT:
        return None
    check = check_tool(body.get("spec") or {})
    if check.problem is not None or check.spec is None:
        return None
    schema = dict(check.spec.input_schema or {"type": "object"})
    return CatalogueTool(
        name=str(metadata.get("name")),
        description=check.spec.description or f"execflow Tool {metadata.get('name')}",
        input_schema=schema,
        defaults=dict((body.get("spec") or {}).get("defaults") or {}),
    )


class Catalogue:
    """The namespace's Tools and the endpoint's Tasks, kept current by two watches."""

    def __init__(
        self, transport: HttpTransport, namespace: str, on_tools_changed: Callable[[], None]
    ) -> None:
        self.namespace = namespace
        self.tools = Store("tools")
        self.tasks = Store("tasks")
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._on_tools_changed = on_tools_changed
        self.tools.listen(self._tool_changed)
        self.tasks.listen(self._task_changed)

        def opener(watch: Watch) -> Callable[[], Any]:
            return lambda: stream(transport, watch, namespace)

        self._informers = [
            Informer(self.tools, [(namespace, opener(Watch(TOOLS)))], LISTED),
            Informer(
                self.tasks,
                [
                    (
                        namespace,
                        opener(Watch(TASKS, label_selector=f"{CALLED_BY_LABEL}={CALLED_BY}")),
                    )
                ],
                LISTED,
            ),
        ]

    async def run(self) -> None:
        """Watch until cancelled."""
        await asyncio.gather(*(informer.run() for informer in self._informers))

    async def synced(self) -> None:
        await asyncio.gather(*(informer.synced.wait() for informer in self._informers))

    def listed(self) -> Iterator[CatalogueTool]:
        for body in sorted(self.tools, key=lambda body: str(body["metadata"]["name"])):
            tool = as_mcp_tool(body)
            if tool is not None:
                yield tool

    def tool(self, name: str) -> CatalogueTool | None:
        body = self.tools.named(self.namespace, name)
        return None if body is None else as_mcp_tool(body)

    def _tool_changed(self, change: Change) -> None:
        before = None if change.old is None else as_mcp_tool(change.old)
        after = None if change.type is ChangeType.DELETED else as_mcp_tool(change.body)
        if before != after:
            self._on_tools_changed()

    # ----- waiting for a Task -------------------------------------------------------------------
    def task(self, name: str) -> Mapping[str, Any] | None:
        return self.tasks.named(self.namespace, name)

    def subscribe(self, name: str) -> asyncio.Event:
        """An event set whenever the Task `name` changes (clear it after each look)."""
        event = asyncio.Event()
        self._waiters.setdefault(name, set()).add(event)
        return event

    def unsubscribe(self, name: str, event: asyncio.Event) -> None:
        waiting = self._waiters.get(name)
        if waiting is not None:
            waiting.discard(event)
            if not waiting:
                del self._waiters[name]

    def _task_changed(self, change: Change) -> None:
        for event in self._waiters.get(str(change.body["metadata"]["name"]), ()):
            event.set()
