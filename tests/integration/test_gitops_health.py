"""GitOps tools read every kind right: kstatus and the chart's Argo CD health checks, real objects.

One set of objects of every kind, each driven by the real operator into one of its states (tasks
that run, wait, pause, complete, fail, time out or are cancelled; workflows likewise; result sets
that collect, are ready or failed; a valid and an invalid Tool), is read back from the API server
and given to two judges: kstatus itself (`sigs.k8s.io/cli-utils`, the library Flux and kpt use,
through the small Go program of execflow.devcluster.kstatus) and the Lua health checks shipped in
charts/execflow/health, run as Argo CD runs them. The table below is the contract both must meet;
charts/execflow/README.md documents it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from execflow.devcluster import kstatus
from tests.health_checks import check
from tests.integration.objects import (
    GROUP,
    VERSION,
    create_task,
    create_tool,
    create_workflow,
    custom_api,
)
from tests.integration.operator_process import OperatorProcess, wait_phase
from tests.integration.resultsets import create_result_set
from tests.integration.waiting import wait_for
from tests.integration.workflows import sim

PLURALS = {"Task": "tasks", "Workflow": "workflows", "ResultSet": "resultsets", "Tool": "tools"}
LONG = "10m"
"""Long enough that a running task is still running when the test ends (its namespace goes)."""


@dataclass(frozen=True)
class Case:
    """An object, the state the operator must bring it to, and what each judge must say."""

    kind: str
    name: str
    state: str
    """The phase (for a Tool: the reason of its Ready condition)."""
    kstatus: str
    argocd: str


CASES = (
    Case("Task", "t-pending", "Pending", "InProgress", "Progressing"),
    Case("Task", "t-running", "Running", "InProgress", "Progressing"),
    Case("Task", "t-queued", "Queued", "InProgress", "Progressing"),
    Case("Task", "t-paused", "Paused", "InProgress", "Suspended"),
    Case("Task", "t-completed", "Completed", "Current", "Healthy"),
    Case("Task", "t-failed", "Failed", "Failed", "Degraded"),
    Case("Task", "t-timeout", "Timeout", "Failed", "Degraded"),
    Case("Task", "t-cancelled", "Cancelled", "Failed", "Degraded"),
    Case("Workflow", "w-running", "Running", "InProgress", "Progressing"),
    Case("Workflow", "w-paused", "Paused", "InProgress", "Suspended"),
    Case("Workflow", "w-completed", "Completed", "Current", "Healthy"),
    Case("Workflow", "w-failed", "Failed", "Failed", "Degraded"),
    Case("Workflow", "w-timeout", "Timeout", "Failed", "Degraded"),
    Case("Workflow", "w-cancelled", "Cancelled", "Failed", "Degraded"),
    Case("ResultSet", "r-collecting", "Collecting", "InProgress", "Progressing"),
    Case("ResultSet", "r-ready", "Ready", "Current", "Healthy"),
    Case("ResultSet", "r-failed", "Failed", "Failed", "Degraded"),
    Case("Tool", "tool-valid", "Valid", "Current", "Healthy"),
    Case("Tool", "tool-invalid", "InvalidSchema", "Failed", "Degraded"),
)


def _create_all_but_the_queued_task(api: client.ApiClient, namespace: str) -> None:
    create_tool(api, namespace, "tool-valid", inputSchema={"type": "object"})
    create_tool(
        api,
        namespace,
        "tool-invalid",
        inputSchema={"type": "object", "properties": {"n": {"type": "integr"}}},
    )
    # The running task holds a mutex (t-queued waits for it) and t-pending depends on it.
    create_task(
        api, namespace, "t-running", sim={"duration": LONG}, constraints={"mutex": "gitops"}
    )
    create_task(
        api,
        namespace,
        "t-pending",
        sim={"duration": "100ms"},
        dependencies=[{"task": "t-running", "type": "FinishToStart"}],
    )
    create_task(api, namespace, "t-paused", sim={"duration": "100ms"}, suspend=True)
    create_task(api, namespace, "t-completed", sim={"duration": "100ms", "message": '{"rows": 1}'})
    create_task(api, namespace, "t-failed", sim={"duration": "100ms", "exit-code": "3"})
    create_task(api, namespace, "t-timeout", sim={"duration": LONG}, timeout="1s")
    create_task(api, namespace, "t-cancelled", sim={"duration": LONG}, cancel=True)

    def one_step(name: str, task: dict[str, Any], **spec: Any) -> None:
        create_workflow(api, namespace, name, steps=[{"name": "only", "tasks": [task]}], **spec)

    one_step("w-running", sim("a", LONG))
    one_step("w-paused", sim("a"), suspend=True)
    one_step("w-completed", sim("a"))
    one_step("w-failed", sim("a", exit_code="3"))
    one_step("w-timeout", sim("a", LONG), globalTimeout="2s")
    one_step("w-cancelled", sim("a", LONG), cancel=True)

    # Collecting: its one task is paused, so it waits for it. Failed: a transform that reads a
    # field the completed task's result lacks.
    create_result_set(api, namespace, "r-collecting", source={"taskRefs": ["t-paused"]})
    create_result_set(
        api,
        namespace,
        "r-ready",
        source={"taskRefs": ["t-completed"]},
        aggregations=[{"name": "n", "function": "count"}],
    )
    create_result_set(
        api,
        namespace,
        "r-failed",
        source={"taskRefs": ["t-completed"]},
        transforms=[{"name": "score", "type": "map", "expression": "r.result.score * 100.0"}],
    )


def _state(body: dict[str, Any]) -> str | None:
    """The object's phase, or for a Tool the reason of its Ready condition; None until the
    operator has reported on the object's current generation."""
    status = body.get("status") or {}
    if status.get("observedGeneration") != body["metadata"].get("generation"):
        return None
    if body["kind"] != "Tool":
        phase = status.get("phase")
        return str(phase) if phase else None
    ready = [c for c in status.get("conditions") or [] if c.get("type") == "Ready"]
    return str(ready[0]["reason"]) if ready else None


def _snapshot(api: client.ApiClient, namespace: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Every object of the four kinds in the namespace, as the API server has it now."""
    found = {}
    for kind, plural in PLURALS.items():
        listed = custom_api(api).list_namespaced_custom_object(GROUP, VERSION, namespace, plural)
        for item in listed["items"]:
            item.setdefault("apiVersion", f"{GROUP}/{VERSION}")
            item.setdefault("kind", kind)
            found[(kind, item["metadata"]["name"])] = item
    return found


def _wait_for_states(api: client.ApiClient, namespace: str) -> dict[tuple[str, str], Any]:
    seen: dict[str, str | None] = {}

    def all_reached() -> dict[tuple[str, str], Any]:
        objects = _snapshot(api, namespace)
        seen.clear()
        for case in CASES:
            body = objects.get((case.kind, case.name))
            seen[case.name] = None if body is None else _state(body)
        wanted = all(seen[case.name] == case.state for case in CASES)
        return objects if wanted else {}

    try:
        return wait_for(all_reached, 60, "every object to reach its state", interval=0.2)
    except AssertionError as error:
        behind = {c.name: (seen.get(c.name), c.state) for c in CASES if seen.get(c.name) != c.state}
        raise AssertionError(f"{error}; (seen, wanted) of those behind: {behind}") from None


def test_kstatus_and_argocd_health_checks_read_every_kind_in_every_state(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    binary = kstatus.ensure_kstatus()  # cached; seconds on a machine that built the cluster
    _create_all_but_the_queued_task(api, namespace)
    wait_phase(api, namespace, "t-running", {"Running"})
    create_task(api, namespace, "t-queued", constraints={"mutex": "gitops"})
    objects = _wait_for_states(api, namespace)

    judged = [objects[(case.kind, case.name)] for case in CASES]
    # The same completed Task as a reader sees it just after its spec changed: the operator has
    # not observed the new generation yet, so neither judge may call it done.
    ahead = copy.deepcopy(objects[("Task", "t-completed")])
    ahead["metadata"]["generation"] += 1
    verdicts = kstatus.compute([*judged, ahead], binary)
    health = [check(body) for body in [*judged, ahead]]

    assert [v.error for v in verdicts if v.error] == []
    assert [(v.kind, v.name) for v in verdicts] == [
        *((c.kind, c.name) for c in CASES),
        ("Task", "t-completed"),
    ]
    got = {c.name: (v.status, h.status) for c, v, h in zip(CASES, verdicts, health, strict=False)}
    assert got == {c.name: (c.kstatus, c.argocd) for c in CASES}
    assert (verdicts[-1].status, health[-1].status) == ("InProgress", "Progressing")
    assert "generation" in verdicts[-1].message
    assert "generation" in health[-1].message

    # Both judges pass on why: kstatus the Stalled/Reconciling message, Argo CD the phase.
    for case, verdict, verdict_health, body in zip(CASES, verdicts, health, judged, strict=False):
        if case.kind != "Tool":
            assert verdict_health.message.startswith(case.state), (case, verdict_health)
        if case.kstatus == "Failed":
            stalled = [c for c in body["status"]["conditions"] if c["type"] == "Stalled"]
            assert verdict.message == stalled[0]["message"], (case, verdict)
            assert stalled[0]["message"] in verdict_health.message, (case, verdict_health)


def test_an_object_just_created_is_in_progress_for_both_judges(
    api: client.ApiClient, namespace: str
) -> None:
    """Before the operator has written anything, every kind reads as in progress, not done: the
    CRDs default `status.observedGeneration` to 0 (the reply to a create is the stored object)."""
    custom = custom_api(api)
    bodies = [
        {"kind": "Tool", "spec": {"image": "example.invalid/tool:1"}},
        {"kind": "Task", "spec": {"container": {"image": "example.invalid/job:1"}}},
        {"kind": "Workflow", "spec": {"steps": [{"name": "s", "tasks": [sim("a")]}]}},
        {"kind": "ResultSet", "spec": {"source": {"taskRefs": ["a"]}}},
    ]
    created = []
    for body in bodies:
        kind = str(body["kind"])
        manifest = {"apiVersion": f"{GROUP}/{VERSION}", "metadata": {"name": "fresh"}, **body}
        created.append(
            custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURALS[kind], manifest
            )
        )
    assert [body["status"]["observedGeneration"] for body in created] == [0] * 4
    verdicts = kstatus.compute(created, kstatus.ensure_kstatus())
    assert [(v.kind, v.status) for v in verdicts] == [
        (body["kind"], "InProgress") for body in bodies
    ]
    assert [check(body).status for body in created] == ["Progressing"] * 4
