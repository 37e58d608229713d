"""The order of each strategy, as one sort key per task: the smallest key starts first.

Every key is fixed when the task enters its queue. Ageing is still built in: each strategy's score
of a task at time `now` is linear in `now` with the same coefficient for every task, so the
difference between two tasks never changes and `now` drops out of the comparison. Keys therefore
live in plain heaps and a decision never re-sorts the queue. Ties go to the earlier arrival.

- FIFO: `queued_at`.
- Priority: `queued_at - rank * agingSeconds`: FIFO within a level, and waiting `agingSeconds`
  longer is worth one level (a Low task queued 30 minutes before a Critical one goes first with
  the default of 10 minutes).
- ShortestJobFirst: `queued_at + agingSeconds * log2(duration)` with the duration floored at 1 s:
  waiting `agingSeconds` longer is worth halving the estimate, so long jobs age past short ones.
- DeadlineAware: earliest deadline first; tasks without a deadline come after every task with one,
  first come first served. The hard starvation bound of the scheduler keeps them from starving.
- Adaptive: the score `wP * rank + wW * waited / agingSeconds + wD * urgency + wS * shortness`,
  highest first, where urgency is 4 levels at zero slack when queued (deadline minus known duration
  minus `queued_at`), one level less per `agingSeconds` of slack, never below 0 (0 without a
  deadline), and shortness is `-log2(duration / 60 s)`: one level per halving below one minute.
  Because the key must not depend on `now`, deadline urgency is judged at queue time; a deadline
  that comes close later is guarded by the deadline-miss check, not by reordering.

Durations for ordering are the task's estimate, else its tool's learned estimate. The part of the
key that depends on a learned estimate is kept separate (`duration_term`) so that all waiting tasks
of a tool can be moved at once when the tool's estimate changes.
"""

import math

from execflow.api.settings import QueueSettings, SchedulingStrategy
from execflow.core.scheduling.model import WaitingTask

SortKey = tuple[int, float]
"""(tier, value): tiers order first (DeadlineAware puts deadline-less tasks in tier 1)."""

MIN_DURATION_SECONDS = 1.0
"""Durations below this count as this long; sub-second differences are noise for ordering."""

SHORTNESS_REFERENCE_SECONDS = 60.0
"""The duration whose Adaptive shortness term is zero."""

DEADLINE_URGENCY_LEVELS = 4.0
"""Adaptive deadline urgency at zero slack, as many levels as there are priorities."""


def uses_duration(strategy: SchedulingStrategy) -> bool:
    """Whether the strategy's order depends on estimated durations."""
    return strategy in (SchedulingStrategy.SHORTEST_JOB_FIRST, SchedulingStrategy.ADAPTIVE)


def _urgency(settings: QueueSettings, task: WaitingTask, known_duration: float) -> float:
    if task.deadline is None:
        return 0.0
    slack = task.deadline - known_duration - task.queued_at
    levels = DEADLINE_URGENCY_LEVELS - slack / settings.aging_seconds
    return min(DEADLINE_URGENCY_LEVELS, max(0.0, levels))


def base_key(settings: QueueSettings, task: WaitingTask, known_duration: float) -> SortKey:
    """The key without its duration term. `known_duration` (0 when unknown) sizes deadline slack."""
    strategy = settings.strategy
    if strategy is SchedulingStrategy.FIFO or strategy is SchedulingStrategy.SHORTEST_JOB_FIRST:
        return (0, task.queued_at)
    if strategy is SchedulingStrategy.PRIORITY:
        return (0, task.queued_at - task.priority * settings.aging_seconds)
    if strategy is SchedulingStrategy.DEADLINE_AWARE:
        if task.deadline is None:
            return (1, task.queued_at)
        return (0, task.deadline)
    weights = settings.adaptive_weights
    value = (
        weights.wait_time * task.queued_at / settings.aging_seconds
        - weights.priority * task.priority
        - weights.deadline * _urgency(settings, task, known_duration)
    )
    return (0, value)


def duration_term(settings: QueueSettings, duration: float) -> float:
    """What an estimated duration adds to the key value (0 for strategies that ignore it)."""
    seconds = max(duration, MIN_DURATION_SECONDS)
    if settings.strategy is SchedulingStrategy.SHORTEST_JOB_FIRST:
        return settings.aging_seconds * math.log2(seconds)
    if settings.strategy is SchedulingStrategy.ADAPTIVE:
        return settings.adaptive_weights.shortness * math.log2(
            seconds / SHORTNESS_REFERENCE_SECONDS
        )
    return 0.0


def sort_key(
    settings: QueueSettings, task: WaitingTask, duration: float, known_duration: float
) -> SortKey:
    """The full key of a task whose ordering duration is `duration`."""
    tier, value = base_key(settings, task, known_duration)
    return (tier, value + duration_term(settings, duration))
