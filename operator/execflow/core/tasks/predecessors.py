"""A Task's dependencies judged against the other Tasks of its namespace, as plain data.

The rules themselves (which event gates which, cycles on events) are `execflow.core.dependencies`;
this module reads the Tasks involved from the snapshot's lookup: the dependency graph reachable
from a Task, each predecessor's state, and the Task's own state for a dependency on itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from execflow.api.task import DependencyCondition, DependencyType, TaskPhase, TaskSpec
from execflow.core import dependencies as deps
from execflow.core.tasks.attempts import Attempt, AttemptState

Body = Mapping[str, Any]


def _predecessor(body: Body | None) -> deps.PredecessorState | None:
    if body is None:
        return None
    status = body.get("status") or {}
    phase = str(status.get("phase") or TaskPhase.PENDING)
    terminal = phase in {p.value for p in TaskPhase if p.is_terminal}
    started = bool(status.get("startTime")) or phase in (TaskPhase.RUNNING, TaskPhase.COMPLETED)
    return deps.PredecessorState(
        phase=phase, started=started, finished=terminal, succeeded=phase == TaskPhase.COMPLETED
    )


def raw_dependencies(body: Body | None) -> list[deps.Dependency]:
    raw = ((body or {}).get("spec") or {}).get("dependencies") or []
    found = []
    for item in raw:
        if not isinstance(item, Mapping) or not item.get("task"):
            continue
        try:
            found.append(
                deps.Dependency(
                    str(item["task"]),
                    DependencyType(item.get("type", DependencyType.FINISH_TO_START)),
                    DependencyCondition(item.get("condition", DependencyCondition.SUCCEEDED)),
                )
            )
        except ValueError:
            continue  # admission refuses unknown types; an old object is judged without it
    return found


def dependency_graph(
    name: str, own: Sequence[deps.Dependency], task_named: Callable[[str], Body | None]
) -> dict[str, list[deps.Dependency]]:
    """The Task's dependencies and, transitively, those of the Tasks it depends on."""
    graph: dict[str, list[deps.Dependency]] = {name: list(own)}
    frontier = [d.task for d in own]
    while frontier:
        other = frontier.pop()
        if other in graph:
            continue
        graph[other] = raw_dependencies(task_named(other))
        frontier += [d.task for d in graph[other]]
    return graph


def judge_dependencies(
    name: str,
    spec: TaskSpec,
    attempts: Sequence[Attempt],
    task_named: Callable[[str], Body | None],
) -> deps.DependencyDecision | None:
    """The dependency decision for the Task's next step, or None while an attempt runs.

    A dependency on the Task itself is judged against its own progress (a StartToFinish on
    itself is met once it started; the other types on itself are cycles, refused earlier).
    """
    own = [deps.Dependency(d.task, d.type, d.condition) for d in spec.dependencies]
    latest = max(attempts, key=lambda attempt: attempt.number, default=None)
    states = {
        other: state
        for other in dependency_graph(name, own, task_named)
        if other != name and (state := _predecessor(task_named(other))) is not None
    }
    states[name] = deps.PredecessorState(
        phase=TaskPhase.RUNNING if latest is not None else TaskPhase.PENDING,
        started=latest is not None,
        finished=False,
        succeeded=False,
    )
    if latest is not None and latest.state is AttemptState.SUCCEEDED:
        return deps.can_complete(own, states)
    if latest is not None and latest.active:
        return None
    return deps.can_start(own, states)
