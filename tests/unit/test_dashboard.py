"""The chart's Grafana dashboard: well-formed, and querying only metrics the operator exports.

A dashboard panel whose query names a metric that does not exist shows "No data" forever and
nobody notices; these tests read every PromQL expression of charts/execflow/dashboards and check
each metric name against the families the operator registers with prometheus_client (its
counters, histograms and gauges, the per-phase collectors it adds when it serves /metrics, and
prometheus_client's process metrics). They also render the chart with the project's helm to check
that the ConfigMap the Grafana sidecar reads carries that same JSON, and only when asked for.
The integration test tests/integration/test_dashboard_metrics.py checks the same queries against a
running operator's /metrics. The query reading helpers here are shared with it.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import yaml
from prometheus_client import Metric
from prometheus_client.core import REGISTRY
from prometheus_client.registry import Collector

from execflow import metrics, runner
from execflow.devcluster.components import KUBERNETES_VERSION, binary_path, by_name

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "execflow"
DASHBOARD = CHART / "dashboards" / "execflow.json"
TEMPLATE = "templates/dashboard-configmap.yaml"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

# Labels Prometheus attaches when it scrapes (the ServiceMonitor's target labels), not the operator.
TARGET_LABELS = frozenset({"namespace", "job", "instance"})
# Grafana's built-in range variables, replaced by a fixed range before a query is read.
GRAFANA_RANGES = re.compile(r"\$(?:__rate_interval|__interval|__range)\b|\$\{__\w+\}")
VARIABLE = re.compile(r"\$\{?(\w+)\}?")
LABEL_VALUES = re.compile(r"^\s*label_values\((?P<selector>.*),\s*(?P<label>\w+)\s*\)\s*$", re.S)

AGGREGATIONS = frozenset(
    {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values"}
    | {"bottomk", "topk", "quantile", "limitk", "limit_ratio"}
)
GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"})
TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
    | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[a-zA-Z]*)
    | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
    | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^<>=(){}\[\],@])
    )""",
    re.X,
)


# ----- reading PromQL -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Selector:
    """One vector selector: a metric name and its label matchers (label, op, value)."""

    metric: str
    matchers: tuple[tuple[str, str, str], ...] = ()


@dataclass
class Query:
    """What a PromQL expression reads: its selectors, and the labels it groups or matches by."""

    selectors: list[Selector] = field(default_factory=list)
    grouping: set[str] = field(default_factory=set)
    functions: list[str] = field(default_factory=list)


def lex(expression: str) -> list[tuple[str, str]]:
    """(kind, text) tokens; ValueError on anything PromQL would not accept here (a stray `$`)."""
    tokens: list[tuple[str, str]] = []
    position = 0
    text = expression.rstrip()
    while position < len(text):
        match = TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise ValueError(f"cannot read {text[position:]!r} in {expression!r}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def _closing(tokens: list[tuple[str, str]], start: int, closer: str) -> int:
    for index in range(start, len(tokens)):
        if tokens[index] == ("op", closer):
            return index
    raise ValueError(f"no closing {closer!r}")


def _matchers(tokens: list[tuple[str, str]], start: int, end: int) -> list[tuple[str, str, str]]:
    """The label matchers between `{` at start and `}` at end."""
    found = []
    inside = [token for token in tokens[start + 1 : end] if token != ("op", ",")]
    if len(inside) % 3:
        raise ValueError(f"malformed label matchers: {inside}")
    for (label_kind, label), (op_kind, op), (value_kind, value) in zip(
        inside[0::3], inside[1::3], inside[2::3], strict=True
    ):
        if (label_kind, op_kind, value_kind) != ("ident", "op", "string") or op not in {
            "=",
            "!=",
            "=~",
            "!~",
        }:
            raise ValueError(f"malformed label matcher {label}{op}{value}")
        found.append((label, op, str(ast.literal_eval(value))))
    return found


def _bare_keyword(text: str, after: str | None) -> bool:
    """`sum` in `sum by (x) (...)`, `group_left` without labels: neither metric nor call."""
    return text in GROUPING | AGGREGATIONS and after != "("


def parse(expression: str) -> Query:
    """The selectors and grouping labels of a PromQL expression (Grafana's ranges replaced)."""
    tokens = lex(GRAFANA_RANGES.sub("5m", expression))
    query = Query()
    index = 0
    while index < len(tokens):
        kind, text = tokens[index]
        after = tokens[index + 1][1] if index + 1 < len(tokens) else None
        if (kind, text) == ("op", "["):  # a range or subquery: durations only
            index = _closing(tokens, index, "]") + 1
        elif (kind, text) == ("op", "{"):
            raise ValueError(f"a selector without a metric name in {expression!r}")
        elif kind != "ident" or text in KEYWORDS or _bare_keyword(text, after):
            index += 1
        elif text in GROUPING and after == "(":
            end = _closing(tokens, index, ")")
            query.grouping |= {t for k, t in tokens[index + 2 : end] if k == "ident"}
            index = end + 1
        elif after == "(":
            query.functions.append(text)
            index += 1
        elif after == "{":
            end = _closing(tokens, index, "}")
            query.selectors.append(Selector(text, tuple(_matchers(tokens, index + 1, end))))
            index = end + 1
        else:
            query.selectors.append(Selector(text))
            index += 1
    return query


# ----- reading the dashboard ----------------------------------------------------------------------
def load_dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return dashboard


def all_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows and the panels collapsed into them included."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def data_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in all_panels(dashboard) if panel["type"] != "row"]


def variable(dashboard: dict[str, Any], name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [v for v in dashboard["templating"]["list"] if v["name"] == name]
    assert len(found) == 1, f"{len(found)} variables called {name}"
    return found[0]


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, Query]]:
    """(where, query) for every panel target."""
    return [
        (f"panel {panel['title']!r} {target['refId']}", parse(target["expr"]))
        for panel in data_panels(dashboard)
        for target in panel["targets"]
    ]


def variable_queries(dashboard: dict[str, Any]) -> list[tuple[str, Query]]:
    """(where, query) for every query variable: its selector, grouped by the label it lists."""
    found = []
    for templated in dashboard["templating"]["list"]:
        if templated["type"] != "query":
            continue
        text = templated["query"]["query"]
        match = LABEL_VALUES.match(text)
        assert match, f"variable {templated['name']}: not label_values(selector, label): {text}"
        query = parse(match["selector"])
        query.grouping.add(match["label"])
        found.append((f"variable {templated['name']!r}", query))
    return found


def dashboard_queries() -> list[tuple[str, Query]]:
    dashboard = load_dashboard()
    return panel_queries(dashboard) + variable_queries(dashboard)


def without_variables(value: str) -> str:
    """A matcher value with each dashboard variable at its "All" value (`.*`)."""
    return VARIABLE.sub(".*", value)


# ----- what the operator exports ------------------------------------------------------------------
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}


def sample_names(family: Metric) -> set[str]:
    """The names Prometheus sees for a family, whether or not it has samples yet."""
    names = {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
    return names | {sample.name for sample in family.samples}


def exported_families() -> list[Metric]:
    """The operator's metric families: what `execflow run` registers before serving /metrics."""
    captured: dict[str, Any] = {}

    def serve(port: int, phases: Any, sizes: Any) -> None:
        captured.update(phases=phases, sizes=sizes)

    body = {"status": {"phase": "Completed"}}
    stores = SimpleNamespace(
        tasks=[body], workflows=[body], resultsets=[body], sizes=lambda: [("tasks", 1)]
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(metrics, "serve", serve)
        runner.serve_metrics(1, cast(Any, SimpleNamespace(stores=stores)))
    collectors: list[Collector] = [
        metrics.PhaseCollector(kind, of) for kind, of in captured["phases"].items()
    ]
    collectors.append(metrics.StoreCollector(captured["sizes"]))
    added = [family for collector in collectors for family in collector.collect()]
    return list(REGISTRY.collect()) + added


def exported_names() -> set[str]:
    return {name for family in exported_families() for name in sample_names(family)}


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
