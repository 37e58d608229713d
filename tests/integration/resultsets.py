"""ResultSets in integration tests: creating them, waiting for them, reading them back."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

from kubernetes import client

from execflow.kube.client import Kube
from execflow.kube.connection import Connection
from execflow.kube.result_access import read_result_set
from tests.integration.objects import GROUP, VERSION, create_task, custom_api
from tests.integration.waiting import wait_for


def create_result_set(api: client.ApiClient, namespace: str, name: str, **spec: Any) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ResultSet",
        "metadata": {"name": name},
        "spec": spec,
    }
    custom_api(api).create_namespaced_custom_object(GROUP, VERSION, namespace, "resultsets", body)


def get_result_set(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    body: dict[str, Any] = custom_api(api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, "resultsets", name
    )
    return body


def patch_result_set(api: client.ApiClient, namespace: str, name: str, patch: Any) -> None:
    custom_api(api).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "resultsets", name, patch
    )


def wait_result_set(
    api: client.ApiClient,
    namespace: str,
    name: str,
    phases: set[str],
    *,
    count: int | None = None,
    timeout: float = 90,
) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        body = get_result_set(api, namespace, name)
        status = body.get("status") or {}
        if status.get("phase") not in phases:
            return None
        return body if count is None or status.get("count") == count else None

    return wait_for(reached, timeout, f"resultset {name} to reach {sorted(phases)} ({count})")


def scored_task(api: client.ApiClient, namespace: str, name: str, result: Any, **spec: Any) -> None:
    """A Task whose simulated container ends with `result` as its termination message."""
    create_task(
        api,
        namespace,
        name,
        sim={"duration": "50ms", "message": json.dumps(result)},
        **spec,
    )


def read_back(kubeconfig: Path, namespace: str, name: str) -> list[dict[str, Any]]:
    """Every record the set stored, read and verified as `execflow results get` reads them."""

    async def read() -> list[dict[str, Any]]:
        connection = Connection(str(kubeconfig))
        try:
            return (await read_result_set(Kube.connect(connection), namespace, name)).records
        finally:
            connection.close()

    return asyncio.run(read())


def config_maps_of(api: client.ApiClient, namespace: str, uid: str) -> list[Any]:
    return list(
        client.CoreV1Api(api)
        .list_namespaced_config_map(namespace, label_selector=f"execflow.dev/resultset-uid={uid}")
        .items
    )


def create_key_secret(api: client.ApiClient, namespace: str, name: str, **keys: bytes) -> None:
    client.CoreV1Api(api).create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=name),
            data={key: base64.b64encode(value).decode() for key, value in keys.items()},
        ),
    )


def copy_local_s3_secret(api: client.ApiClient, namespace: str, name: str) -> dict[str, str]:
    """The local S3 server's Secret, copied into the test's namespace; returns its values."""
    core = client.CoreV1Api(api)
    source = core.read_namespaced_secret("execflow-local-s3", "default")
    values = {key: base64.b64decode(text).decode() for key, text in source.data.items()}
    core.create_namespaced_secret(
        namespace, client.V1Secret(metadata=client.V1ObjectMeta(name=name), data=source.data)
    )
    return values


def result_set_events(api: client.ApiClient, namespace: str, name: str) -> list[tuple[str, str]]:
    events = (
        client.CoreV1Api(api)
        .list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={name},involvedObject.kind=ResultSet"
        )
        .items
    )
    return [(e.reason, e.message) for e in events]
