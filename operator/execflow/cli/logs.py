"""`execflow logs task NAME`: the container log of one attempt of a Task.

Each attempt runs as one Job whose pod carries the labels `execflow.dev/task` and
`execflow.dev/attempt`, so any attempt's log can be read for as long as its pod exists; by
default the latest attempt's. The log comes from the pods/log API, as `kubectl logs` reads it.
Once the Job is gone (deleted, or cleaned up by a TTL) its log is gone too: the command says so,
exits 1, and shows on stderr what the Task itself kept (phase, message, result).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from typing import Any

from execflow.api.task import TaskStatus
from execflow.cli.common import FAILED, CommandError, Target, add_target, run, say
from execflow.kube.client import PODS, TASKS, Kube
from execflow.kube.errors import ApiError
from execflow.kube.job_builder import ATTEMPT_LABEL, TASK_LABEL

POD_CHECK_SECONDS = 2.0
"""While following, how often the pod is read to see whether its container has ended."""
END_GRACE_SECONDS = 2.0
"""How long a followed log may still take to end by itself once its container has ended."""


def add_parser(commands: Any) -> None:
    logs = commands.add_parser("logs", help="print the container log of a task's attempt")
    kinds = logs.add_subparsers(dest="kind", required=True, metavar="KIND")
    task = kinds.add_parser(
        "task",
        help="the log of one attempt of a Task (default: the latest)",
        description=(
            "Print the container log of one attempt of a Task (default: the latest). "
            "Exit codes: 0 the log was printed; 1 it cannot be read (the task has not started, "
            "or the attempt's pod is gone: then the task's phase, message and result are shown "
            "on stderr instead); 2 no credentials."
        ),
    )
    task.add_argument("name", help="the Task")
    task.add_argument(
        "--attempt", type=_attempt, default=None, help="which attempt, from 1 (default: latest)"
    )
    task.add_argument(
        "--tail", type=int, default=-1, help="only the last N lines (default -1: all of it)"
    )
    task.add_argument(
        "-f", "--follow", action="store_true", help="keep printing until the container ends"
    )
    task.add_argument(
        "-c", "--container", default=None, help="container of the pod (default: its first)"
    )
    add_target(task)
    task.set_defaults(handler=_task)


def _attempt(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"an attempt is a number from 1, not {text!r}")
    return number


def _task(args: argparse.Namespace) -> int:
    return run(args, lambda kube, where: _print_log(kube, where, args))


async def _print_log(kube: Kube, target: Target, args: argparse.Namespace) -> int:
    namespace = target.namespace or "default"
    raw = await kube.get(TASKS, namespace, args.name)
    status = TaskStatus.model_validate(raw.get("status") or {})
    where = f"task {namespace}/{args.name}"
    attempt = args.attempt or status.attempts
    if attempt == 0:
        raise CommandError(f"{where} has not started an attempt yet ({_phase(status)})")
    if attempt > status.attempts:
        raise CommandError(f"{where} has no attempt {attempt} (it started {status.attempts})")
    selector = f"{TASK_LABEL}={args.name},{ATTEMPT_LABEL}={attempt}"
    pods = await kube.list(PODS, namespace, label_selector=selector)
    if not pods:
        say(
            f"execflow: the pod of attempt {attempt} of {where} is gone (its Job was deleted or "
            "cleaned up), and its log with it"
        )
        for line in task_context(status):
            say(f"  {line}")
        return FAILED
    # A Job starts one pod per attempt; if it was replaced (evicted), the newest is the one.
    pod = max(pods, key=lambda item: str(item["metadata"].get("creationTimestamp") or ""))
    name = str(pod["metadata"]["name"])
    if not pod.get("spec", {}).get("nodeName"):
        phase = pod.get("status", {}).get("phase") or "Pending"
        raise CommandError(f"pod {name} ({where}, attempt {attempt}) has no node yet ({phase})")
    container = args.container or str(pod["spec"]["containers"][0]["name"])
    try:
        if args.follow and not _ended(pod, container):
            await _follow(kube, namespace, name, container, args.tail)
        else:
            sys.stdout.write(
                await kube.pod_log(namespace, name, container=container, tail_lines=args.tail)
            )
    except ApiError as error:
        raise CommandError(
            f"cannot read the log of pod {name} ({where}, attempt {attempt}): {error.message}"
        ) from error
    sys.stdout.flush()
    return 0


async def _follow(kube: Kube, namespace: str, pod: str, container: str, tail: int) -> None:
    """Print the log as it grows until the container ends. A kubelet ends the stream itself
    then; a node that keeps it open (kwok's fake nodes do) is let go a moment after the pod
    says the container has ended."""

    async def copy() -> None:
        async for chunk in kube.follow_pod_log(
            namespace, pod, container=container, tail_lines=tail
        ):
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()

    reading = asyncio.ensure_future(copy())
    try:
        while not reading.done():
            await asyncio.wait({reading}, timeout=POD_CHECK_SECONDS)
            if not reading.done() and _ended(await kube.get(PODS, namespace, pod), container):
                await asyncio.wait({reading}, timeout=END_GRACE_SECONDS)
                break
    finally:
        if not reading.done():
            reading.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reading


def _ended(pod: dict[str, Any], container: str) -> bool:
    """Whether the container has terminated (or the whole pod has ended)."""
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return True
    for entry in status.get("containerStatuses") or []:
        if entry.get("name") == container:
            return "terminated" in (entry.get("state") or {})
    return False


def _phase(status: TaskStatus) -> str:
    reason = f", {status.reason}" if status.reason else ""
    return f"{status.phase.value}{reason}"


def task_context(status: TaskStatus) -> list[str]:
    """What a Task keeps of its attempts once their pods are gone, as lines for a person."""
    lines = [f"phase: {_phase(status)}" + (f": {status.message}" if status.message else "")]
    if status.exit_code is not None:
        lines.append(f"exit code: {status.exit_code}")
    if status.result is not None:
        lines.append(f"result: {json.dumps(status.result, ensure_ascii=False)}")
    if status.result_ref is not None:
        reference = status.result_ref.model_dump(mode="json", by_alias=True, exclude_none=True)
        lines.append(f"result stored at: {json.dumps(reference)}")
    return lines
