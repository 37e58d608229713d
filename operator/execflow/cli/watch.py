"""`execflow watch workflow NAME`: a live view of a running workflow, ending with its outcome.

On a terminal the screen shows a progress bar for the whole workflow and one per step, the tasks in
flight and every failure with its reason and message as it happens. In a pipe (or a CI log) the
same facts come as one line per change. The command exits when the workflow ends, with its
outcome as exit code (see `common.OUTCOME_EXIT`): `watch` can gate a script.

The workflow is read once per interval (one GET of one object); a failed child's message is read
from the child Task once, when it fails.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rich.console import Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from execflow.cli import common, kinds, views
from execflow.kube.client import TASKS, WORKFLOWS, Kube
from execflow.kube.errors import NotFoundError

Body = Mapping[str, Any]
DONE = kinds.TERMINAL | {"Skipped"}
FAILED = frozenset({"Failed", "Timeout"})


def add_parser(commands: Any) -> None:
    watch = commands.add_parser(
        "watch", help="follow a workflow live until it ends", description=__doc__
    )
    watch.add_argument("kind", choices=("workflow", "wf"), metavar="workflow")
    watch.add_argument("name", help="the workflow")
    watch.add_argument(
        "--interval", type=float, default=1.0, help="seconds between reads (default 1)"
    )
    common.add_target(watch)
    watch.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    async def work(kube: Kube, target: common.Target) -> int:
        assert target.namespace is not None
        return await follow(kube, target.namespace, args.name, args.interval)

    return common.run(args, work)


async def follow(kube: Kube, namespace: str, name: str, interval: float) -> int:
    """Show the workflow until it ends; its outcome's exit code."""
    state = _Seen()
    live_view = sys.stdout.isatty()
    body = await kube.get(WORKFLOWS, namespace, name)
    live = Live(console=common.console(), auto_refresh=False) if live_view else None
    if live is not None:
        live.start()
    try:
        while True:
            await _learn_failures(kube, namespace, body, state)
            now = datetime.datetime.now(datetime.UTC)
            if live is not None:
                live.update(screen(body, state.messages, now), refresh=True)
            else:
                for line in state.changes(body):
                    print(line, flush=True)
            phase = str((body.get("status") or {}).get("phase") or "")
            if phase in kinds.TERMINAL:
                return common.OUTCOME_EXIT[phase]
            await asyncio.sleep(interval)
            body = await kube.get(WORKFLOWS, namespace, name)
    finally:
        if live is not None:
            live.stop()


@dataclass
class _Seen:
    """What was shown already: phases per unit (for change lines) and failed children's messages."""

    phases: dict[str, str] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)

    def changes(self, body: Body) -> list[str]:
        status = body.get("status") or {}
        lines = []
        for key, phase, detail in _units(status):
            if self.phases.get(key) != phase:
                self.phases[key] = phase
                message = self.messages.get(key.partition(" ")[2], "")
                lines.append(f"{key} {phase}{detail}" + (f": {message}" if message else ""))
        return lines


def _units(status: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(what, phase, detail) for the workflow, each step and each task, in display order."""
    units = []
    for step in status.get("steps") or []:
        units.append((f"step {step.get('name')}", str(step.get("phase") or "Pending"), ""))
        for task in step.get("tasks") or []:
            label = _task_label(task)
            reason = task.get("reason") or ""
            units.append((f"task {label}", str(task.get("phase") or "Pending"), _with(reason)))
    phase = str(status.get("phase") or "Pending")
    progress = status.get("progress") or ""
    detail = (f" {progress}" if progress else "") + _with(status.get("reason") or "")
    units.append(("workflow", phase, detail))
    return units


def _with(reason: str) -> str:
    return f" ({reason})" if reason else ""


def _task_label(task: Mapping[str, Any]) -> str:
    index = task.get("index")
    return f"{task.get('name')}[{index}]" if index is not None else str(task.get("name"))


async def _learn_failures(kube: Kube, namespace: str, body: Body, state: _Seen) -> None:
    """Read the message of each newly failed child Task once (the step status has its reason)."""
    for step in (body.get("status") or {}).get("steps") or []:
        for task in step.get("tasks") or []:
            label = _task_label(task)
            child = task.get("taskName")
            if task.get("phase") not in FAILED or not child or label in state.messages:
                continue
            try:
                found = await kube.get(TASKS, namespace, str(child))
            except NotFoundError:
                state.messages[label] = ""
                continue
            state.messages[label] = str((found.get("status") or {}).get("message") or "")


def _fraction(text: str) -> tuple[int, int]:
    done, _, total = text.partition("/")
    try:
        return int(done), int(total)
    except ValueError:
        return 0, 0


def screen(body: Body, messages: Mapping[str, str], now: datetime.datetime) -> Group:
    """The live view: the workflow's bar, a bar per step, tasks in flight, failures."""
    status = body.get("status") or {}
    name = str((body.get("metadata") or {}).get("name", ""))
    phase = str(status.get("phase") or "Pending")
    done, total = _fraction(str(status.get("progress") or ""))
    bars = Table(box=None, show_header=False, pad_edge=False)
    bars.add_column(no_wrap=True, style="bold")
    bars.add_column(no_wrap=True)
    bars.add_column(width=30)
    bars.add_column(no_wrap=True, justify="right")
    bars.add_column(no_wrap=True)
    elapsed = views.span(status.get("startedAt"), status.get("finishedAt"), now)
    bars.add_row(name, views.phase_text(phase), _bar(done, total), f"{done}/{total}", elapsed)
    running: list[Text] = []
    failures: list[Text] = []
    for step in status.get("steps") or []:
        tasks = step.get("tasks") or []
        finished = sum(1 for task in tasks if task.get("phase") in DONE)
        bars.add_row(
            f"  {step.get('name')}",
            views.phase_text(str(step.get("phase") or "Pending")),
            _bar(finished, len(tasks)),
            f"{finished}/{len(tasks)}",
            views.span(step.get("startedAt"), step.get("finishedAt"), now),
        )
        for task in tasks:
            if task.get("phase") == "Running":
                running.append(views.task_line(task, now))
            elif task.get("phase") in FAILED:
                line = views.task_line(task, now)
                message = messages.get(_task_label(task))
                if message:
                    line.append(f": {message}", style="red")
                failures.append(line)
    parts: list[Any] = [bars]
    if running:
        parts += [Text(f"\nIn flight ({len(running)})", style="bold"), *running]
    if failures:
        parts += [Text(f"\nFailures ({len(failures)})", style="bold red"), *failures]
    if phase in kinds.TERMINAL:
        reason = status.get("reason") or ""
        message = status.get("message") or ""
        ending = f"\nWorkflow {name} {phase}" + (f": {reason}" if reason else "")
        parts.append(Text(ending + (f" ({message})" if message else ""), style="bold"))
    return Group(*parts)


def _bar(done: int, total: int) -> ProgressBar:
    return ProgressBar(total=float(max(total, 1)), completed=float(done if total else 0), width=30)
