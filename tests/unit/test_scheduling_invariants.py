"""Safety and liveness invariants of the pure scheduling core under random workloads.

Pure core, no cluster: hypothesis drives a Scheduler with random arrivals, finishes, removals,
capacity and time, carries out every plan like the operator would (evicting victims and putting them
back), and checks after every decision that limits, mutexes, exclusivity, resources, time windows
and deadlines hold, and that no task is passed over more often than the starvation bound allows.
"""

from collections import Counter
from dataclasses import dataclass, field, replace

from hypothesis import event, given, settings
from hypothesis import strategies as st

from execflow.api.settings import OperatorSettings, QueueSettings, SchedulingStrategy
from execflow.core.scheduling import (
    DEADLINE_MISSED,
    HIGH,
    Capacity,
    NodeCapacity,
    Plan,
    Resources,
    Scheduler,
    TimeWindow,
    WaitingTask,
)

QUEUES = ("default", "batch")
NODES = ("n1", "n2")
STRATEGIES = list(SchedulingStrategy)


@st.composite
def queue_settings(draw: st.DrawFn) -> QueueSettings:
    return QueueSettings.model_validate(
        {
            "strategy": draw(st.sampled_from(STRATEGIES)),
            "maxConcurrentTasks": draw(st.integers(1, 4)),
            "maxQueuedTasks": draw(st.integers(1, 8)),
            "preemption": draw(st.booleans()),
            "resourceAware": draw(st.booleans()),
            "agingSeconds": draw(st.sampled_from([60.0, 600.0])),
            "starvationLimit": draw(st.integers(1, 6)),
            "backfillLimit": draw(st.integers(0, 3)),
        }
    )


@st.composite
def waiting_tasks(draw: st.DrawFn, index: int, now: float) -> WaitingTask:
    windows: tuple[TimeWindow, ...] = ()
    if draw(st.integers(0, 5)) == 0:
        start = draw(st.integers(0, 23))
        end = draw(st.integers(0, 23))
        windows = (TimeWindow(f"{start:02d}:00", f"{end:02d}:00", "UTC"),)
    return WaitingTask(
        key=f"{draw(st.sampled_from(['ns1', 'ns2']))}/t{index}",
        queue=draw(st.sampled_from(QUEUES)),
        priority=draw(st.integers(0, 3)),
        queued_at=now,
        estimated_duration=draw(st.none() | st.sampled_from([10.0, 600.0, 7200.0])),
        tool=draw(st.none() | st.sampled_from(["a", "b"])),
        deadline=draw(st.none() | st.sampled_from([now + 3600.0, now + 86400.0])),
        time_windows=windows,
        exclusive=draw(st.integers(0, 7)) == 0,
        mutex=draw(st.none() | st.none() | st.sampled_from(["m1", "m2"])),
        requests=Resources(
            cpu_millis=draw(st.sampled_from([0, 250, 1000, 3000, 9000])),
            memory_bytes=draw(st.sampled_from([0, 1 << 28, 1 << 30])),
        ),
    )


@dataclass
class World:
    """What the operator would know: the tasks it gave the scheduler, and what runs."""

    queues: dict[str, QueueSettings]
    tasks: dict[str, WaitingTask] = field(default_factory=dict)
    running: dict[str, WaitingTask] = field(default_factory=dict)
    waiting: set[str] = field(default_factory=set)


def utc_minute(now: float) -> int:
    return int(now // 60) % 1440


def window_open_utc(window: TimeWindow, now: float) -> bool:
    minute = utc_minute(now)
    start, end = window.start_minute, window.end_minute
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end


def check_plan(
    world: World, plan: Plan, now: float, capacity: Capacity, scheduler: Scheduler
) -> None:
    started = [start.key for start in plan.starts]
    assert len(started) == len(set(started))
    check_starts(world, plan, now)
    check_failures(world, plan, now, scheduler)
    check_resources(world, plan, capacity)
    for key in started:
        world.waiting.discard(key)
        world.running[key] = world.tasks[key]
    check_preemptions(world, plan)
    check_limits(world, scheduler)


def check_starts(world: World, plan: Plan, now: float) -> None:
    for start in plan.starts:
        assert start.key in world.waiting, "only waiting tasks start"
        task = world.tasks[start.key]
        assert start.queue == task.queue
        if task.time_windows:
            assert any(window_open_utc(window, now) for window in task.time_windows)
        if task.deadline is not None and task.estimated_duration is not None:
            assert now + task.estimated_duration <= task.deadline


def check_failures(world: World, plan: Plan, now: float, scheduler: Scheduler) -> None:
    for failure in plan.failures:
        assert failure.reason == DEADLINE_MISSED
        task = world.tasks[failure.key]
        assert failure.key in world.waiting
        assert task.deadline is not None
        known = task.estimated_duration
        if known is None:
            known = scheduler.estimator.known(task.tool) or 0.0
        assert now + known > task.deadline
        world.waiting.discard(failure.key)


def check_resources(world: World, plan: Plan, capacity: Capacity) -> None:
    """What was planned onto a node fits what was free on it, and quotas hold."""
    free = {node.name: node.free for node in capacity.nodes}
    used: dict[str, list[int]] = {name: [0, 0] for name in free}
    per_namespace: dict[str, list[int]] = {}
    for start in plan.starts:
        task = world.tasks[start.key]
        if not world.queues[task.queue].resource_aware:
            continue
        assert start.node is not None
        for totals in (used[start.node], per_namespace.setdefault(task.namespace, [0, 0])):
            totals[0] += task.requests.cpu_millis
            totals[1] += task.requests.memory_bytes
    for name, (cpu, memory) in used.items():
        assert cpu <= free[name].cpu_millis and memory <= free[name].memory_bytes
    for namespace, (cpu, memory) in per_namespace.items():
        quota = capacity.quotas.get(namespace)
        if quota is not None:
            assert cpu <= quota.cpu_millis and memory <= quota.memory_bytes


def check_preemptions(world: World, plan: Plan) -> None:
    """Victims run in the preemptor's queue at a strictly lower priority."""
    for preemption in plan.preemptions:
        victim = world.running[preemption.victim]
        preemptor = world.tasks[preemption.preemptor]
        assert preemption.preemptor in world.waiting
        assert world.queues[victim.queue].preemption
        assert victim.queue == preemptor.queue == preemption.queue
        assert preemptor.priority >= HIGH
        assert victim.priority < preemptor.priority


def check_limits(world: World, scheduler: Scheduler) -> None:
    """Limits on what runs at once, and the scheduler's index agrees with the world."""
    per_queue = Counter(task.queue for task in world.running.values())
    for queue, count in per_queue.items():
        assert count <= world.queues[queue].max_concurrent_tasks
        if any(task.exclusive and task.queue == queue for task in world.running.values()):
            assert count == 1, "an exclusive task runs alone in its queue"
    mutexes = Counter(
        task.mutex_key for task in world.running.values() if task.mutex_key is not None
    )
    assert all(count == 1 for count in mutexes.values()), "a mutex is held once"
    assert scheduler.running_keys() == set(world.running)
    depths = scheduler.depths()
    for queue in QUEUES:
        waiting_here = sum(1 for key in world.waiting if world.tasks[key].queue == queue)
        assert depths[queue].waiting + depths[queue].overflow == waiting_here
        assert depths[queue].waiting <= world.queues[queue].max_queued_tasks
        assert depths[queue].running == per_queue[queue]


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_random_workloads_keep_every_limit(data: st.DataObject) -> None:
    queues = {name: data.draw(queue_settings()) for name in QUEUES}
    world = World(queues)
    scheduler = Scheduler(OperatorSettings(queues=queues), scan_depth=data.draw(st.integers(1, 5)))
    now = 1_700_000_000.0
    allocatable = {name: Resources(4000, 4 << 30) for name in NODES}
    for step in range(data.draw(st.integers(1, 60))):
        action = data.draw(st.sampled_from(["add", "add", "finish", "remove", "schedule"]))
        if action == "add":
            task = data.draw(waiting_tasks(step, now))
            world.tasks[task.key] = task
            world.waiting.add(task.key)
            scheduler.add(task)
        elif action == "finish" and world.running:
            key = data.draw(st.sampled_from(sorted(world.running)))
            del world.running[key]
            scheduler.finish(key, now=now, succeeded=data.draw(st.booleans()))
        elif action == "remove" and (world.running or world.waiting):
            key = data.draw(st.sampled_from(sorted(set(world.running) | world.waiting)))
            world.running.pop(key, None)
            world.waiting.discard(key)
            assert scheduler.remove(key)
        else:
            now += data.draw(st.sampled_from([0.0, 60.0, 1800.0, 7200.0]))
            capacity = Capacity(
                nodes=tuple(
                    NodeCapacity(
                        name,
                        allocatable[name],
                        Resources(
                            data.draw(st.sampled_from([0, 500, 2000, 4000])),
                            data.draw(st.sampled_from([0, 1 << 30, 4 << 30])),
                        ),
                    )
                    for name in NODES
                ),
                quotas=data.draw(
                    st.sampled_from([{}, {"ns1": Resources(2000, 2 << 30)}, {"ns2": Resources()}])
                ),
            )
            plan = scheduler.schedule(now, capacity)
            for what, happened in (
                ("start", plan.starts),
                ("preemption", plan.preemptions),
                ("deadline miss", plan.failures),
            ):
                if happened:
                    event(what)
            for status in plan.waiting:
                event(f"waiting: {status.reason}")
            check_plan(world, plan, now, capacity, scheduler)
            # Carry out preemptions: the victim's Job goes, the task waits again.
            for preemption in plan.preemptions:
                victim = world.running.pop(preemption.victim)
                world.waiting.add(victim.key)
                world.tasks[victim.key] = victim
                scheduler.add(victim)


@st.composite
def single_queue_arrivals(draw: st.DrawFn) -> tuple[QueueSettings, list[list[WaitingTask]]]:
    """A one-slot queue and, per decision, the tasks that arrive before it."""
    queue = QueueSettings.model_validate(
        {
            "strategy": draw(st.sampled_from(STRATEGIES)),
            "maxConcurrentTasks": 1,
            "starvationLimit": draw(st.integers(1, 8)),
            # Slow time ageing, so that only the hard bound prevents starvation.
            "agingSeconds": 1e9,
        }
    )
    batches = []
    index = 0
    for decision in range(draw(st.integers(1, 80))):
        batch = []
        for _ in range(draw(st.integers(0, 3))):
            batch.append(
                WaitingTask(
                    key=f"ns/t{index}",
                    priority=draw(st.integers(0, 3)),
                    queued_at=float(decision),
                    estimated_duration=draw(st.sampled_from([1.0, 5.0, 100.0, 5000.0])),
                    deadline=draw(st.none() | st.floats(1e6, 2e6)),
                )
            )
            index += 1
        batches.append(batch)
    return queue, batches


@settings(max_examples=300, deadline=None)
@given(single_queue_arrivals())
def test_no_task_is_overtaken_more_often_than_the_starvation_limit(
    case: tuple[QueueSettings, list[list[WaitingTask]]],
) -> None:
    queue, batches = case
    limit = queue.effective_starvation_limit
    scheduler = Scheduler(OperatorSettings(queues={"default": queue}))
    arrival: dict[str, int] = {}
    started: list[str] = []
    running: str | None = None
    for decision, batch in enumerate(batches):
        for task in batch:
            arrival[task.key] = len(arrival)
            scheduler.add(task)
        if running is not None:
            scheduler.finish(running, now=float(decision), succeeded=True)
        plan = scheduler.schedule(float(decision))
        running = plan.starts[0].key if plan.starts else None
        started.extend(start.key for start in plan.starts)
    position = {key: index for index, key in enumerate(started)}
    for key, arrived in arrival.items():
        # Later arrivals that started while this task waited (all of them if it never started).
        mine = position.get(key, len(started))
        overtakers = sum(1 for other in started[:mine] if arrival[other] > arrived)
        assert overtakers <= limit, (key, overtakers, limit)


def test_overtaking_is_bounded_even_when_better_tasks_keep_arriving() -> None:
    for strategy in STRATEGIES:
        queue = QueueSettings.model_validate(
            {
                "strategy": strategy,
                "maxConcurrentTasks": 1,
                "starvationLimit": 5,
                "agingSeconds": 1e9,
            }
        )
        scheduler = Scheduler(OperatorSettings(queues={"default": queue}))
        loser = WaitingTask("ns/loser", priority=0, queued_at=0.0, estimated_duration=1e5)
        scheduler.add(loser)
        started = []
        running: str | None = None
        for step in range(1, 30):
            # Each newcomer beats the loser under every strategy's own order.
            scheduler.add(
                WaitingTask(
                    f"ns/new{step}",
                    priority=3,
                    queued_at=float(step),
                    estimated_duration=1.0,
                    deadline=1e6 + step,
                )
            )
            if running is not None:
                scheduler.finish(running, now=float(step), succeeded=False)
            plan = scheduler.schedule(float(step))
            running = plan.starts[0].key
            started.append(running)
        assert "ns/loser" in started[:7], (strategy, started[:8])


def test_put_back_preempted_task_keeps_its_original_queue_time() -> None:
    queue = QueueSettings(strategy=SchedulingStrategy.FIFO, max_concurrent_tasks=1, preemption=True)
    scheduler = Scheduler(OperatorSettings(queues={"default": queue}))
    victim = WaitingTask("ns/victim", priority=0, queued_at=10.0)
    scheduler.add(victim)
    assert [s.key for s in scheduler.schedule(100.0).starts] == ["ns/victim"]
    scheduler.add(WaitingTask("ns/later", priority=1, queued_at=50.0))
    scheduler.add(WaitingTask("ns/vip", priority=3, queued_at=60.0))
    plan = scheduler.schedule(101.0)
    assert [(p.victim, p.preemptor) for p in plan.preemptions] == [("ns/victim", "ns/vip")]
    scheduler.add(replace(victim))
    assert [s.key for s in scheduler.schedule(102.0).starts] == ["ns/vip"]
    scheduler.finish("ns/vip", now=103.0, succeeded=True)
    # Back in FIFO order by its first queue time: before the task queued at 50.
    assert [s.key for s in scheduler.schedule(104.0).starts] == ["ns/victim"]
