"""`execflow submit -f FILE [--watch]`: create the objects of YAML files, then follow them.

Like `kubectl create -f`: every document of every file (`-` is stdin) is created in order, in its
own namespace or the chosen one; a name that exists already is an error, so a submission never
silently reuses an old run (use `metadata.generateName` for a new name each time). With `--watch`,
a submitted Workflow is followed in the live view of `execflow watch`, and submitted Tasks until
each has ended; the exit code is then the outcome (see `common.OUTCOME_EXIT`), the worst of them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from execflow.cli import common, kinds, watch
from execflow.kube.client import TASKS, WORKFLOWS, Kube, Resource

GROUP = "execflow.dev/"


def add_parser(commands: Any) -> None:
    submit = commands.add_parser(
        "submit",
        help="create tasks, workflows, tools or result sets from YAML",
        description=__doc__,
    )
    submit.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        help="YAML file, - for stdin (repeatable)",
    )
    submit.add_argument(
        "-w", "--watch", action="store_true", help="follow what was submitted until it ends"
    )
    submit.add_argument(
        "--interval", type=float, default=1.0, help="with --watch: seconds between reads"
    )
    common.add_target(submit)
    submit.set_defaults(handler=run)


def load(paths: list[str]) -> list[dict[str, Any]]:
    """Every document of the files, checked to be an execflow object."""
    documents = []
    for path in paths:
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
            found = [doc for doc in yaml.safe_load_all(text) if doc is not None]
        except OSError as error:
            raise common.CommandError(f"{path}: {error.strerror}") from None
        except yaml.YAMLError as error:
            raise common.CommandError(f"{path}: not YAML: {error}") from None
        for index, document in enumerate(found):
            where = f"{path} (document {index + 1})"
            if not isinstance(document, dict):
                raise common.CommandError(f"{where}: not an object")
            api_version = str(document.get("apiVersion") or "")
            kind = document.get("kind")
            if not api_version.startswith(GROUP) or kind not in kinds.BY_NAME:
                raise common.CommandError(
                    f"{where}: {kind or 'an object without kind'} of "
                    f"{api_version or 'no apiVersion'} is not an execflow object "
                    "(Tool, Task, Workflow or ResultSet of execflow.dev)"
                )
            documents.append(document)
    if not documents:
        raise common.CommandError("nothing to submit: the files hold no documents")
    return documents


def run(args: argparse.Namespace) -> int:
    try:
        documents = load(args.filename)
    except common.CommandError as error:
        common.say(f"execflow: {error}")
        return common.FAILED

    async def work(kube: Kube, target: common.Target) -> int:
        assert target.namespace is not None
        created = []
        for document in documents:
            kind = kinds.BY_NAME[document["kind"]]
            namespace = _namespace(document, target.namespace, explicit=args.namespace)
            body = await kube.create(kind.resource, namespace, document, existing_ok=False)
            name = str(body["metadata"]["name"])
            print(f"{kind.name.lower()}.execflow.dev/{name} created", flush=True)
            created.append((kind.name, namespace, name))
        if not args.watch:
            return 0
        return await _follow(kube, created, args.interval)

    return common.run(args, work)


def _namespace(document: Mapping[str, Any], chosen: str, *, explicit: str | None) -> str:
    written = (document.get("metadata") or {}).get("namespace")
    if written and explicit and written != explicit:
        raise common.CommandError(
            f"{document['kind']} {document['metadata'].get('name', '')} says namespace "
            f"{written}, but -n says {explicit}"
        )
    return str(written or chosen)


async def _follow(kube: Kube, created: list[tuple[str, str, str]], interval: float) -> int:
    workflows = [(ns, name) for kind, ns, name in created if kind == "Workflow"]
    tasks = [(ns, name) for kind, ns, name in created if kind == "Task"]
    if len(workflows) == 1 and not tasks:
        return await watch.follow(kube, *workflows[0], interval)
    codes = await asyncio.gather(
        *(_follow_workflow(kube, ns, name, interval) for ns, name in workflows),
        *(_follow_task(kube, ns, name, interval) for ns, name in tasks),
    )
    return max(codes, default=0)


async def _follow_workflow(kube: Kube, namespace: str, name: str, interval: float) -> int:
    return await _until_ended(kube, WORKFLOWS, (namespace, name), interval)


async def _follow_task(kube: Kube, namespace: str, name: str, interval: float) -> int:
    return await _until_ended(kube, TASKS, (namespace, name), interval)


async def _until_ended(
    kube: Kube, resource: Resource, key: tuple[str, str], interval: float
) -> int:
    """One line per phase change of one object; its outcome's exit code when it ends."""
    namespace, name = key
    label = resource.plural.rstrip("s")
    seen = ""
    while True:
        status = (await kube.get(resource, namespace, name)).get("status") or {}
        phase = str(status.get("phase") or "")
        if phase and phase != seen:
            seen = phase
            reason = status.get("reason") or ""
            message = (status.get("message") or "") if phase in kinds.TERMINAL else ""
            detail = f" ({reason})" if reason else ""
            print(
                f"{label} {name} {phase}{detail}" + (f": {message}" if message else ""), flush=True
            )
        if phase in kinds.TERMINAL:
            return common.OUTCOME_EXIT[phase]
        await asyncio.sleep(interval)
