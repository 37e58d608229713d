"""The operator's stores, one per watched kind, and the indexes the controllers look things up by.

Relations are followed by uid wherever Kubernetes records one: a Job belongs to the Task its
controller ownerReference names, a pod to its Job. So a Task re-created under an old name never
sees its predecessor's Jobs as its own attempts (they are found, by their task label, only to
wait until the garbage collector has removed them).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from execflow.api.task import TaskPhase
from execflow.runtime.store import Body, Store, compact

TASK_LABEL = "execflow.dev/task"


def controller_uid(body: Body) -> str | None:
    """The uid of the object's controller (its ownerReference with controller: true)."""
    for reference in body["metadata"].get("ownerReferences") or []:
        if reference.get("controller"):
            return str(reference.get("uid"))
    return None


def _namespace(body: Body) -> str:
    return str(body["metadata"].get("namespace") or "")


def _tool(body: Body) -> Iterable[Hashable]:
    tool = ((body.get("spec") or {}).get("toolRef") or {}).get("name")
    return [(_namespace(body), str(tool))] if tool else []


def _depends_on(body: Body) -> Iterable[Hashable]:
    dependencies = (body.get("spec") or {}).get("dependencies") or []
    return {
        (_namespace(body), str(item["task"]))
        for item in dependencies
        if isinstance(item, Mapping) and item.get("task")
    }


def _cache_entry(body: Body) -> Iterable[Hashable]:
    status = body.get("status") or {}
    key = status.get("cacheKey")
    if status.get("phase") != TaskPhase.COMPLETED or not key or status.get("cacheHit"):
        return []
    return [(_namespace(body), str(key))]


def _in_namespace(body: Body) -> Iterable[Hashable]:
    return [_namespace(body)]


def _owner(body: Body) -> Iterable[Hashable]:
    uid = controller_uid(body)
    return [uid] if uid else []


def _task_label(body: Body) -> Iterable[Hashable]:
    task = (body["metadata"].get("labels") or {}).get(TASK_LABEL)
    return [(_namespace(body), str(task))] if task else []


def _involved(body: Body) -> Iterable[Hashable]:
    uid = (body.get("involvedObject") or {}).get("uid")
    return [str(uid)] if uid else []


OWN_PREFIX = "execflow.dev/"
IDENTITY = ("name", "namespace", "uid", "resourceVersion", "creationTimestamp", "deletionTimestamp")


def _child_metadata(body: Body) -> dict[str, Any]:
    """Of a Job's or pod's metadata: its identity, execflow's labels and annotations, and its
    controller (what the indexes and the attempt reading use); not the labels and annotations
    the Job controller adds, nor the other owner fields."""
    metadata = body["metadata"]
    kept: dict[str, Any] = {key: metadata[key] for key in IDENTITY if key in metadata}
    for field_name in ("labels", "annotations"):
        own = {
            key: value
            for key, value in (metadata.get(field_name) or {}).items()
            if key.startswith(OWN_PREFIX)
        }
        if own:
            kept[field_name] = own
    owners = [
        {"uid": reference.get("uid"), "controller": True}
        for reference in metadata.get("ownerReferences") or ()
        if reference.get("controller")
    ]
    if owners:
        kept["ownerReferences"] = owners
    return kept


def _metadata(body: Body) -> dict[str, Any]:
    return {key: value for key, value in body["metadata"].items() if key != "managedFields"}


def _compacted(body: dict[str, Any]) -> Body:
    kept: Body = compact(body)
    return kept


def _kept(body: Body) -> Body:
    """What every store keeps of an object: all but `managedFields` (server-side apply
    bookkeeping that nothing here reads and a large part of every object), compacted."""
    return _compacted({**body, "metadata": _metadata(body)})


def _job_kept(job: Body) -> Body:
    """A Job's identity, owner, execflow's marks and its status: the Task controller reads
    nothing of its spec."""
    spec = job.get("spec") or {}
    kept = {key: spec[key] for key in ("suspend",) if key in spec}
    return _compacted(
        {"metadata": _child_metadata(job), "spec": kept, "status": job.get("status") or {}}
    )


def _pod_kept(pod: Body) -> Body:
    """What reading an attempt and accounting a node's capacity look at: the pod's identity,
    labels and owner, its node, its containers' resource requests, its phase and reason, its
    scheduling condition and its containers' states."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    containers = [
        {"name": container.get("name"), "resources": container.get("resources") or {}}
        for container in spec.get("containers") or ()
    ]
    kept_spec: dict[str, Any] = {"containers": containers}
    if spec.get("nodeName"):
        kept_spec["nodeName"] = spec["nodeName"]
    kept_status: dict[str, Any] = {
        key: status[key] for key in ("phase", "reason", "message") if key in status
    }
    scheduled = [c for c in status.get("conditions") or () if c.get("type") == "PodScheduled"]
    if scheduled:
        kept_status["conditions"] = scheduled
    if status.get("containerStatuses"):
        kept_status["containerStatuses"] = [
            {"name": item.get("name"), "state": item.get("state") or {}}
            for item in status["containerStatuses"]
        ]
    return _compacted(
        {
            "metadata": _child_metadata(pod),
            "spec": kept_spec,
            "status": kept_status,
        }
    )


@dataclass
class Stores:
    tasks: Store = field(
        default_factory=lambda: Store(
            "tasks",
            {
                "tool": _tool,
                "depends-on": _depends_on,
                "cache": _cache_entry,
                "owner": _owner,
                "namespace": _in_namespace,
            },
            _kept,
        )
    )
    workflows: Store = field(default_factory=lambda: Store("workflows", trim=_kept))
    resultsets: Store = field(
        default_factory=lambda: Store("resultsets", {"namespace": _in_namespace}, _kept)
    )
    tools: Store = field(default_factory=lambda: Store("tools", trim=_kept))
    jobs: Store = field(
        default_factory=lambda: Store("jobs", {"owner": _owner, "task": _task_label}, _job_kept)
    )
    pods: Store = field(default_factory=lambda: Store("pods", {"owner": _owner}, _pod_kept))
    """execflow's own pods (labelled with their Task)."""
    bound_pods: Store = field(default_factory=lambda: Store("bound-pods", trim=_pod_kept))
    """Every other pod that holds resources on a node: bound and not finished."""
    job_events: Store = field(
        default_factory=lambda: Store("events", {"involved": _involved}, _kept)
    )
    nodes: Store = field(default_factory=lambda: Store("nodes", trim=_kept))
    quotas: Store = field(default_factory=lambda: Store("resourcequotas", trim=_kept))

    def sizes(self) -> list[tuple[str, int]]:
        return [
            (store.kind, len(store))
            for store in (
                self.tasks,
                self.workflows,
                self.resultsets,
                self.tools,
                self.jobs,
                self.pods,
                self.bound_pods,
                self.job_events,
                self.nodes,
                self.quotas,
            )
        ]

    def latest_failure(self, job_uid: str) -> str | None:
        """The message of the newest FailedCreate Event the Job controller posted for a Job."""
        events = self.job_events.indexed("involved", job_uid)
        if not events:
            return None
        newest = max(events, key=_event_time)
        return str(newest.get("message") or "the Job controller could not create the pod")


def _event_time(event: Mapping[str, Any]) -> str:
    return str(
        event.get("lastTimestamp")
        or (event.get("series") or {}).get("lastObservedTime")
        or event.get("eventTime")
        or event["metadata"].get("creationTimestamp")
        or ""
    )
