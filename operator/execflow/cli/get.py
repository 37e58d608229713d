"""`execflow get KIND [NAME]`: execflow objects as a table, a tree, YAML or JSON.

A list is a table like `kubectl get`'s; one Task is its summary (phase, reason, attempts, result);
one Workflow is a tree of its steps and tasks with phase, duration, attempts and reason. JSON and
YAML print the objects as the API server returns them (a list as a `kind: List`).
"""

from __future__ import annotations

import argparse
import datetime
from typing import Any

from rich.table import Table

from execflow.cli import common, kinds, views
from execflow.kube.client import Kube


def add_parser(commands: Any) -> None:
    get = commands.add_parser(
        "get",
        help="show tasks, workflows (as a tree), result sets or tools",
        description=__doc__,
    )
    get.add_argument(
        "kind", choices=kinds.CHOICES, metavar="KIND", help="task|workflow|resultset|tool"
    )
    get.add_argument("name", nargs="?", default=None, help="one object (default: all)")
    get.add_argument("-l", "--selector", default="", help="label selector, as kubectl's")
    common.add_target(get, all_namespaces=True)
    common.add_output(get)
    get.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    kind = kinds.BY_ALIAS[args.kind]
    form = common.output_format(args)

    async def work(kube: Kube, target: common.Target) -> int:
        now = datetime.datetime.now(datetime.UTC)
        if args.name is not None:
            if target.namespace is None:
                raise common.CommandError("a name needs a namespace: use -n, not -A")
            body = await kube.get(kind.resource, target.namespace, args.name)
            _show_one(kind.name, body, form, now)
            return 0
        bodies = await kube.list(kind.resource, target.namespace, label_selector=args.selector)
        bodies.sort(
            key=lambda body: (body["metadata"].get("namespace", ""), body["metadata"]["name"])
        )
        if form != "table":
            common.print_data({"apiVersion": "v1", "kind": "List", "items": bodies}, form)
            return 0
        if not bodies:
            common.say(f"no {kind.name} objects in {target.where}")
            return 0
        headers, rows = views.rows(kind.name, bodies, now, namespaces=target.namespace is None)
        common.print_table(headers, rows)
        return 0

    return common.run(args, work)


def _show_one(kind: str, body: Any, form: str, now: datetime.datetime) -> None:
    if form != "table":
        common.print_data(body, form)
        return
    out = common.console()
    if kind == "Workflow":
        out.print(views.workflow_tree(body, now))
    elif kind == "Task":
        table = Table(box=None, show_header=False, pad_edge=False)
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        for field, value in views.task_summary(body, now):
            table.add_row(field, value)
        out.print(table)
    else:
        headers, rows = views.rows(kind, [body], now, namespaces=False)
        common.print_table(headers, rows)
