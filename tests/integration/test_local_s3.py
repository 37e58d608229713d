"""The S3 server `execflow cluster up` runs next to the control plane, used as clients use it.

Reads the Secret `default/execflow-local-s3` from the real API server and talks to the real server
(versitygw) with boto3, path-style and signature v4, as ResultSet storage does: what it stores
comes back with its SHA-256, and it refuses what a real S3 refuses. Then the cluster side: the
server survives a restart with its data and keys, and `up` on a cluster that predates it starts
it and publishes the Secret without touching the control plane.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from kubernetes import client
from kubernetes.client.rest import ApiException

from execflow.devcluster import object_store, processes
from execflow.devcluster.cluster import CONTROL_PLANE, LocalCluster
from tests.integration.conftest import LOCAL_SHAPE

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def read_secret(api: client.ApiClient) -> dict[str, str]:
    found = client.CoreV1Api(api).read_namespaced_secret(
        object_store.SECRET_NAME, object_store.SECRET_NAMESPACE
    )
    return {key: base64.b64decode(value).decode() for key, value in found.data.items()}


def s3_client(values: dict[str, str], secret_access_key: str | None = None) -> S3Client:
    return boto3.client(
        "s3",
        endpoint_url=values["endpoint"],
        aws_access_key_id=values["accessKeyId"],
        aws_secret_access_key=secret_access_key or values["secretAccessKey"],
        region_name="us-east-1",
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1},
        ),
    )


def sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def error_code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response.get("Error", {}).get("Code"))


@pytest.fixture
def secret(api: client.ApiClient, local_cluster: LocalCluster | None) -> dict[str, str]:
    try:
        return read_secret(api)
    except ApiException as error:
        if error.status == 404 and local_cluster is None:
            pytest.skip("this cluster was not made by `execflow cluster up`: no local S3 server")
        raise


@pytest.fixture
def s3(secret: dict[str, str]) -> S3Client:
    return s3_client(secret)


@pytest.fixture
def bucket(s3: S3Client) -> Iterator[str]:
    name = f"execflow-test-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    yield name
    for item in s3.list_objects_v2(Bucket=name).get("Contents", []):
        s3.delete_object(Bucket=name, Key=item["Key"])
    s3.delete_bucket(Bucket=name)


def test_the_secret_names_a_loopback_endpoint_and_both_keys(secret: dict[str, str]) -> None:
    assert set(secret) == {"endpoint", "accessKeyId", "secretAccessKey"}
    assert secret["endpoint"].startswith("http://127.0.0.1:")
    assert secret["accessKeyId"] and secret["secretAccessKey"]


def test_an_object_stored_with_its_sha256_comes_back_with_it_and_is_deleted(
    s3: S3Client,
) -> None:
    name = f"execflow-test-{uuid.uuid4().hex[:12]}"
    data = b'{"rows": 1280}\n' * 1000

    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="results/part-0.json", Body=data, ChecksumSHA256=sha256(data))
    got = s3.get_object(Bucket=name, Key="results/part-0.json", ChecksumMode="ENABLED")

    assert got["Body"].read() == data
    assert got["ChecksumSHA256"] == sha256(data)
    assert got["ETag"].strip('"') == hashlib.md5(data).hexdigest()

    s3.delete_object(Bucket=name, Key="results/part-0.json")
    assert s3.list_objects_v2(Bucket=name).get("KeyCount") == 0
    s3.delete_bucket(Bucket=name)
    assert name not in [found["Name"] for found in s3.list_buckets()["Buckets"]]


def test_a_wrong_sha256_is_refused_and_nothing_is_stored(s3: S3Client, bucket: str) -> None:
    data = b"the real content"

    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=bucket, Key="bad", Body=data, ChecksumSHA256=sha256(b"other"))

    assert error_code(refused) == "BadDigest"
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_a_wrong_secret_key_is_refused(secret: dict[str, str], s3: S3Client, bucket: str) -> None:
    intruder = s3_client(secret, secret_access_key="not-" + secret["secretAccessKey"])

    with pytest.raises(ClientError) as refused:
        intruder.put_object(Bucket=bucket, Key="intruder", Body=b"x")

    assert error_code(refused) == "SignatureDoesNotMatch"
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_a_restarted_server_keeps_its_objects_and_keys(
    local_cluster: LocalCluster | None, s3: S3Client, bucket: str
) -> None:
    if local_cluster is None:
        pytest.skip("restarting the S3 server needs the local cluster")
    data = b"kept across a restart"
    s3.put_object(Bucket=bucket, Key="kept", Body=data, ChecksumSHA256=sha256(data))
    before = local_cluster.state()
    assert before is not None

    local_cluster.restart(object_store.NAME)

    after = local_cluster.state()
    assert after is not None
    assert after.pids[object_store.NAME] != before.pids[object_store.NAME]
    got = s3.get_object(Bucket=bucket, Key="kept", ChecksumMode="ENABLED")
    assert (got["Body"].read(), got["ChecksumSHA256"]) == (data, sha256(data))


def test_up_on_a_cluster_that_predates_the_server_starts_it_and_publishes_the_secret(
    api: client.ApiClient, local_cluster: LocalCluster | None
) -> None:
    if local_cluster is None:
        pytest.skip("needs the local cluster")
    # Make the cluster look as one started before the S3 server existed: no server process, no
    # trace of it in the state file, no Secret.
    state = local_cluster.state()
    assert state is not None
    processes.stop(state.pids.pop(object_store.NAME), object_store.NAME, grace=10)
    del state.ports[object_store.NAME]
    state.save(local_cluster.state_file)
    client.CoreV1Api(api).delete_namespaced_secret(
        object_store.SECRET_NAME, object_store.SECRET_NAMESPACE
    )
    assert not local_cluster.healthy()

    local_cluster.up(LOCAL_SHAPE, lambda _message: None)

    upgraded = local_cluster.state()
    assert upgraded is not None
    assert {name: upgraded.pids[name] for name in CONTROL_PLANE} == {
        name: state.pids[name] for name in CONTROL_PLANE
    }, "the control plane was reused, not restarted"
    assert local_cluster.healthy()
    values = read_secret(api)
    assert values["endpoint"] == object_store.endpoint(upgraded.ports[object_store.NAME])
    assert "Buckets" in s3_client(values).list_buckets()
