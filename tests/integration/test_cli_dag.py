"""`execflow dag` as a user runs it: a real workflow, run to the end by the real operator, drawn
as SVG and PNG from the cluster; a file drawn offline; a PNG refused on a terminal.

The pictures are kept in build/test-artefacts/ for a person to look at, and checked here: the SVG
has one task box per child Task the workflow made (found by label, as a user would), each in the
Completed colour, and edges for what waited for what; the PNG is an image Pillow reads.
"""

from __future__ import annotations

import os
import pty
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

from kubernetes import client
from PIL import Image

from execflow.cli.pictures import PHASE_COLOURS
from tests.integration.cli import EXECFLOW, execflow
from tests.integration.objects import children_of, create_workflow
from tests.integration.operator_process import OperatorProcess
from tests.integration.workflows import sim, wait_workflow

ROOT = Path(__file__).resolve().parents[2]
ARTEFACTS = ROOT / "build" / "test-artefacts"
DIAMOND = ROOT / "examples" / "workflow-diamond.yaml"
SVG = "{http://www.w3.org/2000/svg}"
COMPLETED = PHASE_COLOURS["Completed"]


def test_dag_draws_a_finished_workflow_from_the_cluster(
    api: client.ApiClient, kubeconfig: Path, namespace: str, operator: OperatorProcess
) -> None:
    create_workflow(
        api,
        namespace,
        "drawn",
        steps=[
            {"name": "prepare", "tasks": [sim("fetch"), sim("clean")]},
            {
                "name": "train",
                "executionMode": "Parallel",
                "tasks": [sim("train", forEach="[1, 2, 3]"), sim("baseline")],
            },
        ],
        **{"finally": [{"name": "notify", "tasks": [sim("notify")]}]},
    )
    wait_workflow(api, namespace, "drawn", {"Completed"})
    children = set(children_of(api, namespace, "drawn"))
    assert children == {
        "drawn-fetch",
        "drawn-clean",
        "drawn-train-0",
        "drawn-train-1",
        "drawn-train-2",
        "drawn-baseline",
        "drawn-notify",
    }
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    svg_path, png_path = ARTEFACTS / "dag-workflow.svg", ARTEFACTS / "dag-workflow.png"
    for path, form in ((svg_path, "svg"), (png_path, "png")):
        path.unlink(missing_ok=True)
        done = execflow(
            kubeconfig, "dag", "workflow", "drawn", "-n", namespace, "--format", form,
            "--out", str(path),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert f"wrote {path}" in done.stderr

    root = ET.parse(svg_path).getroot()
    groups = root.findall(f"{SVG}g")
    nodes = [g for g in groups if g.get("class") == "node"]
    assert sorted(g.get("data-task") or "" for g in nodes) == sorted(children)
    for node in nodes:
        rect = node.find(f"{SVG}rect")
        assert rect is not None
        assert (node.get("data-phase"), rect.get("fill"), rect.get("stroke")) == (
            "Completed",
            COMPLETED.fill,
            COMPLETED.stroke,
        )
    steps = [g.get("data-step") for g in groups if g.get("class") == "step"]
    assert steps == ["prepare", "train", "notify"]
    edges = {
        (g.get("data-source"), g.get("data-target"), g.get("data-kind"))
        for g in groups
        if g.get("class") == "edge"
    }
    assert edges == {
        ("fetch", "clean", "sequence"),
        *(("clean", item, "step") for item in ("train#0", "train#1", "train#2", "baseline")),
        *((item, "notify", "step") for item in ("train#0", "train#1", "train#2", "baseline")),
    }

    with Image.open(png_path) as image:
        image.verify()
    with Image.open(png_path) as image:
        assert image.format == "PNG"
        width, height = image.size
        assert 600 <= width <= 6000 and 200 <= height <= 3000
        # Every box is filled with the Completed colour: it covers a real share of the picture.
        filled = image.convert("RGB").getcolors(maxcolors=width * height) or []
        green = tuple(int(COMPLETED.fill[i : i + 2], 16) for i in (1, 3, 5))
        assert sum(count for count, rgb in filled if rgb == green) > width * height // 50


def test_dag_draws_a_file_offline_as_mermaid() -> None:
    # A kubeconfig that does not exist: drawing a file needs no cluster.
    done = execflow(
        Path("/nonexistent/kubeconfig"),
        "dag", "-f", str(DIAMOND), "--format", "mermaid",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "flowchart LR"
    assert '  subgraph s0["dag (Hybrid · Pending)"]' in lines
    ids = {label: node for node, label in (line.strip()[:-2].split('["') for line in lines[2:6])}
    assert set(ids) == {"merge", "fetch", "clean", "validate"}
    arrows = {line.strip() for line in lines if "-->" in line}
    assert arrows == {
        f"{ids['fetch']} --> {ids['clean']}",
        f"{ids['fetch']} --> {ids['validate']}",
        f"{ids['clean']} --> {ids['merge']}",
        f"{ids['validate']} --> {ids['merge']}",
    }
    assert "classDef Pending fill:" + PHASE_COLOURS["Pending"].fill in done.stdout


def test_dag_refuses_to_write_a_png_to_a_terminal() -> None:
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [*EXECFLOW, "dag", "-f", str(DIAMOND), "--format", "png"],
            stdout=follower,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(follower)
        os.close(leader)
    assert done.returncode == 1
    assert "a PNG is binary: write it to a file with --out FILE.png" in done.stderr
