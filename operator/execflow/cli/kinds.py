"""The kinds users name on the command line, as kubectl accepts them (plural, singular, short)."""

from __future__ import annotations

from dataclasses import dataclass

from execflow.kube.client import RESULTSETS, TASKS, TOOLS, WORKFLOWS, Resource

TERMINAL = frozenset({"Completed", "Failed", "Cancelled", "Timeout"})


@dataclass(frozen=True)
class Kind:
    name: str
    resource: Resource
    aliases: tuple[str, ...]


KINDS = (
    Kind("Tool", TOOLS, ("tool", "tools", "tl")),
    Kind("Task", TASKS, ("task", "tasks", "tk")),
    Kind("Workflow", WORKFLOWS, ("workflow", "workflows", "wf")),
    Kind("ResultSet", RESULTSETS, ("resultset", "resultsets", "rs")),
)
BY_ALIAS = {alias: kind for kind in KINDS for alias in kind.aliases}
BY_NAME = {kind.name: kind for kind in KINDS}
CHOICES = tuple(alias for kind in KINDS for alias in kind.aliases)
