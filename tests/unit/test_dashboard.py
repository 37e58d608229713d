"""The chart's Grafana dashboard: well-formed, and querying only metrics the operator exports.

A dashboard panel whose query names a metric that does not exist shows "No data" forever and
nobody notices; these tests read every PromQL expression of charts/execflow/dashboards and check
each metric name against the families the operator registers with prometheus_client (its
counters, histograms and gauges, the per-phase collectors it adds when it serves /metrics, and
prometheus_client's process metrics). They also render the chart with the project's helm to check
that the ConfigMap the Grafana sidecar reads carries that same JSON, and only when asked for.
The integration test tests/integration/test_dashboard_metrics.py checks the same queries against a
running operator's /metrics; both read the dashboard with tests/dashboard_queries.py.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
import yaml

from execflow.devcluster.components import KUBERNETES_VERSION, binary_path, by_name
from tests.dashboard_queries import (
    CHART,
    DASHBOARD,
    DATASOURCE,
    Selector,
    all_panels,
    dashboard_queries,
    data_panels,
    exported_names,
    load_dashboard,
    panel_queries,
    parse,
    variable,
)


# ----- the dashboard ------------------------------------------------------------------------------
def test_the_dashboard_is_grafana_json_with_a_prometheus_datasource_variable() -> None:
    dashboard = load_dashboard()

    assert dashboard["schemaVersion"] == 39
    assert dashboard["uid"] == "execflow-operator"
    datasource = variable(dashboard, "datasource")
    assert (datasource["type"], datasource["query"]) == ("datasource", "prometheus")
    for name in ("namespace", "job", "queue"):
        assert variable(dashboard, name)["datasource"] == DATASOURCE, name


def test_every_panel_reads_the_datasource_variable_and_has_a_query() -> None:
    panels = data_panels(load_dashboard())

    assert len(panels) >= 15
    for panel in panels:
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            assert target["expr"].strip(), panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]


def test_panel_ids_are_unique_and_panels_do_not_overlap() -> None:
    panels = list(all_panels(load_dashboard()))
    ids = [panel["id"] for panel in panels]
    cells = [
        (panel["title"], x, y)
        for panel in panels
        for x in range(panel["gridPos"]["x"], panel["gridPos"]["x"] + panel["gridPos"]["w"])
        for y in range(panel["gridPos"]["y"], panel["gridPos"]["y"] + panel["gridPos"]["h"])
    ]

    assert len(ids) == len(set(ids)), sorted(ids)
    assert all(0 <= x < 24 for _, x, _ in cells)
    taken = [(x, y) for _, x, y in cells]
    assert len(taken) == len(set(taken)), "two panels share a grid cell"


def test_every_queried_metric_is_one_the_operator_exports() -> None:
    exported = exported_names()
    queried = {
        (where, selector.metric)
        for where, query in dashboard_queries()
        for selector in query.selectors
    }

    assert queried
    unknown = sorted(f"{where}: {metric}" for where, metric in queried if metric not in exported)
    assert unknown == [], "\n".join(unknown)


def test_the_dashboard_covers_tasks_queues_scheduling_workflows_errors_and_the_process() -> None:
    queried = {s.metric for _, query in dashboard_queries() for s in query.selectors}

    assert {
        "execflow_tasks",
        "execflow_task_transitions_total",
        "execflow_queue_depth",
        "execflow_task_queue_wait_seconds_bucket",
        "execflow_scheduling_decision_seconds_bucket",
        "execflow_workflow_duration_seconds_bucket",
        "execflow_reconciles_total",
        "execflow_reconcile_seconds_bucket",
        "execflow_api_writes_total",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    } <= queried


def test_every_panel_query_is_scoped_to_the_chosen_operator() -> None:
    # process_* is exported by every Python or Go exporter: the job filter keeps it to execflow.
    for where, query in panel_queries(load_dashboard()):
        for selector in query.selectors:
            assert ("namespace", "=~", "$namespace") in selector.matchers, where
            assert ("job", "=~", "$job") in selector.matchers, where


def test_the_job_variable_lists_only_jobs_that_export_execflow_metrics() -> None:
    job = variable(load_dashboard(), "job")

    # Without an allValue, "All" is the listed jobs, not `.*` (every job's process_* metrics).
    assert "allValue" not in job
    assert job["query"]["query"].startswith("label_values(execflow_")


def test_quantiles_are_taken_over_histogram_buckets_by_le() -> None:
    quantiles = [(w, q) for w, q in dashboard_queries() if "histogram_quantile" in q.functions]

    assert len(quantiles) >= 5
    for where, query in quantiles:
        assert all(s.metric.endswith("_bucket") for s in query.selectors), where
        assert "le" in query.grouping, where


def test_the_query_reader_finds_metrics_matchers_and_grouping_labels() -> None:
    query = parse(
        "histogram_quantile(0.99, sum by (le, priority) (rate(execflow_task_queue_wait_seconds"
        '_bucket{job=~"$job", priority!="Low"}[$__rate_interval]))) / on (job) group_left '
        "sum(up) without (instance) and process_open_fds"
    )

    assert query.selectors == [
        Selector(
            "execflow_task_queue_wait_seconds_bucket",
            (("job", "=~", "$job"), ("priority", "!=", "Low")),
        ),
        Selector("up"),
        Selector("process_open_fds"),
    ]
    assert query.grouping == {"le", "priority", "job", "instance"}
    assert query.functions == ["histogram_quantile", "rate", "sum"]
    with pytest.raises(ValueError, match="cannot read"):
        parse("rate(execflow_api_writes_total[$range])")
    with pytest.raises(ValueError, match="without a metric name"):
        parse('{__name__="execflow_tasks"}')


def test_the_exported_names_are_as_prometheus_exposes_them() -> None:
    exported = exported_names()

    assert {"execflow_api_writes_total", "execflow_tasks", "execflow_workflows"} <= exported
    assert {"execflow_reconcile_seconds_bucket", "execflow_reconcile_seconds_count"} <= exported
    assert "execflow_api_writes" not in exported  # a counter is read as <name>_total
    assert "execflow_made_up_total" not in exported


# ----- the chart ----------------------------------------------------------------------------------
def helm_template(*options: str) -> list[dict[str, Any]]:
    """The chart's objects as the project's helm renders them."""
    helm = binary_path(by_name("helm"))
    assert helm.exists(), f"helm is not built yet ({helm}): run `make binaries`"
    command = [str(helm), "template", "release", str(CHART), "--namespace", "observed"]
    command += ["--kube-version", KUBERNETES_VERSION, *options]
    rendered = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
    )
    assert rendered.returncode == 0, rendered.stderr
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]


def dashboard_configmaps(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        o
        for o in objects
        if o["kind"] == "ConfigMap"
        and (o["metadata"].get("labels") or {}).get("grafana_dashboard") is not None
    ]


def test_the_chart_ships_the_dashboard_for_the_grafana_sidecar_when_enabled() -> None:
    objects = helm_template("--set", "grafana.dashboard.enabled=true")

    [configmap] = dashboard_configmaps(objects)
    assert configmap["metadata"]["name"] == "release-execflow-dashboard"
    assert configmap["metadata"]["namespace"] == "observed"
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["labels"]["app.kubernetes.io/instance"] == "release"
    [(key, text)] = configmap["data"].items()
    assert key == "execflow.json"
    assert text == DASHBOARD.read_text(encoding="utf-8").rstrip("\n")
    assert json.loads(text) == load_dashboard()


def test_the_dashboard_configmap_takes_a_namespace_labels_and_annotations() -> None:
    objects = helm_template(
        "--set",
        "grafana.dashboard.enabled=true",
        "--set",
        "grafana.dashboard.namespace=monitoring",
        "--set",
        "grafana.dashboard.labels.team=platform",
        "--set",
        "grafana.dashboard.annotations.grafana_folder=Operators",
    )

    [configmap] = dashboard_configmaps(objects)
    assert configmap["metadata"]["namespace"] == "monitoring"
    assert configmap["metadata"]["labels"]["team"] == "platform"
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["annotations"] == {"grafana_folder": "Operators"}


def test_the_chart_renders_no_dashboard_by_default() -> None:
    objects = helm_template()

    assert objects, "the chart rendered nothing"
    assert dashboard_configmaps(objects) == []
    assert not any(o["metadata"]["name"].endswith("-dashboard") for o in objects)
