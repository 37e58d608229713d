"""ResultSets in integration tests: creating them, waiting for them, reading them back."""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from kubernetes import client
from kubernetes.client.rest import ApiException

from execflow.api import timestamps
from execflow.devcluster import object_store, processes
from execflow.devcluster.cluster import LocalCluster
from execflow.kube.client import Kube
from execflow.kube.connection import Connection
from execflow.kube.result_access import read_result_set
from tests.integration.objects import GROUP, VERSION, create_task, custom_api
from tests.integration.waiting import wait_for

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


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

    found = wait_for(reached, timeout, f"resultset {name} to reach {sorted(phases)} ({count})")
    assert found is not None
    return found


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
            await connection.close()

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


# ----- more of the same, for the ResultSet test modules --------------------------------------
def annotate_collect(api: client.ApiClient, namespace: str, name: str, value: str) -> None:
    """Set execflow.dev/collect, as `execflow results get` does on a Lazy or OnDemand set."""
    patch_result_set(
        api, namespace, name, {"metadata": {"annotations": {"execflow.dev/collect": value}}}
    )


def result_set_gone(api: client.ApiClient, namespace: str, name: str) -> bool:
    try:
        get_result_set(api, namespace, name)
    except ApiException as error:
        if error.status == 404:
            return True
        raise
    return False


def wait_reason(
    api: client.ApiClient, namespace: str, name: str, reason: str, timeout: float = 60
) -> dict[str, Any]:
    """The set once its status.reason is `reason`."""

    def reached() -> dict[str, Any] | None:
        body = get_result_set(api, namespace, name)
        return body if (body.get("status") or {}).get("reason") == reason else None

    found = wait_for(reached, timeout, f"resultset {name} to show reason {reason}")
    assert found is not None
    return found


def wait_event(
    api: client.ApiClient, namespace: str, name: str, reason: str, timeout: float = 30
) -> str:
    """The message of the first Event about the set with this reason."""

    def found() -> str | None:
        messages = [m for r, m in result_set_events(api, namespace, name) if r == reason]
        return messages[0] if messages else None

    message = wait_for(found, timeout, f"an Event {reason} about resultset {name}")
    assert message is not None
    return message


def moment(text: str | None) -> datetime.datetime:
    """A status timestamp as a datetime (failing the test when it is not one)."""
    parsed = timestamps.parse_time(text)
    assert parsed is not None, f"not a timestamp: {text!r}"
    return parsed


def task_phase(api: client.ApiClient, namespace: str, name: str) -> str:
    """The Task's phase now ("" before its first status)."""
    task = custom_api(api).get_namespaced_custom_object(GROUP, VERSION, namespace, "tasks", name)
    return str((task.get("status") or {}).get("phase", ""))


def segment_keys(api: client.ApiClient, namespace: str, uid: str) -> dict[str, list[str]]:
    """The keys of each owned ConfigMap shard: binaryData (segments) and data (their sha256s)."""
    return {
        m.metadata.name: sorted([*(m.binary_data or {}), *(m.data or {})])
        for m in config_maps_of(api, namespace, uid)
    }


def segment_bytes(api: client.ApiClient, namespace: str, uid: str) -> dict[str, bytes]:
    """Every stored segment as it sits in the owned ConfigMaps, by key."""
    return {
        key: base64.b64decode(text)
        for m in config_maps_of(api, namespace, uid)
        for key, text in (m.binary_data or {}).items()
    }


def items_per_segment(status: dict[str, Any]) -> dict[str, list[str]]:
    """The tasks of status.items by the segment that holds them (for sets of up to 20 items)."""
    segments: dict[str, list[str]] = {}
    for item in status["items"]:
        segments.setdefault(item["ref"], []).append(item["task"])
    return segments


def text_result(size: int, word: str = "result") -> dict[str, str]:
    """A result whose JSON text (as json.dumps writes it) is `size` bytes: `{"text": ...}`."""
    overhead = len(json.dumps({"text": ""}))
    return {"text": ((word + " ") * size)[: size - overhead]}


def text_message(size: int, word: str = "result") -> str:
    """A termination message of `size` bytes (at most 4096) holding `text_result`."""
    return json.dumps(text_result(size, word))


def finish_tasks_directly(
    api: client.ApiClient,
    namespace: str,
    results: Sequence[Any],
    *,
    labels: dict[str, str] | None = None,
    stem: str = "task",
    workers: int = 16,
) -> list[str]:
    """Create one Task per result (`<stem>-<index>`) and set it Completed with that result
    through the status subresource, as the operator does when an attempt ends, without running
    anything. The Tasks are suspended, so none starts an attempt before its status says it
    finished; the Task controller leaves a finished Task alone."""
    custom = custom_api(api)
    finished = timestamps.format_time(timestamps.now())
    names = [f"{stem}-{index:05d}" for index in range(len(results))]

    def finish(index: int) -> None:
        name = names[index]
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Task",
            "metadata": {"name": name, "labels": dict(labels or {})},
            "spec": {"container": {"image": "example.invalid/job:1"}, "suspend": True},
        }
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "tasks", body)
        status = {
            "phase": "Completed",
            "reason": "Succeeded",
            "message": "finished outside the cluster",
            "startTime": finished,
            "completionTime": finished,
            "result": results[index],
        }
        custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, "tasks", name, {"status": status}
        )

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(finish, range(len(results))))
    return names


def delete_tasks(
    api: client.ApiClient, namespace: str, names: Sequence[str], workers: int = 16
) -> None:
    """Delete these Tasks, several at a time (one request for thousands would time out)."""
    custom = custom_api(api)

    def delete(name: str) -> None:
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "tasks", name)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(delete, names))


# ----- the local S3 server -----------------------------------------------------------------------
@dataclass(frozen=True)
class Bucket:
    """A bucket of the local S3 server made for one test, with a client for it."""

    name: str
    s3: S3Client
    secret: dict[str, str]
    """The values of the Secret default/execflow-local-s3 (endpoint and keys)."""

    def objects(self, prefix: str = "") -> dict[str, dict[str, Any]]:
        """Every object under prefix: its key → head (size, ChecksumSHA256, Metadata)."""
        listed = self.s3.list_objects_v2(Bucket=self.name, Prefix=prefix).get("Contents", [])
        return {
            item["Key"]: dict(
                self.s3.head_object(Bucket=self.name, Key=item["Key"], ChecksumMode="ENABLED")
            )
            for item in listed
        }

    def read(self, key: str) -> bytes:
        data: bytes = self.s3.get_object(Bucket=self.name, Key=key)["Body"].read()
        return data


def local_s3_secret(api: client.ApiClient) -> dict[str, str]:
    """The values of the Secret `execflow cluster up` publishes; fails loudly without it."""
    try:
        found = client.CoreV1Api(api).read_namespaced_secret(
            object_store.SECRET_NAME, object_store.SECRET_NAMESPACE
        )
    except ApiException as error:
        if error.status != 404:
            raise
        raise AssertionError(
            f"no Secret {object_store.SECRET_NAMESPACE}/{object_store.SECRET_NAME}: the S3 tests "
            "need the S3 server of the local cluster (`execflow cluster up` starts it)"
        ) from error
    return {key: base64.b64decode(text).decode() for key, text in found.data.items()}


@contextmanager
def s3_bucket(api: client.ApiClient) -> Iterator[Bucket]:
    """A new bucket on the local S3 server, emptied and removed afterwards."""
    secret = local_s3_secret(api)
    s3 = boto3.client(
        "s3",
        endpoint_url=secret["endpoint"],
        aws_access_key_id=secret["accessKeyId"],
        aws_secret_access_key=secret["secretAccessKey"],
        region_name="us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    name = f"execflow-rs-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    bucket = Bucket(name, s3, secret)
    try:
        yield bucket
    finally:
        for key in bucket.objects():
            s3.delete_object(Bucket=name, Key=key)
        s3.delete_bucket(Bucket=name)


@contextmanager
def s3_server_stopped(local_cluster: LocalCluster | None) -> Iterator[None]:
    """The local S3 server stopped for the block, and started again (same port, same data and
    keys) when it ends, whatever happens inside."""
    if local_cluster is None:
        raise AssertionError(
            "stopping the S3 server needs the local cluster (`execflow cluster up`), not a "
            "cluster given by EXECFLOW_TEST_KUBECONFIG"
        )
    state = local_cluster.state()
    assert state is not None, "the local cluster has no state file"
    processes.stop(state.pids[object_store.NAME], object_store.NAME, grace=10)
    try:
        yield
    finally:
        local_cluster.restart(object_store.NAME)
