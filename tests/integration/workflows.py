"""Workflow tasks for the simulated nodes, and waiting for workflows, in integration tests."""

from __future__ import annotations

import datetime
from typing import Any

from kubernetes import client

from tests.integration.objects import get_workflow, workflow_events
from tests.integration.waiting import wait_for


def sim(
    name: str,
    duration: str = "100ms",
    message: str | None = None,
    exit_code: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A workflow task whose pod the simulated nodes run for `duration`, ending as asked."""
    annotations = {"sim.execflow.dev/duration": duration}
    if message is not None:
        annotations["sim.execflow.dev/message"] = message
    if exit_code is not None:
        annotations["sim.execflow.dev/exit-code"] = exit_code
    return {
        "name": name,
        "container": {"image": "example.invalid/step:1"},
        "podTemplate": {"metadata": {"annotations": annotations}},
        **extra,
    }


def wait_workflow(
    api: client.ApiClient, namespace: str, name: str, phases: set[str], timeout: float = 90
) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        workflow = get_workflow(api, namespace, name)
        return workflow if (workflow.get("status") or {}).get("phase") in phases else None

    return wait_for(reached, timeout, f"workflow {name} to reach {sorted(phases)}")


def step_of(workflow: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in workflow["status"]["steps"] if s["name"] == name)


def units(workflow: dict[str, Any], step: str) -> list[tuple[str, Any, str, str]]:
    return [
        (t["name"], t.get("index"), t["phase"], t.get("reason", ""))
        for t in step_of(workflow, step)["tasks"]
    ]


def when(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def span(task: dict[str, Any]) -> tuple[datetime.datetime, datetime.datetime]:
    status = task["status"]
    return when(status["startTime"]), when(status["completionTime"])


def reasons(api: client.ApiClient, namespace: str, name: str) -> list[str]:
    return [reason for reason, _ in workflow_events(api, namespace, name)]


def wait_reasons(api: client.ApiClient, namespace: str, name: str, wanted: set[str]) -> list[str]:
    def found() -> list[str] | None:
        listed = reasons(api, namespace, name)
        return listed if wanted <= set(listed) else None

    return wait_for(found, 30, f"events {sorted(wanted)} on workflow {name}")
