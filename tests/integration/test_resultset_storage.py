"""ResultSet storage backends and compression on the real control plane and the real S3 server.

Status (the data inside the ResultSet's own status, and a set too large for it), ConfigMap
(owned shards, a second one once the first is full) and S3 (objects on the local versitygw server,
listed and checked with boto3), then None, Gzip and Zstd compression of one text result. Tasks
run as simulated pods whose termination messages are their results (up to 4096 bytes each).
Assertions read the ResultSet's status, the ConfigMaps and S3 objects it wrote, its Events, and
the data read back and verified through the library `execflow results get` uses.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from kubernetes import client

from execflow.core.resultsets.codec import read_header
from execflow.devcluster.harness import OperatorProcess
from execflow.handlers.result_set_storage import STATUS_DATA_MAX
from execflow.kube.result_storage import SHARD_BYTES
from tests.integration.objects import create_task
from tests.integration.resultsets import (
    Bucket,
    config_maps_of,
    copy_local_s3_secret,
    create_result_set,
    finish_tasks_directly,
    get_result_set,
    read_back,
    result_set_events,
    result_set_gone,
    scored_task,
    segment_bytes,
    text_message,
    text_result,
    wait_result_set,
)
from tests.integration.waiting import wait_for


def big_tasks(api: client.ApiClient, namespace: str, names: list[str]) -> None:
    """Tasks each ending with a 4096-byte JSON result, finishing over half a second or so."""
    for index, name in enumerate(names):
        create_task(
            api,
            namespace,
            name,
            sim={"duration": f"{100 + 10 * (index % 50)}ms", "message": text_message(4096, name)},
        )


def test_status_backend_keeps_the_data_in_the_status(
    api: client.ApiClient, kubeconfig: Path, namespace: str, operator: OperatorProcess
) -> None:
    for index in range(3):
        scored_task(api, namespace, f"small-{index}", {"v": index})
    create_result_set(
        api,
        namespace,
        "inline",
        source={"taskRefs": [f"small-{index}" for index in range(3)]},
        storage={"backend": "Status"},
        aggregations=[{"name": "total", "function": "sum", "field": "v"}],
    )

    body = wait_result_set(api, namespace, "inline", {"Ready"}, count=3)
    storage = body["status"]["storage"]
    assert storage["backend"] == "Status"
    assert storage.get("configMaps", []) == []
    assert len(storage["data"]) == len(storage["segmentChecksums"]) == storage["segments"] >= 1
    for text, sha256 in zip(storage["data"], storage["segmentChecksums"], strict=True):
        assert hashlib.sha256(base64.b64decode(text)).hexdigest() == sha256
    assert config_maps_of(api, namespace, body["metadata"]["uid"]) == []
    records = read_back(kubeconfig, namespace, "inline")
    assert {r["task"]: r["result"] for r in records} == {f"small-{i}": {"v": i} for i in range(3)}
    assert body["status"]["aggregations"] == {"total": 3}


def test_status_backend_fails_too_large_and_keeps_what_was_collected(
    api: client.ApiClient, kubeconfig: Path, namespace: str, operator: OperatorProcess
) -> None:
    names = [f"big-{index:03d}" for index in range(40)]
    # Batches of five: every segment holds five 4 KiB results, so the set outgrows the status
    # part way, after a known number of whole segments.
    create_result_set(
        api,
        namespace,
        "overflow",
        source={"taskRefs": names},
        strategy="Batch",
        batch={"size": 5},
        storage={"backend": "Status"},
    )
    big_tasks(api, namespace, names)

    body = wait_result_set(api, namespace, "overflow", {"Failed"})
    status = body["status"]
    assert status["reason"] == "TooLarge"
    assert "ConfigMap or S3" in status["message"]
    data = status["storage"]["data"]
    kept = sum(len(text) for text in data)
    assert kept <= STATUS_DATA_MAX < kept + len(data[-1]), "full up to one more segment"
    assert 0 < status["count"] == 5 * len(data) < 40
    records = read_back(kubeconfig, namespace, "overflow")
    assert len(records) == status["count"] == len({r["uid"] for r in records})
    assert all(len(r["result"]["text"]) > 4000 for r in records)
    assert "TooLarge" in [reason for reason, _ in result_set_events(api, namespace, "overflow")]


def test_config_map_backend_starts_a_second_shard_once_the_first_is_full(
    api: client.ApiClient, kubeconfig: Path, namespace: str, operator: OperatorProcess
) -> None:
    count = 240  # 240 results of 4 KiB: more than the SHARD_BYTES of one shard
    create_result_set(api, namespace, "sharded", source={"selector": {}})
    # Finished through the status subresource, as the operator finishes them, rather than run:
    # 240 simulated runs take 40 s here, and running is what the other tests show.
    results = [text_result(4096, f"bulk-{index}") for index in range(count)]
    names = finish_tasks_directly(api, namespace, results, stem="bulk")

    body = wait_result_set(api, namespace, "sharded", {"Ready"}, count=count)
    status, uid = body["status"], body["metadata"]["uid"]
    shards = config_maps_of(api, namespace, uid)
    assert len(shards) >= 2
    assert sorted(m.metadata.name for m in shards) == sorted(status["storage"]["configMaps"])
    for shard in shards:
        assert shard.metadata.owner_references[0].uid == uid
        assert shard.metadata.owner_references[0].kind == "ResultSet"
        stored = sum(len(base64.b64decode(text)) for text in shard.binary_data.values())
        assert 0 < stored <= SHARD_BYTES
        assert set(shard.data) == {f"{key}.sha256" for key in shard.binary_data}
    segments = segment_bytes(api, namespace, uid)
    assert len(segments) == status["storage"]["segments"]
    assert sum(len(data) for data in segments.values()) == status["storage"]["bytes"]
    records = read_back(kubeconfig, namespace, "sharded")
    assert sorted(r["task"] for r in records) == names
    assert len({r["uid"] for r in records}) == count


def test_s3_backend_stores_checksummed_objects_under_the_prefix_and_deletes_them(
    api: client.ApiClient,
    kubeconfig: Path,
    namespace: str,
    operator: OperatorProcess,
    bucket: Bucket,
) -> None:
    copy_local_s3_secret(api, namespace, "s3-credentials")
    names = [f"obj-{index}" for index in range(4)]
    for index, name in enumerate(names):
        scored_task(api, namespace, name, {"v": index})
    create_result_set(
        api,
        namespace,
        "in-s3",
        source={"taskRefs": names},
        strategy="Batch",
        batch={"size": 2},
        storage={
            "backend": "S3",
            "s3": {
                "bucket": bucket.name,
                "prefix": "runs/",
                "secretRef": {"name": "s3-credentials"},
            },
        },
    )

    body = wait_result_set(api, namespace, "in-s3", {"Ready"}, count=4)
    status, uid = body["status"], body["metadata"]["uid"]
    prefix = f"runs/{namespace}/in-s3-{uid[:8]}/"
    assert (status["storage"]["backend"], status["storage"]["bucket"]) == ("S3", bucket.name)
    assert status["storage"]["prefix"] == prefix
    assert "execflow.dev/storage" in body["metadata"]["finalizers"]
    objects = bucket.objects("runs/")
    assert sorted(objects) == [f"{prefix}seg-{n:08d}" for n in range(2)]
    for key, head in objects.items():
        data = bucket.read(key)
        assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
        assert head["Metadata"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert sum(head["ContentLength"] for head in objects.values()) == status["storage"]["bytes"]
    assert config_maps_of(api, namespace, uid) == []
    records = read_back(kubeconfig, namespace, "in-s3")
    assert {r["task"]: r["result"]["v"] for r in records} == {n: i for i, n in enumerate(names)}

    client.CustomObjectsApi(api).delete_namespaced_custom_object(
        "execflow.dev", "v1alpha1", namespace, "resultsets", "in-s3"
    )
    wait_for(lambda: result_set_gone(api, namespace, "in-s3"), 30, "the deleted set to go")
    assert bucket.objects("runs/") == {}, "its objects went with it"
    reasons = [reason for reason, _ in result_set_events(api, namespace, "in-s3")]
    assert "StorageLeftBehind" not in reasons


def test_compression_shrinks_a_text_result_in_config_maps_and_s3(
    api: client.ApiClient,
    kubeconfig: Path,
    namespace: str,
    operator: OperatorProcess,
    bucket: Bucket,
) -> None:
    text = ("the quick brown fox jumps over the lazy dog " * 100)[:4000]
    create_task(api, namespace, "prose", sim={"duration": "50ms", "message": text})
    copy_local_s3_secret(api, namespace, "s3-credentials")
    s3 = {"bucket": bucket.name, "prefix": "packed/", "secretRef": {"name": "s3-credentials"}}
    backends = {
        "plain": {"backend": "ConfigMap", "compression": "None"},
        "gzipped": {"backend": "ConfigMap", "compression": "Gzip"},
        "zstd": {"backend": "S3", "compression": "Zstd", "s3": s3},
        "zstd-map": {"backend": "ConfigMap", "compression": "Zstd"},
    }
    for name, storage in backends.items():
        create_result_set(api, namespace, name, source={"taskRefs": ["prose"]}, storage=storage)

    stored = {}
    for name in backends:
        body = wait_result_set(api, namespace, name, {"Ready"}, count=1)
        stored[name] = body["status"]["storage"]["bytes"]
        [record] = read_back(kubeconfig, namespace, name)
        assert record["result"] == text, "a result that is not JSON is kept as its text"
    assert stored["plain"] > len(text)
    for name in ("gzipped", "zstd", "zstd-map"):
        assert stored[name] < len(text) // 4, (name, stored[name])

    headers = {}
    for name in ("plain", "gzipped", "zstd-map"):
        uid = get_result_set(api, namespace, name)["metadata"]["uid"]
        [data] = segment_bytes(api, namespace, uid).values()
        assert len(data) == stored[name]
        headers[name] = read_header(data).compression.value
    [(key, head)] = bucket.objects("packed/").items()
    assert head["ContentLength"] == stored["zstd"]
    headers["zstd"] = read_header(bucket.read(key)).compression.value
    assert headers == {"plain": "None", "gzipped": "Gzip", "zstd-map": "Zstd", "zstd": "Zstd"}
    assert (
        text.encode()
        in segment_bytes(
            api, namespace, get_result_set(api, namespace, "plain")["metadata"]["uid"]
        ).popitem()[1]
    )
