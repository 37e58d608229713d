"""The Workflow controller: wiring only — which snapshot, which pure functions, which writes.

A reconcile reads the workflow and its child Tasks (by owner uid) from the stores, asks the core
for the view and the plan, and applies the plan: replaced children deleted, `suspend`/`cancel`
set on children, new children created (a name taken by a Task the workflow does not own is
reported, never overwritten), then the status written. A status change that only shows progress
is written at most every `PROGRESS_SECONDS` per workflow; every decision is written at once.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable

from execflow import metrics
from execflow.api import timestamps
from execflow.api.reasons import Reason
from execflow.api.workflow import FINAL_PHASES, WorkflowPhase, WorkflowStatus
from execflow.core.conditions import Health, status_write
from execflow.core.workflows.children import result_set
from execflow.core.workflows.planner import ChildPatch, WorkflowPlan, failed, plan
from execflow.core.workflows.state import Creation
from execflow.core.workflows.view import WorkflowSnapshot, build_view
from execflow.handlers.stores import Stores, controller_uid
from execflow.kube.client import RESULTSETS, TASKS, WORKFLOWS, Kube
from execflow.kube.errors import InvalidError, NotFoundError
from execflow.kube.events import EventRecorder
from execflow.runtime.controller import Controller, Result
from execflow.runtime.store import Body, name_of, uid_of

log = logging.getLogger("execflow.workflows")

Key = tuple[str, str]
PROGRESS_SECONDS = 2.0

_HEALTH = {
    WorkflowPhase.PENDING: Health.PROGRESSING,
    WorkflowPhase.RUNNING: Health.PROGRESSING,
    WorkflowPhase.PAUSED: Health.PAUSED,
    WorkflowPhase.COMPLETED: Health.READY,
    WorkflowPhase.FAILED: Health.FAILED,
    WorkflowPhase.CANCELLED: Health.FAILED,
    WorkflowPhase.TIMEOUT: Health.FAILED,
}


def health(phase: str) -> Health:
    return _HEALTH[WorkflowPhase(phase)]


class WorkflowController:
    def __init__(
        self,
        stores: Stores,
        kube: Kube,
        events: EventRecorder,
        clock: Callable[[], datetime.datetime] = timestamps.now,
    ) -> None:
        self.stores = stores
        self.kube = kube
        self.events = events
        self.clock = clock
        self.runtime: Controller[Key] = Controller("workflows", self, workers=8)
        self._progress_written: dict[str, float] = {}
        """When a progress-only status was last written, by workflow uid (a rate limit only)."""

    def snapshot(self, body: Body) -> WorkflowSnapshot:
        namespace, name = name_of(body)
        metadata = body["metadata"]
        return WorkflowSnapshot(
            namespace=namespace,
            name=name,
            uid=uid_of(body),
            generation=int(metadata.get("generation") or 1),
            created_at=timestamps.parse_time(metadata.get("creationTimestamp")),
            annotations=metadata.get("annotations") or {},
            spec=body.get("spec") or {},
            status=body.get("status") or {},
            children=self.stores.tasks.indexed("owner", uid_of(body)),
        )

    async def reconcile(self, key: Key) -> Result:
        body = self.stores.workflows.named(*key)
        if body is None:
            return Result()
        now = self.clock()
        decision = plan(build_view(self.snapshot(body)), now)
        delay = await self._apply(key, body, decision, now)
        if decision.requeue_at is not None:
            until = max(0.0, (decision.requeue_at - now).total_seconds())
            delay = until if delay is None else min(delay, until)
        return Result(requeue_after=delay)

    async def report_failure(self, key: Key, error: Exception) -> None:
        """An unexpected error: say so in the status, keeping the phase."""
        body = self.stores.workflows.named(*key)
        if body is None:
            return
        status = WorkflowStatus.model_validate(body.get("status") or {})
        if status.phase.is_terminal:
            return
        message = (
            f"the operator cannot reconcile this Workflow ({type(error).__name__}: {error}); "
            "it keeps retrying with backoff. This is a bug in execflow: please report it"
        )[:1024]
        update = status.model_copy(update={"reason": Reason.OPERATOR_ERROR, "message": message})
        await self._write(
            key, body, WorkflowStatus.model_validate(update.model_dump(by_alias=True))
        )

    async def _apply(
        self, key: Key, body: Body, decision: WorkflowPlan, now: datetime.datetime
    ) -> float | None:
        namespace = key[0]
        if decision.delete_workflow:
            await self.kube.delete(WORKFLOWS, namespace, key[1], uid=uid_of(body))
            return None
        for name in decision.deletions:
            child = self.stores.tasks.named(namespace, name)
            await self.kube.delete(
                TASKS, namespace, name, uid=None if child is None else uid_of(child)
            )
        for patch in decision.patches:
            await self._patch(namespace, patch)
        for creation in decision.creations:
            if not await self._create(body, creation):
                decision = self._name_taken(body, creation.name, now)
                for patch in decision.patches:
                    await self._patch(namespace, patch)
                break
        await self._ensure_result_set(body)
        delay = None
        if decision.status is not None:
            delay = await self._status(key, body, decision, now)
        for event in decision.events:
            self.events.record(body, event.type, event.reason, event.message)
        return delay

    def _name_taken(self, body: Body, name: str, now: datetime.datetime) -> WorkflowPlan:
        message = (
            f"a Task named {name} exists and is not this workflow's child; delete or rename "
            "that Task (or rename the workflow task), then resume the workflow"
        )
        log.warning("workflow %s: %s", body["metadata"]["name"], message)
        return failed(build_view(self.snapshot(body)), now, Reason.NAME_CONFLICT, message)

    async def _patch(self, namespace: str, patch: ChildPatch) -> None:
        spec = {
            field: value
            for field, value in (("suspend", patch.suspend), ("cancel", patch.cancel))
            if value is not None
        }
        try:
            reply = await self.kube.patch(TASKS, namespace, patch.name, {"spec": spec})
        except NotFoundError:
            return
        self.stores.tasks.put(reply)

    async def _ensure_result_set(self, body: Body) -> None:
        """Create the ResultSet `spec.resultSet` asks for, once, while the workflow runs."""
        template = (body.get("spec") or {}).get("resultSet")
        if not template or (body.get("status") or {}).get("phase") in FINAL_PHASES:
            return
        namespace, name = name_of(body)
        if self.stores.resultsets.named(namespace, name) is not None:
            return
        wanted = result_set(namespace, name, uid_of(body), template)
        try:
            created = await self.kube.create(RESULTSETS, namespace, wanted)
        except InvalidError as error:
            self.events.record(body, "Warning", Reason.INVALID_SPEC, f"spec.resultSet: {error}")
            return
        self.stores.resultsets.put(created)

    async def _create(self, body: Body, creation: Creation) -> bool:
        """Create the child; False when its name is taken by a Task the workflow does not own."""
        namespace = body["metadata"]["namespace"]
        existing = self.stores.tasks.named(namespace, creation.name)
        if existing is not None:
            return controller_uid(existing) == uid_of(body)
        created = await self.kube.create(TASKS, namespace, creation.body)
        if controller_uid(created) != uid_of(body):
            return False
        self.stores.tasks.put(created)
        metrics.WORKFLOW_CHILDREN.inc()
        return True

    async def _status(
        self, key: Key, body: Body, decision: WorkflowPlan, now: datetime.datetime
    ) -> float | None:
        """Write the status; a progress-only change waits for the rate limit (returns the wait)."""
        assert decision.status is not None
        uid = uid_of(body)
        if not decision.urgent:
            last = self._progress_written.get(uid)
            elapsed = time.monotonic() - last if last is not None else PROGRESS_SECONDS
            if elapsed < PROGRESS_SECONDS:
                return PROGRESS_SECONDS - elapsed
        written = await self._write(key, body, decision.status, now)
        if written:
            self._progress_written[uid] = time.monotonic()
            self._observe_end(body, decision.status)
        return None

    async def _write(
        self,
        key: Key,
        body: Body,
        desired: WorkflowStatus,
        now: datetime.datetime | None = None,
    ) -> bool:
        update = status_write(
            body.get("status") or {},
            desired,
            generation=int(body["metadata"].get("generation") or 1),
            now=now or self.clock(),
            health=health,
        )
        if update is None:
            return False
        try:
            reply = await self.kube.patch_status(WORKFLOWS, key[0], key[1], update, expect=body)
        except NotFoundError:
            return False
        self.stores.workflows.put(reply)
        return True

    @staticmethod
    def _observe_end(body: Body, status: WorkflowStatus) -> None:
        before = (body.get("status") or {}).get("phase")
        if not status.phase.is_terminal or before == status.phase.value:
            return
        began = status.resumed_at or status.started_at
        if began is not None and status.finished_at is not None:
            seconds = (status.finished_at - began).total_seconds()
            metrics.WORKFLOW_SECONDS.labels(phase=status.phase.value).observe(seconds)

    def forget(self, uid: str) -> None:
        self._progress_written.pop(uid, None)
