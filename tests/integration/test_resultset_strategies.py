"""ResultSet strategies on the real control plane: when each one collects, and what it stores.

Batch (segments of `size`, a batch written once its oldest result has waited `interval`, the last
partial batch written once no selected Task still runs), Streaming, Lazy and OnDemand; Immediate
is exercised in test_resultsets.py. Tasks run as simulated pods on the fake nodes and end with
JSON results; the session's operator collects them. Assertions read the ResultSet's status
(phase, reason, count, storage.segments, the segment each item lies in, collectToken), the
owned ConfigMaps and their keys, the Tasks' own timestamps, and the data read back and verified
through the library `execflow results get` uses.
"""

from __future__ import annotations

import datetime
import hashlib
import itertools
from pathlib import Path
from typing import Any

from kubernetes import client

from execflow.devcluster.harness import OperatorProcess
from tests.integration.objects import TERMINAL, create_task
from tests.integration.operator_process import wait_phase
from tests.integration.resultsets import (
    annotate_collect,
    config_maps_of,
    create_result_set,
    get_result_set,
    items_per_segment,
    moment,
    read_back,
    scored_task,
    segment_bytes,
    segment_keys,
    task_phase,
    wait_reason,
    wait_result_set,
)
from tests.integration.waiting import wait_for

SAME_MOMENT = datetime.timedelta(seconds=1)


def completion(api: client.ApiClient, namespace: str, name: str) -> datetime.datetime:
    return moment(wait_phase(api, namespace, name, TERMINAL)["status"]["completionTime"])


def test_batch_by_size_stores_segments_of_size_and_the_rest_once_nothing_runs(
    api: client.ApiClient, kubeconfig: Path, namespace: str, operator: OperatorProcess
) -> None:
    names = [f"sized-{index}" for index in range(7)]
    create_result_set(
        api,
        namespace,
        "sized",
        source={"taskRefs": names},
        strategy="Batch",
        batch={"size": 3},
        aggregations=[{"name": "total", "function": "sum", "field": "v"}],
    )
    for index, name in enumerate(names):
        create_task(
            api,
            namespace,
            name,
            sim={"duration": f"{100 + 200 * index}ms", "message": f'{{"v": {index}}}'},
        )

    body = wait_result_set(api, namespace, "sized", {"Ready"}, count=7)
    status = body["status"]
    assert status["aggregations"] == {"total": 21}
    assert status["storage"]["segments"] == 3
    segments = items_per_segment(status)
    assert [len(segments[ref]) for ref in sorted(segments)] == [3, 3, 1]
    [shard] = status["storage"]["configMaps"]
    assert segment_keys(api, namespace, body["metadata"]["uid"]) == {
        shard: [f"seg-{n:08d}{suffix}" for n in range(3) for suffix in ("", ".sha256")]
    }
    [config_map] = config_maps_of(api, namespace, body["metadata"]["uid"])
    for key, data in segment_bytes(api, namespace, body["metadata"]["uid"]).items():
        assert config_map.data[f"{key}.sha256"] == hashlib.sha256(data).hexdigest()
    records = read_back(kubeconfig, namespace, "sized")
    assert sorted(r["task"] for r in records) == names
    finished = [moment(r["completionTime"]) for r in records]
    # Stored in the order the operator saw them finish: two Tasks whose Completed writes cross
    # (each took its time before the other's write landed) may be stored in either order.
    assert all(later >= earlier - SAME_MOMENT for earlier, later in itertools.pairwise(finished)), (
        "segments hold results in the order they finished"
    )


def test_batch_by_interval_stores_once_the_oldest_result_has_waited_the_interval(
    api: client.ApiClient, kubeconfig: Path, namespace: str, operator: OperatorProcess
) -> None:
    interval = datetime.timedelta(seconds=3)
    create_result_set(
        api,
        namespace,
        "timed",
        source={"taskRefs": ["early-0", "early-1", "late"]},
        strategy="Batch",
        batch={"interval": "3s"},
    )
    scored_task(api, namespace, "early-0", {"v": 0})
    scored_task(api, namespace, "early-1", {"v": 1})
    create_task(api, namespace, "late", sim={"duration": "7s", "message": '{"v": 2}'})

    waiting = wait_reason(api, namespace, "timed", "WaitingForBatch")
    assert waiting["status"]["phase"] == "Collecting"
    assert waiting["status"].get("count", 0) == 0
    assert config_maps_of(api, namespace, waiting["metadata"]["uid"]) == []

    first = wait_result_set(api, namespace, "timed", {"Collecting"}, count=2)["status"]
    collected = moment(first["lastCollectedAt"])
    oldest = min(completion(api, namespace, name) for name in ("early-0", "early-1"))
    assert collected - oldest >= interval, "results waited for the interval"
    assert sorted(item["task"] for item in first["items"]) == ["early-0", "early-1"]

    final = wait_result_set(api, namespace, "timed", {"Ready"}, count=3)["status"]
    assert completion(api, namespace, "late") > collected, "the interval, not the end, wrote it"
    segments = items_per_segment(final)
    assert [sorted(segments[ref]) for ref in sorted(segments)] == [["early-0", "early-1"], ["late"]]
    assert sorted(r["task"] for r in read_back(kubeconfig, namespace, "timed")) == [
        "early-0",
        "early-1",
        "late",
    ]


def test_batch_flushes_a_partial_batch_once_no_selected_task_is_still_running(
    api: client.ApiClient, kubeconfig: Path, namespace: str, operator: OperatorProcess
) -> None:
    names = ["quick-0", "quick-1", "quick-2", "slow"]
    create_result_set(
        api,
        namespace,
        "partial",
        source={"taskRefs": names},
        strategy="Batch",
        batch={"size": 10},
    )
    for name in names[:3]:
        scored_task(api, namespace, name, {"name": name})
    create_task(api, namespace, "slow", sim={"duration": "5s", "message": '{"name": "slow"}'})

    for name in names[:3]:
        wait_phase(api, namespace, name, {"Completed"})
    waiting = wait_reason(api, namespace, "partial", "WaitingForBatch")
    assert task_phase(api, namespace, "slow") not in TERMINAL
    assert waiting["status"].get("count", 0) == 0, "three finished results wait"
    assert config_maps_of(api, namespace, waiting["metadata"]["uid"]) == []

    status = wait_result_set(api, namespace, "partial", {"Ready"}, count=4)["status"]
    assert status["storage"]["segments"] == 1
    assert moment(status["lastCollectedAt"]) >= completion(api, namespace, "slow")
    [segment] = items_per_segment(status).values()
    assert sorted(segment) == sorted(names)
    assert len(read_back(kubeconfig, namespace, "partial")) == 4


def test_streaming_results_are_readable_from_storage_while_the_set_grows(
    api: client.ApiClient, kubeconfig: Path, namespace: str, operator: OperatorProcess
) -> None:
    quick = [f"stream-{index}" for index in range(4)]
    create_result_set(
        api,
        namespace,
        "stream",
        source={"taskRefs": [*quick, "last"]},
        strategy="Streaming",
        aggregations=[{"name": "n", "function": "count"}],
    )
    for index, name in enumerate(quick):
        scored_task(api, namespace, name, {"v": index})
    create_task(api, namespace, "last", sim={"duration": "6s", "message": '{"v": 9}'})

    def four_stored() -> list[dict[str, Any]] | None:
        found = read_back(kubeconfig, namespace, "stream")
        return found if len(found) == 4 else None

    records = wait_for(four_stored, 60, "the four quick results in storage")
    assert records is not None
    assert sorted(r["task"] for r in records) == quick
    body = get_result_set(api, namespace, "stream")
    assert body["status"]["phase"] == "Collecting", "read while the set still grows"
    assert body["status"].get("count", 0) <= 4
    last = task_phase(api, namespace, "last")
    assert last not in TERMINAL, f"the last task is still running ({last})"

    status = wait_result_set(api, namespace, "stream", {"Ready"}, count=5)["status"]
    assert status["aggregations"] == {"n": 5}
    assert sorted(r["task"] for r in read_back(kubeconfig, namespace, "stream")) == sorted(
        [*quick, "last"]
    )


def test_lazy_stores_nothing_until_first_read_then_collects(
    api: client.ApiClient, kubeconfig: Path, namespace: str, operator: OperatorProcess
) -> None:
    names = [f"lazy-{index}" for index in range(3)]
    create_result_set(api, namespace, "lazy", source={"taskRefs": names}, strategy="Lazy")
    # A witness over the same Tasks: once it has collected them, the operator has seen them all.
    create_result_set(api, namespace, "witness", source={"taskRefs": names})
    for index, name in enumerate(names):
        scored_task(api, namespace, name, {"v": index})
    wait_result_set(api, namespace, "witness", {"Ready"}, count=3)

    body = get_result_set(api, namespace, "lazy")
    status = body["status"]
    assert (status["phase"], status["reason"]) == ("Pending", "WaitingForFirstRead")
    assert status.get("count", 0) == 0
    assert status.get("storage", {}).get("segments", 0) == 0
    assert config_maps_of(api, namespace, body["metadata"]["uid"]) == []

    annotate_collect(api, namespace, "lazy", "first-read")
    body = wait_result_set(api, namespace, "lazy", {"Ready"}, count=3)
    assert body["status"]["reason"] == "Collected"
    assert len(config_maps_of(api, namespace, body["metadata"]["uid"])) == 1
    assert sorted(r["task"] for r in read_back(kubeconfig, namespace, "lazy")) == names


def test_on_demand_takes_one_snapshot_per_annotation_value(
    api: client.ApiClient, kubeconfig: Path, namespace: str, operator: OperatorProcess
) -> None:
    names = ["first", "second", "third"]
    create_result_set(
        api,
        namespace,
        "snapshots",
        source={"taskRefs": names},
        strategy="OnDemand",
        aggregations=[{"name": "total", "function": "sum", "field": "v"}],
    )
    create_result_set(api, namespace, "witness", source={"taskRefs": names})
    scored_task(api, namespace, "first", {"v": 1})
    scored_task(api, namespace, "second", {"v": 2})
    wait_result_set(api, namespace, "witness", {"Collecting"}, count=2)
    status = get_result_set(api, namespace, "snapshots")["status"]
    assert (status["phase"], status["reason"]) == ("Pending", "WaitingForRequest")

    annotate_collect(api, namespace, "snapshots", "one")
    status = wait_result_set(api, namespace, "snapshots", {"Ready"}, count=2)["status"]
    assert (status["reason"], status["collectToken"]) == ("SnapshotTaken", "one")
    assert status["aggregations"] == {"total": 3}

    scored_task(api, namespace, "third", {"v": 4})
    wait_result_set(api, namespace, "witness", {"Ready"}, count=3)
    status = get_result_set(api, namespace, "snapshots")["status"]
    assert (status["phase"], status["count"], status["collectToken"]) == ("Ready", 2, "one")
    assert sorted(r["task"] for r in read_back(kubeconfig, namespace, "snapshots")) == [
        "first",
        "second",
    ]

    annotate_collect(api, namespace, "snapshots", "two")
    status = wait_result_set(api, namespace, "snapshots", {"Ready"}, count=3)["status"]
    assert (status["reason"], status["collectToken"]) == ("SnapshotTaken", "two")
    assert status["aggregations"] == {"total": 7}
    assert status["storage"]["segments"] == 2, "one segment per snapshot"
    assert sorted(r["task"] for r in read_back(kubeconfig, namespace, "snapshots")) == names
