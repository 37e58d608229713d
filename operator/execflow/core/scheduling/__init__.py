"""Task scheduling, as pure decisions: which waiting task starts, is evicted, or fails, and why.

The operator keeps one `Scheduler` (the in-memory index of waiting and running tasks, rebuilt from
Task statuses on start), reports what happens to tasks (`add`, `add_running`, `finish`, `remove`)
and asks `schedule(now, capacity)` for a `Plan` whenever something changed or a timer fires. The
ordering of each strategy is in `strategies`, the anti-starvation and head-of-line rules in
`scheduler`, time windows in `windows` and learned durations in `estimates`.
"""

from execflow.core.scheduling.estimates import (
    DEFAULT_DURATION_SECONDS,
    EWMA_WEIGHT,
    DurationEstimator,
)
from execflow.core.scheduling.model import (
    CRITICAL,
    DEADLINE_MISSED,
    HIGH,
    LOW,
    NORMAL,
    BlockReason,
    Capacity,
    Failure,
    NodeCapacity,
    Plan,
    Preemption,
    QueueDepth,
    Resources,
    RunningTask,
    Start,
    TimeWindow,
    WaitingStatus,
    WaitingTask,
)
from execflow.core.scheduling.scheduler import DEFAULT_SCAN_DEPTH, Scheduler
from execflow.core.scheduling.strategies import sort_key
from execflow.core.scheduling.windows import any_window_open, next_window_opening

__all__ = [
    "CRITICAL",
    "DEADLINE_MISSED",
    "DEFAULT_DURATION_SECONDS",
    "DEFAULT_SCAN_DEPTH",
    "EWMA_WEIGHT",
    "HIGH",
    "LOW",
    "NORMAL",
    "BlockReason",
    "Capacity",
    "DurationEstimator",
    "Failure",
    "NodeCapacity",
    "Plan",
    "Preemption",
    "QueueDepth",
    "Resources",
    "RunningTask",
    "Scheduler",
    "Start",
    "TimeWindow",
    "WaitingStatus",
    "WaitingTask",
    "any_window_open",
    "next_window_opening",
    "sort_key",
]
