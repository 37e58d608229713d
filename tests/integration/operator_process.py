"""The operator under test and waiting for a Task's phase.

The operator is the same `execflow run` process a user starts (see execflow.devcluster.harness),
so what passes here is what ships; tests talk to the API server only.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client

from execflow.devcluster.harness import OperatorProcess
from tests.integration.waiting import wait_for

__all__ = ["OperatorProcess", "wait_phase"]


def wait_phase(
    api: client.ApiClient, namespace: str, name: str, phases: set[str], timeout: float = 60
) -> dict[str, Any]:
    custom = client.CustomObjectsApi(api)

    def reached() -> dict[str, Any] | None:
        task: dict[str, Any] = custom.get_namespaced_custom_object(
            "execflow.dev", "v1alpha1", namespace, "tasks", name
        )
        return task if (task.get("status") or {}).get("phase") in phases else None

    return wait_for(reached, timeout, f"task {name} to reach {sorted(phases)}")
