"""Scale: 10,000 Tasks queued at once, and an operator starting next to 10,000 Tasks and Jobs.

Why this exists: a cluster that runs tools for many users holds thousands of Tasks, most of them
finished, with their Jobs and pods. The operator keeps all of them in memory (its stores), so its
memory and its start-up time grow with the cluster, not with the work in flight; and every
scheduling decision walks the queue. This measures the three where they are largest:

1. Drain: N zero-length Tasks (default 10,000) are created at once in a fresh namespace; the
   default queue runs `--concurrency` of them at a time (default 500) and queues the rest. The
   clock runs from the first create until a watch has seen every Task end: drain rate =
   N / elapsed. The operator's peak resident memory over the whole run (Linux VmHWM) and its
   scheduling decisions (the `execflow_scheduling_decision_seconds` histogram: count, and the
   bucket bounds holding the 50th and 99th percentile and the slowest decision) are reported next
   to the scheduler benchmark's target for a decision at 10k queued Tasks (p99 <= 1 ms,
   benchmarks/scheduler.py, which measures the core alone).
2. Start-up: the operator is stopped and started again with the N finished Tasks, their N Jobs
   and N pods present. Reported: seconds from the process start until it has listed everything
   (its "listed ..." log line) and until its first scheduling decision, and its peak memory.

Targets (the issue's): peak RSS <= 250 MB while draining 10k; start-up (first decision) < 10 s.
It is a measurement, not a test: it asserts nothing. It takes long on 2 cores (the local control
plane creates and runs 10,000 Jobs); `--count` makes it smaller.

    .venv/bin/python benchmarks/scale.py [--count 10000] [--concurrency 500] [--cluster private]
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from execflow.devcluster import harness
from task_throughput import (
    GROUP,
    NAMESPACE_LABELS,
    PLURAL,
    VERSION,
    Observations,
    create_all,
    drain,
    list_resource_version,
    operator_settings,
    say,
    wait_listed,
    wait_until_finished,
    zero_task,
)
from watching import RawWatch

ROOT = Path(__file__).resolve().parents[1]
RESULTS_FILE = ROOT / "benchmarks" / "results" / "scale.json"
DECISIONS = "execflow_scheduling_decision_seconds"
SCHEDULER_TARGET_P99_MS = 1.0
"""benchmarks/scheduler.py's target for one decision at 10k queued Tasks."""
RSS_TARGET_MB = 250
START_TARGET_SECONDS = 10


@dataclass(frozen=True)
class Decisions:
    count: int
    p50_at_most_ms: float | None
    p99_at_most_ms: float | None
    slowest_at_most_ms: float | None
    """Upper bounds of the histogram buckets holding these decisions (inf: above the last)."""


@dataclass(frozen=True)
class Drain:
    count: int
    concurrency: int
    create_seconds: float
    elapsed_seconds: float
    per_second: float
    outcomes: dict[str, int]
    peak_rss_mb: float | None
    cpu_seconds: float | None
    decisions: Decisions


@dataclass(frozen=True)
class StartUp:
    tasks_present: int
    listed_seconds: float
    first_decision_seconds: float
    listed_line: str
    peak_rss_mb: float | None


@dataclass(frozen=True)
class Report:
    benchmark: str
    time: str
    cluster: str
    revision: str
    drain: Drain
    start_up: StartUp
    targets: dict[str, str]


def decisions(operator: harness.OperatorProcess) -> Decisions:
    buckets: list[tuple[float, float]] = []
    for family in text_string_to_metric_families(operator.metrics()):
        for sample in family.samples:
            if sample.name == f"{DECISIONS}_bucket":
                buckets.append((float(sample.labels["le"]), sample.value))
    buckets.sort()
    total = int(buckets[-1][1]) if buckets else 0

    def bound(fraction: float) -> float | None:
        if not total:
            return None
        rank = max(1, math.ceil(fraction * total))
        for upper, cumulative in buckets:
            if cumulative >= rank:
                return upper * 1000
        return math.inf

    return Decisions(total, bound(0.5), bound(0.99), bound(1.0))


def megabytes(value: int | None) -> float | None:
    return None if value is None else round(value / 2**20, 1)


def run_drain(
    api: client.ApiClient, namespace: str, operator: harness.OperatorProcess, args: Any
) -> Drain:
    custom = client.CustomObjectsApi(api)
    observed = Observations()

    def list_tasks(**kwargs: Any) -> Any:
        return custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, **kwargs)

    watch = RawWatch("tasks", list_tasks, list_resource_version(list_tasks), observed.on_task)
    watch.start()

    def create(name: str) -> None:
        body = zero_task(name, "0s")
        reply = custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, body, _preload_content=False
        )
        drain(reply)

    def alive() -> None:
        if not operator.running:
            raise RuntimeError(f"the operator exited during the run; log: {operator.log_path}")

    cpu_before = operator.cpu_seconds()
    names = [f"task-{index:05d}" for index in range(args.count)]
    say(f"creating {args.count} Tasks in {namespace} ({args.concurrency} run at a time)")
    try:
        start, created = create_all(names, create, args.threads)
        say(f"  created in {created - start:.1f} s")
        wait_until_finished(
            "Tasks",
            observed,
            args.count,
            created_at=start,
            timeout=args.timeout,
            watches=[watch],
            on_tick=alive,
        )
        elapsed = time.monotonic() - start
    finally:
        watch.stop()
    cpu_after = operator.cpu_seconds()
    outcomes: dict[str, int] = {}
    for record in observed.tasks.values():
        outcomes[str(record.phase)] = outcomes.get(str(record.phase), 0) + 1
    return Drain(
        count=args.count,
        concurrency=args.concurrency,
        create_seconds=round(created - start, 2),
        elapsed_seconds=round(elapsed, 2),
        per_second=round(args.count / elapsed, 2),
        outcomes=outcomes,
        peak_rss_mb=megabytes(operator.peak_rss_bytes()),
        cpu_seconds=None
        if cpu_before is None or cpu_after is None
        else round(cpu_after - cpu_before, 2),
        decisions=decisions(operator),
    )


def run_start_up(operator: harness.OperatorProcess, present: int) -> StartUp:
    operator.stop()
    say(f"restarting the operator next to {present} Tasks and their Jobs")
    began = time.monotonic()
    operator.start(timeout=120)
    listed = wait_listed(operator, timeout=120)
    listed_at = time.monotonic() - began
    while not (operator.metric(f"{DECISIONS}_count") or 0):
        if time.monotonic() - began > 120:
            raise RuntimeError(
                f"no scheduling decision 120 s after start; log: {operator.log_path}"
            )
        time.sleep(0.05)
    return StartUp(
        tasks_present=present,
        listed_seconds=round(listed_at, 2),
        first_decision_seconds=round(time.monotonic() - began, 2),
        listed_line=listed[0],
        peak_rss_mb=megabytes(operator.peak_rss_bytes()),
    )


def measure(api: client.ApiClient, cluster: harness.Cluster, args: Any) -> Report:
    namespace = harness.create_namespace(api, "bench-scale", labels=NAMESPACE_LABELS)
    operator = harness.OperatorProcess(
        cluster.kubeconfig,
        Path(tempfile.mkdtemp(prefix="execflow-scale-")),
        operator_settings(args.concurrency, max(10000, args.count)),
        namespaces=[namespace],
    )
    succeeded = False
    try:
        operator.start(timeout=120)
        wait_listed(operator, timeout=120)
        drained = run_drain(api, namespace, operator, args)
        started = run_start_up(operator, args.count)
        succeeded = True
    finally:
        operator.stop()
        if succeeded:
            shutil.rmtree(operator.directory, ignore_errors=True)
        else:
            say(f"operator log kept: {operator.log_path}")
        if cluster.mode != "private":
            harness.delete_namespace(api, namespace)
    return Report(
        benchmark="scale",
        time=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        cluster=cluster.mode,
        revision=harness.revision(ROOT),
        drain=drained,
        start_up=started,
        targets={
            "peak_rss_mb": f"<= {RSS_TARGET_MB} while draining 10k",
            "first_decision_seconds": f"< {START_TARGET_SECONDS} with 10k Tasks and Jobs",
            "decision_p99_ms": f"<= {SCHEDULER_TARGET_P99_MS} (scheduler benchmark, 10k queued)",
        },
    )


def print_table(report: Report, written_to: Path) -> None:
    drained, started = report.drain, report.start_up
    spans = drained.decisions
    print(f"\nexecflow scale: N={drained.count}, {drained.concurrency} at a time, {report.cluster}")
    print(f"  created in {drained.create_seconds} s; all ended after {drained.elapsed_seconds} s")
    print(f"  drain rate {drained.per_second} Tasks/s; outcomes {drained.outcomes}")
    print(f"  operator CPU {drained.cpu_seconds} s; peak RSS {drained.peak_rss_mb} MB")
    print(
        f"  decisions {spans.count}: p50 <= {spans.p50_at_most_ms} ms, p99 <= "
        f"{spans.p99_at_most_ms} ms, slowest <= {spans.slowest_at_most_ms} ms"
    )
    print(
        f"  start-up with {started.tasks_present} Tasks present: listed after "
        f"{started.listed_seconds} s, first decision after {started.first_decision_seconds} s, "
        f"peak RSS {started.peak_rss_mb} MB"
    )
    print(f"  ({started.listed_line})")
    for name, target in report.targets.items():
        print(f"  target {name}: {target}")
    print(f"  written to {written_to}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=int, default=10_000, help="Tasks (10000)")
    parser.add_argument("--concurrency", type=int, default=500, help="run at a time (500)")
    parser.add_argument("--threads", type=int, default=32, help="client create threads (32)")
    parser.add_argument("--timeout", type=float, default=7200, help="drain limit, s (7200)")
    parser.add_argument("--output", type=Path, default=RESULTS_FILE, help="JSON results file")
    harness.add_cluster_options(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with harness.cluster_from_options(args, say) as cluster:
        api = harness.connect(cluster.kubeconfig, pool_size=args.threads + 8, with_crds=True)
        try:
            report = measure(api, cluster, args)
        finally:
            api.close()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(asdict(report), indent=2) + "\n")
    print_table(report, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
