"""The workflow graph `execflow dag` draws, and its four renderings.

The graph's edges are checked against the operator's waiting rules for each execution mode,
dependsOn, finally steps, dependencies, expressions that read results, and fan-out; the
renderings are parsed back (Mermaid and dot lines, SVG as XML, PNG with Pillow) and checked to
show one box per task in its phase's colour, inside its step's box.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from execflow.cli.pictures import PHASE_COLOURS, dot, layout, mermaid, png, svg
from execflow.core.workflows.graph import EdgeKind, GraphError, WorkflowGraph, workflow_graph

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SVG = "{http://www.w3.org/2000/svg}"


def task(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "container": {"image": "busybox"}, **extra}


def step(name: str, *tasks: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "tasks": list(tasks), **extra}


def body(*steps: dict[str, Any], status: Any = None, **spec: Any) -> dict[str, Any]:
    made: dict[str, Any] = {
        "apiVersion": "execflow.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "wf"},
        "spec": {"steps": list(steps), **spec},
    }
    if status is not None:
        made["status"] = status
    return made


def edges(graph: WorkflowGraph) -> set[tuple[str, str, str]]:
    return {(e.source, e.target, e.kind.value) for e in graph.edges}


def layers(graph: WorkflowGraph) -> list[list[str]]:
    return [[node.id for node in layer] for layer in graph.layers()]


# ----- edges: the operator's waiting rules ---------------------------------------------------
def test_a_sequential_step_chains_its_tasks_in_dependency_order() -> None:
    graph = workflow_graph(
        body(step("s", task("b", dependencies=[{"task": "a"}]), task("a"), task("c")))
    )
    # a comes first (b depends on it), then b, then c: the order the operator runs them in.
    assert edges(graph) == {("a", "b", "dependency"), ("b", "c", "sequence")}
    assert layers(graph) == [["a"], ["b"], ["c"]]


def test_a_parallel_step_has_no_edges_and_a_hybrid_step_follows_its_dependencies() -> None:
    parallel = workflow_graph(body(step("s", task("a"), task("b"), executionMode="Parallel")))
    assert parallel.edges == ()
    assert layers(parallel) == [["a", "b"]]

    diamond = workflow_graph(yaml.safe_load((EXAMPLES / "workflow-diamond.yaml").read_text()))
    assert edges(diamond) == {
        ("fetch", "clean", "dependency"),
        ("fetch", "validate", "dependency"),
        ("clean", "merge", "dependency"),
        ("validate", "merge", "dependency"),
    }
    assert layers(diamond) == [["fetch"], ["clean", "validate"], ["merge"]]


def test_a_conditional_step_adds_no_edges_between_its_alternatives() -> None:
    graph = workflow_graph(
        body(step("s", task("a", when="variables.x > 1"), task("b"), executionMode="Conditional"))
    )
    assert graph.edges == ()


def test_steps_wait_for_the_previous_step_or_their_depends_on() -> None:
    graph = workflow_graph(
        body(
            step("first", task("x"), task("y"), executionMode="Parallel"),
            step("side", task("z"), dependsOn=[]),
            step("join", task("w1"), task("w2"), dependsOn=["first", "side"]),
            step("after", task("v")),
        )
    )
    assert edges(graph) == {
        ("x", "w1", "step"),
        ("y", "w1", "step"),
        ("z", "w1", "step"),
        ("w1", "w2", "sequence"),
        ("w2", "v", "step"),  # default: the step before; only its last task is joined
    }
    assert layers(graph) == [["x", "y", "z"], ["w1"], ["w2"], ["v"]]
    assert [s.name for s in graph.steps] == ["first", "side", "join", "after"]
    assert graph.steps[0].nodes == ("x", "y")


def test_finally_steps_wait_for_all_main_steps_and_each_other() -> None:
    spec = body(step("a", task("a1")), step("b", task("b1"), dependsOn=[]))
    assert edges(workflow_graph(spec)) == set()  # two independent main steps
    spec["spec"]["finally"] = [step("notify", task("n1")), step("cleanup", task("c1"))]
    graph = workflow_graph(spec)
    assert edges(graph) == {
        ("a1", "n1", "step"),
        ("b1", "n1", "step"),
        ("n1", "c1", "step"),
    }
    assert [(s.name, s.section) for s in graph.steps][-2:] == [
        ("notify", "finally"),
        ("cleanup", "finally"),
    ]


def test_dependencies_across_steps_keep_their_type_and_condition_as_a_label() -> None:
    graph = workflow_graph(
        body(
            step("one", task("a"), task("b"), executionMode="Parallel"),
            step(
                "two",
                task(
                    "c",
                    dependencies=[{"task": "a", "type": "StartToStart", "condition": "Failed"}],
                ),
            ),
        )
    )
    labelled = next(e for e in graph.edges if e.source == "a" and e.target == "c")
    assert (labelled.kind, labelled.label) == (EdgeKind.DEPENDENCY, "StartToStart if Failed")
    assert ("b", "c", "step") in edges(graph)


def test_a_start_to_start_predecessor_is_still_waited_for_by_the_next_step() -> None:
    graph = workflow_graph(
        body(
            step(
                "s",
                task("a"),
                task("b", dependencies=[{"task": "a", "type": "StartToStart"}]),
                executionMode="Hybrid",
            ),
            step("next", task("c")),
        )
    )
    # b only waits for a to start, so a may end last: the next step waits for both.
    assert edges(graph) == {("a", "b", "dependency"), ("a", "c", "step"), ("b", "c", "step")}


def test_expressions_reading_a_result_make_the_reader_wait() -> None:
    graph = workflow_graph(
        body(
            step("s", task("a"), task("b"), executionMode="Parallel"),
            step(
                "t",
                task("c", parameters={"rows": "{{ steps.s.tasks['a'].result.rows }}"}),
                task("d", when="steps.s.phase == 'Completed'"),
                executionMode="Parallel",
                dependsOn=[],
            ),
        )
    )
    assert edges(graph) == {("a", "c", "reads"), ("a", "d", "reads"), ("b", "d", "reads")}


def test_a_fan_out_is_one_node_until_the_status_lists_its_items() -> None:
    spec = body(
        step("prep", task("clean")),
        step("train", task("train", forEach="[1, 2, 3]"), task("report")),
    )
    graph = workflow_graph(spec)
    template = graph.nodes["train"]
    assert (template.fan_out, template.child, template.label) == (True, "", "train [forEach]")
    assert edges(graph) == {("clean", "train", "step"), ("train", "report", "sequence")}

    items = [
        {"name": "train", "index": i, "taskName": f"wf-train-{i}", "phase": "Completed"}
        for i in range(3)
    ]
    spec["status"] = {
        "phase": "Running",
        "steps": [
            {
                "name": "prep",
                "phase": "Completed",
                "tasks": [{"name": "clean", "phase": "Completed", "taskName": "wf-clean"}],
            },
            {
                "name": "train",
                "phase": "Running",
                "tasks": [*items, {"name": "report", "phase": "Running", "taskName": "wf-report"}],
            },
        ],
    }
    graph = workflow_graph(spec)
    assert list(graph.nodes) == ["clean", "train#0", "train#1", "train#2", "report"]
    assert [n.child for n in graph.nodes.values()] == [
        "wf-clean",
        "wf-train-0",
        "wf-train-1",
        "wf-train-2",
        "wf-report",
    ]
    assert edges(graph) == {
        *(("clean", f"train#{i}", "step") for i in range(3)),
        *((f"train#{i}", "report", "sequence") for i in range(3)),
    }
    assert layers(graph) == [["clean"], ["train#0", "train#1", "train#2"], ["report"]]
    assert graph.nodes["report"].phase == "Running"
    assert graph.phase == "Running"
    assert graph.steps[0].phase == "Completed"

    plan = workflow_graph(spec, with_status=False)
    assert {n.phase for n in plan.nodes.values()} == {"Pending"}
    assert list(plan.nodes) == ["clean", "train", "report"]


def test_an_invalid_workflow_is_refused_with_the_reason() -> None:
    cyclic = body(
        step(
            "s",
            task("a", dependencies=[{"task": "b"}]),
            task("b", dependencies=[{"task": "a"}]),
            executionMode="Hybrid",
        )
    )
    with pytest.raises(GraphError, match="InvalidSpec: tasks a, b of step s wait for each other"):
        workflow_graph(cyclic)
    with pytest.raises(GraphError, match="no spec"):
        workflow_graph({"kind": "Workflow", "metadata": {"name": "x"}})


# ----- renderings ------------------------------------------------------------------------------
def _sample() -> WorkflowGraph:
    """Every phase, a fan-out, a labelled dependency and a finally step."""
    spec = body(
        step("prep", task("fetch"), task("clean")),
        step(
            "train",
            task("train", forEach="[1, 2, 3]"),
            task("base", dependencies=[{"task": "fetch", "type": "StartToStart"}]),
            executionMode="Parallel",
        ),
        step("side", task("lint"), task("docs"), dependsOn=["prep"], executionMode="Parallel"),
    )
    spec["spec"]["finally"] = [step("notify", task("notify"))]
    phases = ["Completed", "Running", "Failed"]
    spec["status"] = {
        "phase": "Running",
        "steps": [
            {
                "name": "prep",
                "phase": "Completed",
                "tasks": [
                    {"name": "fetch", "phase": "Completed"},
                    {"name": "clean", "phase": "Completed"},
                ],
            },
            {
                "name": "train",
                "phase": "Running",
                "tasks": [
                    *({"name": "train", "index": i, "phase": p} for i, p in enumerate(phases)),
                    {"name": "base", "phase": "Queued"},
                ],
            },
            {
                "name": "side",
                "phase": "Running",
                "tasks": [
                    {"name": "lint", "phase": "Cancelled"},
                    {"name": "docs", "phase": "Skipped"},
                ],
            },
            {
                "name": "notify",
                "phase": "Pending",
                "tasks": [{"name": "notify", "phase": "Timeout"}],
            },
        ],
    }
    return workflow_graph(spec)


def test_mermaid_has_a_subgraph_per_step_an_edge_per_edge_and_a_class_per_phase() -> None:
    graph = _sample()
    text = mermaid(graph)
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    assert sum(line.strip().startswith("subgraph ") for line in lines) == len(graph.steps)
    assert sum(line.strip() == "end" for line in lines) == len(graph.steps)
    nodes = [line for line in lines if re.fullmatch(r'\s+n\d+\["[^"]*"\]', line)]
    assert len(nodes) == len(graph.nodes)
    arrows = [line for line in lines if re.fullmatch(r"\s+n\d+ (-->|-\.->)(\|.*\|)? n\d+", line)]
    assert len(arrows) == len(graph.edges)
    assert '-->|"StartToStart"|' in text
    for phase in {node.phase for node in graph.nodes.values()}:
        assert f"classDef {phase} fill:{PHASE_COLOURS[phase].fill}," in text
    classed = [m for line in lines if (m := re.fullmatch(r"\s+class (\S+) (\w+)", line))]
    members = [member for m in classed for member in m.group(1).split(",")]
    assert sorted(members) == sorted(f"n{i}" for i in range(len(graph.nodes)))


def test_dot_has_a_cluster_per_step_and_fills_nodes_by_phase() -> None:
    graph = _sample()
    text = dot(graph)
    assert text.startswith('digraph "wf" {') and text.rstrip().endswith("}")
    assert text.count("{") == text.count("}")
    assert len(re.findall(r"subgraph cluster_\d+ \{", text)) == len(graph.steps)
    for key, node in graph.nodes.items():
        assert (
            f'"{key}" [label="{node.label}", fillcolor="{PHASE_COLOURS[node.phase].fill}"' in text
        )
    assert len(re.findall(r'^  "[^"]+" -> "[^"]+" \[', text, re.MULTILINE)) == len(graph.edges)
    assert text.count("style=dashed") == sum(e.kind is EdgeKind.STEP for e in graph.edges)


def _rect(group: ET.Element) -> tuple[float, float, float, float]:
    rect = group.find(f"{SVG}rect")
    assert rect is not None
    x, y, w, h = (float(rect.get(a) or 0) for a in ("x", "y", "width", "height"))
    return x, y, w, h


def _inside(inner: tuple[float, ...], outer: tuple[float, ...]) -> bool:
    x, y, w, h = inner
    ox, oy, ow, oh = outer
    return ox <= x and oy <= y and x + w <= ox + ow and y + h <= oy + oh


def _apart(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] + a[2] <= b[0] or b[0] + b[2] <= a[0] or a[1] + a[3] <= b[1] or b[1] + b[3] <= a[1]


def test_svg_is_xml_with_one_coloured_node_per_task_inside_its_step_box() -> None:
    graph = _sample()
    root = ET.fromstring(svg(graph))
    width, height = float(root.get("width") or 0), float(root.get("height") or 0)
    groups = root.findall(f"{SVG}g")
    nodes = [g for g in groups if g.get("class") == "node"]
    steps = {g.get("data-step"): _rect(g) for g in groups if g.get("class") == "step"}
    assert len(nodes) == len(graph.nodes)
    assert [g.get("data-task") for g in nodes] == [
        "wf-fetch",
        "wf-clean",
        "wf-train-0",
        "wf-train-1",
        "wf-train-2",
        "wf-base",
        "wf-lint",
        "wf-docs",
        "wf-notify",
    ]
    assert len([g for g in groups if g.get("class") == "edge"]) == len(graph.edges)
    boxes = []
    for group, node in zip(nodes, graph.nodes.values(), strict=True):
        rect = group.find(f"{SVG}rect")
        assert rect is not None and rect.get("fill") == PHASE_COLOURS[node.phase].fill
        assert group.get("data-phase") == node.phase
        box = _rect(group)
        assert _inside(box, steps[node.step])
        assert _inside(box, (0, 0, width, height))
        boxes.append(box)
    assert all(_apart(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    step_boxes = list(steps.values())
    assert all(_apart(a, b) for i, a in enumerate(step_boxes) for b in step_boxes[i + 1 :])


def test_png_is_a_valid_image_with_each_task_drawn_in_its_phase_colour() -> None:
    graph = _sample()
    data = png(graph, scale=2)
    Image.open(io.BytesIO(data)).verify()
    image = Image.open(io.BytesIO(data)).convert("RGB")
    where = layout(graph)
    assert image.size == (round(where.width * 2), round(where.height * 2))
    for key, node in graph.nodes.items():
        box = where.nodes[key]
        # Just inside the left border, half-way down: the box's fill, not text or an edge.
        pixel = image.getpixel((round((box.x + 5) * 2), round((box.y + box.h / 2) * 2)))
        wanted = PHASE_COLOURS[node.phase].fill
        assert pixel == tuple(int(wanted[i : i + 2], 16) for i in (1, 3, 5)), key
