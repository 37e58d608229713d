"""Strategy order of the pure scheduling core: with one slot, tasks start in the strategy's order.

Pure core, no cluster. The expected orders are written out here from the documented formulas
(FIFO, Priority, ShortestJobFirst, DeadlineAware) rather than taken from the implementation; only
Adaptive's weighted score is checked against the public `sort_key`, and separately for its intent.
"""

import math
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from execflow.api.settings import (
    AdaptiveWeights,
    OperatorSettings,
    QueueSettings,
    SchedulingStrategy,
)
from execflow.core.scheduling import (
    DEFAULT_DURATION_SECONDS,
    Scheduler,
    WaitingTask,
    sort_key,
)

AGING = 600.0
NOW = 200_000.0
HUGE = 10**9


def single_slot(strategy: SchedulingStrategy, **extra: object) -> QueueSettings:
    return QueueSettings.model_validate(
        {
            "strategy": strategy,
            "maxConcurrentTasks": 1,
            "maxQueuedTasks": 100_000,
            "agingSeconds": AGING,
            "starvationLimit": HUGE,
            **extra,
        }
    )


def start_order(queue: QueueSettings, tasks: list[WaitingTask]) -> list[str]:
    """Add all tasks, then let one slot run them one at a time; the keys in start order."""
    scheduler = Scheduler(OperatorSettings(queues={"default": queue}))
    for task in tasks:
        scheduler.add(task)
    order: list[str] = []
    for _ in tasks:
        plan = scheduler.schedule(NOW)
        assert len(plan.starts) == 1
        assert not plan.failures
        key = plan.starts[0].key
        order.append(key)
        scheduler.finish(key, now=NOW, succeeded=False)
    assert not scheduler.schedule(NOW).starts
    return order


@st.composite
def task_lists(draw: st.DrawFn) -> list[WaitingTask]:
    count = draw(st.integers(min_value=1, max_value=40))
    tasks = []
    for index in range(count):
        tasks.append(
            WaitingTask(
                key=f"ns/t{index}",
                priority=draw(st.integers(0, 3)),
                # Coarse times make ties (broken by arrival) common.
                queued_at=float(draw(st.integers(0, 50)) * 100),
                estimated_duration=draw(
                    st.none() | st.sampled_from([0.5, 1.0, 2.0, 10.0, 60.0, 600.0, 3600.0])
                ),
                tool=draw(st.none() | st.sampled_from(["clean", "train"])),
                deadline=draw(
                    st.none() | st.integers(300_000, 400_000).map(lambda seconds: seconds * 1.0)
                ),
            )
        )
    return tasks


def by_key_then_arrival(tasks: list[WaitingTask], key: Callable[[WaitingTask], Any]) -> list[str]:
    arrival = {task.key: index for index, task in enumerate(tasks)}
    return [task.key for task in sorted(tasks, key=lambda task: (key(task), arrival[task.key]))]


def duration_of(task: WaitingTask) -> float:
    return task.estimated_duration if task.estimated_duration is not None else 60.0


@settings(max_examples=150, deadline=None)
@given(task_lists())
def test_fifo_starts_in_queue_time_order(tasks: list[WaitingTask]) -> None:
    expected = by_key_then_arrival(tasks, lambda task: task.queued_at)
    assert start_order(single_slot(SchedulingStrategy.FIFO), tasks) == expected


@settings(max_examples=150, deadline=None)
@given(task_lists())
def test_priority_starts_by_aged_priority_and_fifo_within_a_level(
    tasks: list[WaitingTask],
) -> None:
    expected = by_key_then_arrival(tasks, lambda task: task.queued_at - task.priority * AGING)
    assert start_order(single_slot(SchedulingStrategy.PRIORITY), tasks) == expected


@settings(max_examples=150, deadline=None)
@given(task_lists())
def test_pure_priority_without_ageing_starts_higher_levels_first(
    tasks: list[WaitingTask],
) -> None:
    queue = single_slot(SchedulingStrategy.PRIORITY, agingSeconds=1e12)
    expected = by_key_then_arrival(tasks, lambda task: (-task.priority, task.queued_at))
    assert start_order(queue, tasks) == expected


@settings(max_examples=150, deadline=None)
@given(task_lists())
def test_shortest_job_first_starts_by_aged_estimated_duration(tasks: list[WaitingTask]) -> None:
    expected = by_key_then_arrival(
        tasks, lambda task: task.queued_at + AGING * math.log2(max(duration_of(task), 1.0))
    )
    assert start_order(single_slot(SchedulingStrategy.SHORTEST_JOB_FIRST), tasks) == expected


@settings(max_examples=150, deadline=None)
@given(task_lists())
def test_deadline_aware_starts_earliest_deadline_first_then_the_rest_fifo(
    tasks: list[WaitingTask],
) -> None:
    expected = by_key_then_arrival(
        tasks,
        lambda task: (0, task.deadline) if task.deadline is not None else (1, task.queued_at),
    )
    assert start_order(single_slot(SchedulingStrategy.DEADLINE_AWARE), tasks) == expected


@settings(max_examples=150, deadline=None)
@given(
    task_lists(),
    st.builds(
        AdaptiveWeights,
        priority=st.sampled_from([0.0, 0.5, 1.0, 3.0]),
        wait_time=st.sampled_from([0.0, 1.0, 2.0]),
        deadline=st.sampled_from([0.0, 1.0, 4.0]),
        shortness=st.sampled_from([0.0, 1.0, 2.5]),
    ),
)
def test_adaptive_starts_by_weighted_score(
    tasks: list[WaitingTask], weights: AdaptiveWeights
) -> None:
    queue = single_slot(SchedulingStrategy.ADAPTIVE).model_copy(
        update={"adaptive_weights": weights}
    )
    expected = by_key_then_arrival(
        tasks,
        lambda task: sort_key(queue, task, duration_of(task), task.estimated_duration or 0.0),
    )
    assert start_order(queue, tasks) == expected


def test_adaptive_prefers_priority_short_urgent_and_long_waiting_tasks() -> None:
    queue = single_slot(SchedulingStrategy.ADAPTIVE)
    base = WaitingTask("ns/base", queued_at=1000.0, estimated_duration=60.0)
    variants = {
        "higher priority": WaitingTask(
            "ns/x", priority=3, queued_at=1000.0, estimated_duration=60.0
        ),
        "shorter": WaitingTask("ns/x", queued_at=1000.0, estimated_duration=5.0),
        "tight deadline": WaitingTask(
            "ns/x", queued_at=1000.0, estimated_duration=60.0, deadline=1100.0
        ),
        "waited longer": WaitingTask("ns/x", queued_at=0.0, estimated_duration=60.0),
    }
    for what, better in variants.items():
        assert sort_key(queue, better, 60.0 if what != "shorter" else 5.0, 60.0) < sort_key(
            queue, base, 60.0, 60.0
        ), what


def test_learned_duration_moves_a_tools_waiting_tasks_in_shortest_job_first() -> None:
    scheduler = Scheduler(
        OperatorSettings(queues={"default": single_slot(SchedulingStrategy.SHORTEST_JOB_FIRST)})
    )
    # Unknown tool: ordered as DEFAULT_DURATION_SECONDS, i.e. after an explicit 30 s task.
    assert DEFAULT_DURATION_SECONDS > 30.0
    scheduler.add(WaitingTask("ns/explicit", queued_at=0.0, estimated_duration=30.0))
    scheduler.add(WaitingTask("ns/learned-1", queued_at=0.0, tool="fast"))
    scheduler.add(WaitingTask("ns/learned-2", queued_at=0.0, tool="fast"))
    scheduler.learn_duration("fast", 2.0)
    order = []
    for _ in range(3):
        key = scheduler.schedule(NOW).starts[0].key
        order.append(key)
        scheduler.finish(key, now=NOW, succeeded=False)
    assert order == ["ns/learned-1", "ns/learned-2", "ns/explicit"]


def test_successful_runs_teach_the_tool_duration_as_a_moving_average() -> None:
    scheduler = Scheduler(OperatorSettings())
    scheduler.add(WaitingTask("ns/a", tool="etl"))
    scheduler.schedule(100.0)
    scheduler.finish("ns/a", now=110.0, succeeded=True)
    assert scheduler.estimator.known("etl") == 10.0
    scheduler.add(WaitingTask("ns/b", tool="etl"))
    scheduler.schedule(200.0)
    scheduler.finish("ns/b", now=220.0, succeeded=True)
    assert scheduler.estimator.known("etl") == 10.0 + 0.3 * (20.0 - 10.0)
    scheduler.add(WaitingTask("ns/c", tool="etl"))
    scheduler.schedule(300.0)
    scheduler.finish("ns/c", now=1300.0, succeeded=False)
    assert scheduler.estimator.known("etl") == 13.0
    assert scheduler.estimator.known("other") is None
    assert scheduler.estimator.estimate("other") == DEFAULT_DURATION_SECONDS
