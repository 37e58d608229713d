"""The Task controller: turns watch events into reconciles and scheduler decisions into Jobs.

Events only mark a task dirty; a pool of workers reconciles dirty tasks one at a time each, by
asking the pure lifecycle (`core.task_lifecycle.plan`) what the status should be and doing the
difference. Starting attempts is the dispatcher's job: it asks the queue scheduler which waiting
tasks may start now and creates their Jobs. All decisions read the in-memory store; the API server
sees only writes (Job create/delete, one status patch per transition, Events).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Mapping
from typing import Any

import jsonschema
from kubernetes.client.rest import ApiException

from execflow import metrics
from execflow.api.common import GROUP_VERSION
from execflow.api.durations import parse_duration
from execflow.api.task import (
    DependencyCondition,
    DependencyType,
    TaskPhase,
    TaskSpec,
    TaskStatus,
)
from execflow.api.tool import ToolSpec
from execflow.core import dependencies as deps
from execflow.core.cache_keys import execution_key
from execflow.core.scheduling import Plan as SchedulePlan
from execflow.core.task_lifecycle import (
    Attempt,
    AttemptState,
    CachedResult,
    Event,
    Plan,
    TaskView,
    next_attempt_number,
    plan,
    rfc3339,
    running_message,
)
from execflow.core.task_spec import SpecError, effective_spec
from execflow.core.templating import TemplateError, render_args
from execflow.handlers.dispatch import (
    Dispatcher,
    key_of_task,
    running_task,
    task_key,
    waiting_task,
)
from execflow.handlers.workqueue import WorkQueue
from execflow.kube.capacity import CapacityTracker
from execflow.kube.connection import Connection
from execflow.kube.events import EventRecorder
from execflow.kube.job_builder import Owner, build_job
from execflow.kube.observation import POD_GRACE, attempt_of, parse_time
from execflow.kube.store import Body, Key, Store, key_of

log = logging.getLogger("execflow.tasks")

GROUP, VERSION = GROUP_VERSION.split("/")
WORKERS = 32
DEFAULT_CACHE_TTL = datetime.timedelta(hours=1)
DISPATCH_TICK = 1.0
TERMINAL_PHASES = frozenset(p.value for p in TaskPhase if p.is_terminal)
MAX_LABEL = 63


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def succeeded_condition(phase: str) -> tuple[str, str]:
    if phase == TaskPhase.COMPLETED:
        return "True", "Succeeded"
    if phase in (TaskPhase.FAILED, TaskPhase.TIMEOUT, TaskPhase.CANCELLED):
        return "False", phase
    return "Unknown", phase or "Pending"


def merge_conditions(
    existing: list[Mapping[str, Any]],
    type_: str,
    *,
    status: str,
    reason: str,
    message: str,
    generation: int,
    now: datetime.datetime,
) -> list[dict[str, Any]]:
    """Set one condition by type; lastTransitionTime moves only when its status changes."""
    previous = next((c for c in existing if c.get("type") == type_), None)
    transition = (
        previous.get("lastTransitionTime")
        if previous is not None and previous.get("status") == status
        else rfc3339(now)
    )
    updated = {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition,
        "observedGeneration": generation,
    }
    return [dict(c) for c in existing if c.get("type") != type_] + [updated]


class TaskController:
    def __init__(
        self, connection: Connection, dispatcher: Dispatcher, namespaces: tuple[str, ...] = ()
    ) -> None:
        self.kube = connection
        self.namespaces = namespaces
        self.store = Store()
        self.queue: WorkQueue[Key] = WorkQueue()
        self.dispatcher = dispatcher
        self.events = EventRecorder(connection)
        # Tasks whose Job is being created: not reconciled until the Job is in the store, so a
        # reconcile never mistakes a start in flight for "no attempt yet" and queues it twice.
        self._starting: set[Key] = set()
        self.capacity = CapacityTracker()
        # What the scheduler said about tasks, applied by their next reconcile.
        self._queue_reasons: dict[Key, tuple[str, str]] = {}
        self._preempted: dict[Key, str] = {}
        self._scheduler_failures: dict[Key, tuple[str, str]] = {}
        # (namespace, task name) -> the tasks that depend on it, to wake them when it changes.
        self._dependents: dict[Key, set[Key]] = {}
        self._locks: dict[Key, asyncio.Lock] = {}
        self._wake_dispatch = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        # Completed executions by (namespace, cache key): the execution cache's index.
        self.cache_index: dict[tuple[str, str], tuple[str, datetime.datetime, Any, int | None]] = {}

    # ----- start-up -------------------------------------------------------------------------
    async def _list(self, kind: str) -> list[Body]:
        """Every object of a kind the operator watches, as plain dicts (one LIST per namespace)."""
        kube = self.kube
        selector = "execflow.dev/task"
        scopes: tuple[str | None, ...] = self.namespaces or (None,)
        items: list[Body] = []
        for namespace in scopes:
            if kind in ("tools", "tasks"):
                if namespace is None:
                    reply = await kube.call(
                        kube.custom.list_cluster_custom_object, GROUP, VERSION, kind
                    )
                else:
                    reply = await kube.call(
                        kube.custom.list_namespaced_custom_object, GROUP, VERSION, namespace, kind
                    )
                items += reply["items"]
                continue
            if kind == "jobs":
                listed = (
                    await kube.call(kube.batch.list_job_for_all_namespaces, label_selector=selector)
                    if namespace is None
                    else await kube.call(
                        kube.batch.list_namespaced_job, namespace, label_selector=selector
                    )
                )
            elif kind == "pods":
                # All pods, not only execflow's: bound pods' requests are the used room.
                listed = (
                    await kube.call(kube.core.list_pod_for_all_namespaces)
                    if namespace is None
                    else await kube.call(kube.core.list_namespaced_pod, namespace)
                )
            else:
                listed = (
                    await kube.call(kube.core.list_resource_quota_for_all_namespaces)
                    if namespace is None
                    else await kube.call(kube.core.list_namespaced_resource_quota, namespace)
                )
            items += kube.api_client.sanitize_for_serialization(listed.items)
        return items

    async def prime(self) -> None:
        """Fill the store with one LIST per kind before any decision is taken."""
        for body in await self._list("tools"):
            self.store.tools[key_of(body)] = body
        for job in await self._list("jobs"):
            self.store.put_child("job", job, deleted=False)
        for pod in await self._list("pods"):
            self.capacity.pod_event("ADDED", pod)
            self.store.put_child("pod", pod, deleted=False)
        for quota in await self._list("resourcequotas"):
            self.capacity.quota_event("ADDED", quota)
        nodes = await self.kube.call(self.kube.core.list_node)
        for node in self.kube.api_client.sanitize_for_serialization(nodes.items):
            self.capacity.node_event("ADDED", node)
        for body in await self._list("tasks"):
            self.task_event("ADDED", body)
        # Slots held by running attempts are known before the first decision, so a restart
        # never starts more than a queue allows.
        now = utcnow()
        for key, body in self.store.tasks.items():
            spec, tool, view = self.resolve(key, body)
            if spec is not None and any(a.active for a in view.attempts):
                started = parse_time((body.get("status") or {}).get("startTime")) or now
                self.dispatcher.mark_running(running_task(key, spec, tool, started))
        log.info("primed: %d tools, %d tasks", len(self.store.tools), len(self.store.tasks))

    def start(self) -> None:
        for index in range(WORKERS):
            self._tasks.append(asyncio.create_task(self._worker(), name=f"reconcile-{index}"))
        self._tasks.append(asyncio.create_task(self._dispatch_loop(), name="dispatch"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # ----- events ---------------------------------------------------------------------------
    def task_event(self, kind: str | None, body: Body) -> None:
        key = key_of(body)
        if kind == "DELETED":
            self.store.tasks.pop(key, None)
        else:
            self.store.tasks[key] = body
            self._index_cache(key, body)
            for dependency in (body.get("spec") or {}).get("dependencies") or []:
                if isinstance(dependency, Mapping) and dependency.get("task"):
                    self._dependents.setdefault((key[0], str(dependency["task"])), set()).add(key)
        self.queue.add(key)
        for dependent in self._dependents.get(key, ()):
            self.queue.add(dependent)

    def node_event(self, kind: str | None, body: Body) -> None:
        self.capacity.node_event(kind, body)
        self._wake_dispatch.set()

    def quota_event(self, kind: str | None, body: Body) -> None:
        self.capacity.quota_event(kind, body)
        self._wake_dispatch.set()

    def pod_event(self, kind: str | None, body: Body) -> None:
        self.capacity.pod_event(kind, body)
        if kind == "DELETED" or (body.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            self._wake_dispatch.set()
        self.child_event("pod", kind, body)

    def tool_event(self, kind: str | None, body: Body) -> None:
        key = key_of(body)
        if kind == "DELETED":
            self.store.tools.pop(key, None)
        else:
            self.store.tools[key] = body
        for task in self.store.tasks_using_tool(key):
            self.queue.add(task)

    def child_event(self, child: str, kind: str | None, body: Body) -> None:
        owner = self.store.put_child(child, body, deleted=kind == "DELETED")
        if owner is not None:
            self.queue.add(owner)

    def _index_cache(self, key: Key, body: Body) -> None:
        status = body.get("status") or {}
        cache_key = status.get("cacheKey")
        if status.get("phase") != TaskPhase.COMPLETED or not cache_key:
            return
        finished = parse_time(status.get("completionTime")) or utcnow()
        index_key = (key[0], str(cache_key))
        known = self.cache_index.get(index_key)
        if known is None or known[1] < finished:
            self.cache_index[index_key] = (
                key[1],
                finished,
                status.get("result"),
                status.get("exitCode"),
            )

    # ----- reconcile ------------------------------------------------------------------------
    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            try:
                await self.reconcile(key)
            except Exception:  # one bad object must never stop the others
                log.exception("reconciling task %s/%s failed; retrying in 5s", *key)
                self.queue.add_after(key, 5)
            finally:
                self.queue.done(key)

    def _attempts(self, key: Key) -> tuple[Attempt, ...]:
        jobs = self.store.jobs.get(key, {})
        return tuple(
            attempt_of(job, self.store.pods_of_job(key, name), utcnow())
            for name, job in jobs.items()
            if not job["metadata"].get("deletionTimestamp")
        )

    def resolve(self, key: Key, body: Body) -> tuple[TaskSpec | None, ToolSpec | None, TaskView]:
        metadata = body["metadata"]
        status = TaskStatus.model_validate(body.get("status") or {})
        raw_spec = body.get("spec") or {}
        generation = int(metadata.get("generation", 1))
        attempts = self._attempts(key)

        def view(**extra: Any) -> TaskView:
            return TaskView(
                name=key[1], generation=generation, status=status, attempts=attempts, **extra
            )

        if len(key[1]) > MAX_LABEL:
            message = (
                f"task names label their Jobs and pods, so they may have at most {MAX_LABEL} "
                f"characters; this one has {len(key[1])}"
            )
            return None, None, view(spec=None, spec_error=("InvalidName", message))
        tool_name = (raw_spec.get("toolRef") or {}).get("name")
        tool: ToolSpec | None = None
        defaults: Mapping[str, Any] = {}
        if tool_name:
            tool_body = self.store.tools.get((key[0], tool_name))
            if tool_body is None:
                spec = _lenient_spec(raw_spec)
                return spec, None, view(spec=spec, tool_missing=tool_name)
            try:
                tool = ToolSpec.model_validate(tool_body.get("spec") or {})
            except ValueError as error:
                return (
                    None,
                    None,
                    view(spec=None, spec_error=("InvalidTool", f"Tool {tool_name!r}: {error}")),
                )
            defaults = tool.defaults
        try:
            spec = effective_spec(raw_spec, defaults)
        except SpecError as error:
            return None, tool, view(spec=None, spec_error=("InvalidSpec", str(error)))
        if tool is not None and tool.input_schema:
            problem = _schema_problem(tool.input_schema, spec.parameters)
            if problem is not None:
                return (
                    spec,
                    tool,
                    view(spec=spec, spec_error=("InvalidParameters", problem)),
                )
        container = tool or spec.container
        if container is not None:
            try:
                render_args(list(container.args), spec.parameters)
            except TemplateError as error:
                return (
                    spec,
                    tool,
                    view(spec=spec, spec_error=("InvalidParameters", str(error))),
                )
        failure = self._scheduler_failures.get(key)
        if failure is not None and not any(a.active for a in attempts):
            return spec, tool, view(spec=spec, spec_error=failure)
        block = None
        if spec.dependencies:
            judged = self._judge_dependencies(key, spec, attempts)
            if judged is not None and judged.readiness is deps.Readiness.FAIL:
                return spec, tool, view(spec=spec, spec_error=(judged.reason, judged.message))
            if judged is not None and judged.readiness is deps.Readiness.WAIT:
                block = (judged.reason, judged.message)
        cached = None
        if spec.cache.enabled and not attempts and status.phase != TaskPhase.COMPLETED:
            cached = self._cache_lookup(key, spec, tool)
        return spec, tool, view(spec=spec, cached=cached, dependency_block=block)

    def _predecessor(self, namespace: str, name: str) -> deps.PredecessorState | None:
        body = self.store.tasks.get((namespace, name))
        if body is None:
            return None
        status = body.get("status") or {}
        phase = str(status.get("phase") or "Pending")
        finished = phase in TERMINAL_PHASES
        started = bool(status.get("startTime")) or phase in ("Running", "Completed")
        return deps.PredecessorState(
            phase=phase, started=started, finished=finished, succeeded=phase == "Completed"
        )

    def _judge_dependencies(
        self, key: Key, spec: TaskSpec, attempts: tuple[Attempt, ...]
    ) -> deps.DependencyDecision | None:
        namespace = key[0]
        own = [deps.Dependency(d.task, d.type, d.condition) for d in spec.dependencies]
        # Walk the dependency graph from this task to find cycles through it.
        graph: dict[str, list[deps.Dependency]] = {key[1]: own}
        frontier = [d.task for d in own]
        while frontier:
            name = frontier.pop()
            if name in graph:
                continue
            body = self.store.tasks.get((namespace, name))
            raw = ((body or {}).get("spec") or {}).get("dependencies") or []
            graph[name] = [
                deps.Dependency(
                    str(d["task"]),
                    DependencyType(d.get("type", DependencyType.FINISH_TO_START)),
                    DependencyCondition(d.get("condition", DependencyCondition.SUCCEEDED)),
                )
                for d in raw
                if isinstance(d, Mapping) and d.get("task")
            ]
            frontier += [d.task for d in graph[name]]
        if key[1] in deps.tasks_on_cycles(graph):
            return deps.DependencyDecision(
                deps.Readiness.FAIL,
                reason=deps.DEPENDENCY_CYCLE,
                message="the task's dependencies form a cycle, so it can never start or finish",
            )
        states = {
            name: state
            for name in graph
            if name != key[1] and (state := self._predecessor(namespace, name)) is not None
        }
        latest = max(attempts, key=lambda a: a.number, default=None)
        if latest is not None and latest.state is AttemptState.SUCCEEDED:
            return deps.can_complete(own, states)
        if latest is not None and latest.active:
            return None
        return deps.can_start(own, states)

    def _cache_key(self, spec: TaskSpec, tool: ToolSpec | None) -> str:
        container = tool or spec.container
        assert container is not None
        return execution_key(
            container.image,
            container.command,
            container.args,
            [e.model_dump(by_alias=True, exclude_none=True) for e in container.env],
            spec.parameters,
        )

    def _cache_lookup(self, key: Key, spec: TaskSpec, tool: ToolSpec | None) -> CachedResult | None:
        entry = self.cache_index.get((key[0], self._cache_key(spec, tool)))
        if entry is None or entry[0] == key[1]:
            return None
        ttl = parse_duration(spec.cache.ttl) if spec.cache.ttl else DEFAULT_CACHE_TTL
        if utcnow() - entry[1] > ttl:
            return None
        return CachedResult(task=entry[0], result=entry[2], exit_code=entry[3])

    def _lock(self, key: Key) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    async def reconcile(self, key: Key) -> None:
        if key in self._starting:
            return
        # A start for this task waits until this reconcile's status write has landed, so a
        # late "Queued" write can never overwrite the start's "Running".
        async with self._lock(key):
            await self._reconcile(key)
        if key not in self.store.tasks:
            self._locks.pop(key, None)

    async def _reconcile(self, key: Key) -> None:
        body = self.store.tasks.get(key)
        if body is None:
            self.dispatcher.forget(key)
            self._wake_dispatch.set()
            return
        now = utcnow()
        spec, tool, view = self.resolve(key, body)
        decision = plan(view, now)
        for job_name in decision.delete_jobs:
            await self._delete_job(key, job_name)
        if decision.running and spec is not None:
            started = parse_time((body.get("status") or {}).get("startTime")) or now
            self.dispatcher.mark_running(running_task(key, spec, tool, started))
        elif decision.wants_slot and spec is not None:
            status = body.get("status") or {}
            queued_at = (
                parse_time(status.get("queuedAt"))
                or parse_time(body["metadata"].get("creationTimestamp"))
                or now
            )
            if view.status.phase != TaskPhase.QUEUED:
                queued_at = now if key not in self._preempted else queued_at
            self.dispatcher.offer(waiting_task(key, spec, tool, queued_at))
            reason, message = self._queue_reasons.get(
                key, ("Queued", f"waiting in queue {spec.queue!r}")
            )
            preemptor = self._preempted.get(key)
            if preemptor is not None and key not in self._queue_reasons:
                reason, message = "Preempted", f"evicted to make room for {preemptor}; re-queued"
            decision.status.update(
                phase=TaskPhase.QUEUED.value,
                reason=reason,
                message=message,
                queuedAt=rfc3339(queued_at),
            )
            self._wake_dispatch.set()
        elif self.dispatcher.forget(key):
            self.capacity.forget(task_key(key))
            self._wake_dispatch.set()
        if not decision.wants_slot:
            self._queue_reasons.pop(key, None)
        if decision.running or view.status.phase.is_terminal:
            self._preempted.pop(key, None)
        if decision.run_seconds is not None and spec is not None and spec.tool_ref is not None:
            self.dispatcher.learn(spec.tool_ref.name, decision.run_seconds)
            metrics.RUN_SECONDS.observe(decision.run_seconds)
        await self._write_status(key, body, decision, now)
        if decision.requeue_at is not None:
            self.queue.add_after(key, (decision.requeue_at - now).total_seconds())
        elif decision.running:
            # Look again even without events: a finished Job whose pod never shows up is
            # judged after the grace period.
            self.queue.add_after(key, POD_GRACE + 1)

    async def _write_status(
        self, key: Key, body: Body, decision: Plan, now: datetime.datetime
    ) -> None:
        current = body.get("status") or {}
        generation = int(body["metadata"].get("generation", 1))
        patch = {k: v for k, v in decision.status.items() if current.get(k) != v}
        phase = str(decision.status.get("phase") or current.get("phase") or TaskPhase.PENDING)
        if not patch and current.get("observedGeneration") == generation and current.get("phase"):
            self._emit(body, decision.events)
            return
        condition_status, condition_reason = succeeded_condition(phase)
        reason = str(decision.status.get("reason") or current.get("reason") or condition_reason)
        message = str(decision.status.get("message") or current.get("message") or "")
        patch["conditions"] = merge_conditions(
            current.get("conditions") or [],
            "Succeeded",
            status=condition_status,
            reason=reason,
            message=message,
            generation=generation,
            now=now,
        )
        patch["observedGeneration"] = generation
        if "phase" not in patch and not current.get("phase"):
            patch["phase"] = phase
        await self._patch_status(key, body, patch)
        if "phase" in patch:
            metrics.record_transition(current.get("phase"), patch["phase"])
            if patch.get("reason") == "CacheHit":
                metrics.CACHE_HITS.inc()
        self._emit(body, decision.events)

    async def _patch_status(self, key: Key, body: Body, patch: dict[str, Any]) -> None:
        try:
            updated = await self.kube.call(
                self.kube.custom.patch_namespaced_custom_object_status,
                GROUP,
                VERSION,
                key[0],
                "tasks",
                key[1],
                {"status": patch},
                _content_type="application/merge-patch+json",
            )
        except ApiException as error:
            if error.status == 404:
                return
            raise
        self.kube.writes += 1
        # Keep the store ahead of the watch, so the next reconcile does not write the same again.
        if key in self.store.tasks:
            self.store.tasks[key] = updated
            self._index_cache(key, updated)

    def _emit(self, body: Body, events: list[Event]) -> None:
        for event in events:
            self.events.record(body, event.type, event.reason, event.message)

    async def _delete_job(self, key: Key, name: str) -> None:
        try:
            await self.kube.call(
                self.kube.batch.delete_namespaced_job,
                name,
                key[0],
                propagation_policy="Background",
            )
            self.kube.writes += 1
        except ApiException as error:
            if error.status != 404:
                raise
        self.store.jobs.get(key, {}).pop(name, None)

    # ----- dispatch -------------------------------------------------------------------------
    async def _dispatch_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake_dispatch.wait()
            self._wake_dispatch.clear()
            try:
                # Without any node in view (no permission, say), resources are not checked.
                capacity = self.capacity.snapshot() if self.capacity.nodes else None
                plan = self.dispatcher.decide(utcnow(), capacity)
                await self._carry_out(plan)
            except Exception:
                log.exception("dispatching failed; retrying")
                await asyncio.sleep(1)
                self._wake_dispatch.set()
            if self.dispatcher.has_waiting():
                # Time windows open and deadlines pass without any event: look again soon.
                loop.call_later(DISPATCH_TICK, self._wake_dispatch.set)

    async def _carry_out(self, plan: SchedulePlan) -> None:
        for waiting in plan.waiting:
            key = key_of_task(waiting.key)
            if waiting.reason is None:
                self._queue_reasons.pop(key, None)
            else:
                self._queue_reasons[key] = (waiting.reason.value, waiting.message)
            self.queue.add(key)
        for failure in plan.failures:
            key = key_of_task(failure.key)
            self._scheduler_failures[key] = (failure.reason, failure.message)
            self.queue.add(key)
        for preemption in plan.preemptions:
            victim = key_of_task(preemption.victim)
            self._preempted[victim] = preemption.preemptor
            metrics.PREEMPTIONS.labels(queue=preemption.queue).inc()
            for job in list(self.store.jobs.get(victim, {}).values()):
                attempt = attempt_of(job, self.store.pods_of_job(victim, job["metadata"]["name"]))
                if attempt.active:
                    await self._delete_job(victim, attempt.job_name)
            body = self.store.tasks.get(victim)
            if body is not None:
                self.events.record(
                    body, "Warning", "Preempted", f"evicted for {preemption.preemptor}"
                )
            self.queue.add(victim)
        starts = []
        for start in plan.starts:
            key = key_of_task(start.key)
            running = self.dispatcher.scheduler.running_task(start.key)
            if running is not None:
                self.capacity.plan(start.key, start.node, running.requests)
            starts.append(self._start(key))
        if starts:
            await asyncio.gather(*starts)

    def wake(self) -> None:
        self._wake_dispatch.set()

    async def _start(self, key: Key) -> None:
        self._starting.add(key)
        try:
            async with self._lock(key):
                await self._start_attempt(key)
        finally:
            self._starting.discard(key)
            self.queue.add(key)

    async def _start_attempt(self, key: Key) -> None:
        body = self.store.tasks.get(key)
        if body is None:
            self.dispatcher.forget(key)
            return
        spec, tool, view = self.resolve(key, body)
        if spec is None or view.spec_error or view.tool_missing or spec.suspend or spec.cancel:
            self.dispatcher.forget(key)
            return
        now = utcnow()
        attempt = next_attempt_number(view.status, view.attempts)
        owner = Owner(key[1], key[0], str(body["metadata"]["uid"]))
        manifest = build_job(owner, spec, tool, attempt)
        try:
            created = await self.kube.call(self.kube.batch.create_namespaced_job, key[0], manifest)
            job = self.kube.api_client.sanitize_for_serialization(created)
            self.kube.writes += 1
        except ApiException as error:
            if error.status != 409:
                self.dispatcher.forget(key)
                self.queue.add_after(key, 5)
                raise
            existing = await self.kube.call(
                self.kube.batch.read_namespaced_job, manifest["metadata"]["name"], key[0]
            )
            job = self.kube.api_client.sanitize_for_serialization(existing)
        self.store.put_child("job", job, deleted=False)
        status = body.get("status") or {}
        queued_at = parse_time(status.get("queuedAt")) or parse_time(
            body["metadata"].get("creationTimestamp")
        )
        if queued_at is not None:
            metrics.QUEUE_WAIT.labels(priority=spec.priority.value).observe(
                max(0.0, (now - queued_at).total_seconds())
            )
        metrics.ATTEMPTS.inc()
        patch: dict[str, Any] = {
            "phase": TaskPhase.RUNNING.value,
            "reason": "Running",
            "message": running_message(attempt, job["metadata"]["name"]),
            "attempts": attempt,
            "jobName": job["metadata"]["name"],
            "nextRetryAt": None,
        }
        if not status.get("startTime"):
            patch["startTime"] = rfc3339(now)
        if not status.get("queuedAt"):
            patch["queuedAt"] = rfc3339(now)
        if spec.cache.enabled:
            patch["cacheKey"] = self._cache_key(spec, tool)
        decision = Plan(
            status=patch,
            events=[Event("Normal", "Started", patch["message"])],
        )
        await self._write_status(key, body, decision, now)


def _schema_problem(schema: Mapping[str, Any], parameters: Mapping[str, Any]) -> str | None:
    try:
        validator = jsonschema.Draft202012Validator(schema)
        error = jsonschema.exceptions.best_match(validator.iter_errors(parameters))
    except jsonschema.exceptions.SchemaError as bad:
        return f"the Tool's inputSchema is not a valid JSON Schema: {bad.message}"
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"parameters {where}: {error.message}"


def _lenient_spec(raw: Mapping[str, Any]) -> TaskSpec | None:
    try:
        return TaskSpec.model_validate(raw)
    except ValueError:
        return None
