"""The pure scheduling core when the cluster has no schedulable node (`NoSchedulableNodes`).

Pure core, no cluster: examples of what a known capacity without nodes does (nothing starts in any
queue, tasks wait with a reason, deadlines still fail, nothing is preempted, nothing is put aside or
takes a hold) and how the reason is lifted when nodes return; then a property: a call without nodes
before each real call changes no start, eviction or failure of a random workload.
"""

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from execflow.api.settings import OperatorSettings, QueueSettings, SchedulingStrategy
from execflow.core.scheduling import (
    CRITICAL,
    DEADLINE_MISSED,
    LOW,
    BlockReason,
    Capacity,
    Resources,
    RunningTask,
    Scheduler,
    WaitingTask,
)
from tests.unit.schedulers import GI, nodes, one_queue, reasons, started

NO_NODES = Capacity(nodes=())


def test_no_queue_starts_anything_without_a_schedulable_node_and_each_task_learns_why() -> None:
    scheduler = Scheduler(
        OperatorSettings(
            queues={"aware": QueueSettings(), "blind": QueueSettings(resource_aware=False)}
        )
    )
    scheduler.add(WaitingTask("ns/a", queue="aware", requests=Resources(500, GI)))
    scheduler.add(WaitingTask("ns/b", queue="blind", requests=Resources(500, GI)))
    plan = scheduler.schedule(1.0, NO_NODES)
    assert started(plan) == []
    assert plan.failures == ()
    assert reasons(plan) == {
        "ns/a": BlockReason.NO_SCHEDULABLE_NODES,
        "ns/b": BlockReason.NO_SCHEDULABLE_NODES,
    }
    assert all("no schedulable node in the cluster" in status.message for status in plan.waiting)
    assert plan.depths["aware"].waiting == plan.depths["blind"].waiting == 1
    # No news while nothing changes.
    assert scheduler.schedule(2.0, NO_NODES).waiting == ()
    plan = scheduler.schedule(3.0, nodes((4000, 8 * GI)))
    assert sorted(started(plan)) == ["ns/a", "ns/b"]


def test_unknown_capacity_still_starts_without_resource_checks() -> None:
    scheduler = one_queue()
    scheduler.add(WaitingTask("ns/t", requests=Resources(64000, 64 * GI)))
    assert started(scheduler.schedule(1.0, None)) == ["ns/t"]


def test_the_reason_is_lifted_from_every_task_when_nodes_return() -> None:
    scheduler = one_queue(maxConcurrentTasks=1, strategy="FIFO")
    for index in range(3):
        scheduler.add(WaitingTask(f"ns/t{index}", queued_at=float(index)))
    plan = scheduler.schedule(1.0, NO_NODES)
    assert set(reasons(plan).values()) == {BlockReason.NO_SCHEDULABLE_NODES}
    assert len(plan.waiting) == 3
    plan = scheduler.schedule(2.0, nodes((4000, 8 * GI)))
    # One starts; the others are not looked at (the queue is full) yet no longer blame the nodes.
    assert started(plan) == ["ns/t0"]
    assert reasons(plan) == {"ns/t1": None, "ns/t2": None}


def test_when_nodes_return_a_task_gets_whatever_reason_applies_then() -> None:
    scheduler = one_queue(strategy="FIFO")
    scheduler.add(WaitingTask("ns/big", queued_at=0.0, requests=Resources(3000, GI)))
    scheduler.add(WaitingTask("ns/huge", queued_at=1.0, requests=Resources(16000, GI)))
    plan = scheduler.schedule(1.0, NO_NODES)
    # Without nodes, a task too large for every node is not judged Unschedulable.
    assert reasons(plan) == {
        "ns/big": BlockReason.NO_SCHEDULABLE_NODES,
        "ns/huge": BlockReason.NO_SCHEDULABLE_NODES,
    }
    plan = scheduler.schedule(2.0, nodes((1000, 8 * GI)))
    assert started(plan) == []
    assert reasons(plan) == {
        "ns/big": BlockReason.WAITING_FOR_CAPACITY,
        "ns/huge": BlockReason.UNSCHEDULABLE,
    }


def test_unschedulable_tasks_stay_aside_while_there_are_no_nodes() -> None:
    scheduler = one_queue()
    scheduler.add(WaitingTask("ns/huge", requests=Resources(16000, GI)))
    assert reasons(scheduler.schedule(1.0, nodes((4000, 8 * GI)))) == {
        "ns/huge": BlockReason.UNSCHEDULABLE
    }
    assert scheduler.schedule(2.0, NO_NODES).waiting == ()
    # The same nodes again: still judged against them, so no news.
    assert scheduler.schedule(3.0, nodes((4000, 8 * GI))).waiting == ()


def test_deadlines_still_fail_tasks_without_nodes() -> None:
    scheduler = one_queue()
    scheduler.add(WaitingTask("ns/tight", estimated_duration=100.0, deadline=150.0))
    scheduler.add(WaitingTask("ns/roomy", estimated_duration=100.0, deadline=5000.0))
    plan = scheduler.schedule(60.0, NO_NODES)
    assert [(failure.key, failure.reason) for failure in plan.failures] == [
        ("ns/tight", DEADLINE_MISSED)
    ]
    assert reasons(plan) == {"ns/roomy": BlockReason.NO_SCHEDULABLE_NODES}
    assert not scheduler.is_waiting("ns/tight")


def test_nothing_is_preempted_without_nodes() -> None:
    scheduler = one_queue(maxConcurrentTasks=1, preemption=True, strategy="Priority")
    scheduler.add_running(RunningTask("ns/low", priority=LOW))
    scheduler.add(WaitingTask("ns/urgent", priority=CRITICAL))
    assert scheduler.schedule(1.0, NO_NODES).preemptions == ()
    plan = scheduler.schedule(2.0, nodes((4000, 8 * GI)))
    assert [(p.victim, p.preemptor) for p in plan.preemptions] == [("ns/low", "ns/urgent")]


def test_an_outage_counts_no_backfill_passes() -> None:
    scheduler = one_queue(strategy="FIFO", backfillLimit=1)
    scheduler.add(WaitingTask("ns/big", queued_at=0.0, requests=Resources(3000, GI)))
    for index in range(3):
        scheduler.add(
            WaitingTask(f"ns/small{index}", queued_at=1.0 + index, requests=Resources(500, GI))
        )
    for step in range(5):
        scheduler.schedule(float(step), NO_NODES)
    # As if the outage never happened: small tasks pass the big one in the first call with
    # nodes, and only from the next call on does it hold the queue.
    assert started(scheduler.schedule(10.0, nodes((1000, 8 * GI)))) == ["ns/small0", "ns/small1"]
    assert started(scheduler.schedule(11.0, nodes((1000, 8 * GI)))) == []


def test_a_queue_held_before_the_outage_is_still_held_after_it() -> None:
    scheduler = one_queue(strategy="FIFO", backfillLimit=0)
    scheduler.add(WaitingTask("ns/big", queued_at=0.0, requests=Resources(3000, GI)))
    scheduler.add(WaitingTask("ns/small", queued_at=1.0, requests=Resources(500, GI)))
    assert started(scheduler.schedule(1.0, nodes((1000, 8 * GI)))) == []
    plan = scheduler.schedule(2.0, NO_NODES)
    assert reasons(plan) == {"ns/big": BlockReason.NO_SCHEDULABLE_NODES}
    assert started(scheduler.schedule(3.0, nodes((1000, 8 * GI)))) == []
    assert started(scheduler.schedule(4.0, nodes((4000, 8 * GI)))) == ["ns/big", "ns/small"]


# -- property: a call without nodes changes no decision ----------------------------------------

QUEUES = ("default", "batch")


@st.composite
def queue_settings(draw: st.DrawFn) -> QueueSettings:
    return QueueSettings.model_validate(
        {
            "strategy": draw(st.sampled_from(list(SchedulingStrategy))),
            "maxConcurrentTasks": draw(st.integers(1, 3)),
            "maxQueuedTasks": draw(st.integers(1, 8)),
            "preemption": draw(st.booleans()),
            "resourceAware": draw(st.booleans()),
            "starvationLimit": draw(st.integers(1, 4)),
            "backfillLimit": draw(st.integers(0, 2)),
        }
    )


@st.composite
def waiting_tasks(draw: st.DrawFn, index: int, now: float) -> WaitingTask:
    # No time windows or mutexes: a task is put aside for those when it is examined, and a call
    # without nodes may examine tasks that a real call would not reach before its queue is full.
    return WaitingTask(
        key=f"ns/t{index}",
        queue=draw(st.sampled_from(QUEUES)),
        priority=draw(st.integers(0, 3)),
        queued_at=now,
        estimated_duration=draw(st.none() | st.sampled_from([10.0, 7200.0])),
        tool=draw(st.none() | st.just("tool")),
        deadline=draw(st.none() | st.sampled_from([now + 3600.0, now + 86400.0])),
        exclusive=draw(st.integers(0, 7)) == 0,
        requests=Resources(
            draw(st.sampled_from([0, 1000, 3000, 9000])), draw(st.sampled_from([0, GI]))
        ),
    )


@dataclass
class Twins:
    """The same workload, with (`outages`) and without (`plain`) a call without nodes each time."""

    plain: Scheduler
    outages: Scheduler
    running: set[str] = field(default_factory=set)
    tasks: dict[str, WaitingTask] = field(default_factory=dict)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_a_call_without_nodes_changes_no_start_eviction_or_failure(data: st.DataObject) -> None:
    queues = OperatorSettings(queues={name: data.draw(queue_settings()) for name in QUEUES})
    depth = data.draw(st.integers(4, 8))
    twins = Twins(Scheduler(queues, scan_depth=depth), Scheduler(queues, scan_depth=depth))
    now = 1_700_000_000.0
    for step in range(data.draw(st.integers(1, 40))):
        action = data.draw(st.sampled_from(["add", "add", "finish", "schedule"]))
        if action == "add":
            task = data.draw(waiting_tasks(step, now))
            twins.tasks[task.key] = task
            twins.plain.add(task)
            twins.outages.add(task)
        elif action == "finish" and twins.running:
            key = data.draw(st.sampled_from(sorted(twins.running)))
            twins.running.discard(key)
            twins.plain.finish(key, now=now, succeeded=True)
            twins.outages.finish(key, now=now, succeeded=True)
        else:
            now += data.draw(st.sampled_from([0.0, 600.0, 7200.0]))
            capacity = nodes(
                *(
                    (data.draw(st.sampled_from([0, 2000, 4000])), 8 * GI)
                    for _ in range(data.draw(st.integers(1, 2)))
                )
            )
            outage = twins.outages.schedule(now, NO_NODES)
            assert outage.starts == () and outage.preemptions == ()
            assert all(
                status.reason in (None, BlockReason.QUEUE_FULL, BlockReason.NO_SCHEDULABLE_NODES)
                for status in outage.waiting
            )
            expected = twins.plain.schedule(now, capacity)
            actual = twins.outages.schedule(now, capacity)
            assert actual.starts == expected.starts
            assert actual.preemptions == expected.preemptions
            assert outage.failures + actual.failures == expected.failures
            assert actual.depths == expected.depths
            assert twins.outages.running_keys() == twins.plain.running_keys()
            assert all(
                status.reason is not BlockReason.NO_SCHEDULABLE_NODES for status in actual.waiting
            )
            twins.running |= {start.key for start in actual.starts}
            for preemption in actual.preemptions:
                twins.running.discard(preemption.victim)
                for scheduler in (twins.plain, twins.outages):
                    scheduler.add(twins.tasks[preemption.victim])
