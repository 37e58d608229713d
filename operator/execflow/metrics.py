"""Prometheus metrics of the operator, served on --metrics-port.

Counters and histograms are updated where the event happens; the per-phase task count is computed
at scrape time from the operator's store, so it can never drift from what the cluster says.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector

TRANSITIONS = Counter(
    "execflow_task_transitions", "Task phase transitions written", ["from_phase", "to_phase"]
)
ATTEMPTS = Counter("execflow_task_attempts", "Task attempts started (Jobs created)")
CACHE_HITS = Counter("execflow_task_cache_hits", "Tasks completed from the execution cache")
RUN_SECONDS = Histogram(
    "execflow_task_run_seconds",
    "Run time of successful attempts (container start to finish)",
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600),
)
QUEUE_WAIT = Histogram(
    "execflow_task_queue_wait_seconds",
    "Time from entering the queue to the start of an attempt, by task priority",
    ["priority"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 3600),
)
QUEUE_DEPTH = Gauge(
    "execflow_queue_depth", "Tasks waiting per queue (QueueFull included)", ["queue"]
)
DECISION_SECONDS = Histogram(
    "execflow_scheduling_decision_seconds",
    "Time of one scheduling decision",
    buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5),
)
PREEMPTIONS = Counter("execflow_preemptions", "Running tasks evicted for a waiting one", ["queue"])
API_WRITES = Counter(
    "execflow_api_writes",
    "Writes made to the API server, by verb and resource",
    ["verb", "resource"],
)
RECONCILES = Counter(
    "execflow_reconciles",
    "Reconciles by controller and result (ok, retry, error)",
    ["controller", "result"],
)
RECONCILE_SECONDS = Histogram(
    "execflow_reconcile_seconds",
    "Time of one reconcile, by controller",
    ["controller"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5),
)
WORKFLOW_CHILDREN = Counter("execflow_workflow_child_tasks", "Child Tasks created by workflows")
WORKFLOW_SECONDS = Histogram(
    "execflow_workflow_duration_seconds",
    "Run time of finished workflows (start or resume to the end), by outcome",
    ["phase"],
    buckets=(1, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200, 21600, 86400),
)
RESULTS_COLLECTED = Counter("execflow_results_collected", "Results stored by ResultSets")
RESULT_LATENCY = Histogram(
    "execflow_result_collection_seconds",
    "Time from a Task finishing to its result being stored by a ResultSet",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
RESULT_BYTES = Counter(
    "execflow_result_stored_bytes",
    "Bytes of segments written by ResultSets, by backend",
    ["backend"],
)
CHECKSUM_FAILURES = Counter(
    "execflow_result_checksum_failures", "Stored result data that did not match its checksum"
)
EVENTS = Counter("execflow_events", "Kubernetes Events posted, by reason", ["reason"])
SETTINGS_RELOADS = Counter(
    "execflow_settings_reloads", "Settings file reloads, by result (applied/rejected)", ["result"]
)


def record_transition(before: Any, after: Any) -> None:
    TRANSITIONS.labels(from_phase=str(before or "None"), to_phase=str(after)).inc()


class PhaseCollector(Collector):
    """execflow_<kind>{phase=...}: objects of a kind per phase, read from the store at scrape."""

    def __init__(self, kind: str, phases: Callable[[], Iterable[str]]) -> None:
        self._kind = kind
        self._phases = phases

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            f"execflow_{self._kind}", f"{self._kind.capitalize()} by phase", labels=["phase"]
        )
        for phase, count in sorted(Tally(self._phases()).items()):
            family.add_metric([phase], count)
        yield family


class StoreCollector(Collector):
    """execflow_store_objects{kind=...}: objects held in the operator's caches, at scrape time."""

    def __init__(self, sizes: Callable[[], Iterable[tuple[str, int]]]) -> None:
        self._sizes = sizes

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "execflow_store_objects", "Objects in the operator's watch caches", labels=["kind"]
        )
        for kind, size in self._sizes():
            family.add_metric([kind], size)
        yield family


def serve(
    port: int,
    phases: Mapping[str, Callable[[], Iterable[str]]],
    sizes: Callable[[], Iterable[tuple[str, int]]],
) -> None:
    """Serve /metrics on `port`; raises OSError when the port cannot be bound.

    `phases` maps a kind's plural (tasks, workflows) to the phases of its objects.
    """
    start_http_server(port)
    for kind, of_kind in phases.items():
        REGISTRY.register(PhaseCollector(kind, of_kind))
    REGISTRY.register(StoreCollector(sizes))
