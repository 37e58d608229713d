"""Creating and reading execflow objects in integration tests, through the real API server."""

from __future__ import annotations

from typing import Any

from kubernetes import client

GROUP, VERSION = "execflow.dev", "v1alpha1"
TERMINAL = {"Completed", "Failed", "Timeout", "Cancelled"}


def custom_api(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def create_tool(api: client.ApiClient, namespace: str, name: str, **spec: Any) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Tool",
        "metadata": {"name": name},
        "spec": {"image": "example.invalid/tool:1", **spec},
    }
    custom_api(api).create_namespaced_custom_object(GROUP, VERSION, namespace, "tools", body)


def create_task(
    api: client.ApiClient,
    namespace: str,
    name: str,
    sim: dict[str, str] | None = None,
    **spec: Any,
) -> None:
    if "toolRef" not in spec and "container" not in spec:
        spec["container"] = {"image": "example.invalid/job:1"}
    if sim:
        spec["podTemplate"] = {
            "metadata": {"annotations": {f"sim.execflow.dev/{k}": v for k, v in sim.items()}}
        }
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Task",
        "metadata": {"name": name},
        "spec": spec,
    }
    custom_api(api).create_namespaced_custom_object(GROUP, VERSION, namespace, "tasks", body)


def patch_spec(api: client.ApiClient, namespace: str, name: str, **spec: Any) -> None:
    custom_api(api).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "tasks", name, {"spec": spec}
    )


def jobs_of(api: client.ApiClient, namespace: str, task: str) -> list[Any]:
    jobs = (
        client.BatchV1Api(api)
        .list_namespaced_job(namespace, label_selector=f"execflow.dev/task={task}")
        .items
    )
    return sorted(jobs, key=lambda j: int(j.metadata.labels["execflow.dev/attempt"]))


def events_of(api: client.ApiClient, namespace: str, name: str) -> list[str]:
    events = (
        client.CoreV1Api(api)
        .list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={name},involvedObject.kind=Task"
        )
        .items
    )
    return [e.reason for e in events]


def create_workflow(api: client.ApiClient, namespace: str, name: str, **spec: Any) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": spec,
    }
    custom_api(api).create_namespaced_custom_object(GROUP, VERSION, namespace, "workflows", body)


def get_workflow(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    workflow: dict[str, Any] = custom_api(api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, "workflows", name
    )
    return workflow


def patch_workflow(api: client.ApiClient, namespace: str, name: str, patch: Any) -> None:
    custom_api(api).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "workflows", name, patch
    )


def children_of(api: client.ApiClient, namespace: str, workflow: str) -> dict[str, Any]:
    """The workflow's child Tasks by name, found the way a user would: by label."""
    listed = custom_api(api).list_namespaced_custom_object(
        GROUP, VERSION, namespace, "tasks", label_selector=f"execflow.dev/workflow={workflow}"
    )
    return {item["metadata"]["name"]: item for item in listed["items"]}


def workflow_events(api: client.ApiClient, namespace: str, name: str) -> list[tuple[str, str]]:
    """(reason, message) of the Events about a workflow."""
    events = (
        client.CoreV1Api(api)
        .list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={name},involvedObject.kind=Workflow"
        )
        .items
    )
    return [(e.reason, e.message) for e in events]
