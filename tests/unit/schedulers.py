"""Building schedulers and reading their plans, for the scheduling unit tests."""

from __future__ import annotations

from execflow.api.settings import OperatorSettings, QueueSettings
from execflow.core.scheduling import (
    BlockReason,
    Capacity,
    NodeCapacity,
    Plan,
    Resources,
    Scheduler,
)

GI = 1 << 30


def one_queue(**fields: object) -> Scheduler:
    """A scheduler with only the `default` queue, configured by `fields` (camelCase keys)."""
    return Scheduler(OperatorSettings(queues={"default": QueueSettings.model_validate(fields)}))


def started(plan: Plan) -> list[str]:
    return [start.key for start in plan.starts]


def reasons(plan: Plan) -> dict[str, BlockReason | None]:
    return {status.key: status.reason for status in plan.waiting}


def nodes(*free: tuple[int, int], allocatable: tuple[int, int] = (4000, 8 * GI)) -> Capacity:
    """Nodes named n1, n2, ... with the given free (CPU millicores, memory bytes)."""
    return Capacity(
        nodes=tuple(
            NodeCapacity(f"n{index}", Resources(*allocatable), Resources(*left))
            for index, left in enumerate(free, start=1)
        )
    )
