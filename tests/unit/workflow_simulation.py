"""A workflow's children simulated in memory, for testing the pure planner without a cluster.

`Simulation` holds a workflow's spec, status and child Task bodies; `step()` plans once and applies
the plan the way the controller does (deletions, patches, creations, status); `finish()` ends
running children with scripted outcomes. It records every creation, so tests can check what was
created when, and it refuses to create a child whose name is taken.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from execflow.core.workflows.planner import WorkflowPlan, plan
from execflow.core.workflows.units import TERMINAL
from execflow.core.workflows.view import WorkflowSnapshot, build_view

START = datetime.datetime(2026, 3, 1, 12, 0, 0, tzinfo=datetime.UTC)

Outcome = tuple[str, Any]
"""(phase, result) a child ends with."""


@dataclass
class Simulation:
    spec: dict[str, Any]
    name: str = "wf"
    now: datetime.datetime = START
    status: dict[str, Any] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    children: dict[str, dict[str, Any]] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    """Every creation, in order (a name twice after a retry or a resume)."""
    ended_before: dict[str, set[str]] = field(default_factory=dict)
    """For each creation: the children that had ended when it was made."""
    plans: list[WorkflowPlan] = field(default_factory=list)

    @property
    def phase(self) -> str:
        return str(self.status.get("phase") or "Pending")

    def snapshot(self) -> WorkflowSnapshot:
        return WorkflowSnapshot(
            namespace="ns",
            name=self.name,
            uid="uid-wf",
            generation=1,
            created_at=START,
            annotations=dict(self.annotations),
            spec=self.spec,
            status=self.status,
            children=list(self.children.values()),
        )

    def step(self) -> WorkflowPlan:
        decision = plan(build_view(self.snapshot()), self.now)
        self.plans.append(decision)
        for name in decision.deletions:
            self.children.pop(name, None)
        for patch in decision.patches:
            spec = self.children[patch.name]["spec"]
            if patch.suspend is not None:
                spec["suspend"] = patch.suspend
            if patch.cancel is not None:
                spec["cancel"] = patch.cancel
        ended = {n for n, c in self.children.items() if c["status"].get("phase") in TERMINAL}
        for creation in decision.creations:
            assert creation.name not in self.children, f"{creation.name} created twice"
            self.children[creation.name] = {**creation.body, "status": {}}
            self.created.append(creation.name)
            self.ended_before[creation.name] = set(ended)
        if decision.status is not None:
            self.status = decision.status.model_dump(mode="json", by_alias=True)
        return decision

    def finish(
        self,
        outcome: Callable[[str, Mapping[str, Any]], Outcome],
        only: Callable[[str], bool] = lambda _name: True,
    ) -> int:
        """End running children (those `only` picks) with `outcome(name, body)`; how many."""
        ended = 0
        for name, body in self.children.items():
            status = body["status"]
            if status.get("phase") in TERMINAL or not only(name):
                continue
            if body["spec"].get("cancel"):
                body["status"] = {"phase": "Cancelled", "reason": "Cancelled"}
            elif body["spec"].get("suspend"):
                continue
            else:
                phase, result = outcome(name, body)
                body["status"] = {"phase": phase, "result": result, "exitCode": 0}
            ended += 1
        self.now += datetime.timedelta(seconds=1)
        return ended

    def run(self, outcome: Callable[[str, Mapping[str, Any]], Outcome], limit: int = 200) -> str:
        """Plan and finish until the workflow ends (or `limit` rounds); its phase."""
        for _ in range(limit):
            self.step()
            if self.phase in ("Completed", "Failed", "Cancelled", "Timeout"):
                return self.phase
            self.finish(outcome)
        return self.phase


def succeed(_name: str, _body: Mapping[str, Any]) -> Outcome:
    return ("Completed", {"ok": True})


def step_status(simulation: Simulation, name: str) -> dict[str, Any]:
    return next(s for s in simulation.status["steps"] if s["name"] == name)
