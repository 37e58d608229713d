"""What a Task's container asks of the cluster: its requests, the Task's over its Tool's.

The scheduler fits tasks by CPU millicores and memory bytes. Quantities are parsed here once; a
quantity the API server admitted but that cannot be read fails the Task with its field named,
instead of failing every reconcile.
"""

from __future__ import annotations

from typing import Any

from execflow.api.quantities import millicores, whole_units
from execflow.api.task import TaskSpec
from execflow.api.tool import ToolSpec
from execflow.core.scheduling import Resources


def requests_of(spec: TaskSpec, tool: ToolSpec | None) -> Resources:
    """CPU and memory requests of the container, key by key; ValueError naming a bad one."""
    merged: dict[str, Any] = dict(tool.resources.requests) if tool is not None else {}
    merged.update(spec.resources.requests)
    try:
        cpu = millicores(merged.get("cpu", 0))
    except ValueError as error:
        raise ValueError(f"spec.resources.requests.cpu: {error}") from None
    try:
        memory = whole_units(merged.get("memory", 0))
    except ValueError as error:
        raise ValueError(f"spec.resources.requests.memory: {error}") from None
    return Resources(cpu_millis=max(0, cpu), memory_bytes=max(0, memory))
