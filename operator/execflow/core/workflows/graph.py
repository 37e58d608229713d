"""A workflow as a picture's data: one node per child Task, edges for who waits for whom.

The graph answers "what runs after what" with the operator's own rules (the same view the planner
walks): in a Sequential step each task waits for the one before it (in dependency order); a task
waits for the tasks it names in `dependencies` and for those whose results its expressions read
(across steps too); a step's first tasks wait for the last tasks of the steps in its `dependsOn`
(unset: the step before it), and the finally steps wait for all the main steps. Conditional and
Parallel steps add no edges of their own. A wait for whole steps joins only the last tasks of
those steps (none of them ends after these) to the first tasks of the waiting step (their start
waits for none of it), so the picture stays readable.

A fan-out task is one node per item once the status lists its items, else one node for the task
marked as a fan-out. Phases come from the status (Pending when it has none). `layers()` orders
the nodes in topological generations, for drawing.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from execflow.api.task import DependencyCondition, DependencyType
from execflow.api.workflow import ExecutionMode, WorkflowStatus, WorkflowTaskStatus
from execflow.core.workflows.units import child_name
from execflow.core.workflows.view import (
    StepPlan,
    TaskPlan,
    WorkflowSnapshot,
    WorkflowView,
    build_view,
    ordered_tasks,
)

PENDING = "Pending"
_GATES_START = frozenset({DependencyType.FINISH_TO_START, DependencyType.START_TO_START})
_AFTER_END = frozenset({DependencyType.FINISH_TO_START, DependencyType.FINISH_TO_FINISH})


class GraphError(Exception):
    """The workflow's spec cannot be drawn: it is invalid (the message says where)."""


class EdgeKind(enum.StrEnum):
    """Why the target waits for the source."""

    DEPENDENCY = "dependency"
    """The target lists the source in its `dependencies`."""
    READS = "reads"
    """The target's expressions read the source's result or phase."""
    SEQUENCE = "sequence"
    """A Sequential step: the target comes after the source."""
    STEP = "step"
    """The target's step starts after the source's step (dependsOn, or a finally step)."""


@dataclass(frozen=True)
class Node:
    id: str
    """`task`, or `task#index` for a fan-out item: unique in the graph."""
    task: str
    index: int | None
    step: str
    label: str
    phase: str
    child: str
    """The child Task's name ("" for a fan-out whose items are not known yet)."""
    fan_out: bool
    """A forEach task drawn as one node: its items are not known yet."""


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: EdgeKind
    label: str = ""
    """For dependencies other than FinishToStart on success: the type and condition."""


@dataclass(frozen=True)
class StepGroup:
    name: str
    section: str
    """"steps" or "finally"."""
    mode: ExecutionMode
    phase: str
    nodes: tuple[str, ...]


@dataclass(frozen=True)
class WorkflowGraph:
    name: str
    phase: str
    steps: tuple[StepGroup, ...]
    nodes: Mapping[str, Node]
    """By id, in the workflow's order: steps, tasks as listed, items by index."""
    edges: tuple[Edge, ...]

    def layers(self) -> list[list[Node]]:
        """Topological generations: a node sits one layer after the last node it waits for."""
        waiting = {key: 0 for key in self.nodes}
        followers: dict[str, list[str]] = {key: [] for key in self.nodes}
        for edge in self.edges:
            waiting[edge.target] += 1
            followers[edge.source].append(edge.target)
        layers: list[list[Node]] = []
        current = [key for key, count in waiting.items() if count == 0]
        placed = 0
        while current:
            layers.append([self.nodes[key] for key in current])
            placed += len(current)
            ready: set[str] = set()
            for key in current:
                for follower in followers[key]:
                    waiting[follower] -= 1
                    if waiting[follower] == 0:
                        ready.add(follower)
            current = [key for key in self.nodes if key in ready]
        if placed < len(self.nodes):  # a cycle (a valid spec has none): draw it last
            seen = {node.id for layer in layers for node in layer}
            layers.append([node for key, node in self.nodes.items() if key not in seen])
        return layers


def workflow_graph(body: Mapping[str, Any], *, with_status: bool = True) -> WorkflowGraph:
    """The graph of a Workflow object (as the API returns it or a file holds it); without
    `with_status` every phase is Pending, as before it runs."""
    metadata = body.get("metadata") or {}
    spec = body.get("spec")
    if not isinstance(spec, Mapping):
        raise GraphError("the Workflow has no spec")
    snapshot = WorkflowSnapshot(
        namespace=str(metadata.get("namespace") or ""),
        name=str(metadata.get("name") or ""),
        uid="",
        generation=0,
        created_at=None,
        annotations={},
        spec=spec,
        status=(body.get("status") or {}) if with_status else {},
    )
    view = build_view(snapshot)
    if view.failure is not None:
        raise GraphError(f"{view.failure.reason}: {view.failure.message}")
    return _Builder(view).graph()


class _Builder:
    def __init__(self, view: WorkflowView) -> None:
        self.view = view
        self.status: WorkflowStatus = view.status
        self.nodes: dict[str, Node] = {}
        self.by_task: dict[str, list[str]] = {}
        self.edges: dict[tuple[str, str], Edge] = {}
        self.task_edges: list[tuple[str, str, bool, bool]] = []
        """Task-level waits, for finding a step's first and last tasks: (source, target, the
        target starts after the source, the target ends after the source ended)."""

    def graph(self) -> WorkflowGraph:
        groups = [self._group(step) for step in self.view.all_steps]
        # Strongest reason first: a pair already joined keeps the edge that says most.
        for step in self.view.all_steps:
            for task in step.tasks:
                self._dependencies(task)
        for step in self.view.all_steps:
            for task in step.tasks:
                for name in sorted(task.reads):
                    self._join(name, task.spec.name, EdgeKind.READS)
        for step in self.view.all_steps:
            self._sequence(step)
        # Waits for whole steps last: they join a step's last tasks, known only now.
        for step in self.view.all_steps:
            self._step_waits(step)
            for task in step.tasks:
                for read in sorted(task.reads_steps - {task.step}):
                    for name in self._last_tasks([read]):
                        self._join(name, task.spec.name, EdgeKind.READS)
        return WorkflowGraph(
            name=self.view.name,
            phase=self.status.phase.value,
            steps=tuple(groups),
            nodes=self.nodes,
            edges=tuple(self.edges.values()),
        )

    # ----- nodes ---------------------------------------------------------------------------
    def _group(self, step: StepPlan) -> StepGroup:
        recorded = next((s for s in self.status.steps if s.name == step.spec.name), None)
        keys: list[str] = []
        for task in step.tasks:
            entries = [u for u in recorded.tasks if u.name == task.spec.name] if recorded else []
            keys.extend(self._task_nodes(task, entries))
        return StepGroup(
            name=step.spec.name,
            section=step.section,
            mode=step.spec.execution_mode,
            phase=recorded.phase.value if recorded else PENDING,
            nodes=tuple(keys),
        )

    def _task_nodes(self, task: TaskPlan, entries: list[WorkflowTaskStatus]) -> list[str]:
        name = task.spec.name
        items = sorted((u for u in entries if u.index is not None), key=lambda u: u.index or 0)
        if items:
            made = [self._node(task, u.index, u.phase, u.task_name) for u in items]
        else:
            phase = entries[0].phase if entries else PENDING
            task_name = entries[0].task_name if entries else ""
            made = [self._node(task, None, phase, task_name)]
        self.by_task[name] = [node.id for node in made]
        return self.by_task[name]

    def _node(self, task: TaskPlan, index: int | None, phase: str, task_name: str) -> Node:
        name = task.spec.name
        fan_out = index is None and task.for_each is not None
        if task_name:
            child = task_name
        elif fan_out:
            child = ""
        else:
            child = child_name(self.view.name, name, index) if self.view.name else name
        node = Node(
            id=name if index is None else f"{name}#{index}",
            task=name,
            index=index,
            step=task.step,
            label=f"{name} [{index}]" if index is not None else name + " [forEach]" * fan_out,
            phase=phase or PENDING,
            child=child,
            fan_out=fan_out,
        )
        self.nodes[node.id] = node
        return node

    # ----- edges ---------------------------------------------------------------------------
    def _join(
        self,
        source: str,
        target: str,
        kind: EdgeKind,
        label: str = "",
        *,
        gates_start: bool = True,
        after_end: bool = True,
    ) -> None:
        if source == target or source not in self.by_task or target not in self.by_task:
            return
        self.task_edges.append((source, target, gates_start, after_end))
        for a in self.by_task[source]:
            for b in self.by_task[target]:
                self.edges.setdefault((a, b), Edge(a, b, kind, label))

    def _dependencies(self, task: TaskPlan) -> None:
        for dependency in task.spec.dependencies:
            parts = []
            if dependency.type is not DependencyType.FINISH_TO_START:
                parts.append(dependency.type.value)
            if dependency.condition is not DependencyCondition.SUCCEEDED:
                parts.append(f"if {dependency.condition.value}")
            self._join(
                dependency.task,
                task.spec.name,
                EdgeKind.DEPENDENCY,
                " ".join(parts),
                gates_start=dependency.type in _GATES_START,
                after_end=dependency.type in _AFTER_END,
            )

    def _sequence(self, step: StepPlan) -> None:
        if step.spec.execution_mode is not ExecutionMode.SEQUENTIAL:
            return
        ordered = ordered_tasks(step)
        for before, after in itertools.pairwise(ordered):
            self._join(before.spec.name, after.spec.name, EdgeKind.SEQUENCE)

    def _step_waits(self, step: StepPlan) -> None:
        waited = list(step.depends_on)
        if step.section == "finally":
            waited += [s.spec.name for s in self.view.steps if s.spec.name not in waited]
        if not waited:
            return
        sources = self._last_tasks(waited)
        for target in self._first_tasks(step):
            for source in sources:
                self._join(source, target, EdgeKind.STEP)

    def _tasks_of(self, steps: Iterable[str]) -> set[str]:
        wanted = set(steps)
        return {t.spec.name for s in self.view.all_steps if s.spec.name in wanted for t in s.tasks}

    def _last_tasks(self, steps: Iterable[str]) -> list[str]:
        """Tasks of these steps that no other task of them ends after."""
        inside = self._tasks_of(steps)
        waited_for = {a for a, b, _, after in self.task_edges if after and {a, b} <= inside}
        return [t for t in self._ordered(inside) if t not in waited_for]

    def _first_tasks(self, step: StepPlan) -> list[str]:
        """Tasks of the step whose start waits for no other task of it."""
        inside = {t.spec.name for t in step.tasks}
        waiting = {b for a, b, gates, _ in self.task_edges if gates and {a, b} <= inside}
        return [t.spec.name for t in step.tasks if t.spec.name not in waiting]

    def _ordered(self, names: set[str]) -> list[str]:
        return [t.spec.name for s in self.view.all_steps for t in s.tasks if t.spec.name in names]
