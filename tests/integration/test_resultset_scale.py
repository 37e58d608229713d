"""A ResultSet over 10,000 Tasks on the real control plane: its status stays small throughout.

Running 10,000 Tasks through Jobs and simulated pods takes far longer than a test may, so the
Tasks are created suspended and set Completed with their results through the status subresource,
as the operator sets them when an attempt ends (the Task controller leaves a finished Task
alone). The ResultSet exists before the first Task, so it collects while they arrive; its status
is sampled all along. Afterwards every result is read back and verified, once each, and the
aggregations agree with a recompute from what was read.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from kubernetes import client

from execflow.core.resultsets.collection import SEGMENT_ITEMS
from execflow.devcluster import harness
from execflow.devcluster.harness import OperatorProcess
from tests.integration.objects import GROUP, VERSION, custom_api
from tests.integration.resultsets import (
    create_result_set,
    delete_tasks,
    finish_tasks_directly,
    get_result_set,
    read_back,
    result_set_gone,
)
from tests.integration.waiting import wait_for

TASKS = 10_000
STATUS_LIMIT = 256 * 1024


def test_a_set_over_ten_thousand_tasks_keeps_its_status_under_256_kib(
    api: client.ApiClient, kubeconfig: Path, namespace: str, operator: OperatorProcess
) -> None:
    labels = {"set": "large"}
    results = [{"n": index, "score": (index % 97) / 8} for index in range(TASKS)]
    pooled = harness.connect(kubeconfig, pool_size=32)
    # The operator is stopped while the Tasks are written: every Task it saw unfinished would
    # cost a status write of its own (and a conflict with ours), which more than doubles the
    # API server's work here. It starts again on 10,000 finished Tasks and one ResultSet.
    operator.stop()
    try:
        create_result_set(
            api,
            namespace,
            "large",
            source={"selector": {"matchLabels": labels}},
            aggregations=[
                {"name": "total", "function": "sum", "field": "n"},
                {"name": "mean", "function": "avg", "field": "score"},
                {"name": "low", "function": "min", "field": "score"},
                {"name": "high", "function": "max", "field": "n"},
                {"name": "count", "function": "count"},
            ],
            transforms=[
                {"name": "tenths", "type": "filter", "expression": "int(r.result.n) % 10 == 0"},
                {"name": "names", "type": "map", "expression": "r.task"},
                {"name": "sum_n", "type": "reduce", "expression": "acc + r.result.n", "initial": 0},
            ],
        )
        names = finish_tasks_directly(pooled, namespace, results, labels=labels, workers=16)
    finally:
        operator.start()
    sizes: list[int] = []

    def finished() -> dict[str, Any] | None:
        body = get_result_set(api, namespace, "large")
        status = body.get("status") or {}
        sizes.append(len(json.dumps(status)))
        done = status.get("phase") == "Ready" and status.get("count") == TASKS
        return body if done else None

    body = wait_for(finished, 300, f"{TASKS} results collected", interval=0.2)
    assert body is not None
    status = body["status"]
    assert max(sizes) < STATUS_LIMIT, f"status reached {max(sizes)} bytes"
    assert len(json.dumps(body)) < STATUS_LIMIT
    assert status["storage"]["segments"] >= TASKS // SEGMENT_ITEMS
    assert len(status["items"]) == 20
    assert status["transforms"]["tenths"] == {
        "count": TASKS // 10,
        "ref": "execflow results get large --transform tenths",
    }
    assert status["transforms"]["names"] == {
        "count": TASKS,
        "ref": "execflow results get large --transform names",
    }

    records = read_back(kubeconfig, namespace, "large")
    assert len(records) == len({r["uid"] for r in records}) == TASKS
    assert sorted(r["task"] for r in records) == names
    numbers = [r["result"]["n"] for r in records]
    scores = [r["result"]["score"] for r in records]
    assert status["aggregations"] == {
        "total": sum(numbers),
        "mean": math.fsum(scores) / TASKS,
        "low": min(scores),
        "high": max(numbers),
        "count": TASKS,
    }
    assert status["transforms"]["sum_n"] == {"count": TASKS, "value": sum(numbers)}
    # The Task controller left the finished Tasks alone: nothing started, statuses as written.
    assert client.BatchV1Api(api).list_namespaced_job(namespace).items == []
    for name in (names[0], names[-1]):
        task = custom_api(api).get_namespaced_custom_object(
            GROUP, VERSION, namespace, "tasks", name
        )
        assert task["status"]["message"] == "finished outside the cluster"

    # Leave no 10,000 Tasks for the namespace's deletion to remove while the next test runs
    # (the set first: each Task's deletion would wake it).
    custom_api(api).delete_namespaced_custom_object(
        GROUP, VERSION, namespace, "resultsets", "large"
    )
    wait_for(lambda: result_set_gone(api, namespace, "large"), 60, "the set to be deleted")
    delete_tasks(pooled, namespace, names)
    remaining = custom_api(api).list_namespaced_custom_object(
        GROUP, VERSION, namespace, "tasks", limit=1
    )
    assert remaining["items"] == []
