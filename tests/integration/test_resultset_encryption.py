"""ResultSet encryption on the real control plane: AES-256-GCM with keys from Secrets.

Results stored encrypted and read back with the key; the key id in the status and in each
segment's header; a wrong key after an operator restart (the set fails with DecryptionFailed,
nothing is deleted, and reading back refuses too); a rotation to a new key kept next to the old
one in the same Secret; and a Secret that does not exist yet. Tasks run as simulated pods; the
assertions read the ResultSet's status and Events, the owned ConfigMaps' bytes (segment headers,
no plaintext) and the data read back and verified through the library `execflow results get`
uses.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from kubernetes import client

from execflow.core.resultsets.codec import key_id, read_header
from execflow.core.resultsets.errors import DecryptionFailedError
from execflow.devcluster.harness import OperatorProcess
from tests.integration.operator_process import wait_phase
from tests.integration.resultsets import (
    config_maps_of,
    create_key_secret,
    create_result_set,
    get_result_set,
    items_per_segment,
    patch_result_set,
    read_back,
    result_set_events,
    scored_task,
    segment_bytes,
    wait_event,
    wait_reason,
    wait_result_set,
)

MARKER = "plaintext-marker-7f3a"


def encrypted(name: str, key: str = "key") -> dict[str, object]:
    return {"compression": "None", "encryption": {"secretRef": {"name": name, "key": key}}}


def key_ids_by_task(api: client.ApiClient, namespace: str, name: str) -> dict[str, str]:
    """The key id each task's stored segment names in its header."""
    body = get_result_set(api, namespace, name)
    stored = segment_bytes(api, namespace, body["metadata"]["uid"])
    return {
        task: read_header(stored[ref.rsplit(":", 1)[1]]).key_id
        for ref, tasks in items_per_segment(body["status"]).items()
        for task in tasks
    }


def replace_secret_key(api: client.ApiClient, namespace: str, name: str, **keys: bytes) -> None:
    client.CoreV1Api(api).replace_namespaced_secret(
        name,
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=name),
            data={key: base64.b64encode(value).decode() for key, value in keys.items()},
        ),
    )


def test_encrypted_results_read_back_with_the_key_and_name_its_id(
    api: client.ApiClient, kubeconfig: Path, namespace: str, operator: OperatorProcess
) -> None:
    key = os.urandom(32)
    create_key_secret(api, namespace, "results-key", key=key)
    names = [f"secret-{index}" for index in range(3)]
    for index, name in enumerate(names):
        scored_task(api, namespace, name, {"marker": MARKER, "v": index})
    create_result_set(
        api, namespace, "sealed", source={"taskRefs": names}, storage=encrypted("results-key")
    )

    body = wait_result_set(api, namespace, "sealed", {"Ready"}, count=3)
    assert body["status"]["storage"]["keyId"] == key_id(key)
    stored = segment_bytes(api, namespace, body["metadata"]["uid"])
    assert stored
    for data in stored.values():
        header = read_header(data)
        assert (header.encrypted, header.key_id) == (True, key_id(key))
        assert MARKER.encode() not in data, "no plaintext in storage"
    records = read_back(kubeconfig, namespace, "sealed")
    assert {r["task"]: r["result"] for r in records} == {
        name: {"marker": MARKER, "v": index} for index, name in enumerate(names)
    }


def test_a_wrong_key_fails_the_set_with_decryption_failed_and_deletes_nothing(
    api: client.ApiClient, kubeconfig: Path, namespace: str, operator: OperatorProcess
) -> None:
    create_key_secret(api, namespace, "results-key", key=os.urandom(32))
    scored_task(api, namespace, "kept", {"v": 1})
    create_result_set(
        api, namespace, "sealed", source={"taskRefs": ["kept"]}, storage=encrypted("results-key")
    )
    body = wait_result_set(api, namespace, "sealed", {"Ready"}, count=1)
    uid = body["metadata"]["uid"]
    before = segment_bytes(api, namespace, uid)
    shards = [m.metadata.name for m in config_maps_of(api, namespace, uid)]

    wrong = os.urandom(32)
    replace_secret_key(api, namespace, "results-key", key=wrong)
    operator.stop()
    operator.start()

    status = wait_result_set(api, namespace, "sealed", {"Failed"})["status"]
    assert status["reason"] == "DecryptionFailed"
    assert key_id(wrong) in status["message"], "names the keys available"
    assert key_id(wrong) in wait_event(api, namespace, "sealed", "DecryptionFailed")
    assert status["count"] == 1, "what was counted stays"
    assert [m.metadata.name for m in config_maps_of(api, namespace, uid)] == shards
    assert segment_bytes(api, namespace, uid) == before, "nothing deleted or rewritten"
    with pytest.raises(DecryptionFailedError):
        read_back(kubeconfig, namespace, "sealed")


def test_a_rotated_key_reads_old_segments_and_writes_new_ones_with_the_new_key(
    api: client.ApiClient, kubeconfig: Path, namespace: str, operator: OperatorProcess
) -> None:
    old, new = os.urandom(32), os.urandom(32)
    create_key_secret(api, namespace, "rotating", k1=old)
    names = ["before-0", "before-1", "after"]
    create_result_set(
        api,
        namespace,
        "rotated",
        source={"taskRefs": names},
        storage=encrypted("rotating", "k1"),
        aggregations=[{"name": "total", "function": "sum", "field": "v"}],
    )
    scored_task(api, namespace, "before-0", {"v": 1})
    scored_task(api, namespace, "before-1", {"v": 2})
    body = wait_result_set(api, namespace, "rotated", {"Collecting"}, count=2)
    assert body["status"]["storage"]["keyId"] == key_id(old)

    # Rotate: the new key under a new name, the old one kept in the same Secret.
    replace_secret_key(api, namespace, "rotating", k1=old, k2=new)
    patch_result_set(
        api,
        namespace,
        "rotated",
        {"spec": {"storage": {"encryption": {"secretRef": {"name": "rotating", "key": "k2"}}}}},
    )
    scored_task(api, namespace, "after", {"v": 4})

    status = wait_result_set(api, namespace, "rotated", {"Ready"}, count=3)["status"]
    assert status["storage"]["keyId"] == key_id(new)
    assert status["aggregations"] == {"total": 7}
    assert key_ids_by_task(api, namespace, "rotated") == {
        "before-0": key_id(old),
        "before-1": key_id(old),
        "after": key_id(new),
    }
    records = read_back(kubeconfig, namespace, "rotated")
    assert sorted(r["task"] for r in records) == sorted(names)


def test_a_missing_encryption_secret_waits_with_secret_not_found_then_collects(
    api: client.ApiClient, kubeconfig: Path, namespace: str, operator: OperatorProcess
) -> None:
    names = ["early-0", "early-1"]
    for index, name in enumerate(names):
        scored_task(api, namespace, name, {"v": index})
    for name in names:
        wait_phase(api, namespace, name, {"Completed"})
    create_result_set(
        api, namespace, "waits", source={"taskRefs": names}, storage=encrypted("later-key")
    )

    body = wait_reason(api, namespace, "waits", "SecretNotFound")
    assert "later-key" in body["status"]["message"]
    assert body["status"]["phase"] in {"Pending", "Collecting"}
    assert body["status"].get("count", 0) == 0
    assert config_maps_of(api, namespace, body["metadata"]["uid"]) == []
    assert "later-key" in wait_event(api, namespace, "waits", "SecretNotFound")

    key = os.urandom(32)
    create_key_secret(api, namespace, "later-key", key=key)
    body = wait_result_set(api, namespace, "waits", {"Ready"}, count=2, timeout=60)
    assert body["status"]["storage"]["keyId"] == key_id(key)
    assert sorted(r["task"] for r in read_back(kubeconfig, namespace, "waits")) == names
    assert "SecretNotFound" in [r for r, _ in result_set_events(api, namespace, "waits")]
