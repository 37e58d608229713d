"""Queues, strategies, constraints, preemption, resources and dependencies on the real cluster.

The operator process runs with the one-slot queues of `OPERATOR_SETTINGS`; each test drains what it
queues. Order and overlap are read from real timestamps: `status.startTime` (written by the
operator with microseconds) and the pods' container start and finish times (seconds; truncation
keeps their order, so "not before" comparisons stay valid).
"""

from __future__ import annotations

import datetime
import itertools
from typing import Any

from kubernetes import client

from tests.integration.objects import TERMINAL, create_task, events_of, jobs_of, patch_spec
from tests.integration.operator_process import OperatorProcess, wait_phase
from tests.integration.waiting import wait_for


def _time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _iso(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _finish_all(api: client.ApiClient, namespace: str, names: list[str]) -> dict[str, Any]:
    return {n: wait_phase(api, namespace, n, TERMINAL, timeout=120)["status"] for n in names}


def _start_order(statuses: dict[str, Any], names: list[str]) -> list[str]:
    return sorted(names, key=lambda n: _time(statuses[n]["startTime"]))


def _pod_interval(api: client.ApiClient, namespace: str, task: str) -> tuple[Any, Any]:
    pods = (
        client.CoreV1Api(api)
        .list_namespaced_pod(namespace, label_selector=f"execflow.dev/task={task}")
        .items
    )
    terminated = pods[-1].status.container_statuses[0].state.terminated
    return terminated.started_at, terminated.finished_at


def _order_with_one_slot(
    api: client.ApiClient, namespace: str, queue: str, tasks: dict[str, dict[str, Any]]
) -> list[str]:
    """Occupy the queue's only slot, queue `tasks` behind it, return their start order."""
    create_task(api, namespace, "blocker", sim={"duration": "3s"}, queue=queue)
    wait_phase(api, namespace, "blocker", {"Running"})
    for name, spec in tasks.items():
        create_task(api, namespace, name, queue=queue, **spec)
    for name in tasks:
        wait_phase(api, namespace, name, {"Queued"})
    statuses = _finish_all(api, namespace, ["blocker", *tasks])
    assert all(statuses[n]["phase"] == "Completed" for n in tasks), statuses
    return _start_order(statuses, list(tasks))


def test_fifo_starts_in_arrival_order(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    tasks = {f"t{i}": {"priority": p} for i, p in enumerate(["Low", "Critical", "Normal", "High"])}
    assert _order_with_one_slot(api, namespace, "fifo", tasks) == ["t0", "t1", "t2", "t3"]


def test_priority_starts_highest_priority_first(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    tasks = {
        "low": {"priority": "Low"},
        "normal": {"priority": "Normal"},
        "critical": {"priority": "Critical"},
        "high": {"priority": "High"},
        "normal-2": {"priority": "Normal"},
    }
    order = _order_with_one_slot(api, namespace, "priority", tasks)
    assert order == ["critical", "high", "normal", "normal-2", "low"]


def test_shortest_job_first_starts_shortest_estimate_first(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    tasks = {f"d{s}": {"estimatedDuration": f"{s}s"} for s in (30, 10, 20, 5)}
    assert _order_with_one_slot(api, namespace, "sjf", tasks) == ["d5", "d10", "d20", "d30"]


def test_deadline_aware_starts_earliest_deadline_first(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    now = datetime.datetime.now(datetime.UTC)
    tasks = {
        f"h{h}": {"constraints": {"deadline": _iso(now + datetime.timedelta(hours=h))}}
        for h in (3, 1, 2)
    }
    tasks["none"] = {}
    order = _order_with_one_slot(api, namespace, "edf", tasks)
    assert order == ["h1", "h2", "h3", "none"]


def test_adaptive_prefers_priority_and_shortness(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    tasks = {
        "low-long": {"priority": "Low", "estimatedDuration": "1h"},
        "critical-short": {"priority": "Critical", "estimatedDuration": "1s"},
        "normal-mid": {"priority": "Normal", "estimatedDuration": "1m"},
    }
    order = _order_with_one_slot(api, namespace, "adaptive", tasks)
    assert order == ["critical-short", "normal-mid", "low-long"]


def test_finish_to_start_waits_for_the_predecessor_to_finish(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_task(api, namespace, "first", sim={"duration": "1s"})
    create_task(api, namespace, "then", dependencies=[{"task": "first"}])
    statuses = _finish_all(api, namespace, ["first", "then"])
    assert statuses["then"]["phase"] == "Completed"
    first_finished = _pod_interval(api, namespace, "first")[1]
    then_started = _pod_interval(api, namespace, "then")[0]
    assert then_started >= first_finished


def test_start_to_start_waits_for_the_predecessor_to_start(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_task(api, namespace, "hold", sim={"duration": "2s"}, queue="one-slot")
    wait_phase(api, namespace, "hold", {"Running"})
    create_task(api, namespace, "leader", sim={"duration": "1s"}, queue="one-slot")
    create_task(
        api, namespace, "follower", dependencies=[{"task": "leader", "type": "StartToStart"}]
    )
    follower = wait_phase(api, namespace, "follower", {"Pending"})["status"]
    assert follower["reason"] == "WaitingForDependency"
    statuses = _finish_all(api, namespace, ["hold", "leader", "follower"])
    assert _time(statuses["follower"]["startTime"]) >= _time(statuses["leader"]["startTime"])


def test_finish_to_finish_holds_completion_until_the_predecessor_finishes(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_task(api, namespace, "long", sim={"duration": "3s"})
    create_task(
        api,
        namespace,
        "short",
        sim={"duration": "100ms"},
        dependencies=[{"task": "long", "type": "FinishToFinish"}],
    )

    def held() -> bool:
        status = wait_phase(api, namespace, "short", {"Running", "Completed"})["status"]
        return bool(status.get("reason") == "WaitingForDependency")

    wait_for(held, 30, "the short task to wait for the long one at completion")
    statuses = _finish_all(api, namespace, ["long", "short"])
    assert statuses["short"]["phase"] == "Completed"
    assert _time(statuses["short"]["completionTime"]) >= _time(statuses["long"]["completionTime"])


def test_start_to_finish_holds_completion_until_the_predecessor_starts(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_task(api, namespace, "hold", sim={"duration": "2s"}, queue="one-slot")
    wait_phase(api, namespace, "hold", {"Running"})
    create_task(api, namespace, "late", queue="one-slot")
    create_task(api, namespace, "early", dependencies=[{"task": "late", "type": "StartToFinish"}])
    statuses = _finish_all(api, namespace, ["hold", "late", "early"])
    assert statuses["early"]["phase"] == "Completed"
    assert _time(statuses["early"]["completionTime"]) >= _time(statuses["late"]["startTime"])


def test_unmet_condition_fails_the_dependent(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_task(api, namespace, "broken", sim={"exit-code": "1"})
    create_task(api, namespace, "needs-success", dependencies=[{"task": "broken"}])
    create_task(
        api,
        namespace,
        "on-failure",
        dependencies=[{"task": "broken", "condition": "Failed"}],
    )
    statuses = _finish_all(api, namespace, ["broken", "needs-success", "on-failure"])
    assert (statuses["needs-success"]["phase"], statuses["needs-success"]["reason"]) == (
        "Failed",
        "DependencyFailed",
    )
    assert jobs_of(api, namespace, "needs-success") == []
    assert statuses["on-failure"]["phase"] == "Completed"


def test_dependency_cycle_fails_every_task_on_it(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_task(api, namespace, "a", dependencies=[{"task": "b"}])
    create_task(api, namespace, "b", dependencies=[{"task": "c"}])
    create_task(api, namespace, "c", dependencies=[{"task": "a"}])
    statuses = _finish_all(api, namespace, ["a", "b", "c"])
    assert {(s["phase"], s["reason"]) for s in statuses.values()} == {("Failed", "DependencyCycle")}


def test_missing_dependency_keeps_the_task_pending_until_it_exists(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_task(api, namespace, "waiter", dependencies=[{"task": "ghost"}])
    status = wait_phase(api, namespace, "waiter", {"Pending"})["status"]
    assert status["reason"] == "WaitingForDependency"
    create_task(api, namespace, "ghost")
    assert _finish_all(api, namespace, ["waiter"])["waiter"]["phase"] == "Completed"


def test_mutex_is_never_held_by_two_running_tasks(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    names = ["m0", "m1", "m2"]
    for name in names:
        create_task(api, namespace, name, sim={"duration": "1s"}, constraints={"mutex": "gpu-0"})
    _finish_all(api, namespace, names)
    intervals = sorted(_pod_interval(api, namespace, n) for n in names)
    for earlier, later in itertools.pairwise(intervals):
        assert later[0] >= earlier[1], intervals


def test_exclusive_task_runs_alone_in_its_queue(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_task(api, namespace, "before-1", sim={"duration": "2s"}, queue="shared")
    create_task(api, namespace, "before-2", sim={"duration": "2s"}, queue="shared")
    wait_phase(api, namespace, "before-2", {"Running"})
    create_task(
        api,
        namespace,
        "alone",
        sim={"duration": "2s"},
        queue="shared",
        constraints={"exclusive": True},
    )
    wait_phase(api, namespace, "alone", {"Queued"})
    create_task(api, namespace, "after", sim={"duration": "1s"}, queue="shared")
    _finish_all(api, namespace, ["before-1", "before-2", "alone", "after"])
    alone = _pod_interval(api, namespace, "alone")
    for other in ("before-1", "before-2", "after"):
        start, finish = _pod_interval(api, namespace, other)
        assert finish <= alone[0] or start >= alone[1], (other, start, finish, alone)


def test_time_window_holds_the_start_until_it_opens(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    # A window opening at a minute boundary at least 20 s away (windows are whole minutes).
    tokyo_now = datetime.datetime.now(datetime.UTC).astimezone(
        datetime.timezone(datetime.timedelta(hours=9))
    )
    opening = (tokyo_now + datetime.timedelta(seconds=80)).replace(second=0, microsecond=0)
    window = {
        "start": opening.strftime("%H:%M"),
        "end": (opening + datetime.timedelta(hours=1)).strftime("%H:%M"),
        "timeZone": "Asia/Tokyo",
    }
    create_task(api, namespace, "night-job", constraints={"timeWindows": [window]})

    def outside() -> bool:
        status = wait_phase(api, namespace, "night-job", {"Queued"})["status"]
        return bool(status.get("reason") == "OutsideTimeWindow")

    wait_for(outside, 30, "reason OutsideTimeWindow")
    assert jobs_of(api, namespace, "night-job") == []
    status = wait_phase(api, namespace, "night-job", TERMINAL, timeout=150)["status"]
    assert status["phase"] == "Completed"
    assert _time(status["startTime"]) >= opening, "not started before its window opened"


def test_task_that_cannot_meet_its_deadline_fails_before_taking_a_slot(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    deadline = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=1)
    create_task(
        api,
        namespace,
        "too-late",
        estimatedDuration="1h",
        constraints={"deadline": _iso(deadline)},
    )
    status = _finish_all(api, namespace, ["too-late"])["too-late"]
    assert (status["phase"], status["reason"]) == ("Failed", "DeadlineMissed")
    assert jobs_of(api, namespace, "too-late") == []


def test_critical_task_preempts_a_lower_priority_one(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_task(api, namespace, "victim", sim={"duration": "4s"}, queue="preempt", priority="Low")
    wait_phase(api, namespace, "victim", {"Running"})
    create_task(api, namespace, "urgent", queue="preempt", priority="Critical")

    # The victim is Queued with reason Preempted only until the slot frees again, which may be
    # a fraction of a second: the Event is the lasting record of the eviction.
    evicted = wait_for(
        lambda: "Preempted" in (reasons := events_of(api, namespace, "victim")) and reasons,
        30,
        "the victim's Preempted Event",
    )
    assert evicted.count("Preempted") == 1
    statuses = _finish_all(api, namespace, ["victim", "urgent"])
    assert statuses["urgent"]["phase"] == "Completed"
    # The eviction is not a failure: with no retries allowed the victim still completes.
    assert (statuses["victim"]["phase"], statuses["victim"]["attempts"]) == ("Completed", 2)
    assert _time(statuses["urgent"]["startTime"]) < _time(statuses["victim"]["completionTime"])


def test_tasks_that_do_not_fit_wait_for_capacity_and_start_when_it_frees(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    names = [f"big-{i}" for i in range(6)]
    for name in names:
        create_task(
            api, namespace, name, sim={"duration": "2s"}, resources={"requests": {"cpu": "6"}}
        )
    statuses = _finish_all(api, namespace, names)
    assert all(s["phase"] == "Completed" for s in statuses.values())
    pods = client.CoreV1Api(api).list_namespaced_pod(namespace).items
    assert len(pods) == len(names), "no pod was created beyond what fits"
    intervals = [_pod_interval(api, namespace, n) for n in names]
    # At most one 6-CPU task fits on each of the four 8-CPU nodes at any moment.
    for start, _ in intervals:
        overlapping = sum(1 for s, f in intervals if s <= start < f)
        assert overlapping <= 4, intervals


def test_task_larger_than_any_node_is_unschedulable(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_task(api, namespace, "giant", resources={"requests": {"cpu": "100"}})

    def unschedulable() -> bool:
        status = wait_phase(api, namespace, "giant", {"Queued"})["status"]
        return bool(status.get("reason") == "Unschedulable")

    wait_for(unschedulable, 30, "reason Unschedulable")
    assert jobs_of(api, namespace, "giant") == []
    patch_spec(api, namespace, "giant", cancel=True)
    wait_phase(api, namespace, "giant", {"Cancelled"})


def test_full_queue_makes_new_tasks_wait_with_queue_full_then_admits_them(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_task(api, namespace, "running", sim={"duration": "2s"}, queue="small")
    wait_phase(api, namespace, "running", {"Running"})
    for name in ("w1", "w2", "w3"):
        create_task(api, namespace, name, queue="small")

    def full() -> bool:
        status = wait_phase(api, namespace, "w3", {"Queued"})["status"]
        return bool(status.get("reason") == "QueueFull")

    wait_for(full, 30, "reason QueueFull on the task beyond maxQueuedTasks")
    statuses = _finish_all(api, namespace, ["running", "w1", "w2", "w3"])
    assert all(s["phase"] == "Completed" for s in statuses.values())
    assert _start_order(statuses, ["w1", "w2", "w3"]) == ["w1", "w2", "w3"]


def test_settings_reload_without_restart_and_bad_settings_keep_the_last_good(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_task(api, namespace, "newcomer", queue="late")

    def unknown_queue() -> bool:
        status = wait_phase(api, namespace, "newcomer", {"Queued"})["status"]
        return bool(status.get("reason") == "UnknownQueue")

    wait_for(unknown_queue, 30, "reason UnknownQueue")
    original = operator.settings_path.read_text()
    try:
        operator.settings_path.write_text(original + "  late: {maxConcurrentTasks: ten}\n")
        wait_for(
            lambda: 'execflow_settings_reloads_total{result="rejected"}' in operator.metrics(),
            30,
            "the invalid settings to be rejected",
        )
        create_task(api, namespace, "still-served")
        assert _finish_all(api, namespace, ["still-served"])["still-served"]["phase"] == (
            "Completed"
        )
        operator.settings_path.write_text(original + "  late: {maxConcurrentTasks: 1}\n")
        status = _finish_all(api, namespace, ["newcomer"])["newcomer"]
        assert status["phase"] == "Completed"
    finally:
        operator.settings_path.write_text(original)
