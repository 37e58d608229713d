"""The shipped examples/ end as documented (the flow `make demo` shows), on the real cluster."""

from __future__ import annotations

from kubernetes import client

from execflow.demo import EXPECTED, problems, run_examples
from tests.integration.operator_process import OperatorProcess


def test_examples_end_as_documented(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    outcomes = run_examples(api, namespace, lambda _message: None)
    assert set(outcomes) == set(EXPECTED)
    assert problems(outcomes) == []
    assert outcomes["clean-data"]["result"] == {"rows": 1280, "path": "s3://data/clean.csv"}
    assert outcomes["clean-data-again"]["cacheHit"] is True
