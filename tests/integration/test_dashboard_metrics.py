"""The chart's Grafana dashboard against a running operator's /metrics.

The unit tests check the dashboard's metric names against what the operator registers; this runs
Tasks (one completed, one failed, one running, one queued behind it) and a Workflow on the
simulated nodes, then scrapes the operator's /metrics over HTTP, as Prometheus would, and checks
that every series the dashboard selects has samples there, carrying the labels its matchers and
groupings name. Labels Prometheus adds at scrape time (namespace, job, instance) are not the
operator's and are not looked for.
"""

from __future__ import annotations

import re
from collections import defaultdict

from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from tests.dashboard_queries import (
    TARGET_LABELS,
    Query,
    dashboard_queries,
    parse,
    without_variables,
)
from tests.integration.objects import TERMINAL, create_task, create_workflow, patch_spec
from tests.integration.operator_process import OperatorProcess, wait_phase
from tests.integration.workflows import sim, wait_workflow

Samples = dict[str, list[dict[str, str]]]


def scrape(operator: OperatorProcess) -> Samples:
    """The label sets of every sample on the operator's /metrics, by sample name."""
    samples: Samples = defaultdict(list)
    for family in text_string_to_metric_families(operator.metrics()):
        for sample in family.samples:
            samples[sample.name].append(sample.labels)
    return dict(samples)


def problems_of(where: str, query: Query, samples: Samples) -> list[str]:
    """What the dashboard query expects of the exposition and does not find."""
    found: list[str] = []
    for selector in query.selectors:
        label_sets = samples.get(selector.metric, [])
        if not label_sets:
            found.append(f"{where}: no samples of {selector.metric}")
            continue
        for label, op, value in selector.matchers:
            if label in TARGET_LABELS:
                continue
            if op in {"=", "=~"}:
                pattern = re.escape(value) if op == "=" else without_variables(value)
                if not any(
                    label in labels and re.fullmatch(pattern, labels[label])
                    for labels in label_sets
                ):
                    found.append(f"{where}: no {selector.metric}{{{label}{op}{value!r}}}")
            elif not any(label in labels for labels in label_sets):
                found.append(f"{where}: {selector.metric} has no label {label}")
    selected = [labels for s in query.selectors for labels in samples.get(s.metric, [])]
    for label in sorted(query.grouping - TARGET_LABELS):
        if selected and not any(label in labels for labels in selected):
            found.append(f"{where}: grouped by {label}, which its series lack")
    return found


def test_every_series_the_dashboard_selects_has_samples_on_the_operators_metrics(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    create_task(api, namespace, "holder", sim={"duration": "300s"}, queue="one-slot")
    wait_phase(api, namespace, "holder", {"Running"})
    try:
        create_task(api, namespace, "waiter", queue="one-slot")
        create_task(api, namespace, "done")
        create_task(api, namespace, "broken", sim={"exit-code": "3", "message": "bad input"})
        create_workflow(api, namespace, "flow", steps=[{"name": "only", "tasks": [sim("a")]}])
        assert wait_phase(api, namespace, "done", TERMINAL)["status"]["phase"] == "Completed"
        assert wait_phase(api, namespace, "broken", TERMINAL)["status"]["phase"] == "Failed"
        assert wait_workflow(api, namespace, "flow", TERMINAL)["status"]["phase"] == "Completed"
        wait_phase(api, namespace, "waiter", {"Queued"})

        samples = scrape(operator)
    finally:
        patch_spec(api, namespace, "holder", cancel=True)

    queries = dashboard_queries()
    assert len(queries) >= 20
    problems = [p for where, query in queries for p in problems_of(where, query, samples)]
    assert problems == [], "\n".join(problems)

    # What this test ran shows up under the label values the panels filter and group on.
    def has(name: str, **labels: str) -> bool:
        return any(labels.items() <= found.items() for found in samples.get(name, []))

    assert has("execflow_task_transitions_total", to_phase="Completed")
    assert has("execflow_task_transitions_total", to_phase="Failed")
    assert has("execflow_tasks", phase="Running")
    assert has("execflow_tasks", phase="Queued")
    assert has("execflow_queue_depth", queue="one-slot")
    assert has("execflow_task_queue_wait_seconds_bucket", priority="Normal")
    assert has("execflow_workflow_duration_seconds_count", phase="Completed")
    assert has("execflow_reconcile_seconds_bucket", controller="workflows")
    assert has("execflow_api_writes_total", verb="create", resource="jobs")


def test_the_checker_reports_what_the_exposition_lacks() -> None:
    query = parse(
        'sum by (queue, le) (rate(execflow_queue_wait_bucket{job=~"$job", queue=~"$queue", '
        'phase="Done", result!="ok"}[$__rate_interval]))'
    )
    complete = {"execflow_queue_wait_bucket": [{"queue": "a", "phase": "Done", "result": "ok"}]}

    assert problems_of("here", query, {}) == ["here: no samples of execflow_queue_wait_bucket"]
    assert problems_of("here", query, complete) == ["here: grouped by le, which its series lack"]
    assert problems_of("here", query, {"execflow_queue_wait_bucket": [{"le": "1"}]}) == [
        "here: no execflow_queue_wait_bucket{queue=~'$queue'}",
        "here: no execflow_queue_wait_bucket{phase='Done'}",
        "here: execflow_queue_wait_bucket has no label result",
        "here: grouped by queue, which its series lack",
    ]
