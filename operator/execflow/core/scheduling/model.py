"""The plain data the scheduler takes in and hands back.

Inputs describe tasks and the cluster as the caller sees them at one instant; outputs are the
decisions of one scheduling call. Everything is a frozen dataclass with numbers in base units
(epoch seconds, seconds, CPU millicores, memory bytes), so the scheduling core never parses
Kubernetes quantities, durations or timestamps and never reads a clock: the caller converts once.
Constructors validate what would otherwise corrupt the index later (a malformed key, a priority
outside 0..3, a negative request, an unknown time zone) and raise ValueError.
"""

import datetime
import enum
import math
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field

from execflow.api.reasons import Reason
from execflow.api.timestamps import format_seconds, from_epoch

LOW = 0
NORMAL = 1
HIGH = 2
CRITICAL = 3
"""Priority ranks, as `execflow.api.task.Priority.rank` numbers them (Low=0 .. Critical=3)."""

PRIORITY_NAMES = ("Low", "Normal", "High", "Critical")

_TIME_OF_DAY = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


class BlockReason(enum.StrEnum):
    """Why a waiting task did not start; reported as the Task's status reason (words of Reason)."""

    QUEUE_FULL = Reason.QUEUE_FULL.value
    UNKNOWN_QUEUE = Reason.UNKNOWN_QUEUE.value
    UNSCHEDULABLE = Reason.UNSCHEDULABLE.value
    OUTSIDE_TIME_WINDOW = Reason.OUTSIDE_TIME_WINDOW.value
    MUTEX_HELD = Reason.MUTEX_HELD.value
    EXCLUSIVE_RUNNING = Reason.EXCLUSIVE_RUNNING.value
    WAITING_FOR_CAPACITY = Reason.WAITING_FOR_CAPACITY.value
    NO_SCHEDULABLE_NODES = Reason.NO_SCHEDULABLE_NODES.value


DEADLINE_MISSED = Reason.DEADLINE_MISSED.value
"""The reason of a waiting task failed because it can no longer finish by its deadline."""


def utc_text(epoch: float) -> str:
    """An instant as messages show it: UTC, to the second, e.g. "2026-01-15T21:00:00Z"."""
    return format_seconds(from_epoch(epoch))


def _check_finite(name: str, value: float) -> None:
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, not {value!r}")


def _namespace_of(key: str) -> str:
    namespace, slash, name = key.partition("/")
    if not slash or not namespace or not name or "/" in name:
        raise ValueError(f"task key must be 'namespace/name', not {key!r}")
    return namespace


def _check_priority(priority: int) -> None:
    if not LOW <= priority <= CRITICAL:
        raise ValueError(f"priority rank must be 0 (Low) .. 3 (Critical), not {priority}")


@dataclass(frozen=True, slots=True)
class Resources:
    """A resource amount: CPU in millicores and memory in bytes."""

    cpu_millis: int = 0
    memory_bytes: int = 0

    def __post_init__(self) -> None:
        if self.cpu_millis < 0 or self.memory_bytes < 0:
            raise ValueError(f"resource amounts must not be negative: {self}")

    def fits_in(self, other: "Resources") -> bool:
        """True when this amount is at most `other` in every dimension."""
        return self.cpu_millis <= other.cpu_millis and self.memory_bytes <= other.memory_bytes

    def describe(self) -> str:
        """A short human form, e.g. "500m CPU, 256Mi memory"."""
        return f"{self.cpu_millis}m CPU, {_bytes_text(self.memory_bytes)} memory"


def _bytes_text(amount: int) -> str:
    for unit, size in (("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if amount >= size and amount % size == 0:
            return f"{amount // size}{unit}"
    return str(amount)


NO_RESOURCES = Resources()


def parse_time_of_day(text: str) -> int:
    """Minutes after midnight of an "HH:MM" time; ValueError when malformed."""
    match = _TIME_OF_DAY.match(text)
    if match is None:
        raise ValueError(f'time of day must be "HH:MM" (00:00 .. 23:59), not {text!r}')
    return int(match.group(1)) * 60 + int(match.group(2))


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """A daily wall-clock window in which a task may start.

    `start` is inclusive and `end` exclusive, both "HH:MM" in `time_zone` (an IANA name). An end at
    or before the start wraps past midnight: 22:00-06:00 is open overnight, and equal start and end
    mean the whole day.
    """

    start: str
    end: str
    time_zone: str = "UTC"
    start_minute: int = field(init=False, repr=False, compare=False)
    end_minute: int = field(init=False, repr=False, compare=False)
    zone: datetime.tzinfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "start_minute", parse_time_of_day(self.start))
        object.__setattr__(self, "end_minute", parse_time_of_day(self.end))
        try:
            zone = zoneinfo.ZoneInfo(self.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {self.time_zone!r}") from error
        object.__setattr__(self, "zone", zone)

    def describe(self) -> str:
        """The window as users wrote it, e.g. "22:00-06:00 Europe/Berlin"."""
        return f"{self.start}-{self.end} {self.time_zone}"


@dataclass(frozen=True, slots=True)
class TaskShape:
    """What the scheduler knows of every task, waiting or running.

    `key` is "namespace/name". `mutex` is the name from the spec; the scheduler scopes it to the
    task's namespace. Every field after `key` is keyword-only, so that the fields each kind adds
    can never be confused by position with these.
    """

    key: str
    _: KW_ONLY
    queue: str = "default"
    priority: int = NORMAL
    tool: str | None = None
    exclusive: bool = False
    mutex: str | None = None
    requests: Resources = NO_RESOURCES

    def __post_init__(self) -> None:
        _namespace_of(self.key)
        _check_priority(self.priority)
        if self.mutex == "":
            raise ValueError("mutex must be a non-empty name or None")

    @property
    def namespace(self) -> str:
        """The namespace part of the key."""
        return _namespace_of(self.key)

    @property
    def mutex_key(self) -> str | None:
        """The mutex scoped to the namespace ("namespace/mutex"), or None."""
        return None if self.mutex is None else f"{self.namespace}/{self.mutex}"


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitingTask(TaskShape):
    """A task that wants to start, as the scheduler needs to know it.

    `queued_at` is when the task first entered its queue (epoch seconds); a task put back after
    preemption keeps it, so its wait counts from then. `estimated_duration` is the user's estimate
    in seconds; without it the estimate is learned per `tool`.
    """

    queued_at: float = 0.0
    estimated_duration: float | None = None
    deadline: float | None = None
    time_windows: tuple[TimeWindow, ...] = ()

    def __post_init__(self) -> None:
        # By name: before Python 3.14 zero-argument super() fails in a slotted dataclass.
        TaskShape.__post_init__(self)
        _check_finite("queued_at", self.queued_at)
        if self.estimated_duration is not None:
            _check_finite("estimated_duration", self.estimated_duration)
            if self.estimated_duration < 0:
                raise ValueError("estimated_duration must not be negative")
        if self.deadline is not None:
            _check_finite("deadline", self.deadline)

    def started(self, at: float) -> "RunningTask":
        """The same task, running since `at`."""
        return RunningTask(
            key=self.key,
            queue=self.queue,
            priority=self.priority,
            tool=self.tool,
            exclusive=self.exclusive,
            mutex=self.mutex,
            requests=self.requests,
            started_at=at,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RunningTask(TaskShape):
    """A task the scheduler started (or found running after a restart).

    It occupies a slot of its queue, its mutex and, while `exclusive`, its whole queue until the
    caller reports it ended. `started_at` dates the run so a success can teach the tool's duration.
    """

    started_at: float = 0.0

    def __post_init__(self) -> None:
        TaskShape.__post_init__(self)
        _check_finite("started_at", self.started_at)


@dataclass(frozen=True, slots=True)
class NodeCapacity:
    """One schedulable node: what it offers in total and what is still free of it."""

    name: str
    allocatable: Resources
    free: Resources


@dataclass(frozen=True, slots=True)
class Capacity:
    """The cluster's room for new tasks at one instant.

    `nodes` lists the schedulable nodes only (the caller leaves out cordoned, tainted and NotReady
    ones); when none is left, nothing starts and waiting tasks say `NoSchedulableNodes`.
    `quotas` maps a namespace to what its ResourceQuota still allows; a namespace absent from it is
    not limited.
    """

    nodes: tuple[NodeCapacity, ...] = ()
    quotas: Mapping[str, Resources] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Start:
    """Start this task now. `node` is where its requests were counted: a hint, not a binding."""

    key: str
    queue: str
    node: str | None = None


@dataclass(frozen=True, slots=True)
class Preemption:
    """Evict the running `victim` so the waiting `preemptor` gets its slot.

    The victim keeps its slot until the caller reports it gone (`Scheduler.remove`, or `add` to
    put it back as a waiting task); the preemptor then starts before anything else of its queue.
    """

    victim: str
    preemptor: str
    queue: str


@dataclass(frozen=True, slots=True)
class Failure:
    """Fail this waiting task now; it has left the scheduler."""

    key: str
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class WaitingStatus:
    """A waiting task's reason for waiting changed; None means it simply waits its turn."""

    key: str
    reason: BlockReason | None
    message: str = ""


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """How many tasks a queue holds: waiting inside it, waiting outside it, running."""

    waiting: int
    overflow: int
    running: int


@dataclass(frozen=True, slots=True)
class Plan:
    """The decisions of one scheduling call, already applied to the scheduler's index.

    `starts` are in the order they were decided. `waiting` lists only tasks whose reason changed
    since it was last reported, so the caller writes status only when there is news.
    """

    starts: tuple[Start, ...] = ()
    preemptions: tuple[Preemption, ...] = ()
    failures: tuple[Failure, ...] = ()
    waiting: tuple[WaitingStatus, ...] = ()
    depths: Mapping[str, QueueDepth] = field(default_factory=dict)
