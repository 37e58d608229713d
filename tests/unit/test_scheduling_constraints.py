"""Examples of the pure scheduling core's constraints and blocked reasons.

Pure core, no cluster: time windows across midnight and time zones (daylight saving included),
deadline misses, preemption victims, QueueFull admission, resource fit, Unschedulable, the
head-of-line rule, exclusive tasks, mutexes and unknown queues, each on a hand-built Scheduler.
"""

import datetime

import pytest

from execflow.api.settings import OperatorSettings, QueueSettings, SchedulingStrategy
from execflow.core.scheduling import (
    CRITICAL,
    DEADLINE_MISSED,
    HIGH,
    LOW,
    NORMAL,
    BlockReason,
    Capacity,
    NodeCapacity,
    Resources,
    RunningTask,
    Scheduler,
    TimeWindow,
    WaitingTask,
    any_window_open,
    next_window_opening,
)
from tests.unit.schedulers import GI, nodes, one_queue, reasons, started


def at(text: str) -> float:
    """Epoch seconds of an RFC 3339 time."""
    return datetime.datetime.fromisoformat(text).timestamp()


# -- time windows ----------------------------------------------------------------------------

OVERNIGHT_BERLIN = TimeWindow("22:00", "06:00", "Europe/Berlin")


@pytest.mark.parametrize(
    ("instant", "is_open"),
    [
        ("2026-01-15T20:59:59+00:00", False),  # 21:59:59 in Berlin (CET, +01:00)
        ("2026-01-15T21:00:00+00:00", True),  # 22:00 in Berlin
        ("2026-01-15T23:30:00+00:00", True),  # 00:30, past midnight
        ("2026-01-16T04:59:59+00:00", True),  # 05:59:59
        ("2026-01-16T05:00:00+00:00", False),  # 06:00, end is exclusive
        ("2026-07-15T20:00:00+00:00", True),  # 22:00 in summer (CEST, +02:00)
        ("2026-07-15T20:59:00+00:00", True),
        ("2026-07-16T04:00:00+00:00", False),  # 06:00 CEST
        ("2026-07-15T12:00:00+00:00", False),
    ],
)
def test_overnight_window_follows_the_zones_offset(instant: str, is_open: bool) -> None:
    assert any_window_open((OVERNIGHT_BERLIN,), at(instant)) is is_open


def test_next_opening_of_an_overnight_window_is_tonight_in_the_zone() -> None:
    assert next_window_opening((OVERNIGHT_BERLIN,), at("2026-01-15T12:00:00+00:00")) == at(
        "2026-01-15T21:00:00+00:00"
    )
    # Just after tonight's opening, the next one is tomorrow night.
    assert next_window_opening((OVERNIGHT_BERLIN,), at("2026-01-15T21:00:01+00:00")) == at(
        "2026-01-16T21:00:00+00:00"
    )


def test_next_opening_crosses_the_spring_daylight_saving_jump() -> None:
    # Berlin moves from +01:00 to +02:00 on 2026-03-29 at 02:00 local time.
    assert next_window_opening((OVERNIGHT_BERLIN,), at("2026-03-29T12:00:00+00:00")) == at(
        "2026-03-29T20:00:00+00:00"
    )
    early = TimeWindow("02:30", "04:00", "Europe/Berlin")
    opening = next_window_opening((early,), at("2026-03-28T12:00:00+00:00"))
    # 02:30 does not exist that night: the opening falls right after the jump, inside the window.
    assert at("2026-03-29T01:00:00+00:00") <= opening <= at("2026-03-29T01:30:00+00:00")
    assert any_window_open((early,), opening)


def test_windows_in_several_zones_open_when_any_is_open() -> None:
    windows = (
        TimeWindow("09:00", "17:00", "America/New_York"),
        TimeWindow("09:00", "17:00", "Asia/Tokyo"),
    )
    assert any_window_open(windows, at("2026-06-01T14:00:00+00:00"))  # 10:00 in New York
    assert any_window_open(windows, at("2026-06-01T01:00:00+00:00"))  # 10:00 in Tokyo
    assert not any_window_open(windows, at("2026-06-01T10:00:00+00:00"))  # 06:00 / 19:00
    assert next_window_opening(windows, at("2026-06-01T10:00:00+00:00")) == at(
        "2026-06-01T13:00:00+00:00"
    )


def test_equal_start_and_end_is_the_whole_day() -> None:
    window = TimeWindow("07:00", "07:00", "UTC")
    for hour in range(24):
        assert any_window_open((window,), at(f"2026-01-01T{hour:02d}:30:00+00:00"))


@pytest.mark.parametrize(
    ("start", "end", "zone"),
    [("24:00", "01:00", "UTC"), ("7:00", "08:00", "UTC"), ("07:00", "08:00", "Mars/Olympus")],
)
def test_malformed_windows_are_refused(start: str, end: str, zone: str) -> None:
    with pytest.raises(ValueError):
        TimeWindow(start, end, zone)


def test_task_outside_its_window_waits_with_the_next_opening_then_starts() -> None:
    scheduler = one_queue()
    scheduler.add(WaitingTask("ns/nightly", time_windows=(OVERNIGHT_BERLIN,)))
    scheduler.add(WaitingTask("ns/anytime"))
    noon = at("2026-01-15T12:00:00+00:00")
    plan = scheduler.schedule(noon)
    assert started(plan) == ["ns/anytime"]
    (status,) = plan.waiting
    assert status.reason is BlockReason.OUTSIDE_TIME_WINDOW
    assert "22:00-06:00 Europe/Berlin" in status.message
    assert "2026-01-15T21:00:00Z" in status.message
    assert started(scheduler.schedule(at("2026-01-15T20:59:00+00:00"))) == []
    assert started(scheduler.schedule(at("2026-01-15T21:00:00+00:00"))) == ["ns/nightly"]


# -- deadlines -------------------------------------------------------------------------------


def test_task_that_cannot_finish_by_its_deadline_fails_now() -> None:
    scheduler = one_queue(maxConcurrentTasks=1)
    now = 1000.0
    scheduler.add(WaitingTask("ns/busy"))
    scheduler.add(WaitingTask("ns/tight", estimated_duration=100.0, deadline=now + 150.0))
    scheduler.add(WaitingTask("ns/roomy", estimated_duration=100.0, deadline=now + 500.0))
    assert started(scheduler.schedule(now)) == ["ns/busy"]
    plan = scheduler.schedule(now + 50.0)
    assert plan.failures == ()  # 50 + 100 = 150 still meets the deadline exactly
    plan = scheduler.schedule(now + 51.0)
    assert [(f.key, f.reason) for f in plan.failures] == [("ns/tight", DEADLINE_MISSED)]
    assert "estimated 100s" in plan.failures[0].message
    assert not scheduler.is_waiting("ns/tight")
    assert scheduler.is_waiting("ns/roomy")


def test_deadline_check_uses_learned_durations_but_never_the_default_guess() -> None:
    scheduler = one_queue(maxConcurrentTasks=1)
    scheduler.add(WaitingTask("ns/busy"))
    scheduler.schedule(0.0)
    scheduler.add(WaitingTask("ns/unknown-tool", tool="new", deadline=30.0))
    scheduler.add(WaitingTask("ns/known-tool", tool="slow", deadline=30.0))
    assert scheduler.schedule(1.0).failures == ()
    scheduler.learn_duration("slow", 120.0)
    plan = scheduler.schedule(2.0)
    assert [f.key for f in plan.failures] == ["ns/known-tool"]
    # Without a known duration a task fails only once the deadline itself has passed.
    assert scheduler.schedule(30.0).failures == ()
    assert [f.key for f in scheduler.schedule(30.5).failures] == ["ns/unknown-tool"]


# -- preemption ------------------------------------------------------------------------------


def preempting_queue(slots: int) -> Scheduler:
    return one_queue(maxConcurrentTasks=slots, preemption=True, strategy="Priority")


def test_critical_task_evicts_the_lowest_priority_most_recent_start() -> None:
    scheduler = preempting_queue(3)
    for key, priority, started_at in [
        ("ns/low-old", LOW, 10.0),
        ("ns/low-new", LOW, 20.0),
        ("ns/normal", NORMAL, 30.0),
    ]:
        scheduler.add_running(RunningTask(key, priority=priority, started_at=started_at))
    scheduler.add(WaitingTask("ns/urgent", priority=CRITICAL, queued_at=40.0))
    plan = scheduler.schedule(50.0)
    assert started(plan) == []
    assert [(p.victim, p.preemptor) for p in plan.preemptions] == [("ns/low-new", "ns/urgent")]
    # Nothing more is evicted while the victim is on its way out.
    assert scheduler.schedule(51.0).preemptions == ()
    scheduler.remove("ns/low-new")
    assert started(scheduler.schedule(52.0)) == ["ns/urgent"]


def test_preemption_needs_a_strictly_lower_priority_victim() -> None:
    scheduler = preempting_queue(1)
    scheduler.add_running(RunningTask("ns/high", priority=HIGH, started_at=0.0))
    scheduler.add(WaitingTask("ns/other-high", priority=HIGH))
    assert scheduler.schedule(1.0).preemptions == ()
    scheduler.add(WaitingTask("ns/critical", priority=CRITICAL))
    plan = scheduler.schedule(2.0)
    assert [(p.victim, p.preemptor) for p in plan.preemptions] == [("ns/high", "ns/critical")]


def test_normal_tasks_never_preempt_and_queues_without_preemption_never_evict() -> None:
    scheduler = preempting_queue(1)
    scheduler.add_running(RunningTask("ns/low", priority=LOW))
    scheduler.add(WaitingTask("ns/normal", priority=NORMAL))
    assert scheduler.schedule(1.0).preemptions == ()

    calm = one_queue(maxConcurrentTasks=1)
    calm.add_running(RunningTask("ns/low", priority=LOW))
    calm.add(WaitingTask("ns/critical", priority=CRITICAL))
    assert calm.schedule(1.0).preemptions == ()


def test_preemptor_gets_the_freed_slot_even_if_others_come_first_in_order() -> None:
    scheduler = one_queue(maxConcurrentTasks=1, preemption=True, strategy="FIFO")
    scheduler.add_running(RunningTask("ns/low", priority=LOW))
    scheduler.add(WaitingTask("ns/first", priority=NORMAL, queued_at=1.0))
    scheduler.add(WaitingTask("ns/high", priority=HIGH, queued_at=2.0))
    plan = scheduler.schedule(10.0)
    assert [(p.victim, p.preemptor) for p in plan.preemptions] == [("ns/low", "ns/high")]
    scheduler.remove("ns/low")
    assert started(scheduler.schedule(11.0)) == ["ns/high"]


# -- QueueFull -------------------------------------------------------------------------------


def test_tasks_beyond_max_queued_wait_outside_and_enter_in_arrival_order() -> None:
    scheduler = one_queue(maxConcurrentTasks=1, maxQueuedTasks=2, strategy="Priority")
    for index, priority in enumerate([LOW, LOW, CRITICAL, NORMAL]):
        scheduler.add(WaitingTask(f"ns/t{index}", priority=priority, queued_at=float(index)))
    plan = scheduler.schedule(10.0)
    assert started(plan) == ["ns/t0"]
    # t1 filled the queue; t2 entered when t0 started; t3 still waits outside.
    assert reasons(plan) == {"ns/t3": BlockReason.QUEUE_FULL}
    assert "maximum of 2" in plan.waiting[0].message
    assert plan.depths["default"].waiting == 2
    assert plan.depths["default"].overflow == 1
    scheduler.finish("ns/t0", now=11.0, succeeded=True)
    plan = scheduler.schedule(11.0)
    assert started(plan) == ["ns/t2"]  # Critical first, among those inside the queue
    assert reasons(plan) == {"ns/t3": None}  # it entered: the QueueFull reason is lifted
    assert plan.depths["default"].overflow == 0


# -- resources -------------------------------------------------------------------------------


def test_tasks_start_only_where_their_requests_fit_free_node_resources() -> None:
    scheduler = one_queue(strategy="FIFO")
    for index in range(4):
        scheduler.add(
            WaitingTask(f"ns/t{index}", queued_at=float(index), requests=Resources(1500, GI))
        )
    plan = scheduler.schedule(10.0, nodes((2000, 4 * GI), (3000, 4 * GI)))
    # First fit, counting each start against what is left: n1 holds one, n2 two.
    assert [(s.key, s.node) for s in plan.starts] == [
        ("ns/t0", "n1"),
        ("ns/t1", "n2"),
        ("ns/t2", "n2"),
    ]
    assert reasons(plan) == {"ns/t3": BlockReason.WAITING_FOR_CAPACITY}
    assert "free resources of any node" in plan.waiting[0].message


def test_namespace_quota_limits_starts() -> None:
    scheduler = one_queue(strategy="FIFO")
    scheduler.add(WaitingTask("team-a/t1", queued_at=1.0, requests=Resources(1000, GI)))
    scheduler.add(WaitingTask("team-a/t2", queued_at=2.0, requests=Resources(1000, GI)))
    scheduler.add(WaitingTask("team-b/t3", queued_at=3.0, requests=Resources(1000, GI)))
    capacity = Capacity(
        nodes=nodes((8000, 16 * GI)).nodes,
        quotas={"team-a": Resources(1500, 8 * GI)},
    )
    plan = scheduler.schedule(10.0, capacity)
    assert started(plan) == ["team-a/t1", "team-b/t3"]
    assert "ResourceQuota of namespace team-a" in plan.waiting[0].message


def test_requests_beyond_every_nodes_allocatable_are_unschedulable_until_a_node_fits() -> None:
    scheduler = one_queue()
    scheduler.add(WaitingTask("ns/huge", requests=Resources(16000, GI)))
    plan = scheduler.schedule(1.0, nodes((4000, 8 * GI)))
    assert reasons(plan) == {"ns/huge": BlockReason.UNSCHEDULABLE}
    assert started(scheduler.schedule(2.0, nodes((4000, 8 * GI)))) == []
    bigger = Capacity(
        nodes=(NodeCapacity("big", Resources(32000, 64 * GI), Resources(20000, 64 * GI)),)
    )
    assert started(scheduler.schedule(3.0, bigger)) == ["ns/huge"]


def test_queue_that_is_not_resource_aware_ignores_capacity() -> None:
    scheduler = one_queue(resourceAware=False)
    scheduler.add(WaitingTask("ns/t", requests=Resources(16000, GI)))
    assert started(scheduler.schedule(1.0, nodes((0, 0)))) == ["ns/t"]


def test_big_task_lets_small_ones_pass_only_until_the_backfill_limit_then_holds_the_queue() -> None:
    scheduler = one_queue(strategy="FIFO", backfillLimit=2)
    scheduler.add(WaitingTask("ns/big", queued_at=0.0, requests=Resources(3000, GI)))
    for index in range(5):
        scheduler.add(
            WaitingTask(f"ns/small{index}", queued_at=1.0 + index, requests=Resources(500, GI))
        )
    # 2000m free: the big task does not fit, two small ones may pass it...
    plan = scheduler.schedule(10.0, nodes((1000, 8 * GI)))
    assert started(plan) == ["ns/small0", "ns/small1"]
    # ...then it holds the queue: small tasks wait although they would fit.
    plan = scheduler.schedule(11.0, nodes((1000, 8 * GI)))
    assert started(plan) == []
    assert "holds further starts" in dict((s.key, s.message) for s in plan.waiting)["ns/big"]
    assert started(scheduler.schedule(12.0, nodes((3500, 8 * GI)))) == ["ns/big", "ns/small2"]


def test_held_back_capacity_is_not_given_to_other_queues() -> None:
    settings = OperatorSettings(
        queues={
            "default": QueueSettings(strategy=SchedulingStrategy.FIFO, backfill_limit=0),
            "other": QueueSettings(strategy=SchedulingStrategy.FIFO),
        }
    )
    scheduler = Scheduler(settings)
    scheduler.add(WaitingTask("ns/big", requests=Resources(3000, GI)))
    assert started(scheduler.schedule(1.0, nodes((2000, 8 * GI)))) == []
    # The node now has 2500m free; a 1000m task of another queue would fit, but the big task
    # already holds the node's capacity, so nothing else is counted onto it.
    scheduler.add(WaitingTask("ns/small", queue="other", requests=Resources(1000, GI)))
    assert started(scheduler.schedule(2.0, nodes((2500, 8 * GI)))) == []
    assert started(scheduler.schedule(3.0, nodes((4000, 8 * GI)))) in (
        ["ns/big", "ns/small"],
        ["ns/small", "ns/big"],
    )


# -- exclusive and mutex ---------------------------------------------------------------------


def test_exclusive_task_waits_for_its_queue_to_drain_then_runs_alone() -> None:
    scheduler = one_queue(strategy="FIFO", maxConcurrentTasks=5)
    scheduler.add_running(RunningTask("ns/running"))
    scheduler.add(WaitingTask("ns/alone", queued_at=1.0, exclusive=True))
    scheduler.add(WaitingTask("ns/after", queued_at=2.0))
    plan = scheduler.schedule(10.0)
    assert started(plan) == []
    assert reasons(plan) == {"ns/alone": BlockReason.WAITING_FOR_CAPACITY}
    scheduler.finish("ns/running", now=11.0, succeeded=True)
    plan = scheduler.schedule(11.0)
    assert started(plan) == ["ns/alone"]
    assert reasons(plan) == {"ns/after": BlockReason.EXCLUSIVE_RUNNING}
    scheduler.finish("ns/alone", now=12.0, succeeded=True)
    assert started(scheduler.schedule(12.0)) == ["ns/after"]


def test_other_queues_run_beside_an_exclusive_task() -> None:
    settings = OperatorSettings(queues={"default": QueueSettings(), "other": QueueSettings()})
    scheduler = Scheduler(settings)
    scheduler.add(WaitingTask("ns/alone", exclusive=True))
    scheduler.add(WaitingTask("ns/elsewhere", queue="other"))
    assert sorted(started(scheduler.schedule(1.0))) == ["ns/alone", "ns/elsewhere"]


def test_a_mutex_is_held_by_one_task_per_namespace() -> None:
    settings = OperatorSettings(queues={"default": QueueSettings(), "other": QueueSettings()})
    scheduler = Scheduler(settings)
    scheduler.add(WaitingTask("ns/a", queued_at=1.0, mutex="gpu-0"))
    scheduler.add(WaitingTask("ns/b", queue="other", queued_at=2.0, mutex="gpu-0"))
    scheduler.add(WaitingTask("elsewhere/c", queued_at=3.0, mutex="gpu-0"))
    plan = scheduler.schedule(10.0)
    assert sorted(started(plan)) == ["elsewhere/c", "ns/a"] or sorted(started(plan)) == [
        "elsewhere/c",
        "ns/b",
    ]
    (waiting,) = plan.waiting
    assert waiting.reason is BlockReason.MUTEX_HELD
    assert "gpu-0 is held by" in waiting.message
    holder = next(key for key in started(plan) if key.startswith("ns/"))
    scheduler.finish(holder, now=11.0, succeeded=True)
    assert started(scheduler.schedule(11.0)) == [waiting.key]


def test_mutex_contended_across_queues_goes_to_the_starved_waiter() -> None:
    settings = OperatorSettings(
        queues={
            "default": QueueSettings(starvation_limit=2),
            "other": QueueSettings(starvation_limit=2),
        }
    )
    scheduler = Scheduler(settings)
    scheduler.add_running(RunningTask("ns/holder", mutex="m"))
    scheduler.add(WaitingTask("ns/patient", queue="other", mutex="m"))
    scheduler.schedule(0.0)
    winners = []
    for step in range(1, 8):
        # A fresh competitor in the other queue each time the mutex frees.
        scheduler.add(WaitingTask(f"ns/rival{step}", mutex="m", queued_at=float(step)))
        holder = next(iter(scheduler.running_keys()))
        scheduler.finish(holder, now=float(step), succeeded=True)
        winners.extend(started(scheduler.schedule(float(step))))
    assert "ns/patient" in winners[:3]


# -- settings mismatches ---------------------------------------------------------------------


def test_task_naming_an_unconfigured_queue_waits_with_a_reason() -> None:
    scheduler = one_queue()
    scheduler.add(WaitingTask("ns/lost", queue="gpu"))
    plan = scheduler.schedule(1.0)
    assert started(plan) == []
    assert reasons(plan) == {"ns/lost": BlockReason.UNKNOWN_QUEUE}
    assert "'gpu' is not configured" in plan.waiting[0].message


def test_adding_the_same_task_again_changes_nothing_and_reports_nothing_new() -> None:
    scheduler = one_queue(maxConcurrentTasks=2)
    scheduler.add(WaitingTask("ns/run"))
    scheduler.add(WaitingTask("ns/wait", time_windows=(TimeWindow("00:00", "00:01"),)))
    first = scheduler.schedule(at("2026-01-01T12:00:00+00:00"))
    assert started(first) == ["ns/run"]
    assert len(first.waiting) == 1
    scheduler.add(WaitingTask("ns/wait", time_windows=(TimeWindow("00:00", "00:01"),)))
    again = scheduler.schedule(at("2026-01-01T12:00:01+00:00"))
    assert again.waiting == ()
    assert again.depths["default"].waiting == 1


@pytest.mark.parametrize(
    "make",
    [
        lambda: WaitingTask("no-namespace"),
        lambda: WaitingTask("ns/a/b"),
        lambda: WaitingTask("ns/t", priority=4),
        lambda: WaitingTask("ns/t", estimated_duration=-1.0),
        lambda: WaitingTask("ns/t", deadline=float("nan")),
        lambda: Resources(-1, 0),
    ],
)
def test_invalid_inputs_are_refused(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


def test_a_changed_task_replaces_its_previous_version() -> None:
    scheduler = one_queue(maxConcurrentTasks=1, strategy="Priority", agingSeconds=1e9)
    scheduler.add(WaitingTask("ns/busy"))
    scheduler.schedule(0.0)
    scheduler.add(WaitingTask("ns/a", priority=HIGH, queued_at=1.0))
    scheduler.add(WaitingTask("ns/b", priority=NORMAL, queued_at=2.0))
    scheduler.add(WaitingTask("ns/b", priority=CRITICAL, queued_at=2.0))  # edited spec
    scheduler.finish("ns/busy", now=3.0, succeeded=True)
    assert started(scheduler.schedule(3.0)) == ["ns/b"]
    assert scheduler.depths()["default"].waiting == 1


def test_tasks_that_cannot_start_are_looked_at_only_up_to_the_scan_depth_per_call() -> None:
    settings = OperatorSettings(
        queues={"default": QueueSettings(strategy=SchedulingStrategy.FIFO, backfill_limit=100)}
    )
    scheduler = Scheduler(settings, scan_depth=2)
    for index in range(3):
        scheduler.add(
            WaitingTask(f"ns/big{index}", queued_at=float(index), requests=Resources(3000, GI))
        )
    scheduler.add(WaitingTask("ns/small", queued_at=9.0, requests=Resources(100, GI)))
    assert started(scheduler.schedule(10.0, nodes((1000, 8 * GI)))) == []
    with_depth = Scheduler(settings, scan_depth=4)
    for index in range(3):
        with_depth.add(
            WaitingTask(f"ns/big{index}", queued_at=float(index), requests=Resources(3000, GI))
        )
    with_depth.add(WaitingTask("ns/small", queued_at=9.0, requests=Resources(100, GI)))
    assert started(with_depth.schedule(10.0, nodes((1000, 8 * GI)))) == ["ns/small"]
