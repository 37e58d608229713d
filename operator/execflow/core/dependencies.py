"""Dependency rules between Tasks of a namespace: may a task start, complete, or must it fail.

A dependency links an event of the predecessor to an event of the dependent:

- FinishToStart: the dependent starts only after the predecessor finished with the required outcome.
- StartToStart: the dependent starts only after the predecessor started.
- FinishToFinish: the dependent completes only after the predecessor finished with the outcome.
- StartToFinish: the dependent completes only after the predecessor started.

A container cannot be held from exiting, so the two *ToFinish types gate the dependent's transition
to Completed: a dependent whose container already succeeded stays Running with reason
`WaitingForDependency` until the predecessor allows it to complete.

The condition (Succeeded, Failed, Any) is about the predecessor's outcome, so it applies to the
Finish* types. The Start* types only need the predecessor to start; they fail when it finished
without ever starting (it never will). A dependency that can no longer be met fails the dependent
with `DependencyFailed`. A predecessor that does not exist (yet) keeps the dependent waiting: it may
still be created, and the caller keeps the task Pending.

Cycles are judged on events, not tasks: every task's start precedes its finish, and every dependency
orders one event of the predecessor before one event of the dependent. A task is on a cycle when its
start or finish lies on a cycle of that event graph; only then can it never proceed. (A task that
starts after another starts, while the other completes after it finishes, is not a deadlock.)
"""

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from execflow.api.reasons import Reason
from execflow.api.task import DependencyCondition, DependencyType

WAITING_FOR_DEPENDENCY = Reason.WAITING_FOR_DEPENDENCY
DEPENDENCY_FAILED = Reason.DEPENDENCY_FAILED
DEPENDENCY_CYCLE = Reason.DEPENDENCY_CYCLE

_GATES_START = frozenset({DependencyType.FINISH_TO_START, DependencyType.START_TO_START})
_NEEDS_FINISH = frozenset({DependencyType.FINISH_TO_START, DependencyType.FINISH_TO_FINISH})


@dataclass(frozen=True, slots=True)
class Dependency:
    """One dependency of a task on `task`, a Task name in the same namespace."""

    task: str
    type: DependencyType = DependencyType.FINISH_TO_START
    condition: DependencyCondition = DependencyCondition.SUCCEEDED


@dataclass(frozen=True, slots=True)
class PredecessorState:
    """What the dependency rules need to know about a referenced task.

    `started`: an attempt of it has started (its startTime is set). `finished`: it is in a terminal
    phase (Completed, Failed, Cancelled, Timeout). `succeeded`: it finished Completed.
    """

    phase: str
    started: bool
    finished: bool
    succeeded: bool

    def __post_init__(self) -> None:
        if self.succeeded and not self.finished:
            raise ValueError("a task that succeeded has finished")


class Readiness(enum.Enum):
    """The answer for one gated event of the dependent."""

    READY = enum.auto()
    WAIT = enum.auto()
    FAIL = enum.auto()


@dataclass(frozen=True, slots=True)
class DependencyDecision:
    """READY; WAIT with reason WaitingForDependency; or FAIL with reason DependencyFailed.

    `dependency` names the dependency the decision is about (the first in spec order that waits or
    fails), or is None when ready.
    """

    readiness: Readiness
    dependency: Dependency | None = None
    reason: str = ""
    message: str = ""


READY = DependencyDecision(Readiness.READY)


def _outcome_matches(condition: DependencyCondition, state: PredecessorState) -> bool:
    if condition is DependencyCondition.ANY:
        return True
    if condition is DependencyCondition.SUCCEEDED:
        return state.succeeded
    return not state.succeeded


def _wait(dependency: Dependency, detail: str) -> DependencyDecision:
    return DependencyDecision(
        Readiness.WAIT,
        dependency,
        WAITING_FOR_DEPENDENCY,
        f"{dependency.type.value} dependency on task {dependency.task}{detail}",
    )


def _fail(dependency: Dependency, detail: str) -> DependencyDecision:
    return DependencyDecision(
        Readiness.FAIL,
        dependency,
        DEPENDENCY_FAILED,
        f"{dependency.type.value} dependency on task {dependency.task}{detail}",
    )


def _judge(dependency: Dependency, state: PredecessorState | None) -> DependencyDecision:
    if state is None:
        return _wait(dependency, ", which does not exist")
    if dependency.type in _NEEDS_FINISH:
        return _judge_finish(dependency, state)
    return _judge_start(dependency, state)


def _judge_finish(dependency: Dependency, state: PredecessorState) -> DependencyDecision:
    if not state.finished:
        return _wait(dependency, f" ({state.phase}): waits for it to finish")
    if _outcome_matches(dependency.condition, state):
        return READY
    return _fail(
        dependency,
        f" requires {dependency.condition.value}, but it finished {state.phase}",
    )


def _judge_start(dependency: Dependency, state: PredecessorState) -> DependencyDecision:
    if state.started:
        return READY
    if state.finished:
        return _fail(dependency, f", which finished {state.phase} without starting")
    return _wait(dependency, f" ({state.phase}): waits for it to start")


def _decide(
    dependencies: Iterable[Dependency],
    states: Mapping[str, PredecessorState],
    *,
    gating_start: bool,
) -> DependencyDecision:
    waiting: DependencyDecision | None = None
    for dependency in dependencies:
        if (dependency.type in _GATES_START) != gating_start:
            continue
        decision = _judge(dependency, states.get(dependency.task))
        if decision.readiness is Readiness.FAIL:
            return decision
        if decision.readiness is Readiness.WAIT and waiting is None:
            waiting = decision
    return READY if waiting is None else waiting


def can_start(
    dependencies: Iterable[Dependency], states: Mapping[str, PredecessorState]
) -> DependencyDecision:
    """May the dependent start? Judges its FinishToStart and StartToStart dependencies.

    `states` maps Task names of the namespace to their state; a name missing from it means that
    Task does not exist. A failure wins over waiting, so a doomed task fails at once.
    """
    return _decide(dependencies, states, gating_start=True)


def can_complete(
    dependencies: Iterable[Dependency], states: Mapping[str, PredecessorState]
) -> DependencyDecision:
    """May the dependent, whose container succeeded, become Completed? Judges *ToFinish types."""
    return _decide(dependencies, states, gating_start=False)


_START = 0
_FINISH = 1


def tasks_on_cycles(graph: Mapping[str, Iterable[Dependency]]) -> frozenset[str]:
    """Every task of `graph` (task name -> its dependencies) whose start or finish is on a cycle.

    Dependencies on tasks absent from `graph` are ignored: they wait, they do not deadlock.
    The caller fails each returned task with reason `DependencyCycle`.
    """
    # Event graph: node (task, START|FINISH); edge a -> b means a must happen before b.
    successors: dict[tuple[str, int], list[tuple[str, int]]] = {}
    for name in graph:
        successors[(name, _START)] = [(name, _FINISH)]
        successors[(name, _FINISH)] = []
    for name, dependencies in graph.items():
        for dependency in dependencies:
            if dependency.task not in graph:
                continue
            before = _FINISH if dependency.type in _NEEDS_FINISH else _START
            after = _START if dependency.type in _GATES_START else _FINISH
            successors[(dependency.task, before)].append((name, after))
    return frozenset(node[0] for node in _nodes_on_cycles(successors))


def _nodes_on_cycles(
    successors: Mapping[tuple[str, int], list[tuple[str, int]]],
) -> set[tuple[str, int]]:
    """Nodes in a strongly connected component with a cycle."""
    return _Components(successors).on_cycles()


_Node = tuple[str, int]


class _Components:
    """Tarjan's strongly connected components, iterative so deep graphs need no recursion."""

    def __init__(self, successors: Mapping[_Node, list[_Node]]) -> None:
        self._successors = successors
        self._index: dict[_Node, int] = {}
        self._low: dict[_Node, int] = {}
        self._stack: list[_Node] = []
        self._on_stack: set[_Node] = set()
        self._on_cycles: set[_Node] = set()

    def on_cycles(self) -> set[_Node]:
        for root in self._successors:
            if root not in self._index:
                self._visit(root)
        return self._on_cycles

    def _visit(self, root: _Node) -> None:
        self._open(root)
        work: list[tuple[_Node, int]] = [(root, 0)]
        while work:
            node, position = work[-1]
            children = self._successors[node]
            if position < len(children):
                work[-1] = (node, position + 1)
                child = children[position]
                if child not in self._index:
                    self._open(child)
                    work.append((child, 0))
                elif child in self._on_stack:
                    self._low[node] = min(self._low[node], self._index[child])
                continue
            work.pop()
            self._close(node)
            if work:
                parent = work[-1][0]
                self._low[parent] = min(self._low[parent], self._low[node])

    def _open(self, node: _Node) -> None:
        self._index[node] = self._low[node] = len(self._index)
        self._stack.append(node)
        self._on_stack.add(node)

    def _close(self, node: _Node) -> None:
        if self._low[node] != self._index[node]:
            return
        component = []
        while True:
            member = self._stack.pop()
            self._on_stack.discard(member)
            component.append(member)
            if member == node:
                break
        if len(component) > 1 or node in self._successors[node]:
            self._on_cycles.update(component)
