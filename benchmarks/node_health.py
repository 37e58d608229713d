"""Whether the cluster's nodes stayed Ready while a benchmark ran, and what the control plane did.

Why this exists: a node that misses its heartbeats is marked NotReady by the node controller, which
then marks the node's pods NotReady, taints the node (nothing new is scheduled there) and may have
the taint-eviction controller delete pods. A run during which that happens measures the cluster's
recovery as much as the code under test, so a benchmark records it and says so in its report.

`NodeHealthRecorder` watches Nodes and core/v1 Events from `start()` until `stop()` (two watch
threads) and returns a `NodeHealth`: every change of a node's
Ready condition (node, seconds since start, from -> to), the nodes that were NotReady (False or
Unknown) at some point, and how many Events the node controller and the taint-eviction
controller emitted in the window (by `source.component` or `reportingComponent`; a repeated
Event counts once per repeat). Its `flag` is a one-line note for the report when any node was
NotReady or the taint-eviction controller acted, None otherwise.

Its watches are the benchmarks' shared `watching.RawWatch`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from watching import RawWatch

NODE_CONTROLLER = "node-controller"
# Kubernetes >= 1.29 runs taint eviction as its own controller; older ones as the taint manager.
TAINT_EVICTION = frozenset({"taint-eviction-controller", "taint-controller"})
NOT_READY = frozenset({"False", "Unknown"})
ABSENT = "absent"
"""The `from -> to` value of a node without a Ready condition yet."""
DELETED = "deleted"


@dataclass(frozen=True)
class ReadyChange:
    """A node's Ready condition changed: seconds after the recorder started, from -> to."""

    node: str
    seconds: float
    before: str
    after: str
    reason: str


@dataclass(frozen=True)
class NodeHealth:
    not_ready_transitions: int
    """Changes from Ready True to False or Unknown."""
    nodes_ever_not_ready: tuple[str, ...]
    """Nodes whose Ready condition was False or Unknown at some point, start included."""
    node_controller_events: int
    taint_eviction_events: int
    event_reasons: dict[str, int]
    """Those Events by `controller/reason`, e.g. node-controller/NodeNotReady."""
    changes: tuple[ReadyChange, ...]
    watch_error: str | None
    flag: str | None


def ready_status(node: dict[str, Any]) -> tuple[str, str]:
    """(status, reason) of the node's Ready condition; (ABSENT, "") without one."""
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return str(condition.get("status")), str(condition.get("reason") or "")
    return ABSENT, ""


def event_component(event: dict[str, Any]) -> str:
    return str((event.get("source") or {}).get("component") or event.get("reportingComponent"))


def occurrences(event: dict[str, Any]) -> int:
    """How often an Event happened so far: `count` (core/v1) or `series.count` (events/v1)."""
    series = event.get("series") or {}
    return int(event.get("count") or series.get("count") or 1)


class NodeHealthRecorder:
    """Record node readiness and node/taint controller Events between start() and stop()."""

    def __init__(self, api: client.ApiClient) -> None:
        self.core = client.CoreV1Api(api)
        self._lock = threading.Lock()
        self._started = 0.0
        self._ready: dict[str, str] = {}
        self._ever_not_ready: set[str] = set()
        self._changes: list[ReadyChange] = []
        self._seen: dict[str, int] = {}  # Event uid -> occurrences counted so far
        self._events = {NODE_CONTROLLER: 0, "taint-eviction": 0}
        self._reasons: Counter[str] = Counter()
        self._watches: list[RawWatch] = []
        self._result: NodeHealth | None = None

    def start(self) -> None:
        def list_nodes(**kwargs: Any) -> Any:
            return self.core.list_node(**kwargs)

        def list_events(**kwargs: Any) -> Any:
            return self.core.list_event_for_all_namespaces(**kwargs)

        self._started = time.monotonic()
        nodes = json.loads(list_nodes(_preload_content=False).data)
        with self._lock:
            for node in nodes["items"]:
                self._note(node, ready_status(node), self._started, initial=True)
        # Events from now on only: their current resourceVersion, without listing them all.
        events = json.loads(list_events(limit=1, _preload_content=False).data)
        self._watches = [
            RawWatch(
                "node-health-nodes",
                list_nodes,
                nodes["metadata"]["resourceVersion"],
                self._on_node,
            ),
            RawWatch(
                "node-health-events",
                list_events,
                events["metadata"]["resourceVersion"],
                self._on_event,
            ),
        ]
        for watch in self._watches:
            watch.start()

    def stop(self) -> NodeHealth:
        """Stop watching and return the figures; later calls return the same figures."""
        if self._result is not None:
            return self._result
        for watch in self._watches:
            watch.stop()
        for watch in self._watches:
            watch.join(timeout=5)
        errors = [f"{w.name}: {w.error}" for w in self._watches if w.error is not None]
        with self._lock:
            self._result = self._summary("; ".join(errors) or None)
        return self._result

    # ----- the watches' callbacks (their threads) ---------------------------------------------
    def _on_node(self, kind: str, node: dict[str, Any], at: float) -> None:
        status = (DELETED, "") if kind == "DELETED" else ready_status(node)
        with self._lock:
            self._note(node, status, at, initial=False)

    def _note(
        self, node: dict[str, Any], status: tuple[str, str], at: float, *, initial: bool
    ) -> None:
        name = node["metadata"]["name"]
        after, reason = status
        before = self._ready.get(name)
        self._ready[name] = after
        if after in NOT_READY:
            self._ever_not_ready.add(name)
        if not initial and before is not None and before != after:
            seconds = round(at - self._started, 2)
            self._changes.append(ReadyChange(name, seconds, before, after, reason))

    def _on_event(self, kind: str, event: dict[str, Any], _at: float) -> None:
        component = event_component(event)
        if component == NODE_CONTROLLER:
            key = NODE_CONTROLLER
        elif component in TAINT_EVICTION:
            key = "taint-eviction"
        else:
            return
        if kind == "DELETED":
            return
        uid = event["metadata"]["uid"]
        total = occurrences(event)
        with self._lock:
            # An Event from before start() that is modified happened once more.
            known = kind == "ADDED" or uid in self._seen
            new = total - self._seen.get(uid, 0) if known else 1
            self._seen[uid] = total
            self._events[key] += max(new, 0)
            self._reasons[f"{component}/{event.get('reason')}"] += max(new, 0)

    # ----- the figures -------------------------------------------------------------------------
    def _summary(self, watch_error: str | None) -> NodeHealth:
        lost = sum(1 for c in self._changes if c.before == "True" and c.after in NOT_READY)
        nodes = tuple(sorted(self._ever_not_ready))
        node_events, taint_events = self._events[NODE_CONTROLLER], self._events["taint-eviction"]
        notes = []
        if nodes or taint_events:
            # Node-controller Events alone (RegisteredNode for a new node) disturb nothing.
            notes.append(
                f"{len(nodes)} node(s) were NotReady during the run ({', '.join(nodes) or '-'}; "
                f"{lost} changes from Ready), the node controller emitted {node_events} Events "
                f"and the taint-eviction controller {taint_events}: the figures include the "
                "cluster's recovery"
            )
        if watch_error:
            notes.append(f"the node health watch failed, its figures are incomplete: {watch_error}")
        flag = "; ".join(notes) or None
        return NodeHealth(
            not_ready_transitions=lost,
            nodes_ever_not_ready=nodes,
            node_controller_events=node_events,
            taint_eviction_events=taint_events,
            event_reasons=dict(self._reasons),
            changes=tuple(self._changes),
            watch_error=watch_error,
            flag=flag,
        )
