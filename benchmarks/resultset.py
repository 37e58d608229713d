"""ResultSet cost: collection latency and writes per strategy, and the core's speed at 10,000.

Why this exists: a ResultSet sits behind every finished Task it selects, so it must count a
result soon after the Task finishes, with few API writes, and its maths must stay cheap at the
scale users fan out to. It is a measurement, not a test: it asserts nothing, prints a table and
writes benchmarks/results/resultset.json.

Two parts:

1. The pure core, no cluster: the built-in aggregations (sum, avg, min, max, count) folded over
   10,000 results, one per-result CEL map transform over 10,000 results, and the stored size of
   text results with Gzip and Zstd against None (one segment of 500 results, as the operator
   writes them).
2. On a real cluster, one operator watching only the benchmark's namespace, one ResultSet per
   strategy over `--results` Tasks each (ConfigMap storage). The Tasks are parked in a queue the
   operator does not serve (so no Job runs) and then finished by writing their status Completed
   with a result, at `--rate` per second; a watch on the ResultSet sees its count grow. A result's
   latency is from its Task's Completed write returning to the first ResultSet status counting it
   (Tasks finish in order, and a set collects in finish order). Lazy is read (annotated) before
   the Tasks finish, so it then collects as Immediate does; OnDemand is asked for one snapshot
   after every Task finished, and its figure is that snapshot's time. Writes per result are the
   operator's own counters (execflow_api_writes_total) for resultsets and configmaps.

Run from the repository root with the project's virtualenv:

    .venv/bin/python benchmarks/resultset.py [--results 200] [--rate 50] [--cluster private]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

from execflow.api.result_set import Aggregation, Compression, Transform
from execflow.core.resultsets import aggregations
from execflow.core.resultsets.codec import encode_segment
from execflow.core.resultsets.items import Item, item_record
from execflow.core.resultsets.transforms import compile_programs, item_outputs
from execflow.devcluster import harness
from task_throughput import (
    NAMESPACE_LABELS,
    Latency,
    list_resource_version,
    say,
    wait_listed,
)
from watching import RawWatch

ROOT = Path(__file__).resolve().parents[1]
RESULTS_FILE = ROOT / "benchmarks" / "results" / "resultset.json"
GROUP, VERSION = "execflow.dev", "v1alpha1"
SCALE = 10_000
STRATEGIES = ("Immediate", "Streaming", "Batch", "Lazy", "OnDemand")
PARKED_QUEUE = "parked"
"""A queue the benchmark's operator does not serve: its Tasks wait (UnknownQueue), no Job runs."""


# ----- part 1: the pure core --------------------------------------------------------------------
def items(count: int) -> list[Item]:
    return [
        Item(
            uid=f"uid-{i}",
            task=f"task-{i}",
            phase="Completed",
            source="scorer",
            tags=("bench",),
            completion_time="2026-01-01T00:00:00Z",
            result={"score": (i % 997) / 997, "rows": i, "model": f"m-{i % 7}"},
        )
        for i in range(count)
    ]


def best_of(runs: int, work: Callable[[], object]) -> float:
    """The fastest of `runs` timings of `work` in CPU milliseconds of this process (the work is
    single-threaded; CPU time keeps other load on the machine out of the figure)."""
    best = float("inf")
    for _ in range(runs):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return round(best * 1000, 2)


def text_records(count: int) -> list[dict[str, Any]]:
    words = [
        "the",
        "model",
        "scored",
        "well",
        "on",
        "the",
        "held",
        "out",
        "set",
        "while",
        "the",
        "baseline",
        "lagged",
        "behind",
    ]
    records = []
    for i in range(count):
        summary = " ".join(words[(i + j) % len(words)] for j in range(60))
        records.append(
            item_record(
                Item(f"u{i}", f"t{i}", "Completed", "", (), "2026-01-01T00:00:00Z", summary)
            )
        )
    return records


@dataclass(frozen=True)
class Core:
    aggregations_ms: float
    """Five built-in aggregations folded over 10,000 results, a segment of 500 at a time."""
    cel_map_ms: float
    """One per-result CEL map transform evaluated over 10,000 results."""
    compression: dict[str, float]
    """Stored bytes as a share of the uncompressed segment (text results), by compression."""
    segment_bytes: dict[str, int]


def measure_core() -> Core:
    results = items(SCALE)
    specs = [
        Aggregation(name=f, function=f, field="score") for f in ("sum", "avg", "min", "max")
    ] + [Aggregation(name="n", function="count")]

    def fold_all() -> object:  # as the operator counts: a segment (500 results) at a time
        states = aggregations.new_states(specs)
        for start in range(0, len(results), 500):
            states = aggregations.fold_many(states, results[start : start + 500])
        return aggregations.values(states)

    programs = compile_programs(
        [], [Transform(name="pct", type="map", expression="r.result.score * 100.0")]
    )
    records = [item_record(item) for item in results]

    def map_all() -> object:
        return [item_outputs(programs, {}, record) for record in records]

    texts = text_records(500)
    sizes = {
        compression.value: len(
            encode_segment(texts, compression=compression, identity="bench/0").data
        )
        for compression in Compression
    }
    plain = sizes[Compression.NONE.value]
    return Core(
        aggregations_ms=best_of(5, fold_all),
        cel_map_ms=best_of(5, map_all),
        compression={name: round(size / plain, 3) for name, size in sizes.items()},
        segment_bytes=sizes,
    )


# ----- part 2: on a cluster ---------------------------------------------------------------------
@dataclass(frozen=True)
class StrategyRun:
    strategy: str
    results: int
    latency_ms: Latency
    """Task Completed written → first ResultSet status counting it (OnDemand: the snapshot)."""
    segments: int
    status_writes: int
    config_map_writes: int
    writes_per_result: float


class SetWatch:
    """Times (monotonic) at which a ResultSet's status first counted 1, 2, ... results."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counted_at: dict[str, dict[int, float]] = {}
        self.token: dict[str, str] = {}
        self.token_at: dict[str, float] = {}

    def on_event(self, kind: str, body: dict[str, Any], at: float) -> None:
        name = body["metadata"]["name"]
        status = body.get("status") or {}
        count = int(status.get("count") or 0)
        with self.lock:
            seen = self.counted_at.setdefault(name, {})
            for k in range(1, count + 1):
                seen.setdefault(k, at)
            token = status.get("collectToken")
            if token and self.token.get(name) != token:
                self.token[name] = token
                self.token_at[name] = at


def wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Cluster:
    def __init__(self, api: client.ApiClient, namespace: str, args: argparse.Namespace) -> None:
        self.api = api
        self.namespace = namespace
        self.args = args
        self.custom = client.CustomObjectsApi(api)
        self.seen = SetWatch()

        def sets(**kw: Any) -> Any:
            return self.custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, "resultsets", **kw
            )

        self.watch = RawWatch("resultsets", sets, list_resource_version(sets), self.seen.on_event)
        self.watch.start()

    def create(self, plural: str, kind: str, name: str, spec: dict[str, Any], **meta: Any) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": kind,
            "metadata": {"name": name, **meta},
            "spec": spec,
        }
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, body)

    def finish(self, name: str, index: int) -> float:
        now = datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")
        status = {
            "phase": "Completed",
            "reason": "Succeeded",
            "completionTime": now,
            "result": {"score": (index % 97) / 97, "rows": index},
        }
        self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, self.namespace, "tasks", name, {"status": status}
        )
        return time.monotonic()

    def run(self, strategy: str, operator: harness.OperatorProcess) -> StrategyRun:
        n, label = self.args.results, strategy.lower()
        spec: dict[str, Any] = {
            "source": {"selector": {"matchLabels": {"bench": label}}},
            "strategy": strategy,
            "aggregations": [{"name": "mean", "function": "avg", "field": "score"}],
            "storage": {"backend": "ConfigMap", "compression": "Zstd"},
        }
        if strategy == "Batch":
            spec["batch"] = {"size": 50, "interval": "2s"}
        annotations = {"execflow.dev/collect": "first-read"} if strategy == "Lazy" else {}
        self.create("resultsets", "ResultSet", label, spec, annotations=annotations)
        for i in range(n):
            task = {"container": {"image": "example.invalid/bench:1"}, "queue": PARKED_QUEUE}
            self.create("tasks", "Task", f"{label}-{i}", task, labels={"bench": label})
        writes_before = operator_writes(operator)
        finished = []
        for i in range(n):
            finished.append(self.finish(f"{label}-{i}", i))
            time.sleep(max(0.0, 1 / self.args.rate))
        if strategy == "OnDemand":
            asked = time.monotonic()
            self.custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                "resultsets",
                label,
                {"metadata": {"annotations": {"execflow.dev/collect": "snapshot-1"}}},
            )
            wait(lambda: self.seen.token.get(label) == "snapshot-1", 120, "the snapshot")
            latencies = [self.seen.token_at[label] - asked]
        else:
            wait(lambda: n in self.seen.counted_at.get(label, {}), 120, f"{label} to count {n}")
            counted = self.seen.counted_at[label]
            latencies = [counted[k + 1] - finished[k] for k in range(n)]
        time.sleep(6)  # let a Streaming set write its trailing status before counting writes
        writes = {
            key: after - writes_before.get(key, 0)
            for key, after in operator_writes(operator).items()
        }
        body = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "resultsets", label
        )
        status_writes = int(writes.get("resultsets", 0))
        map_writes = int(writes.get("configmaps", 0))
        return StrategyRun(
            strategy=strategy,
            results=n,
            latency_ms=Latency.of([max(0.0, v) * 1000 for v in latencies]),
            segments=int(body["status"]["storage"]["segments"]),
            status_writes=status_writes,
            config_map_writes=map_writes,
            writes_per_result=round((status_writes + map_writes) / n, 3),
        )


def operator_writes(operator: harness.OperatorProcess) -> dict[str, float]:
    """The operator's API writes so far, by resource."""
    totals: dict[str, float] = {}
    for resource in ("resultsets", "configmaps"):
        total = 0.0
        for verb in ("create", "patch", "delete"):
            total += operator.metric("execflow_api_writes_total", verb=verb, resource=resource) or 0
        totals[resource] = total
    return totals


@dataclass(frozen=True)
class Report:
    benchmark: str
    command: str
    time: str
    environment: dict[str, Any]
    core: Core
    strategies: list[StrategyRun]
    targets: dict[str, str]


def measure_cluster(api: client.ApiClient, args: argparse.Namespace) -> list[StrategyRun]:
    namespace = harness.create_namespace(api, "bench-resultsets", labels=NAMESPACE_LABELS)
    operator = harness.OperatorProcess(
        Path(args.kubeconfig_path),
        Path(tempfile.mkdtemp(prefix="execflow-bench-")),
        "queues: {default: {maxConcurrentTasks: 100}}\n",
        namespaces=[namespace],
    )
    runs = []
    bench: Cluster | None = None
    try:
        operator.start(timeout=120)
        wait_listed(operator, timeout=120)
        bench = Cluster(api, namespace, args)
        for strategy in STRATEGIES:
            say(f"{strategy}: {args.results} results at {args.rate}/s")
            runs.append(bench.run(strategy, operator))
    finally:
        if bench is not None:
            bench.watch.stop()
        operator.stop()
        harness.delete_namespace(api, namespace)
    return runs


def print_table(report: Report, written_to: Path) -> None:
    core = report.core
    print(f"resultset benchmark ({report.environment['cluster']} cluster)")
    print(
        f"  5 built-in aggregations over {SCALE} results   {core.aggregations_ms} ms (target <= 50)"
    )
    print(f"  per-result CEL map over {SCALE} results       {core.cel_map_ms} ms (target <= 150)")
    shares = ", ".join(f"{name} {share:.1%}" for name, share in core.compression.items())
    print(f"  stored size of text results vs None        {shares} (target: saves >= 50 %)")
    for run in report.strategies:
        latency = run.latency_ms
        print(
            f"  {run.strategy:<10} latency p50 {latency.p50} ms, p99 {latency.p99} ms; "
            f"{run.segments} segments; writes/result {run.writes_per_result} "
            f"({run.status_writes} status + {run.config_map_writes} ConfigMap)"
        )
    print(f"  written to {written_to}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=int, default=200, help="results per strategy (200)")
    parser.add_argument("--rate", type=float, default=50.0, help="Tasks finished per second (50)")
    parser.add_argument("--core-only", action="store_true", help="only the part without a cluster")
    harness.add_cluster_options(parser)
    parser.add_argument("--output", type=Path, default=RESULTS_FILE, help="JSON results file")
    args = parser.parse_args(argv)
    say("the core: aggregations, CEL and compression at 10,000 results")
    core = measure_core()
    runs: list[StrategyRun] = []
    environment: dict[str, Any] = {
        "cluster": "none" if args.core_only else args.cluster,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "revision": harness.revision(ROOT),
        "results_per_strategy": args.results,
        "rate_per_second": args.rate,
    }
    if not args.core_only:
        with harness.cluster_from_options(args, say) as cluster:
            api = harness.connect(cluster.kubeconfig, with_crds=True)
            args.kubeconfig_path = str(cluster.kubeconfig)
            try:
                runs = measure_cluster(api, args)
            finally:
                api.close()
    report = Report(
        benchmark="resultset",
        command="python benchmarks/resultset.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        time=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        environment=environment,
        core=core,
        strategies=runs,
        targets={
            "aggregations over 10,000": "<= 50 ms",
            "per-result CEL transform over 10,000": "<= 150 ms",
            "compression of text results": "saves >= 50 %",
        },
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(asdict(report), indent=2) + "\n")
    print_table(report, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
