"""Free room in the cluster for the scheduler: per schedulable node and per namespace quota.

Kept current from watch events on nodes, pods and ResourceQuotas. A node's free room is its
allocatable minus the requests of the pods bound to it that have not ended; a namespace's room is
what its ResourceQuotas still allow for requests.cpu and requests.memory (the tightest quota wins).
Attempts that were started but whose pods are not bound yet are charged to the node the scheduler
planned them on, so two decisions in a row never promise the same room twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from execflow.api.quantities import millicores, whole_units
from execflow.core.scheduling import Capacity, NodeCapacity, Resources

Body = Mapping[str, Any]


def _amount(values: Mapping[str, Any], cpu_key: str, memory_key: str) -> Resources | None:
    if cpu_key not in values and memory_key not in values:
        return None
    try:
        cpu = millicores(values.get(cpu_key, 0))
        memory = whole_units(values.get(memory_key, 0))
    except ValueError:
        return None  # a quantity the API server accepted but this parser does not: not counted
    return Resources(max(0, cpu), max(0, memory))


def pod_requests(pod: Body) -> Resources:
    cpu = 0
    memory = 0
    for container in pod.get("spec", {}).get("containers") or []:
        requests = (container.get("resources") or {}).get("requests") or {}
        amount = _amount(requests, "cpu", "memory")
        if amount is not None:
            cpu += amount.cpu_millis
            memory += amount.memory_bytes
    return Resources(cpu, memory)


def _schedulable(node: Body) -> bool:
    spec = node.get("spec") or {}
    if spec.get("unschedulable"):
        return False
    if any(t.get("effect") == "NoSchedule" for t in spec.get("taints") or []):
        return False
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


@dataclass
class CapacityTracker:
    nodes: dict[str, Resources] = field(default_factory=dict)
    used: dict[str, dict[str, Resources]] = field(default_factory=dict)  # node -> pod -> requests
    quotas: dict[str, dict[str, Resources]] = field(default_factory=dict)  # ns -> quota -> room
    planned: dict[str, tuple[str, Resources]] = field(default_factory=dict)  # task -> node, req

    def node_event(self, kind: str | None, node: Body) -> None:
        name = str(node["metadata"]["name"])
        allocatable = _amount((node.get("status") or {}).get("allocatable") or {}, "cpu", "memory")
        if kind == "DELETED" or allocatable is None or not _schedulable(node):
            self.nodes.pop(name, None)
        else:
            self.nodes[name] = allocatable

    def pod_event(self, kind: str | None, pod: Body) -> None:
        metadata = pod["metadata"]
        uid = f"{metadata.get('namespace')}/{metadata['name']}"
        node = (pod.get("spec") or {}).get("nodeName")
        phase = (pod.get("status") or {}).get("phase")
        for pods in self.used.values():
            pods.pop(uid, None)
        if kind != "DELETED" and node and phase not in ("Succeeded", "Failed"):
            self.used.setdefault(str(node), {})[uid] = pod_requests(pod)
        task = (metadata.get("labels") or {}).get("execflow.dev/task")
        if task and node:
            self.planned.pop(f"{metadata.get('namespace')}/{task}", None)

    def quota_event(self, kind: str | None, quota: Body) -> None:
        metadata = quota["metadata"]
        namespace = str(metadata.get("namespace"))
        status = quota.get("status") or {}
        hard = status.get("hard") or {}
        used = status.get("used") or {}
        entries = self.quotas.setdefault(namespace, {})
        entries.pop(str(metadata["name"]), None)
        if kind == "DELETED":
            return
        limits = []
        for cpu_key, memory_key in (("requests.cpu", "requests.memory"), ("cpu", "memory")):
            limit = _amount(hard, cpu_key, memory_key)
            if limit is None:
                continue
            spent = _amount(used, cpu_key, memory_key) or Resources()
            cpu = limit.cpu_millis - spent.cpu_millis if cpu_key in hard else 10**15
            memory = limit.memory_bytes - spent.memory_bytes if memory_key in hard else 10**18
            limits.append(Resources(max(0, cpu), max(0, memory)))
        if limits:
            entries[str(metadata["name"])] = Resources(
                min(r.cpu_millis for r in limits), min(r.memory_bytes for r in limits)
            )

    def plan(self, task: str, node: str | None, requests: Resources) -> None:
        if node is not None:
            self.planned[task] = (node, requests)

    def forget(self, task: str) -> None:
        self.planned.pop(task, None)

    def snapshot(self) -> Capacity:
        charged: dict[str, list[int]] = {}
        for node, requests in self.planned.values():
            total = charged.setdefault(node, [0, 0])
            total[0] += requests.cpu_millis
            total[1] += requests.memory_bytes
        nodes = []
        for name, allocatable in sorted(self.nodes.items()):
            cpu = allocatable.cpu_millis
            memory = allocatable.memory_bytes
            for requests in self.used.get(name, {}).values():
                cpu -= requests.cpu_millis
                memory -= requests.memory_bytes
            extra = charged.get(name, [0, 0])
            free = Resources(max(0, cpu - extra[0]), max(0, memory - extra[1]))
            nodes.append(NodeCapacity(name=name, allocatable=allocatable, free=free))
        quotas = {
            namespace: Resources(
                min(r.cpu_millis for r in rooms.values()),
                min(r.memory_bytes for r in rooms.values()),
            )
            for namespace, rooms in self.quotas.items()
            if rooms
        }
        return Capacity(nodes=tuple(nodes), quotas=quotas)
