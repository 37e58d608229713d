"""Dependency rules of the pure core: start and completion gating, DependencyFailed, cycles.

Pure core, no cluster. A hypothesis simulation runs random dependency graphs through the rules the
way the operator would (start a task when `can_start` says so, complete it when `can_complete` says
so) and checks that no dependency is ever violated and that every acyclic graph runs to the end.
Cycle detection is compared with a brute-force search over the same event graph.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from execflow.api.task import DependencyCondition, DependencyType
from execflow.core.dependencies import (
    DEPENDENCY_FAILED,
    WAITING_FOR_DEPENDENCY,
    Dependency,
    DependencyDecision,
    PredecessorState,
    Readiness,
    can_complete,
    can_start,
    tasks_on_cycles,
)

FS = DependencyType.FINISH_TO_START
SS = DependencyType.START_TO_START
FF = DependencyType.FINISH_TO_FINISH
SF = DependencyType.START_TO_FINISH
SUCCEEDED = DependencyCondition.SUCCEEDED
FAILED = DependencyCondition.FAILED
ANY = DependencyCondition.ANY

PENDING = PredecessorState("Pending", started=False, finished=False, succeeded=False)
RUNNING = PredecessorState("Running", started=True, finished=False, succeeded=False)
COMPLETED = PredecessorState("Completed", started=True, finished=True, succeeded=True)
FAILED_AFTER_START = PredecessorState("Failed", started=True, finished=True, succeeded=False)
CANCELLED_BEFORE_START = PredecessorState(
    "Cancelled", started=False, finished=True, succeeded=False
)


# -- examples --------------------------------------------------------------------------------


def test_finish_to_start_waits_for_the_predecessor_to_finish_successfully() -> None:
    deps = [Dependency("fetch", FS, SUCCEEDED)]
    waiting = can_start(deps, {"fetch": RUNNING})
    assert waiting.readiness is Readiness.WAIT
    assert waiting.reason == WAITING_FOR_DEPENDENCY
    assert waiting.dependency == deps[0]
    assert can_start(deps, {"fetch": COMPLETED}).readiness is Readiness.READY
    failed = can_start(deps, {"fetch": FAILED_AFTER_START})
    assert failed.readiness is Readiness.FAIL
    assert failed.reason == DEPENDENCY_FAILED
    assert "requires Succeeded" in failed.message


@pytest.mark.parametrize(
    ("condition", "state", "readiness"),
    [
        (FAILED, FAILED_AFTER_START, Readiness.READY),
        (FAILED, COMPLETED, Readiness.FAIL),
        (FAILED, CANCELLED_BEFORE_START, Readiness.READY),
        (ANY, COMPLETED, Readiness.READY),
        (ANY, FAILED_AFTER_START, Readiness.READY),
        (ANY, RUNNING, Readiness.WAIT),
    ],
)
def test_conditions_on_the_predecessors_outcome(
    condition: DependencyCondition, state: PredecessorState, readiness: Readiness
) -> None:
    assert can_start([Dependency("p", FS, condition)], {"p": state}).readiness is readiness


def test_start_to_start_needs_only_the_predecessor_to_have_started() -> None:
    deps = [Dependency("p", SS)]
    assert can_start(deps, {"p": PENDING}).readiness is Readiness.WAIT
    assert can_start(deps, {"p": RUNNING}).readiness is Readiness.READY
    assert can_start(deps, {"p": FAILED_AFTER_START}).readiness is Readiness.READY
    never = can_start(deps, {"p": CANCELLED_BEFORE_START})
    assert never.readiness is Readiness.FAIL
    assert "without starting" in never.message


def test_finish_types_gate_completion_not_start() -> None:
    deps = [Dependency("p", FF), Dependency("q", SF)]
    states = {"p": RUNNING, "q": PENDING}
    assert can_start(deps, states).readiness is Readiness.READY
    assert can_complete(deps, states).readiness is Readiness.WAIT
    assert can_complete(deps, {"p": RUNNING, "q": RUNNING}).dependency == deps[0]
    assert can_complete(deps, {"p": COMPLETED, "q": RUNNING}).readiness is Readiness.READY
    assert can_complete(deps, {"p": FAILED_AFTER_START, "q": RUNNING}).readiness is Readiness.FAIL


def test_missing_predecessor_waits_and_a_failure_wins_over_waiting() -> None:
    missing = can_start([Dependency("ghost")], {})
    assert missing.readiness is Readiness.WAIT
    assert "does not exist" in missing.message
    both = can_start([Dependency("ghost"), Dependency("broken")], {"broken": FAILED_AFTER_START})
    assert both.readiness is Readiness.FAIL
    assert both.dependency == Dependency("broken")


def test_no_dependencies_means_ready() -> None:
    assert can_start([], {}).readiness is Readiness.READY
    assert can_complete([], {}).readiness is Readiness.READY


def test_succeeded_without_finishing_is_refused() -> None:
    with pytest.raises(ValueError):
        PredecessorState("Running", started=True, finished=False, succeeded=True)


def test_cycles_of_start_dependencies_are_found_with_every_member() -> None:
    graph = {
        "a": [Dependency("c")],
        "b": [Dependency("a")],
        "c": [Dependency("b")],
        "d": [Dependency("a")],  # downstream of the cycle, not on it
        "e": [],
    }
    assert tasks_on_cycles(graph) == {"a", "b", "c"}
    assert tasks_on_cycles({"self": [Dependency("self")]}) == {"self"}
    assert tasks_on_cycles({"a": [Dependency("missing")]}) == frozenset()


def test_mutual_dependencies_that_can_still_proceed_are_not_cycles() -> None:
    # a starts after b starts; b completes after a finishes: b, a start, a ends, b completes.
    graph = {"a": [Dependency("b", SS)], "b": [Dependency("a", FF)]}
    assert tasks_on_cycles(graph) == frozenset()
    # a starts after b finishes, b completes only after a started: neither can proceed.
    deadlock = {"a": [Dependency("b", FS)], "b": [Dependency("a", SF)]}
    assert tasks_on_cycles(deadlock) == {"a", "b"}


# -- properties ------------------------------------------------------------------------------

TYPES = [FS, SS, FF, SF]
CONDITIONS = [SUCCEEDED, FAILED, ANY]


@st.composite
def dependencies_on(draw: st.DrawFn, names: Sequence[str]) -> list[Dependency]:
    if not names:
        return []
    return draw(
        st.lists(
            st.builds(
                Dependency,
                st.sampled_from(list(names)),
                st.sampled_from(TYPES),
                st.sampled_from(CONDITIONS),
            ),
            max_size=3,
        )
    )


@st.composite
def acyclic_graphs(draw: st.DrawFn) -> dict[str, list[Dependency]]:
    count = draw(st.integers(1, 8))
    names = [f"t{index}" for index in range(count)]
    return {name: draw(dependencies_on(names[:index])) for index, name in enumerate(names)}


@dataclass
class Run:
    outcome_ok: bool
    started_at: int | None = None
    finished_at: int | None = None
    exited_ok: bool = False
    succeeded: bool = False

    def state(self) -> PredecessorState:
        finished = self.finished_at is not None
        if finished:
            phase = "Completed" if self.succeeded else "Failed"
        else:
            phase = "Running" if self.started_at is not None else "Pending"
        return PredecessorState(
            phase, self.started_at is not None, finished, finished and self.succeeded
        )


def unmeetable(dependency: Dependency, state: PredecessorState) -> bool:
    if dependency.type in (FS, FF):
        if not state.finished:
            return False
        if dependency.condition is SUCCEEDED:
            return not state.succeeded
        if dependency.condition is FAILED:
            return state.succeeded
        return False
    return state.finished and not state.started


def step(
    name: str,
    graph: Mapping[str, list[Dependency]],
    runs: dict[str, Run],
    clock: int,
) -> bool:
    """Advance one task by one transition as the operator would; whether anything changed."""
    run = runs[name]
    states = {other: runs[other].state() for other in runs}
    if run.finished_at is not None:
        return False
    if run.started_at is None:
        return _gate(can_start(graph[name], states), states, run, clock, on_ready="start")
    if not run.exited_ok:
        if not run.outcome_ok:
            run.finished_at = clock
            return True
        run.exited_ok = True
        return True
    return _gate(can_complete(graph[name], states), states, run, clock, on_ready="complete")


def _gate(
    decision: DependencyDecision,
    states: Mapping[str, PredecessorState],
    run: Run,
    clock: int,
    *,
    on_ready: str,
) -> bool:
    """Apply a start or completion decision to the run; whether anything changed."""
    if decision.readiness is Readiness.WAIT:
        return False
    if decision.readiness is Readiness.FAIL:
        assert decision.dependency is not None
        assert unmeetable(decision.dependency, states[decision.dependency.task])
        run.finished_at = clock
        return True
    if on_ready == "start":
        run.started_at = clock
    else:
        run.succeeded = True
        run.finished_at = clock
    return True


def outcome_matches(condition: DependencyCondition, run: Run) -> bool:
    if condition is ANY:
        return True
    return run.succeeded if condition is SUCCEEDED else not run.succeeded


@settings(max_examples=400, deadline=None)
@given(acyclic_graphs(), st.data())
def test_random_acyclic_graphs_run_to_the_end_without_violating_a_dependency(
    graph: dict[str, list[Dependency]], data: st.DataObject
) -> None:
    assert tasks_on_cycles(graph) == frozenset()
    runs = {name: Run(outcome_ok=data.draw(st.booleans(), label=name)) for name in graph}
    clock = 0
    names = sorted(graph)
    # Random interleaving first, then a sweep until nothing moves any more.
    for _ in range(data.draw(st.integers(0, 40))):
        clock += 1
        step(data.draw(st.sampled_from(names)), graph, runs, clock)
    changed = True
    while changed:
        changed = False
        for name in names:
            clock += 1
            changed = step(name, graph, runs, clock) or changed

    for name, run in runs.items():
        assert run.finished_at is not None, f"{name} never finished"
        for dependency in graph[name]:
            before = runs[dependency.task]
            if run.started_at is not None and dependency.type is FS:
                assert before.finished_at is not None and before.finished_at < run.started_at
                assert outcome_matches(dependency.condition, before)
            if run.started_at is not None and dependency.type is SS:
                assert before.started_at is not None and before.started_at < run.started_at
            if run.succeeded and dependency.type is FF:
                assert before.finished_at is not None and before.finished_at < run.finished_at
                assert outcome_matches(dependency.condition, before)
            if run.succeeded and dependency.type is SF:
                assert before.started_at is not None and before.started_at < run.finished_at


def brute_force_cycles(graph: Mapping[str, list[Dependency]]) -> set[str]:
    edges: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for name in graph:
        edges[(name, "start")] = {(name, "finish")}
        edges[(name, "finish")] = set()
    for name, dependencies in graph.items():
        for dependency in dependencies:
            if dependency.task not in graph:
                continue
            before = "finish" if dependency.type in (FS, FF) else "start"
            after = "start" if dependency.type in (FS, SS) else "finish"
            edges[(dependency.task, before)].add((name, after))
    on_cycle = set()
    for node, successors in edges.items():
        seen: set[tuple[str, str]] = set()
        frontier = list(successors)
        while frontier:
            current = frontier.pop()
            if current == node:
                on_cycle.add(node[0])
                break
            if current not in seen:
                seen.add(current)
                frontier.extend(edges[current])
    return on_cycle


@settings(max_examples=400, deadline=None)
@given(st.integers(1, 7).flatmap(lambda count: st.just([f"t{i}" for i in range(count)])), st.data())
def test_cycle_detection_matches_a_brute_force_search(
    names: list[str], data: st.DataObject
) -> None:
    graph = {name: data.draw(dependencies_on([*names, "absent"])) for name in names}
    assert tasks_on_cycles(graph) == brute_force_cycles(graph)
