"""What every user-facing verb shares: kubectl's targeting flags, one connection, and output.

Verbs take `--kubeconfig`, `--context`, `-n/--namespace` and (where a list makes sense) `-A`,
meaning what they mean to kubectl. Output fits both a terminal and a pipe: tables sized to the
terminal when stdout is one, JSON when it is not (or with `-o json`); colours follow the terminal
and are off with NO_COLOR. Errors are one line on stderr and exit code 1 (2: no credentials).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import yaml
from rich.console import Console
from rich.table import Table

from execflow.kube.client import Kube
from execflow.kube.connection import Connection, CredentialsError, default_namespace
from execflow.kube.errors import ApiError, NotFoundError

T = TypeVar("T")

FAILED = 1
NO_CREDENTIALS = 2


class CommandError(Exception):
    """What went wrong, in words for the user; the verb exits 1 with it."""


@dataclass(frozen=True)
class Target:
    """Where a verb acts: the kubeconfig and context, and the namespace (None: all of them)."""

    kubeconfig: str | None
    context: str | None
    namespace: str | None

    @property
    def where(self) -> str:
        return self.namespace or "all namespaces"


def add_target(parser: argparse.ArgumentParser, *, all_namespaces: bool = False) -> None:
    """kubectl's flags for choosing a cluster and a namespace."""
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: KUBECONFIG)")
    parser.add_argument("--context", default=None, help="kubeconfig context (default: current)")
    parser.add_argument(
        "-n", "--namespace", default=None, help="namespace (default: the context's)"
    )
    if all_namespaces:
        parser.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")


def add_output(parser: argparse.ArgumentParser, *formats: str) -> None:
    parser.add_argument(
        "-o",
        "--output",
        choices=formats or ("table", "json", "yaml"),
        default=None,
        help="output format (default: table on a terminal, json in a pipe)",
    )


def target(args: argparse.Namespace) -> Target:
    if getattr(args, "all_namespaces", False):
        return Target(args.kubeconfig, args.context, None)
    namespace = args.namespace or default_namespace(args.kubeconfig, args.context)
    return Target(args.kubeconfig, args.context, namespace)


def output_format(args: argparse.Namespace) -> str:
    chosen: str | None = getattr(args, "output", None)
    if chosen:
        return chosen
    return "table" if sys.stdout.isatty() else "json"


PIPE_WIDTH = 1000
"""Lines written to a pipe are not folded: a script reads whole rows."""


def console(stderr: bool = False) -> Console:
    """A console sized to the terminal; rich itself honours NO_COLOR and non-terminals."""
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else PIPE_WIDTH
    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=width)


def say(message: str) -> None:
    """Progress and errors: stderr, so stdout stays what a script captures."""
    print(message, file=sys.stderr, flush=True)


def print_data(data: Any, form: str) -> None:
    if form == "yaml":
        sys.stdout.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    else:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def print_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for header in headers:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console().print(table)


def run(args: argparse.Namespace, work: Callable[[Kube, Target], Awaitable[int]]) -> int:
    """Connect as kubectl would, run `work`, and turn failures into a message and an exit code."""
    where = target(args)
    try:
        connection = Connection(where.kubeconfig, where.context)
    except CredentialsError as error:
        say(f"execflow: {error}")
        return NO_CREDENTIALS

    async def main() -> int:
        try:
            return await work(Kube.connect(connection), where)
        finally:
            await connection.close()

    try:
        return asyncio.run(main())
    except NotFoundError as error:
        say(f"execflow: not found: {error.message}")
    except ApiError as error:
        say(f"execflow: the API server refused: {error}")
    except CommandError as error:
        say(f"execflow: {error}")
    except KeyboardInterrupt:
        say("execflow: interrupted")
        return 130
    return FAILED


def age(seconds: float) -> str:
    """A duration as kubectl prints ages: 45s, 3m12s, 2h5m, 3d4h."""
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60}s" if whole < 600 else f"{whole // 60}m"
    if whole < 86400:
        return f"{whole // 3600}h{(whole % 3600) // 60}m"
    return f"{whole // 86400}d{(whole % 86400) // 3600}h"


OUTCOME_EXIT = {"Completed": 0, "Failed": 1, "Cancelled": 3, "Timeout": 124}
"""The exit code of a verb that waits for a Task or Workflow, by how it ended."""
