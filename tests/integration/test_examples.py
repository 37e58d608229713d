"""The shipped examples/ end as documented (the flow `make demo` shows), on the real cluster."""

from __future__ import annotations

from pathlib import Path

from kubernetes import client

from execflow.demo import EXPECTED, EXPECTED_WORKFLOWS, problems, run_examples
from tests.integration.operator_process import OperatorProcess
from tests.integration.resultsets import read_back


def test_examples_end_as_documented(
    api: client.ApiClient, kubeconfig: Path, namespace: str, operator: OperatorProcess
) -> None:
    outcomes = run_examples(api, namespace, lambda _message: None, kubeconfig)
    assert outcomes.watched == dict.fromkeys(EXPECTED_WORKFLOWS, 0)
    assert set(outcomes.tasks) == set(EXPECTED)
    assert set(outcomes.workflows) == set(EXPECTED_WORKFLOWS)
    assert problems(outcomes) == []
    tasks = outcomes.tasks
    assert tasks["clean-data"]["result"] == {"rows": 1280, "path": "s3://data/clean.csv"}
    assert tasks["clean-data-again"]["cacheHit"] is True
    pipeline = outcomes.workflows["ml-pipeline"]["status"]
    assert [t["score"] for t in pipeline["outputs"]["train-model"]] == [0.81, 0.93, 0.88]
    assert pipeline["outputs"]["deploy-best"] == {"deployed": True}
    custom = client.CustomObjectsApi(api)
    deploy = custom.get_namespaced_custom_object(
        "execflow.dev", "v1alpha1", namespace, "tasks", "ml-pipeline-deploy-best"
    )
    assert deploy["spec"]["parameters"] == {"rate": 0.01}
    best_effort = outcomes.workflows["best-effort"]["status"]
    mirror = next(s for s in best_effort["steps"] if s["name"] == "mirror")
    assert (mirror["phase"], mirror["reason"]) == ("Completed", "FailuresTolerated")
    notify = custom.get_namespaced_custom_object(
        "execflow.dev", "v1alpha1", namespace, "tasks", "best-effort-notify"
    )
    assert notify["spec"]["parameters"] == {"outcome": "Completed"}
    pipeline_results = outcomes.resultsets["ml-pipeline"]["status"]
    assert pipeline_results["aggregations"]["mean_score"] == (0.81 + 0.93 + 0.88) / 3
    assert len(read_back(kubeconfig, namespace, "ml-pipeline")) == 5
    assert outcomes.s3, "the local cluster runs an S3 server"
    scores = outcomes.resultsets["training-scores"]["status"]
    assert scores["storage"]["bucket"] == "execflow-demo"
    assert len(scores["storage"]["keyId"]) == 16
    assert sorted(
        r["result"]["score"] for r in read_back(kubeconfig, namespace, "training-scores")
    ) == [
        0.81,
        0.88,
        0.93,
    ]
    assert sorted(t["task"] for t in scores["transforms"]["good"]["value"]) == [
        "ml-pipeline-train-model-1",
        "ml-pipeline-train-model-2",
    ]
