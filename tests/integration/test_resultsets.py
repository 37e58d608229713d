"""ResultSets on the real control plane: collection, aggregations, transforms and ConfigMaps.

Each test creates Tasks whose simulated containers end with a JSON result, and a ResultSet
over them; the session's operator collects them. Assertions read the ResultSet's status, the
ConfigMaps it owns, its Events, and the stored data read back and verified through the same
library `execflow results get` uses.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from kubernetes import client

from execflow.devcluster.harness import OperatorProcess
from tests.integration.objects import create_task, custom_api
from tests.integration.resultsets import (
    config_maps_of,
    create_result_set,
    get_result_set,
    read_back,
    result_set_events,
    wait_result_set,
)
from tests.integration.waiting import wait_for


def get_task(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    task: dict[str, Any] = custom_api(api).get_namespaced_custom_object(
        "execflow.dev", "v1alpha1", namespace, "tasks", name
    )
    return task


SCORES = [0.25, 0.5, 0.75, 1.0, 0.125]


def test_immediate_collects_each_finished_task_with_aggregations_and_transforms(
    api: client.ApiClient, kubeconfig: Path, namespace: str, operator: OperatorProcess
) -> None:
    for index, score in enumerate(SCORES):
        create_task(
            api,
            namespace,
            f"score-{index}",
            sim={"duration": "50ms", "message": f'{{"score": {score}, "rows": {index * 10}}}'},
            tags=["nightly", "even" if index % 2 == 0 else "odd"],
        )
    create_task(api, namespace, "broken", sim={"exit-code": "1"}, tags=["nightly"])
    create_result_set(
        api,
        namespace,
        "nightly",
        source={"selector": {}},
        filter={"tags": ["nightly"]},
        aggregations=[
            {"name": "total", "function": "sum", "field": "score"},
            {"name": "mean", "function": "avg", "field": "score"},
            {"name": "low", "function": "min", "field": "score"},
            {"name": "high", "function": "max", "field": "score"},
            {"name": "n", "function": "count"},
            {
                "name": "best",
                "function": "custom",
                "expression": "results.map(r, r.result.score).max()",
            },
        ],
        transforms=[
            {"name": "passed", "type": "filter", "expression": "r.result.score >= 0.5"},
            {"name": "percent", "type": "map", "expression": "r.result.score * 100.0"},
            {"name": "parity", "type": "group", "expression": "r.tags[1]"},
            {"name": "rows", "type": "reduce", "expression": "acc + r.result.rows", "initial": 0},
        ],
        storage={"backend": "ConfigMap", "compression": "Gzip"},
    )

    body = wait_result_set(api, namespace, "nightly", {"Ready"}, count=5)
    status = body["status"]
    assert status["reason"] == "Collected"
    assert status["aggregations"] == {
        "total": 2.625,
        "mean": 0.525,
        "low": 0.125,
        "high": 1.0,
        "n": 5,
        "best": 1.0,
    }
    transforms = status["transforms"]
    assert sorted(r["task"] for r in transforms["passed"]["value"]) == [
        "score-1",
        "score-2",
        "score-3",
    ]
    assert sorted(transforms["percent"]["value"]) == [12.5, 25.0, 50.0, 75.0, 100.0]
    assert {
        key: sorted(r["task"] for r in items)
        for key, items in transforms["parity"]["value"].items()
    } == {
        "even": ["score-0", "score-2", "score-4"],
        "odd": ["score-1", "score-3"],
    }
    assert transforms["rows"]["value"] == 100
    assert [item["task"] for item in status["items"]] != []
    assert len(status["checksum"]) == 64
    assert status["storage"]["backend"] == "ConfigMap"
    maps = config_maps_of(api, namespace, body["metadata"]["uid"])
    assert [m.metadata.name for m in maps] == status["storage"]["configMaps"]
    assert all(m.metadata.owner_references[0].uid == body["metadata"]["uid"] for m in maps)

    records = read_back(kubeconfig, namespace, "nightly")
    assert sorted(r["task"] for r in records) == [f"score-{i}" for i in range(5)]
    assert {r["task"]: r["result"]["score"] for r in records} == {
        f"score-{i}": score for i, score in enumerate(SCORES)
    }
    reasons = {reason for reason, _ in result_set_events(api, namespace, "nightly")}
    assert {"Collected", "Aggregated", "Transformed"} <= reasons


def test_a_task_finishing_later_is_collected_once_and_counted_once(
    api: client.ApiClient, kubeconfig: Path, namespace: str, operator: OperatorProcess
) -> None:
    create_task(api, namespace, "first", sim={"message": '{"v": 1}'}, tags=["t"])
    create_result_set(
        api,
        namespace,
        "grow",
        source={"taskRefs": ["first", "second"]},
        aggregations=[{"name": "sum", "function": "sum", "field": "v"}],
    )

    def waiting_for_the_second() -> dict[str, Any] | None:
        found = get_result_set(api, namespace, "grow")
        status = found.get("status") or {}
        ready = status.get("reason") == "WaitingForTasks" and status.get("count") == 1
        return found if ready else None

    body = wait_for(waiting_for_the_second, 60, "the set to wait for the missing Task")
    assert body is not None
    assert body["status"]["count"] == 1
    assert "second" in body["status"]["message"]
    create_task(api, namespace, "second", sim={"message": '{"v": 2}', "duration": "1s"})
    body = wait_result_set(api, namespace, "grow", {"Ready"}, count=2)
    assert body["status"]["aggregations"] == {"sum": 3}
    assert sorted(r["task"] for r in read_back(kubeconfig, namespace, "grow")) == [
        "first",
        "second",
    ]

    operator.stop()
    operator.start()
    wait_for(
        lambda: wait_result_set(api, namespace, "grow", {"Ready"}, count=2),
        30,
        "the set to stay Ready after a restart",
    )
    assert len(read_back(kubeconfig, namespace, "grow")) == 2


def results_get(kubeconfig: Path, namespace: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "execflow.cli.main", "results", "get", "-n", namespace, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        check=False,
    )


def test_results_get_collects_a_lazy_set_and_prints_verified_items(
    api: client.ApiClient, kubeconfig: Path, namespace: str, operator: OperatorProcess
) -> None:
    for index in range(3):
        create_task(api, namespace, f"lazy-{index}", sim={"message": f'{{"v": {index}}}'})
    create_result_set(
        api,
        namespace,
        "later",
        source={"selector": {}},
        strategy="Lazy",
        transforms=[{"name": "doubled", "type": "map", "expression": "r.result.v * 2.0"}],
    )
    wait_for(
        lambda: all(
            (get_task(api, namespace, f"lazy-{i}").get("status") or {}).get("phase") == "Completed"
            for i in range(3)
        ),
        60,
        "the tasks to complete",
    )
    body = wait_result_set(api, namespace, "later", {"Pending"})
    assert body["status"]["reason"] == "WaitingForFirstRead"
    assert body["status"].get("count", 0) == 0

    lines = results_get(kubeconfig, namespace, "later", "-o", "jsonl")

    assert lines.returncode == 0, lines.stderr
    records = [json.loads(line) for line in lines.stdout.splitlines()]
    assert sorted((r["task"], r["result"]["v"]) for r in records) == [
        ("lazy-0", 0),
        ("lazy-1", 1),
        ("lazy-2", 2),
    ]
    table = results_get(kubeconfig, namespace, "later", "-o", "csv")
    assert table.returncode == 0, table.stderr
    rows = list(csv.DictReader(io.StringIO(table.stdout)))
    assert sorted(row["result.v"] for row in rows) == ["0", "1", "2"]
    doubled = results_get(kubeconfig, namespace, "later", "--transform", "doubled")
    assert sorted(json.loads(doubled.stdout)) == [0.0, 2.0, 4.0]
    missing = results_get(kubeconfig, namespace, "nothing")
    assert missing.returncode == 1
    assert "nothing" in missing.stderr
