"""The seam between the Task controller and the queue scheduler.

The controller speaks in Kubernetes terms (keys, specs, timestamps); the scheduler in plain
numbers. This adapter converts once, keeps which tasks hold a slot, and answers the only two
questions the controller asks: "may this task wait in its queue?" and "which tasks start now?".
"""

from __future__ import annotations

import datetime
from collections import OrderedDict
from dataclasses import dataclass

from execflow.api.settings import DEFAULT_QUEUE, OperatorSettings
from execflow.api.task import TaskSpec
from execflow.api.tool import ToolSpec
from execflow.kube.store import Key


@dataclass(frozen=True)
class QueueEntry:
    key: Key
    queue: str
    priority: int
    queued_at: float

    @classmethod
    def from_spec(
        cls, key: Key, spec: TaskSpec | None, tool: ToolSpec | None, queued_at: datetime.datetime
    ) -> QueueEntry:
        del tool
        queue = spec.queue if spec is not None else DEFAULT_QUEUE
        priority = spec.priority.rank if spec is not None else 1
        return cls(key, queue, priority, queued_at.timestamp())


@dataclass(frozen=True)
class Admission:
    accepted: bool
    reason: str = ""
    message: str = ""


class Dispatcher:
    def __init__(self, settings: OperatorSettings) -> None:
        self.settings = settings
        self._waiting: dict[str, OrderedDict[Key, QueueEntry]] = {}
        self._running: dict[Key, QueueEntry] = {}

    def _limit(self, queue: str) -> int:
        settings = self.settings.queues.get(queue) or self.settings.queues[DEFAULT_QUEUE]
        return settings.max_concurrent_tasks

    def offer(self, entry: QueueEntry) -> Admission:
        if entry.queue not in self.settings.queues:
            return Admission(
                False, "UnknownQueue", f"queue {entry.queue!r} is not configured in the settings"
            )
        self._running.pop(entry.key, None)
        waiting = self._waiting.setdefault(entry.queue, OrderedDict())
        if entry.key not in waiting:
            waiting[entry.key] = entry
        return Admission(True)

    def mark_running(self, key: Key, entry: QueueEntry) -> None:
        for waiting in self._waiting.values():
            waiting.pop(key, None)
        self._running[key] = entry

    def forget(self, key: Key) -> bool:
        freed = self._running.pop(key, None) is not None
        for waiting in self._waiting.values():
            waiting.pop(key, None)
        return freed

    def learn(self, tool: str, seconds: float) -> None:
        del tool, seconds

    def decide(self, now: datetime.datetime) -> list[Key]:
        del now
        starts: list[Key] = []
        for queue, waiting in self._waiting.items():
            running = sum(1 for e in self._running.values() if e.queue == queue)
            free = self._limit(queue) - running
            while free > 0 and waiting:
                key, entry = waiting.popitem(last=False)
                self._running[key] = entry
                starts.append(key)
                free -= 1
        return starts

    def next_wakeup(self, now: datetime.datetime) -> float | None:
        del now
        return None

    def depth(self, queue: str) -> int:
        return len(self._waiting.get(queue, ()))
