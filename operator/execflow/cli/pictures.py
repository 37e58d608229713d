"""Drawing a workflow graph: Mermaid and Graphviz text, and SVG and PNG pictures drawn here.

Mermaid and dot leave the layout to their tools; SVG and PNG share one simple layout: the graph's
layers from left to right, each step a box around its tasks (steps that overlap in layers are
stacked), edges as curves from a task's right side to the next one's left side. Colours mean the
same in every format: green Completed, blue Running, red Failed and Timeout, grey Cancelled,
light grey Skipped, yellow Pending, Queued and Paused. Dashed grey edges are waits for a whole
step (dependsOn or finally); labels name dependencies other than FinishToStart on success.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from html import escape

from PIL import Image, ImageDraw, ImageFont

from execflow.core.workflows.graph import Edge, EdgeKind, WorkflowGraph


@dataclass(frozen=True)
class Colour:
    fill: str
    stroke: str
    text: str = "#1a202c"


PHASE_COLOURS = {
    "Completed": Colour("#c6f6d5", "#2f855a"),
    "Running": Colour("#bee3f8", "#2b6cb0"),
    "Failed": Colour("#fed7d7", "#c53030"),
    "Timeout": Colour("#fed7d7", "#c53030"),
    "Cancelled": Colour("#a0aec0", "#4a5568"),
    "Skipped": Colour("#edf2f7", "#a0aec0", "#718096"),
    "Pending": Colour("#fefcbf", "#b7791f"),
    "Queued": Colour("#fefcbf", "#b7791f"),
    "Paused": Colour("#fefcbf", "#b7791f"),
}
STEP_COLOUR = Colour("#f7fafc", "#cbd5e0", "#4a5568")
EDGE_COLOUR = "#4a5568"
STEP_EDGE_COLOUR = "#a0aec0"


def colour(phase: str) -> Colour:
    return PHASE_COLOURS.get(phase, PHASE_COLOURS["Pending"])


def _step_title(graph: WorkflowGraph, index: int) -> str:
    return f"{graph.steps[index].name} ({_step_detail(graph, index)})"


def _step_detail(graph: WorkflowGraph, index: int) -> str:
    step = graph.steps[index]
    kind = "finally · " if step.section == "finally" else ""
    return f"{kind}{step.mode.value} · {step.phase}"


# ----- text formats ---------------------------------------------------------------------------
def mermaid(graph: WorkflowGraph) -> str:
    """A Mermaid flowchart: a subgraph per step, a class per phase."""
    ids = {key: f"n{i}" for i, key in enumerate(graph.nodes)}

    def text(value: str) -> str:
        return '"' + value.replace('"', "#quot;") + '"'

    lines = ["flowchart LR"]
    for index, step in enumerate(graph.steps):
        lines.append(f"  subgraph s{index}[{text(_step_title(graph, index))}]")
        lines += [f"    {ids[key]}[{text(graph.nodes[key].label)}]" for key in step.nodes]
        lines.append("  end")
    for edge in graph.edges:
        arrow = "-.->" if edge.kind is EdgeKind.STEP else "-->"
        label = f"|{text(edge.label)}|" if edge.label else ""
        lines.append(f"  {ids[edge.source]} {arrow}{label} {ids[edge.target]}")
    phases = sorted({node.phase for node in graph.nodes.values()})
    for phase in phases:
        c = colour(phase)
        lines.append(f"  classDef {phase} fill:{c.fill},stroke:{c.stroke},color:{c.text}")
    for phase in phases:
        members = ",".join(ids[k] for k, node in graph.nodes.items() if node.phase == phase)
        lines.append(f"  class {members} {phase}")
    return "\n".join(lines) + "\n"


def dot(graph: WorkflowGraph) -> str:
    """Graphviz dot: a cluster per step, nodes filled by phase."""

    def text(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [
        f"digraph {text(graph.name or 'workflow')} {{",
        "  rankdir=LR;",
        f"  label={text(_title(graph))}; labelloc=t; fontname=Helvetica;",
        '  node [shape=box, style="rounded,filled", fontname=Helvetica];',
        "  edge [fontname=Helvetica, fontsize=10];",
    ]
    for index, step in enumerate(graph.steps):
        lines.append(f"  subgraph cluster_{index} {{")
        lines.append(f"    label={text(_step_title(graph, index))};")
        lines.append(f'    style="rounded,filled"; fillcolor="{STEP_COLOUR.fill}";')
        lines.append(f'    color="{STEP_COLOUR.stroke}";')
        for key in step.nodes:
            node = graph.nodes[key]
            c = colour(node.phase)
            lines.append(
                f'    {text(key)} [label={text(node.label)}, fillcolor="{c.fill}", '
                f'color="{c.stroke}", fontcolor="{c.text}"];'
            )
        lines.append("  }")
    for edge in graph.edges:
        attributes = [f"tooltip={text(edge.kind.value)}"]
        if edge.kind is EdgeKind.STEP:
            attributes.append(f'style=dashed, color="{STEP_EDGE_COLOUR}"')
        if edge.label:
            attributes.append(f"label={text(edge.label)}")
        lines.append(f"  {text(edge.source)} -> {text(edge.target)} [{', '.join(attributes)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _title(graph: WorkflowGraph) -> str:
    return f"workflow {graph.name} · {graph.phase}" if graph.name else f"workflow · {graph.phase}"


# ----- the shared layout ----------------------------------------------------------------------
MARGIN, HEADER = 20, 30
NODE_H, ROW_GAP, COL_GAP = 34, 12, 56
PAD, STEP_TITLE, STEP_GAP = 12, 34, 16
CHAR_W, SMALL_W, FONT_SIZE = 7.4, 6.2, 13
LEGEND_H = 34


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float


@dataclass(frozen=True)
class Layout:
    width: float
    height: float
    nodes: dict[str, Box]
    steps: list[Box]
    legend: list[tuple[str, float]]
    """(phase, x) of the legend's entries, at the picture's bottom."""


def layout(graph: WorkflowGraph) -> Layout:
    layer_of = {node.id: i for i, layer in enumerate(graph.layers()) for node in layer}
    # Wide enough for every task's label and every step's two title lines; the gap between
    # columns fits the edges' labels.
    wanted = [len(node.label) * CHAR_W + 24 for node in graph.nodes.values()]
    wanted += [len(step.name) * CHAR_W - 2 * PAD + 8 for step in graph.steps]
    wanted += [len(_step_detail(graph, i)) * SMALL_W - 2 * PAD + 8 for i in range(len(graph.steps))]
    node_w = min(260.0, max([110.0, *wanted]))
    gap = max([COL_GAP, *(len(edge.label) * SMALL_W + 24 for edge in graph.edges)])
    pitch = node_w + gap
    nodes: dict[str, Box] = {}
    steps: list[Box] = []
    placed: list[tuple[int, int, float, float]] = []  # layers lo..hi, top, bottom
    for step in graph.steps:
        by_layer: dict[int, list[str]] = {}
        for key in step.nodes:
            by_layer.setdefault(layer_of[key], []).append(key)
        lo, hi = min(by_layer), max(by_layer)
        rows = max(len(keys) for keys in by_layer.values())
        height = STEP_TITLE + 2 * PAD + rows * NODE_H + (rows - 1) * ROW_GAP
        beside = [(t, b) for (first, last, t, b) in placed if first <= hi and lo <= last]
        top = min(
            c
            for c in [MARGIN + HEADER] + [b + STEP_GAP for _, b in beside]
            if all(c >= b + STEP_GAP or c + height + STEP_GAP <= t for t, b in beside)
        )
        placed.append((lo, hi, top, top + height))
        steps.append(Box(MARGIN + lo * pitch, top, (hi - lo) * pitch + node_w + 2 * PAD, height))
        for layer, keys in by_layer.items():
            first = top + STEP_TITLE + PAD + (rows - len(keys)) * (NODE_H + ROW_GAP) / 2
            for row, key in enumerate(keys):
                y = first + row * (NODE_H + ROW_GAP)
                nodes[key] = Box(MARGIN + PAD + layer * pitch, y, node_w, NODE_H)
    columns = max(layer_of.values(), default=0) + 1
    width = 2 * MARGIN + columns * pitch - gap + 2 * PAD
    bottom = max((b for *_, b in placed), default=MARGIN + HEADER)
    legend, x = [], float(MARGIN)
    for phase in PHASE_COLOURS:
        if any(node.phase == phase for node in graph.nodes.values()):
            legend.append((phase, x))
            x += 14 + 6 + len(phase) * CHAR_W + 18
    width = max(width, x + MARGIN, MARGIN * 2 + len(_title(graph)) * CHAR_W * 1.1)
    return Layout(width, bottom + LEGEND_H + MARGIN, nodes, steps, legend)


def _curve(edge: Edge, where: Layout) -> tuple[tuple[float, float], ...]:
    """The edge's cubic Bézier: start, two control points, end."""
    a, b = where.nodes[edge.source], where.nodes[edge.target]
    x1, y1, x2, y2 = a.x + a.w, a.y + a.h / 2, b.x, b.y + b.h / 2
    bend = max(24.0, abs(x2 - x1) / 2)
    return (x1, y1), (x1 + bend, y1), (x2 - bend, y2), (x2, y2)


def _points(
    curve: tuple[tuple[float, float], ...], steps: int = 24
) -> Iterator[tuple[float, float]]:
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = curve
    for i in range(steps + 1):
        t = i / steps
        u = 1 - t
        yield (
            u**3 * x0 + 3 * u * u * t * x1 + 3 * u * t * t * x2 + t**3 * x3,
            u**3 * y0 + 3 * u * u * t * y1 + 3 * u * t * t * y2 + t**3 * y3,
        )


def _dashes(
    points: list[tuple[float, float]], on: float, off: float
) -> Iterator[list[tuple[float, float]]]:
    """The polyline cut into dashes `on` long with gaps `off` long."""
    piece, drawing, left = [points[0]], True, on
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        length = ((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5
        done = 0.0
        while length - done > left:
            done += left
            point = (x0 + (x1 - x0) * done / length, y0 + (y1 - y0) * done / length)
            if drawing:
                yield [*piece, point]
            piece, drawing, left = [point], not drawing, off if drawing else on
        left -= length - done
        piece.append((x1, y1))
    if drawing and len(piece) > 1:
        yield piece


def _fit(text: str, width: float) -> str:
    room = max(3, int(width / CHAR_W))
    return text if len(text) <= room else text[: room - 1] + "…"


# ----- SVG ------------------------------------------------------------------------------------
def svg(graph: WorkflowGraph) -> str:
    """An SVG picture; each task is a `<g class="node" data-task=CHILD-TASK-NAME>`."""
    where = layout(graph)
    w, h = round(where.width), round(where.height)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" font-family="Helvetica, Arial, sans-serif" '
        f'font-size="{FONT_SIZE}">',
        "<defs>",
        *(
            f'<marker id="{name}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
            f'markerHeight="8" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{fill}"/></marker>'
            for name, fill in (("arrow", EDGE_COLOUR), ("arrow-step", STEP_EDGE_COLOUR))
        ),
        "</defs>",
        f'<rect width="{w}" height="{h}" fill="#ffffff"/>',
        f'<text x="{MARGIN}" y="{MARGIN + 14}" font-size="15" font-weight="bold">'
        f"{escape(_title(graph))}</text>",
    ]
    for index, (step, box) in enumerate(zip(graph.steps, where.steps, strict=True)):
        out.append(
            f'<g class="step" data-step="{escape(step.name)}">'
            f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.w:.1f}" height="{box.h:.1f}" '
            f'rx="8" fill="{STEP_COLOUR.fill}" stroke="{STEP_COLOUR.stroke}"/>'
            f'<text x="{box.x + PAD:.1f}" y="{box.y + 16:.1f}" font-size="13" font-weight="bold" '
            f'fill="{STEP_COLOUR.text}">{escape(_fit(step.name, box.w - 2 * PAD))}</text>'
            f'<text x="{box.x + PAD:.1f}" y="{box.y + 29:.1f}" font-size="11" '
            f'fill="{STEP_COLOUR.text}">{escape(_step_detail(graph, index))}</text></g>'
        )
    for edge in graph.edges:
        (x0, y0), (x1, y1), (x2, y2), (x3, y3) = curve = _curve(edge, where)
        step_wait = edge.kind is EdgeKind.STEP
        stroke = STEP_EDGE_COLOUR if step_wait else EDGE_COLOUR
        dash = ' stroke-dasharray="5,4"' if step_wait else ""
        marker = "arrow-step" if step_wait else "arrow"
        out.append(
            f'<g class="edge" data-source="{escape(edge.source)}" '
            f'data-target="{escape(edge.target)}" data-kind="{edge.kind.value}">'
            f'<path d="M{x0:.1f},{y0:.1f} C{x1:.1f},{y1:.1f} {x2:.1f},{y2:.1f} {x3:.1f},{y3:.1f}" '
            f'fill="none" stroke="{stroke}" stroke-width="1.5"{dash} marker-end="url(#{marker})"/>'
        )
        if edge.label:
            mx, my = list(_points(curve, 2))[1]
            out.append(
                f'<text x="{mx:.1f}" y="{my - 4:.1f}" font-size="10" text-anchor="middle" '
                f'fill="{EDGE_COLOUR}" stroke="#ffffff" stroke-width="3" paint-order="stroke">'
                f"{escape(edge.label)}</text>"
            )
        out.append("</g>")
    for key, node in graph.nodes.items():
        box, c = where.nodes[key], colour(node.phase)
        out.append(
            f'<g class="node" data-task="{escape(node.child or node.task)}" '
            f'data-step="{escape(node.step)}" data-phase="{escape(node.phase)}">'
            f"<title>{escape(f'{node.child or node.task}: {node.phase}')}</title>"
            f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.w:.1f}" height="{box.h:.1f}" '
            f'rx="6" fill="{c.fill}" stroke="{c.stroke}" stroke-width="1.5"/>'
            f'<text x="{box.x + box.w / 2:.1f}" y="{box.y + box.h / 2 + 4.5:.1f}" '
            f'text-anchor="middle" fill="{c.text}">{escape(_fit(node.label, box.w - 12))}</text>'
            "</g>"
        )
    out.append('<g class="legend">')
    y = where.height - MARGIN - LEGEND_H / 2
    for phase, x in where.legend:
        c = colour(phase)
        out.append(
            f'<rect x="{x:.1f}" y="{y - 7:.1f}" width="14" height="14" rx="3" fill="{c.fill}" '
            f'stroke="{c.stroke}"/><text x="{x + 20:.1f}" y="{y + 4.5:.1f}">{phase}</text>'
        )
    out.append("</g>\n</svg>\n")
    return "\n".join(out)


# ----- PNG ------------------------------------------------------------------------------------
def png(graph: WorkflowGraph, scale: float = 2.0) -> bytes:
    """The SVG's picture as a PNG, drawn with Pillow (at `scale` pixels per SVG unit)."""
    where = layout(graph)
    image = Image.new("RGB", (round(where.width * scale), round(where.height * scale)), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=FONT_SIZE * scale)
    small = ImageFont.load_default(size=11 * scale)
    bold = ImageFont.load_default(size=15 * scale)

    def s(box: Box) -> tuple[float, float, float, float]:
        return box.x * scale, box.y * scale, (box.x + box.w) * scale, (box.y + box.h) * scale

    def fitted(text: str, width: float, face: ImageFont.ImageFont | ImageFont.FreeTypeFont) -> str:
        while len(text) > 1 and draw.textlength(text, font=face) > width * scale:
            text = text[:-2] + "…"
        return text

    draw.text((MARGIN * scale, MARGIN * scale), _title(graph), fill="#1a202c", font=bold)
    for index, (step, box) in enumerate(zip(graph.steps, where.steps, strict=True)):
        draw.rounded_rectangle(
            s(box), 8 * scale, fill=STEP_COLOUR.fill, outline=STEP_COLOUR.stroke, width=2
        )
        left = (box.x + PAD) * scale
        name = fitted(step.name, box.w - 2 * PAD, font)
        draw.text((left, (box.y + 16) * scale), name, STEP_COLOUR.text, font, anchor="ls")
        detail = _step_detail(graph, index)
        draw.text((left, (box.y + 29) * scale), detail, STEP_COLOUR.text, small, anchor="ls")
    for edge in graph.edges:
        step_wait = edge.kind is EdgeKind.STEP
        stroke = STEP_EDGE_COLOUR if step_wait else EDGE_COLOUR
        curve = _curve(edge, where)
        points: list[tuple[float, float]] = []
        for x, y in _points(curve):  # whole pixels: a wide line of fractional pieces is ragged
            point = (round(x * scale), round(y * scale))
            if not points or point != points[-1]:
                points.append(point)
        for piece in _dashes(points, 5 * scale, 4 * scale) if step_wait else [points]:
            draw.line(piece, fill=stroke, width=max(1, round(1.5 * scale)))
        (ax, ay), (bx, by) = points[-2], points[-1]
        length = max(((bx - ax) ** 2 + (by - ay) ** 2) ** 0.5, 1e-6)
        dx, dy = (bx - ax) / length * 9 * scale, (by - ay) / length * 9 * scale
        draw.polygon(
            [(bx, by), (bx - dx - dy / 2, by - dy + dx / 2), (bx - dx + dy / 2, by - dy - dx / 2)],
            fill=stroke,
        )
        if edge.label:
            mx, my = list(_points(curve, 2))[1]
            draw.text(
                (mx * scale, (my - 4) * scale),
                edge.label,
                EDGE_COLOUR,
                small,
                anchor="ms",
                stroke_width=round(1.5 * scale),
                stroke_fill="#ffffff",
            )
    for key, node in graph.nodes.items():
        box, c = where.nodes[key], colour(node.phase)
        draw.rounded_rectangle(s(box), 6 * scale, fill=c.fill, outline=c.stroke, width=3)
        label = fitted(node.label, box.w - 12, font)
        centre = ((box.x + box.w / 2) * scale, (box.y + box.h / 2) * scale)
        draw.text(centre, label, c.text, font, anchor="mm")
    y = where.height - MARGIN - LEGEND_H / 2
    for phase, x in where.legend:
        c = colour(phase)
        swatch = Box(x, y - 7, 14, 14)
        draw.rounded_rectangle(s(swatch), 3 * scale, fill=c.fill, outline=c.stroke, width=2)
        draw.text(((x + 20) * scale, y * scale), phase, "#1a202c", font, anchor="lm")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


TEXT_FORMATS = {"mermaid": mermaid, "dot": dot, "svg": svg}
FORMATS = (*TEXT_FORMATS, "png")
