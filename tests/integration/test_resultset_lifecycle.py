"""A ResultSet's life on the real control plane and the real S3 server, from creation to its end.

A Workflow's own ResultSet (named as it, owned by it, gone with it); data expiring after its ttl
(owned ConfigMaps and S3 objects deleted, counts and aggregations kept, the set Expired for good
and no longer readable); the S3 server really stopped (a result waits with StorageUnavailable, and
a deleted set is let go after `storageCleanupTimeout` with an Event naming what was left, the
objects still there once the server is back); and the session's operator SIGKILLed in the middle
of a Batch collection (every result stored once and counted once). Assertions read statuses,
owner references, ConfigMaps, S3 objects listed with boto3, Events, and the data read back and
verified through the library `execflow results get` uses.
"""

from __future__ import annotations

import datetime
import functools
import math
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from execflow.devcluster.cluster import LocalCluster
from execflow.devcluster.harness import OperatorProcess
from execflow.kube.result_access import ExpiredError
from tests.integration.objects import (
    GROUP,
    VERSION,
    children_of,
    create_task,
    create_workflow,
    custom_api,
)
from tests.integration.resultsets import (
    Bucket,
    config_maps_of,
    copy_local_s3_secret,
    create_result_set,
    get_result_set,
    moment,
    patch_result_set,
    read_back,
    result_set_gone,
    s3_server_stopped,
    scored_task,
    wait_event,
    wait_reason,
    wait_result_set,
)
from tests.integration.waiting import wait_for
from tests.integration.workflows import sim, wait_workflow

CLEANUP_TIMEOUT = 5.0
"""storageCleanupTimeout in the session operator's settings (conftest.OPERATOR_SETTINGS)."""


def s3_storage(bucket: Bucket, prefix: str) -> dict[str, Any]:
    return {
        "backend": "S3",
        "s3": {"bucket": bucket.name, "prefix": prefix, "secretRef": {"name": "s3-credentials"}},
    }


def delete_result_set(api: client.ApiClient, namespace: str, name: str) -> None:
    custom_api(api).delete_namespaced_custom_object(GROUP, VERSION, namespace, "resultsets", name)


def test_a_workflow_result_set_is_named_and_owned_by_it_and_ready_with_its_values(
    api: client.ApiClient, kubeconfig: Path, namespace: str, operator: OperatorProcess
) -> None:
    rows = {"part-0": 10, "part-1": 20, "part-2": 30}
    create_workflow(
        api,
        namespace,
        "pipeline",
        steps=[
            {
                "name": "work",
                "executionMode": "Parallel",
                "tasks": [sim(name, message=f'{{"rows": {n}}}') for name, n in rows.items()],
            }
        ],
        resultSet={
            "aggregations": [
                {"name": "total_rows", "function": "sum", "field": "rows"},
                {"name": "parts", "function": "count"},
            ]
        },
    )

    workflow = wait_workflow(api, namespace, "pipeline", {"Completed"})
    body = wait_result_set(api, namespace, "pipeline", {"Ready"}, count=3)
    [owner] = body["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "Workflow",
        "pipeline",
        workflow["metadata"]["uid"],
        True,
    )
    assert body["spec"]["source"] == {"workflowRef": {"name": "pipeline"}}
    assert body["status"]["aggregations"] == {"total_rows": 60, "parts": 3}
    records = read_back(kubeconfig, namespace, "pipeline")
    spec_name = {
        name: child["metadata"]["labels"]["execflow.dev/workflow-task"]
        for name, child in children_of(api, namespace, "pipeline").items()
    }
    assert {spec_name[r["task"]]: r["result"]["rows"] for r in records} == rows
    uid = body["metadata"]["uid"]
    assert config_maps_of(api, namespace, uid)

    custom_api(api).delete_namespaced_custom_object(
        GROUP, VERSION, namespace, "workflows", "pipeline"
    )
    wait_for(lambda: result_set_gone(api, namespace, "pipeline"), 60, "the set to go with it")
    wait_for(lambda: config_maps_of(api, namespace, uid) == [], 60, "its ConfigMaps to go with it")


def test_ttl_expires_the_stored_data_and_keeps_counts_and_aggregations(
    api: client.ApiClient,
    kubeconfig: Path,
    namespace: str,
    operator: OperatorProcess,
    bucket: Bucket,
) -> None:
    ttl = datetime.timedelta(seconds=3)
    copy_local_s3_secret(api, namespace, "s3-credentials")
    names = ["short-0", "short-1"]
    scored_task(api, namespace, "short-0", {"v": 2})
    scored_task(api, namespace, "short-1", {"v": 5})
    common: dict[str, Any] = {
        "source": {"taskRefs": names},
        "ttl": "3s",
        "aggregations": [{"name": "total", "function": "sum", "field": "v"}],
    }
    create_result_set(api, namespace, "in-maps", **common)
    create_result_set(api, namespace, "in-s3", storage=s3_storage(bucket, "ttl/"), **common)

    maps = wait_result_set(api, namespace, "in-maps", {"Ready"}, count=2)
    assert config_maps_of(api, namespace, maps["metadata"]["uid"]), "stored before it expires"
    wait_result_set(api, namespace, "in-s3", {"Ready"}, count=2)
    assert bucket.objects("ttl/"), "stored before it expires"

    for name in ("in-maps", "in-s3"):
        status = wait_result_set(api, namespace, name, {"Expired"}, timeout=30)["status"]
        assert moment(status["expiredAt"]) - moment(status["lastCollectedAt"]) >= ttl
        assert "3s" in wait_event(api, namespace, name, "Expired")
    assert config_maps_of(api, namespace, maps["metadata"]["uid"]) == []
    assert bucket.objects("ttl/") == {}

    # Expired is for good: later reconciles (woken here by an annotation) leave it so. A set
    # created afterwards is collected once the operator got that far.
    for name in ("in-maps", "in-s3"):
        patch_result_set(api, namespace, name, {"metadata": {"annotations": {"touched": "yes"}}})
    create_result_set(api, namespace, "witness", source={"taskRefs": names})
    wait_result_set(api, namespace, "witness", {"Ready"}, count=2)
    for name in ("in-maps", "in-s3"):
        status = get_result_set(api, namespace, name)["status"]
        assert (status["phase"], status["reason"]) == ("Expired", "Expired")
        assert status["count"] == 2
        assert status["aggregations"] == {"total": 7}
        assert status["storage"]["segments"] >= 1
        assert status["storage"].get("configMaps", []) == []
        with pytest.raises(ExpiredError, match="expired and was deleted at"):
            read_back(kubeconfig, namespace, name)


def test_deleting_a_set_while_s3_is_down_lets_it_go_and_reports_what_was_left_behind(
    api: client.ApiClient,
    namespace: str,
    operator: OperatorProcess,
    bucket: Bucket,
    local_cluster: LocalCluster | None,
) -> None:
    copy_local_s3_secret(api, namespace, "s3-credentials")
    scored_task(api, namespace, "left-0", {"v": 1})
    scored_task(api, namespace, "left-1", {"v": 2})
    create_result_set(
        api,
        namespace,
        "orphan",
        source={"taskRefs": ["left-0", "left-1", "late"]},
        storage=s3_storage(bucket, "gone/"),
    )
    body = wait_result_set(api, namespace, "orphan", {"Collecting"}, count=2)
    prefix = body["status"]["storage"]["prefix"]
    stored = bucket.objects(prefix)
    assert stored

    with s3_server_stopped(local_cluster):
        # A result that cannot be stored waits, saying why.
        scored_task(api, namespace, "late", {"v": 3})
        waiting = wait_reason(api, namespace, "orphan", "StorageUnavailable")["status"]
        assert (waiting["phase"], waiting["count"]) == ("Collecting", 2)
        assert bucket.name in wait_event(api, namespace, "orphan", "StorageUnavailable")

        started = time.monotonic()
        delete_result_set(api, namespace, "orphan")
        wait_for(
            lambda: result_set_gone(api, namespace, "orphan"),
            CLEANUP_TIMEOUT + 25,
            "the set to be let go once the cleanup timeout passed",
        )
        took = time.monotonic() - started
        message = wait_event(api, namespace, "orphan", "StorageLeftBehind")

    # deletionTimestamp has whole seconds: the set waited at least the timeout less one second.
    assert CLEANUP_TIMEOUT - 1 <= took <= CLEANUP_TIMEOUT + 25
    assert f"s3://{bucket.name}/{prefix}" in message
    assert bucket.objects(prefix).keys() == stored.keys(), "left behind, as reported"


def test_a_sigkill_during_batch_collection_stores_and_counts_every_result_once(
    api: client.ApiClient, kubeconfig: Path, namespace: str, operator: OperatorProcess
) -> None:
    names = [f"crash-{index:02d}" for index in range(16)]
    values = {name: (index * 7) % 11 + index / 4 for index, name in enumerate(names)}
    create_result_set(
        api,
        namespace,
        "survivor",
        source={"taskRefs": names},
        strategy="Batch",
        batch={"size": 2},
        aggregations=[
            {"name": "total", "function": "sum", "field": "v"},
            {"name": "mean", "function": "avg", "field": "v"},
            {"name": "low", "function": "min", "field": "v"},
            {"name": "high", "function": "max", "field": "v"},
            {"name": "n", "function": "count"},
        ],
    )
    for index, name in enumerate(names):
        create_task(
            api,
            namespace,
            name,
            sim={"duration": f"{200 + 250 * index}ms", "message": f'{{"v": {values[name]}}}'},
        )

    def counted(least: int) -> bool:
        status = get_result_set(api, namespace, "survivor").get("status") or {}
        return int(status.get("count", 0)) >= least

    for least in (2, 8):
        # Crash part way: once some batches are counted and more results are coming.
        wait_for(functools.partial(counted, least), 90, f"{least} results counted")
        operator.kill()
        operator.start()

    status = wait_result_set(api, namespace, "survivor", {"Ready"}, count=16)["status"]
    records = read_back(kubeconfig, namespace, "survivor")
    assert len(records) == len({r["uid"] for r in records}) == 16, "each result stored once"
    assert sorted(r["task"] for r in records) == names
    numbers = [r["result"]["v"] for r in records]
    assert status["aggregations"] == {
        "total": math.fsum(numbers),
        "mean": math.fsum(numbers) / len(numbers),
        "low": min(numbers),
        "high": max(numbers),
        "n": len(records),
    }
    assert status["storage"]["segments"] == 8
