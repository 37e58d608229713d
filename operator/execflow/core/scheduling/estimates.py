"""Learned run durations per tool, for tasks that do not state an estimatedDuration.

ShortestJobFirst and Adaptive order by duration and deadline checks subtract it, but most tasks
never say how long they take. Tasks of one tool tend to take similar time, so every successful run
teaches its tool's estimate: an exponentially weighted moving average (EWMA) of the observed
durations, where the newest run weighs `EWMA_WEIGHT`. The first run sets the estimate outright.
Failed runs teach nothing: a crash after two seconds says little about a normal run.

A tool nobody has seen finish is estimated at `DEFAULT_DURATION_SECONDS` (one minute) for ordering;
deadline checks use only durations that are actually known, so a guess never fails a task.
"""

import math

DEFAULT_DURATION_SECONDS = 60.0
"""Ordering estimate of a task with no estimatedDuration whose tool has no successful run yet."""

EWMA_WEIGHT = 0.3
"""Weight of the newest observation in a tool's moving average."""


class DurationEstimator:
    """Per-tool duration estimates, learned from successful runs."""

    def __init__(
        self, default: float = DEFAULT_DURATION_SECONDS, weight: float = EWMA_WEIGHT
    ) -> None:
        if not (math.isfinite(default) and default >= 0):
            raise ValueError(f"default duration must be a finite number >= 0, not {default!r}")
        if not 0 < weight <= 1:
            raise ValueError(f"EWMA weight must be in (0, 1], not {weight!r}")
        self._default = default
        self._weight = weight
        self._learned: dict[str, float] = {}

    @property
    def default(self) -> float:
        """The estimate of a tool that has no successful run yet."""
        return self._default

    def observe(self, tool: str, seconds: float) -> bool:
        """Teach one successful run; returns whether the tool's estimate changed."""
        if not (math.isfinite(seconds) and seconds >= 0):
            return False
        previous = self._learned.get(tool)
        updated = seconds if previous is None else previous + self._weight * (seconds - previous)
        self._learned[tool] = updated
        return updated != previous

    def known(self, tool: str | None) -> float | None:
        """The learned estimate of `tool`, or None when it has no successful run yet."""
        return None if tool is None else self._learned.get(tool)

    def estimate(self, tool: str | None) -> float:
        """The estimate used for ordering: learned, else the default."""
        learned = self.known(tool)
        return self._default if learned is None else learned
