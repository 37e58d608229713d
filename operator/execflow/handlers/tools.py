"""The Tool controller: a Tool's status says whether Tasks can use it, and why not.

A Tool is `Ready` when its spec parses, its inputSchema is a valid JSON Schema and its defaults
make a valid Task spec (see `execflow.core.tools`); otherwise it is `Stalled` with the reason and
message that a Task referencing it also fails with (`InvalidTool`). Tasks that use a Tool are
reconciled whenever it changes; that wiring is in the change handlers, not here.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

from execflow.api import timestamps
from execflow.api.common import Condition
from execflow.api.reasons import Reason
from execflow.api.tool import ToolStatus
from execflow.core.conditions import Health, conditions
from execflow.core.tools import check_tool
from execflow.kube.client import TOOLS, Kube
from execflow.kube.errors import NotFoundError
from execflow.runtime.controller import Controller, Result
from execflow.runtime.store import Store

Key = tuple[str, str]


class ToolController:
    def __init__(
        self,
        tools: Store,
        kube: Kube,
        clock: Callable[[], datetime.datetime] = timestamps.now,
    ) -> None:
        self.tools = tools
        self.kube = kube
        self.clock = clock
        self.runtime: Controller[Key] = Controller("tools", self, workers=4)

    async def report_failure(self, key: Key, error: Exception) -> None:
        """Tool checks are pure and total; a failure here is logged by the runtime only."""

    async def reconcile(self, key: Key) -> Result:
        body = self.tools.named(*key)
        if body is None:
            return Result()
        check = check_tool(body.get("spec") or {})
        generation = int(body["metadata"].get("generation") or 1)
        current = ToolStatus.model_validate(body.get("status") or {})
        if check.problem is None:
            health, reason, message = Health.READY, Reason.VALID, "the tool can be used by Tasks"
        else:
            health, reason, message = Health.FAILED, check.problem.reason, check.problem.message
        wanted = conditions(
            current.conditions,
            health,
            reason,
            message,
            generation=generation,
            now=self.clock(),
            succeeded=False,
        )
        if current.observed_generation == generation and _same(current.conditions, wanted):
            return Result()
        update = ToolStatus(observed_generation=generation, conditions=wanted)
        try:
            reply = await self.kube.patch_status(TOOLS, key[0], key[1], update)
        except NotFoundError:
            return Result()
        self.tools.put(reply)
        return Result()


def _same(current: list[Condition], wanted: list[Condition]) -> bool:
    return [c.model_dump() for c in current] == [c.model_dump() for c in wanted]
