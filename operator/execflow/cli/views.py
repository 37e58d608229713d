"""How execflow objects read on a terminal: list rows, a Task's summary and a Workflow's tree.

Pure functions of the objects as the API server returns them (plain dicts) and the current time,
shared by `get`, `watch` and `submit --watch`, so every verb shows an object the same way.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from rich.text import Text
from rich.tree import Tree

from execflow.cli.common import age

Body = Mapping[str, Any]

PHASE_STYLE = {
    "Completed": "green",
    "Ready": "green",
    "Running": "blue",
    "Collecting": "blue",
    "Queued": "yellow",
    "Pending": "yellow",
    "Paused": "magenta",
    "Failed": "red",
    "Timeout": "red",
    "Cancelled": "bright_black",
    "Skipped": "bright_black",
    "Expired": "bright_black",
}


def when(text: Any) -> datetime.datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def span(start: Any, end: Any, now: datetime.datetime) -> str:
    """How long something ran (until `end`, or until now while it runs); blank if not started."""
    began = when(start)
    if began is None:
        return ""
    return age(((when(end) or now) - began).total_seconds())


def phase_text(phase: str) -> Text:
    return Text(phase or "-", style=PHASE_STYLE.get(phase, ""))


def _status(body: Body) -> Mapping[str, Any]:
    return body.get("status") or {}


def _meta(body: Body) -> Mapping[str, Any]:
    return body.get("metadata") or {}


def _created(body: Body, now: datetime.datetime) -> str:
    created = when(_meta(body).get("creationTimestamp"))
    return "" if created is None else age((now - created).total_seconds())


def rows(
    kind: str, bodies: Iterable[Body], now: datetime.datetime, *, namespaces: bool
) -> tuple[list[str], list[list[str]]]:
    """The columns `get KIND` prints for a list of objects of one kind."""
    headers, cells = _COLUMNS[kind]
    table = []
    for body in bodies:
        row = [str(_meta(body).get("name", "")), *cells(body, now)]
        if namespaces:
            row.insert(0, str(_meta(body).get("namespace", "")))
        table.append(row)
    return (["NAMESPACE", *headers] if namespaces else list(headers)), table


def _task_cells(body: Body, now: datetime.datetime) -> list[str]:
    status = _status(body)
    return [
        str(status.get("phase") or ""),
        str(status.get("reason") or ""),
        str(status.get("attempts") or 0),
        span(status.get("startTime"), status.get("completionTime"), now),
        _created(body, now),
    ]


def _workflow_cells(body: Body, now: datetime.datetime) -> list[str]:
    status = _status(body)
    return [
        str(status.get("phase") or ""),
        str(status.get("progress") or ""),
        str(status.get("reason") or ""),
        span(status.get("startedAt"), status.get("finishedAt"), now),
        _created(body, now),
    ]


def _result_set_cells(body: Body, now: datetime.datetime) -> list[str]:
    status = _status(body)
    storage = (status.get("storage") or {}).get("type") or (body.get("spec") or {}).get(
        "storage", {}
    ).get("type", "")
    return [
        str(status.get("phase") or ""),
        str(status.get("count") or 0),
        str(storage or ""),
        str(status.get("reason") or ""),
        _created(body, now),
    ]


def _tool_cells(body: Body, now: datetime.datetime) -> list[str]:
    spec = body.get("spec") or {}
    return [str(spec.get("image") or ""), str(spec.get("description") or ""), _created(body, now)]


Cells = Callable[[Body, datetime.datetime], list[str]]


_COLUMNS: dict[str, tuple[Sequence[str], Cells]] = {
    "Task": (("NAME", "PHASE", "REASON", "ATTEMPTS", "DURATION", "AGE"), _task_cells),
    "Workflow": (
        ("NAME", "PHASE", "PROGRESS", "REASON", "DURATION", "AGE"),
        _workflow_cells,
    ),
    "ResultSet": (
        ("NAME", "PHASE", "ITEMS", "STORAGE", "REASON", "AGE"),
        _result_set_cells,
    ),
    "Tool": (("NAME", "IMAGE", "DESCRIPTION", "AGE"), _tool_cells),
}


def task_summary(body: Body, now: datetime.datetime) -> list[tuple[str, str]]:
    """A Task as field/value lines: what a user asks first (phase, why, how long, the result)."""
    status = _status(body)
    spec = body.get("spec") or {}
    tool = (spec.get("toolRef") or {}).get("name") or (spec.get("container") or {}).get("image")
    lines = [
        ("Task", f"{_meta(body).get('namespace', '')}/{_meta(body).get('name', '')}"),
        ("Tool", str(tool or "")),
        ("Phase", str(status.get("phase") or "")),
        ("Reason", str(status.get("reason") or "")),
        ("Message", str(status.get("message") or "")),
        (
            "Queue",
            f"{spec.get('queue') or 'default'} (priority {spec.get('priority') or 'Normal'})",
        ),
        ("Attempts", str(status.get("attempts") or 0)),
        ("Duration", span(status.get("startTime"), status.get("completionTime"), now)),
        ("Job", str(status.get("jobName") or "")),
    ]
    if status.get("exitCode") is not None:
        lines.append(("Exit code", str(status["exitCode"])))
    if status.get("cacheHit"):
        lines.append(("Cache", "hit"))
    if "result" in status:
        lines.append(("Result", json.dumps(status["result"], ensure_ascii=False)))
    if status.get("resultRef"):
        lines.append(("Result at", json.dumps(status["resultRef"], ensure_ascii=False)))
    return [(field, value) for field, value in lines if value]


def workflow_tree(body: Body, now: datetime.datetime) -> Tree:
    """Steps, then their tasks: phase, duration, attempts and reason on every line."""
    status = _status(body)
    meta = _meta(body)
    head = Text.assemble(
        (f"{meta.get('name', '')} ", "bold"),
        phase_text(str(status.get("phase") or "Pending")),
        f"  {status.get('progress') or ''}",
        f"  {span(status.get('startedAt'), status.get('finishedAt'), now)}",
        _reason(status),
    )
    tree = Tree(head)
    for step in status.get("steps") or []:
        retries = step.get("retries") or 0
        branch = tree.add(
            Text.assemble(
                (f"{step.get('name', '')} ", "bold"),
                phase_text(str(step.get("phase") or "Pending")),
                f"  {span(step.get('startedAt'), step.get('finishedAt'), now)}",
                f"  retries {retries}" if retries else "",
                _reason(step),
            )
        )
        for task in step.get("tasks") or []:
            branch.add(task_line(task, now))
    return tree


def task_line(task: Body, now: datetime.datetime) -> Text:
    name = str(task.get("name", ""))
    if task.get("index") is not None:
        name += f"[{task['index']}]"
    child = task.get("taskName") or ""
    attempts = task.get("attempts") or 0
    phase = str(task.get("phase") or "Pending")
    return Text.assemble(
        name,
        (f" ({child})" if child else "", "bright_black"),
        "  ",
        phase_text(phase),
        f"  {span(task.get('startedAt'), task.get('finishedAt'), now)}",
        f"  attempts {attempts}" if attempts else "",
        "" if task.get("reason") == phase else _reason(task),
    )


def _reason(status: Mapping[str, Any]) -> str:
    reason = status.get("reason") or ""
    return f"  {reason}" if reason else ""
