"""ResultSet aggregations and transforms on the real control plane, beyond the basic ones.

A custom (whole-list) transform, `count` over a field, outputs that outgrow the status and turn
from inline `{count, value}` into a reference `{count, ref}` as the set grows, and an expression
that fails on one item (the set fails with ExpressionError naming that task). sum, avg, min, max,
count, custom aggregations and filter, map, group, reduce transforms over a small set are in
test_resultsets.py. Tasks run as simulated pods; assertions read the ResultSet's status and
Events and the data read back and verified through the library `execflow results get` uses.
"""

from __future__ import annotations

from pathlib import Path

from kubernetes import client

from execflow.core.resultsets.accounting import INLINE_BYTES, reference
from execflow.devcluster.harness import OperatorProcess
from tests.integration.resultsets import (
    create_result_set,
    read_back,
    scored_task,
    text_result,
    wait_event,
    wait_result_set,
)

SCORES = {"a": 0.75, "b": 0.25, "c": 1.0, "d": 0.5, "e": 0.125, "f": 0.875}


def test_custom_transform_and_outputs_that_outgrow_the_status_become_references(
    api: client.ApiClient, kubeconfig: Path, namespace: str, operator: OperatorProcess
) -> None:
    names = sorted(SCORES)
    create_result_set(
        api,
        namespace,
        "outputs",
        source={"taskRefs": [*names, "unscored"]},
        aggregations=[
            {"name": "scored", "function": "count", "field": "score"},
            {"name": "all", "function": "count"},
        ],
        transforms=[
            {
                "name": "passed",
                "type": "custom",
                "expression": "results.filter(r, has(r.result.score) && r.result.score >= 0.5)"
                ".map(r, r.task)",
            },
            {
                "name": "doubled",
                "type": "map",
                "expression": "has(r.result.score) ? r.result.score * 2.0 : 0.0",
            },
            {"name": "texts", "type": "map", "expression": "r.result.text"},
            {
                "name": "by_half",
                "type": "group",
                "expression": "has(r.result.score) && r.result.score >= 0.5",
            },
        ],
    )
    # Each text is 1 KiB: two of them fit inline, six do not.
    for name in names[:2]:
        scored_task(api, namespace, name, {"score": SCORES[name], **text_result(1024, name)})

    early = wait_result_set(api, namespace, "outputs", {"Collecting"}, count=2)["status"]
    assert early["transforms"]["texts"]["count"] == 2
    assert len(early["transforms"]["texts"]["value"]) == 2, "inline while small"
    assert "ref" not in early["transforms"]["texts"]
    assert sum(len(items) for items in early["transforms"]["by_half"]["value"].values()) == 2

    for name in names[2:]:
        scored_task(api, namespace, name, {"score": SCORES[name], **text_result(1024, name)})
    scored_task(api, namespace, "unscored", text_result(1024, "unscored"))
    status = wait_result_set(api, namespace, "outputs", {"Ready"}, count=7)["status"]

    assert status["aggregations"] == {"scored": 6, "all": 7}
    transforms = status["transforms"]
    assert transforms["texts"] == {"count": 7, "ref": reference("outputs", "texts")}
    assert transforms["by_half"] == {"count": 7, "ref": reference("outputs", "by_half")}
    passed = transforms["passed"]
    assert passed["count"] == 7
    assert sorted(passed["value"]) == sorted(n for n, s in SCORES.items() if s >= 0.5)
    doubled = transforms["doubled"]
    assert doubled["count"] == 7
    assert sorted(doubled["value"]) == sorted([0.0, *(2 * s for s in SCORES.values())])
    assert len(str(transforms["doubled"])) < INLINE_BYTES
    records = read_back(kubeconfig, namespace, "outputs")
    assert sorted(r["task"] for r in records) == sorted([*names, "unscored"])
    assert "texts=" in wait_event(api, namespace, "outputs", "Transformed")


def test_an_expression_failing_on_one_item_fails_the_set_naming_the_task(
    api: client.ApiClient, kubeconfig: Path, namespace: str, operator: OperatorProcess
) -> None:
    names = ["good-0", "good-1", "odd-one"]
    scored_task(api, namespace, "good-0", {"score": 0.5})
    scored_task(api, namespace, "good-1", {"score": 0.25})
    scored_task(api, namespace, "odd-one", {"label": "no score here"})
    create_result_set(
        api,
        namespace,
        "strict",
        source={"taskRefs": names},
        transforms=[{"name": "percent", "type": "map", "expression": "r.result.score * 100.0"}],
    )

    status = wait_result_set(api, namespace, "strict", {"Failed"})["status"]
    assert status["reason"] == "ExpressionError"
    assert "odd-one" in status["message"]
    assert "percent" in status["message"]
    assert "odd-one" in wait_event(api, namespace, "strict", "ExpressionError")
