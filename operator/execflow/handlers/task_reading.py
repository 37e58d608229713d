"""How the Task controller reads a Task: its snapshot from the stores, and what it keeps.

A Task is reconciled on every change of its Jobs and pods, but its spec and its Tool change rarely:
reading the spec into its model, merging the Tool's defaults and checking the parameters against
the Tool's schema is the dearest part of a reconcile. So the result (`SpecCheck`, pure in the two
inputs) is kept per Task until its generation or its Tool's resourceVersion changes, and the
parsed status until the Task's resourceVersion changes. Both are dropped when the Task goes, and
only the most recently read `KEPT` Tasks are kept: each entry is about 6 KB of models, and the
Tasks read again and again are those in flight, not the thousands queued or finished.
"""

from __future__ import annotations

import datetime
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

from execflow.api import timestamps
from execflow.api.task import TaskStatus
from execflow.core.tasks.attempts import JobObservation
from execflow.core.tasks.view import (
    SpecCheck,
    TaskSettings,
    TaskSnapshot,
    TaskView,
    ToolSnapshot,
    build_view,
    check_spec,
    read_status,
)
from execflow.handlers.stores import Stores, controller_uid
from execflow.runtime.store import Body, name_of, uid_of

KEPT = 1024
V = TypeVar("V")


class _Recent(Generic[V]):
    """The values of the most recently used keys, at most `size` of them."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[str, tuple[Hashable, V]] = OrderedDict()

    def get(self, key: str, inputs: Hashable) -> V | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] != inputs:
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: str, inputs: Hashable, value: V) -> None:
        self._entries[key] = (inputs, value)
        self._entries.move_to_end(key)
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def pop(self, key: str) -> None:
        self._entries.pop(key, None)


class TaskReader:
    def __init__(self, stores: Stores, settings: TaskSettings) -> None:
        self.stores = stores
        self.settings = settings
        self._checks: _Recent[SpecCheck] = _Recent(KEPT)
        self._statuses: _Recent[TaskStatus] = _Recent(KEPT)

    def forget(self, uid: str) -> None:
        self._checks.pop(uid)
        self._statuses.pop(uid)

    def view(self, body: Body, now: datetime.datetime) -> TaskView:
        return build_view(self.snapshot(body), now, self.settings)

    def snapshot(self, body: Body) -> TaskSnapshot:
        namespace, name = name_of(body)
        uid = uid_of(body)
        stores = self.stores
        spec = body.get("spec") or {}
        generation = int(body["metadata"].get("generation") or 1)
        tool_name = (spec.get("toolRef") or {}).get("name")
        tool = None
        tool_version = None
        if tool_name:
            tool_body = stores.tools.named(namespace, str(tool_name))
            tool = ToolSnapshot(str(tool_name), None if tool_body is None else tool_body["spec"])
            if tool_body is not None:
                tool_version = (uid_of(tool_body), tool_body["metadata"].get("resourceVersion"))
        jobs = [
            JobObservation(
                job,
                stores.pods.indexed("owner", uid_of(job)),
                stores.latest_failure(uid_of(job)),
            )
            for job in stores.jobs.indexed("owner", uid)
        ]
        previous = [
            str(job["metadata"]["name"])
            for job in stores.jobs.indexed("task", (namespace, name))
            if controller_uid(job) != uid
        ]
        return TaskSnapshot(
            namespace=namespace,
            name=name,
            generation=generation,
            created_at=timestamps.parse_time(body["metadata"].get("creationTimestamp")),
            spec=spec,
            status=body.get("status") or {},
            tool=tool,
            jobs=jobs,
            previous_jobs=previous,
            task_named=lambda other: stores.tasks.named(namespace, other),
            completed_with_key=lambda key: stores.tasks.indexed("cache", (namespace, key)),
            checked=self._checked(uid, (generation, tool_name, tool_version), spec, tool),
            parsed_status=self._status(uid, body),
        )

    def _checked(
        self, uid: str, inputs: Hashable, spec: Body, tool: ToolSnapshot | None
    ) -> SpecCheck:
        kept = self._checks.get(uid, inputs)
        if kept is not None:
            return kept
        checked = check_spec(spec, tool)
        self._checks.put(uid, inputs, checked)
        return checked

    def _status(self, uid: str, body: Body) -> TaskStatus:
        version = str(body["metadata"].get("resourceVersion") or "")
        kept = self._statuses.get(uid, version) if version else None
        if kept is not None:
            return kept
        status = read_status(body.get("status") or {})
        self._statuses.put(uid, version, status)
        return status
