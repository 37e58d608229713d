"""The shipped examples/ end as documented (the flow `make demo` shows), on the real cluster."""

from __future__ import annotations

from kubernetes import client

from execflow.demo import EXPECTED, EXPECTED_WORKFLOWS, problems, run_examples
from tests.integration.operator_process import OperatorProcess


def test_examples_end_as_documented(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    outcomes = run_examples(api, namespace, lambda _message: None)
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
