"""Resource fit within one scheduling call: which node a task's requests fit, and bookkeeping.

The caller reports per-node free allocatable resources and per-namespace remaining quota once per
call; every task planned in that call is subtracted at once, so two tasks are never counted into the
same free space. Placement is first fit over the nodes in the caller's order: the point is to know
whether a task can run now, not to bind pods (the cluster's scheduler still places them).

Capacity held back for a waiting task (a reservation against head-of-line starvation) is subtracted
from its node and namespace quota before anything else is planned, and given back to the task itself
when it is examined.
"""

from execflow.core.scheduling.model import Capacity, Resources


class CapacityView:
    """Mutable free capacity for the duration of one scheduling call."""

    def __init__(self, capacity: Capacity) -> None:
        self._names = [node.name for node in capacity.nodes]
        self._index = {name: index for index, name in enumerate(self._names)}
        self._alloc = [
            (node.allocatable.cpu_millis, node.allocatable.memory_bytes) for node in capacity.nodes
        ]
        self._free_cpu = [node.free.cpu_millis for node in capacity.nodes]
        self._free_memory = [node.free.memory_bytes for node in capacity.nodes]
        self._quota = {
            namespace: [left.cpu_millis, left.memory_bytes]
            for namespace, left in capacity.quotas.items()
        }

    def could_ever_fit(self, requests: Resources) -> bool:
        """Whether some node's allocatable, empty, could hold the requests."""
        cpu, memory = requests.cpu_millis, requests.memory_bytes
        return any(cpu <= alloc_cpu and memory <= alloc_mem for alloc_cpu, alloc_mem in self._alloc)

    def quota_allows(self, namespace: str, requests: Resources) -> bool:
        """Whether the namespace's remaining quota covers the requests (no quota: yes)."""
        left = self._quota.get(namespace)
        return left is None or (requests.cpu_millis <= left[0] and requests.memory_bytes <= left[1])

    def first_fit(self, requests: Resources) -> str | None:
        """The first node whose free resources hold the requests, or None."""
        cpu, memory = requests.cpu_millis, requests.memory_bytes
        free_memory = self._free_memory
        for index, free_cpu in enumerate(self._free_cpu):
            if cpu <= free_cpu and memory <= free_memory[index]:
                return self._names[index]
        return None

    def closest_node(self, requests: Resources, preferred: str | None) -> str | None:
        """The node to hold back for a task that does not fit anywhere yet.

        Its previous node if that still could hold the task (so the node keeps draining towards
        it), else the node where the largest share of the requests is already free.
        """
        cpu, memory = requests.cpu_millis, requests.memory_bytes

        def holds(index: int) -> bool:
            alloc_cpu, alloc_mem = self._alloc[index]
            return cpu <= alloc_cpu and memory <= alloc_mem

        if preferred is not None:
            index = self._index.get(preferred)
            if index is not None and holds(index):
                return preferred
        best: str | None = None
        best_share = -1.0
        for index, name in enumerate(self._names):
            if not holds(index):
                continue
            shares = [
                self._free_cpu[index] / cpu if cpu else 1.0,
                self._free_memory[index] / memory if memory else 1.0,
            ]
            share = min(shares)
            if share > best_share:
                best, best_share = name, share
        return best

    def take(self, node: str | None, namespace: str, requests: Resources) -> None:
        """Subtract requests from a node (if named and known) and from the namespace quota."""
        self._adjust(node, namespace, requests, -1)

    def give_back(self, node: str | None, namespace: str, requests: Resources) -> None:
        """Undo a `take` of the same arguments."""
        self._adjust(node, namespace, requests, 1)

    def _adjust(self, node: str | None, namespace: str, requests: Resources, sign: int) -> None:
        if node is not None:
            index = self._index.get(node)
            if index is not None:
                self._free_cpu[index] += sign * requests.cpu_millis
                self._free_memory[index] += sign * requests.memory_bytes
        left = self._quota.get(namespace)
        if left is not None:
            left[0] += sign * requests.cpu_millis
            left[1] += sign * requests.memory_bytes

    def node_shapes(self) -> frozenset[tuple[int, int]]:
        """The distinct allocatable (CPU, memory) pairs: what could ever fit changes with them."""
        return frozenset(self._alloc)

    def has_node(self, node: str) -> bool:
        """Whether the node is among the schedulable nodes of this call."""
        return node in self._index
