"""The running operator, assembled: stores, informers, controllers and the scheduler's loop.

Which kinds are watched (and narrowed how), which keys each change enqueues, and the start-up
order: every informer lists first; then the controllers reconcile every object once; only then
does the scheduler make its first decision, so slots held by running attempts are known before
anything new starts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable, Hashable, Sequence

from execflow.api.settings import OperatorSettings
from execflow.core.cluster_capacity import CapacityTracker
from execflow.core.tasks.attempts import job_signature, pod_signature
from execflow.core.tasks.view import TaskSettings
from execflow.handlers.dispatch import Dispatcher
from execflow.handlers.result_sets import ResultSetController
from execflow.handlers.stores import TASK_LABEL, Stores, controller_uid
from execflow.handlers.tasks import TaskController
from execflow.handlers.tools import ToolController
from execflow.handlers.workflows import WorkflowController
from execflow.kube.client import (
    EVENTS,
    JOBS,
    NODES,
    PODS,
    QUOTAS,
    RESULTSETS,
    TASKS,
    TOOLS,
    WORKFLOWS,
    Kube,
)
from execflow.kube.events import EventRecorder
from execflow.kube.watch import LISTED, Watch
from execflow.runtime.informer import Informer, StreamEvent
from execflow.runtime.leader import LeaderElection
from execflow.runtime.store import Body, Change, ChangeType, Store, name_of, uid_of

log = logging.getLogger("execflow")

StreamOpener = Callable[[Watch, str | None], AsyncIterator[StreamEvent]]
"""Opens the event stream of one watch in one namespace (None: cluster-wide)."""

FAILED_CREATE = "reason=FailedCreate,involvedObject.kind=Job"
OTHER_PODS = f"!{TASK_LABEL}"
HOLDING_RESOURCES = "spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed"
"""Pods that count against a node's capacity; one that finishes leaves the watch (DELETED)."""


class Operator:
    def __init__(
        self,
        kube: Kube,
        settings: OperatorSettings,
        namespaces: Sequence[str] = (),
        leader: LeaderElection | None = None,
        on_lost_leadership: Callable[[], None] = lambda: None,
    ) -> None:
        """With `leader`, nothing is watched or written until this replica holds the Lease;
        `on_lost_leadership` is called if it ever cannot keep it (the process must then stop)."""
        self.kube = kube
        self.leader = leader
        self._on_lost_leadership = on_lost_leadership
        self._leading = False
        self.namespaces = tuple(namespaces)
        self.stores = Stores()
        self.capacity = CapacityTracker()
        self.events = EventRecorder(kube)
        self.tasks = TaskController(
            self.stores,
            kube,
            self.events,
            TaskSettings(pod_create_timeout=settings.pod_create_grace),
        )
        self.tools = ToolController(self.stores.tools, kube)
        self.workflows = WorkflowController(self.stores, kube, self.events)
        self.resultsets = ResultSetController(
            self.stores, kube, self.events, cleanup_grace=settings.storage_cleanup_grace
        )
        self._nodes_synced = False
        self.dispatcher = Dispatcher(
            settings, self.tasks, self.capacity, capacity_known=lambda: self._nodes_synced
        )
        self.tasks.seats = self.dispatcher
        self._running: list[asyncio.Task[None]] = []
        self.informers: dict[str, Informer] = {}

    # ----- what changes mean -------------------------------------------------------------------
    def _task_changed(self, change: Change) -> None:
        key = name_of(change.body)
        if change.type is ChangeType.DELETED:
            self.tasks.runtime.forget(key)
            self.tasks.reader.forget(uid_of(change.body))
        self.tasks.runtime.enqueue(key)
        for body in (change.body, change.old):
            if body is not None:
                self._wake_dependents(body)
        owner = controller_uid(change.body)
        workflow = self.stores.workflows.get(owner) if owner else None
        if workflow is not None:
            self.workflows.runtime.enqueue(name_of(workflow))
        self._wake_result_sets(change.body, workflow)

    def _wake_result_sets(self, task: Body, workflow: Body | None) -> None:
        """The ResultSets of the task's namespace whose source may select it."""
        namespace, name = name_of(task)
        for result_set in self.stores.resultsets.indexed("namespace", namespace):
            source = (result_set.get("spec") or {}).get("source") or {}
            if (
                "selector" in source
                or name in (source.get("taskRefs") or ())
                or (
                    workflow is not None
                    and (source.get("workflowRef") or {}).get("name")
                    == workflow["metadata"]["name"]
                )
            ):
                self.resultsets.runtime.enqueue(name_of(result_set))

    def _workflow_changed(self, change: Change) -> None:
        key = name_of(change.body)
        if change.type is ChangeType.DELETED:
            self.workflows.runtime.forget(key)
            self.workflows.forget(uid_of(change.body))
        self.workflows.runtime.enqueue(key)
        for result_set in self.stores.resultsets.indexed("namespace", key[0]):
            reference = ((result_set.get("spec") or {}).get("source") or {}).get("workflowRef")
            if reference and reference.get("name") == key[1]:
                self.resultsets.runtime.enqueue(name_of(result_set))

    def _result_set_changed(self, change: Change) -> None:
        key = name_of(change.body)
        if change.type is ChangeType.DELETED:
            self.resultsets.runtime.forget(key)
            self.resultsets.forget(uid_of(change.body))
        self.resultsets.runtime.enqueue(key)

    def _wake_dependents(self, body: Body) -> None:
        for dependent in self.stores.tasks.indexed("depends-on", name_of(body)):
            self.tasks.runtime.enqueue(name_of(dependent))

    def _tool_changed(self, change: Change) -> None:
        key = name_of(change.body)
        self.tools.runtime.enqueue(key)
        for task in self.stores.tasks.indexed("tool", key):
            self.tasks.runtime.enqueue(name_of(task))

    def _enqueue_owner_task(self, job: Body) -> None:
        owner = controller_uid(job)
        task = self.stores.tasks.get(owner) if owner else None
        if task is not None:
            self.tasks.runtime.enqueue(name_of(task))

    def _job_changed(self, change: Change) -> None:
        if _changed(change, job_signature):
            self._enqueue_owner_task(change.body)
        if change.type is ChangeType.DELETED:
            # A Task re-created under an old name may be waiting for this Job to go.
            label = (change.body["metadata"].get("labels") or {}).get(TASK_LABEL)
            if label:
                self.tasks.runtime.enqueue((name_of(change.body)[0], str(label)))

    def _pod_changed(self, change: Change) -> None:
        self.capacity.pod_event(_event_type(change), change.body)
        phase = (change.body.get("status") or {}).get("phase")
        if change.type is ChangeType.DELETED or phase in ("Succeeded", "Failed"):
            self.dispatcher.wake()
        if not _changed(change, pod_signature):
            return
        owner = controller_uid(change.body)
        job = self.stores.jobs.get(owner) if owner else None
        if job is not None:
            self._enqueue_owner_task(job)

    def _bound_pod_changed(self, change: Change) -> None:
        self.capacity.pod_event(_event_type(change), change.body)
        if change.type is ChangeType.DELETED:
            self.dispatcher.wake()

    def _job_event_changed(self, change: Change) -> None:
        uid = (change.body.get("involvedObject") or {}).get("uid")
        job = self.stores.jobs.get(str(uid)) if uid else None
        if job is not None:
            self._enqueue_owner_task(job)

    def _node_changed(self, change: Change) -> None:
        self.capacity.node_event(_event_type(change), change.body)
        self.dispatcher.wake()

    def _quota_changed(self, change: Change) -> None:
        self.capacity.quota_event(_event_type(change), change.body)
        self.dispatcher.wake()

    # ----- running ----------------------------------------------------------------------------
    def _informer(
        self,
        store: Store,
        watch: Watch,
        on_change: Callable[[Change], None],
        opener: StreamOpener,
        cluster_scoped: bool = False,
    ) -> Informer:
        scopes: Sequence[str | None] = (
            (None,) if cluster_scoped or not self.namespaces else self.namespaces
        )
        streams = [(scope, (lambda scope=scope: opener(watch, scope))) for scope in scopes]
        store.listen(on_change)
        informer = Informer(store, streams, LISTED)
        self.informers[store.kind] = informer
        return informer

    def _build_informers(self, opener: StreamOpener) -> list[Informer]:
        stores = self.stores
        return [
            self._informer(stores.tools, Watch(TOOLS), self._tool_changed, opener),
            self._informer(stores.tasks, Watch(TASKS), self._task_changed, opener),
            self._informer(stores.workflows, Watch(WORKFLOWS), self._workflow_changed, opener),
            self._informer(stores.resultsets, Watch(RESULTSETS), self._result_set_changed, opener),
            self._informer(
                stores.jobs,
                Watch(JOBS, label_selector=TASK_LABEL, exact=False),
                self._job_changed,
                opener,
            ),
            self._informer(
                stores.pods,
                Watch(PODS, label_selector=TASK_LABEL, exact=False),
                self._pod_changed,
                opener,
            ),
            self._informer(
                stores.bound_pods,
                Watch(
                    PODS, label_selector=OTHER_PODS, field_selector=HOLDING_RESOURCES, exact=False
                ),
                self._bound_pod_changed,
                opener,
            ),
            self._informer(
                stores.job_events,
                Watch(EVENTS, field_selector=FAILED_CREATE),
                self._job_event_changed,
                opener,
            ),
            self._informer(stores.quotas, Watch(QUOTAS), self._quota_changed, opener),
            self._informer(
                stores.nodes, Watch(NODES), self._node_changed, opener, cluster_scoped=True
            ),
        ]

    def start(self, opener: StreamOpener) -> None:
        """Start watching, reconciling and scheduling in the background."""
        self._running.append(asyncio.create_task(self.run(opener), name="operator"))

    async def run(self, opener: StreamOpener) -> None:
        """Watch, reconcile and schedule until cancelled."""
        if self.leader is not None:
            await self.leader.acquire()
            self._leading = True
            self._running.append(asyncio.create_task(self._keep_leading(), name="leader"))
        informers = self._build_informers(opener)
        for informer in informers:
            self._running.append(asyncio.create_task(informer.run(), name=informer.store.kind))
        self._running.append(asyncio.create_task(self._nodes_ready(), name="nodes-ready"))
        required = [
            self.informers[kind]
            for kind in (
                "tools",
                "tasks",
                "workflows",
                "resultsets",
                "jobs",
                "pods",
                "bound-pods",
                "events",
            )
        ]
        await asyncio.gather(*(informer.synced.wait() for informer in required))
        log.info(
            "listed %d tools, %d tasks, %d jobs, %d pods",
            len(self.stores.tools),
            len(self.stores.tasks),
            len(self.stores.jobs),
            len(self.stores.pods),
        )
        self.tools.runtime.start(name_of(body) for body in self.stores.tools)
        self.tasks.runtime.start(name_of(body) for body in self.stores.tasks)
        self.workflows.runtime.start(name_of(body) for body in self.stores.workflows)
        self.resultsets.runtime.start(name_of(body) for body in self.stores.resultsets)
        await self.dispatcher.run(self.tasks.runtime.caught_up)

    def reconfigure(self, settings: OperatorSettings) -> None:
        """Apply new settings without a restart."""
        self.tasks.settings = dataclasses.replace(
            self.tasks.settings, pod_create_timeout=settings.pod_create_grace
        )
        self.dispatcher.reconfigure(settings)
        self.resultsets.cleanup_grace = settings.storage_cleanup_grace

    async def _nodes_ready(self) -> None:
        """Resource checks start once the nodes are listed; until then capacity is unknown."""
        await self.informers["nodes"].synced.wait()
        self._nodes_synced = True
        self.dispatcher.wake()

    async def _keep_leading(self) -> None:
        assert self.leader is not None
        await self.leader.keep()
        self._leading = False
        self._on_lost_leadership()

    async def stop(self) -> None:
        for task in self._running:
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        await self.tasks.runtime.stop()
        await self.tools.runtime.stop()
        await self.workflows.runtime.stop()
        await self.resultsets.runtime.stop()
        await self.events.drain()
        if self.leader is not None and self._leading:
            await self.leader.release()


def _changed(change: Change, signature: Callable[[Body], Hashable]) -> bool:
    """Whether a change can matter to a reader that looks only at `signature` of the object."""
    if change.type is not ChangeType.MODIFIED or change.old is None:
        return True
    return signature(change.body) != signature(change.old)


def _event_type(change: Change) -> str:
    return "DELETED" if change.type is ChangeType.DELETED else "MODIFIED"
