"""The seam between the Task controller and the queue scheduler.

The controller speaks in Kubernetes terms (keys, specs, timestamps, quantities); the scheduler in
plain numbers. This adapter converts once, keeps the tasks it reported so a settings change can
rebuild the scheduler with the same waiting and running tasks, and hands back the scheduler's plan.
"""

from __future__ import annotations

import datetime
import time
from typing import Any

from kubernetes.utils import parse_quantity

from execflow import metrics
from execflow.api.durations import parse_duration
from execflow.api.settings import OperatorSettings
from execflow.api.task import TaskSpec
from execflow.api.tool import ToolSpec
from execflow.core.scheduling import (
    Capacity,
    Plan,
    Resources,
    RunningTask,
    Scheduler,
    TimeWindow,
    WaitingTask,
)
from execflow.kube.store import Key


def task_key(key: Key) -> str:
    return f"{key[0]}/{key[1]}"


def key_of_task(text: str) -> Key:
    namespace, _, name = text.partition("/")
    return (namespace, name)


def requests_of(spec: TaskSpec, tool: ToolSpec | None) -> Resources:
    """CPU and memory requests of the task's container: the Task's over the Tool's, key by key."""
    merged: dict[str, Any] = dict(tool.resources.requests) if tool is not None else {}
    merged.update(spec.resources.requests)
    cpu = parse_quantity(str(merged.get("cpu", 0)))
    memory = parse_quantity(str(merged.get("memory", 0)))
    return Resources(cpu_millis=int(cpu * 1000), memory_bytes=int(memory))


def waiting_task(
    key: Key, spec: TaskSpec, tool: ToolSpec | None, queued_at: datetime.datetime
) -> WaitingTask:
    constraints = spec.constraints
    return WaitingTask(
        key=task_key(key),
        queue=spec.queue,
        priority=spec.priority.rank,
        queued_at=queued_at.timestamp(),
        estimated_duration=(
            parse_duration(spec.estimated_duration).total_seconds()
            if spec.estimated_duration
            else None
        ),
        tool=spec.tool_ref.name if spec.tool_ref is not None else None,
        deadline=constraints.deadline.timestamp() if constraints.deadline else None,
        time_windows=tuple(
            TimeWindow(w.start, w.end, w.time_zone) for w in constraints.time_windows
        ),
        exclusive=constraints.exclusive,
        mutex=constraints.mutex or None,
        requests=requests_of(spec, tool),
    )


def running_task(
    key: Key, spec: TaskSpec, tool: ToolSpec | None, started_at: datetime.datetime
) -> RunningTask:
    return RunningTask(
        key=task_key(key),
        queue=spec.queue,
        priority=spec.priority.rank,
        started_at=started_at.timestamp(),
        tool=spec.tool_ref.name if spec.tool_ref is not None else None,
        exclusive=spec.constraints.exclusive,
        mutex=spec.constraints.mutex or None,
        requests=requests_of(spec, tool),
    )


class Dispatcher:
    def __init__(self, settings: OperatorSettings) -> None:
        self.settings = settings
        self.scheduler = Scheduler(settings)
        self._waiting: dict[str, WaitingTask] = {}
        self._running: dict[str, RunningTask] = {}

    def offer(self, task: WaitingTask) -> None:
        self._running.pop(task.key, None)
        self._waiting[task.key] = task
        self.scheduler.add(task)

    def mark_running(self, task: RunningTask) -> None:
        self._waiting.pop(task.key, None)
        self._running[task.key] = task
        self.scheduler.add_running(task)

    def forget(self, key: Key) -> bool:
        text = task_key(key)
        self._waiting.pop(text, None)
        self._running.pop(text, None)
        return self.scheduler.remove(text)

    def learn(self, tool: str, seconds: float) -> None:
        self.scheduler.learn_duration(tool, seconds)

    def decide(self, now: datetime.datetime, capacity: Capacity | None) -> Plan:
        started = time.perf_counter()
        plan = self.scheduler.schedule(now.timestamp(), capacity)
        metrics.DECISION_SECONDS.observe(time.perf_counter() - started)
        for start in plan.starts:
            self._waiting.pop(start.key, None)
            running = self.scheduler.running_task(start.key)
            if running is not None:
                self._running[start.key] = running
        for failure in plan.failures:
            self._waiting.pop(failure.key, None)
        for queue, depth in plan.depths.items():
            metrics.QUEUE_DEPTH.labels(queue=queue).set(depth.waiting + depth.overflow)
        return plan

    def reconfigure(self, settings: OperatorSettings) -> None:
        """New settings: a new scheduler that knows every task the old one knew."""
        scheduler = Scheduler(settings, estimator=self.scheduler.estimator)
        for running in self._running.values():
            scheduler.add_running(running)
        for waiting in sorted(self._waiting.values(), key=lambda t: t.queued_at):
            scheduler.add(waiting)
        self.settings = settings
        self.scheduler = scheduler

    def has_waiting(self) -> bool:
        return bool(self._waiting)
