"""`execflow workflow suspend|resume|cancel NAME`: what a user does to a running workflow.

They are the same writes a user could make with kubectl, named for what they mean:
- `suspend` sets `spec.suspend` (running children are stopped, the workflow is Paused);
- `resume` clears `spec.suspend` for a paused workflow, and for a Failed, Cancelled or Timeout one
  resumes it from its checkpoint (a new value of the `execflow.dev/resume` annotation: completed
  tasks are kept, the rest run again);
- `cancel` sets `spec.cancel` (stopped for good: Cancelled).
"""

from __future__ import annotations

import argparse
import datetime
from typing import Any

from execflow.cli import common
from execflow.core.workflows.view import RESUME_ANNOTATION
from execflow.kube.client import WORKFLOWS, Kube

RESUMABLE = frozenset({"Failed", "Cancelled", "Timeout"})


def add_parser(commands: Any) -> None:
    workflow = commands.add_parser(
        "workflow", help="suspend, resume or cancel a workflow", description=__doc__
    )
    actions = workflow.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (
        ("suspend", "pause it: running tasks are stopped, nothing new starts"),
        ("resume", "un-pause it, or resume a failed/cancelled/timed-out one from its checkpoint"),
        ("cancel", "stop it for good"),
    ):
        parser = actions.add_parser(action, help=text)
        parser.add_argument("name", help="the workflow")
        common.add_target(parser)
        parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    async def work(kube: Kube, target: common.Target) -> int:
        assert target.namespace is not None
        body = await kube.get(WORKFLOWS, target.namespace, args.name)
        patch, said = _patch(args.action, body)
        await kube.patch(WORKFLOWS, target.namespace, args.name, patch, expect=body)
        print(f"workflow.execflow.dev/{args.name} {said}")
        return 0

    return common.run(args, work)


def _patch(action: str, body: Any) -> tuple[dict[str, Any], str]:
    spec = body.get("spec") or {}
    phase = (body.get("status") or {}).get("phase") or "Pending"
    if action == "suspend":
        if phase in RESUMABLE or phase == "Completed":
            raise common.CommandError(f"the workflow has ended ({phase}): nothing to suspend")
        return {"spec": {"suspend": True}}, "suspended"
    if action == "cancel":
        if phase in RESUMABLE or phase == "Completed":
            raise common.CommandError(f"the workflow has ended ({phase}): nothing to cancel")
        return {"spec": {"cancel": True}}, "cancelled"
    if phase in RESUMABLE:
        token = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        patch: dict[str, Any] = {"metadata": {"annotations": {RESUME_ANNOTATION: token}}}
        if spec.get("suspend") or spec.get("cancel"):
            patch["spec"] = {"suspend": False, "cancel": False}
        return patch, f"resumed from its checkpoint ({phase} before)"
    if spec.get("suspend"):
        return {"spec": {"suspend": False}}, "resumed"
    raise common.CommandError(
        f"the workflow is {phase} and not suspended: nothing to resume "
        "(resume continues a suspended workflow or restarts a Failed, Cancelled or Timeout one)"
    )
