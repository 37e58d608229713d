"""Reading the chart's Grafana dashboard and what the operator exports, for the dashboard tests.

Every PromQL expression of charts/execflow/dashboards is read into the metric selectors it uses
(a small reader of the PromQL the dashboard writes, not a full parser), and the operator's metric
families are collected from prometheus_client the way Prometheus names their samples. The unit
tests (tests/unit/test_dashboard.py) check the dashboard against those families; the integration
test (tests/integration/test_dashboard_metrics.py) against a running operator's /metrics.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from prometheus_client import Metric
from prometheus_client.core import REGISTRY
from prometheus_client.registry import Collector

from execflow import metrics, runner

REPO_ROOT = Path(__file__).resolve().parents[1]
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
