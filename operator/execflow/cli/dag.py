"""`execflow dag`: the picture of a workflow's steps and task dependencies, coloured by phase.

`dag workflow NAME` reads the Workflow from the cluster and colours each task by its phase;
`dag -f FILE` (also `dag workflow -f FILE`) draws a Workflow from a YAML file before it is
submitted, offline, every task Pending. Formats: Mermaid (the default) and Graphviz dot as text,
SVG and PNG as pictures; `--format` defaults to what `--out`'s suffix names. A PNG is binary, so
it is written to a file or a pipe, never to a terminal.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from execflow.cli.common import CommandError, Target, add_target, run, say
from execflow.cli.pictures import FORMATS, TEXT_FORMATS, png
from execflow.core.workflows.graph import GraphError, WorkflowGraph, workflow_graph
from execflow.kube.client import WORKFLOWS, Kube

KINDS = ("workflow", "workflows", "wf")
SUFFIXES = {".mmd": "mermaid", ".mermaid": "mermaid", ".dot": "dot", ".gv": "dot"}
SUFFIXES |= {".svg": "svg", ".png": "png"}


def add_parser(commands: Any) -> None:
    dag = commands.add_parser(
        "dag",
        help="draw a workflow's steps and task dependencies (mermaid, dot, svg, png)",
        description=(
            "Draw a workflow: one box per task (per item of a fan-out), grouped by step, "
            "arrows for what waits for what, coloured by phase. `dag workflow NAME` reads it "
            "from the cluster; `dag -f FILE` draws a file before it is submitted (offline, "
            "every task Pending)."
        ),
    )
    dag.add_argument("kind", nargs="?", choices=KINDS, help="what to draw: workflow")
    dag.add_argument("name", nargs="?", help="the Workflow's name")
    dag.add_argument(
        "-f",
        "--filename",
        default=None,
        help="draw the Workflow in this YAML file (- : stdin) instead; no cluster needed",
    )
    dag.add_argument(
        "--format",
        choices=FORMATS,
        default=None,
        help="mermaid, dot, svg or png (default: what --out's suffix names, else mermaid)",
    )
    dag.add_argument("--out", default="-", help="write to this file (default - : stdout)")
    add_target(dag)
    dag.set_defaults(handler=draw)


def draw(args: argparse.Namespace) -> int:
    form = args.format or SUFFIXES.get(Path(args.out).suffix.lower(), "mermaid")
    try:
        _check(args, form)
        if args.filename is not None:
            _write(_picture(workflow_graph(_from_file(args), with_status=False), form), args.out)
            return 0
    except (CommandError, GraphError) as error:
        say(f"execflow: {error}")
        return 1

    async def work(kube: Kube, where: Target) -> int:
        assert where.namespace is not None
        body = await kube.get(WORKFLOWS, where.namespace, args.name)
        try:
            graph = workflow_graph(body)
        except GraphError as error:
            raise CommandError(f"workflow {where.namespace}/{args.name}: {error}") from error
        _write(_picture(graph, form), args.out)
        return 0

    return run(args, work)


def _check(args: argparse.Namespace, form: str) -> None:
    if args.filename is None and (args.kind is None or args.name is None):
        raise CommandError("say what to draw: dag workflow NAME, or dag -f FILE")
    if form == "png" and args.out == "-" and sys.stdout.isatty():
        raise CommandError("a PNG is binary: write it to a file with --out FILE.png")


def _from_file(args: argparse.Namespace) -> Mapping[str, Any]:
    """The Workflow in the file (the one named NAME when it holds several)."""
    try:
        if args.filename == "-":
            documents = list(yaml.safe_load_all(sys.stdin))
        else:
            with open(args.filename, encoding="utf-8") as handle:
                documents = list(yaml.safe_load_all(handle))
    except (OSError, yaml.YAMLError) as error:
        raise CommandError(f"cannot read {args.filename}: {error}") from error
    workflows = [
        document
        for document in documents
        if isinstance(document, Mapping) and document.get("kind") == "Workflow"
    ]
    if args.name is not None:
        workflows = [w for w in workflows if (w.get("metadata") or {}).get("name") == args.name]
    if not workflows:
        named = f" named {args.name}" if args.name else ""
        raise CommandError(f"{args.filename} holds no Workflow{named}")
    if len(workflows) > 1:
        raise CommandError(f"{args.filename} holds several Workflows: name one (dag workflow NAME)")
    return workflows[0]


def _picture(graph: WorkflowGraph, form: str) -> str | bytes:
    return png(graph) if form == "png" else TEXT_FORMATS[form](graph)


def _write(picture: str | bytes, out: str) -> None:
    try:
        if out == "-":
            if isinstance(picture, bytes):
                sys.stdout.buffer.write(picture)
                sys.stdout.flush()
            else:
                sys.stdout.write(picture)
            return
        if isinstance(picture, bytes):
            Path(out).write_bytes(picture)
        else:
            Path(out).write_text(picture, encoding="utf-8")
    except OSError as error:
        raise CommandError(f"cannot write {out}: {error}") from error
    say(f"wrote {out}")
