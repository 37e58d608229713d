"""Spec fuzzing at scale: what the API server and the operator make of many generated Task specs.

Why this exists: the promise is that every Task spec a user can write is either refused at
admission with a message naming the field, or reaches a phase with a reason (or waits with one),
never silence and never an operator traceback. tests/integration/test_fuzz_specs.py asserts that
for a few hundred specs per run; this runs many more (10,000 by default) and reports what became
of them. It is a measurement, not a test: it asserts nothing.

One run: specs are generated (tests.fuzzing.specs: a share from the Task CRD's own schema,
plausible ones, and mutations of those), an operator is started for one fresh namespace (its own
`execflow run --namespace`, with queues of every strategy, one of them tiny), and
tests.fuzzing.judge creates every spec as a Task there and sorts each into refused (clear or
unclear message), ended with a reason, waiting with a reason, stuck, or server error, and counts
the operator's tracebacks. The table shows the counts, the most common phase/reason pairs and the
fields refusals name; benchmarks/results/fuzz.json has all of it, every problem with its spec,
and the tracebacks.

The cluster (execflow.devcluster.harness): the project's local control plane by default (brought
up or reused, never stopped here), `--kubeconfig` for any other, `--cluster private` for a
separate local one in a temporary directory, removed at the end. An operator elsewhere that
watches all namespaces would also reconcile these Tasks; use `--cluster private` then.

Run from the repository root with the project's virtualenv:

    .venv/bin/python benchmarks/fuzz.py [--count 10000] [--cluster shared|private] [--seed 0]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from execflow.devcluster import harness

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    # As a script, Python puts benchmarks/ on the path, not the root the generator lives under.
    sys.path.insert(0, str(ROOT))

from tests.fuzzing.judge import Verdict, judge  # noqa: E402
from tests.fuzzing.specs import MIX, GeneratedSpec, generate_specs  # noqa: E402

RESULTS_FILE = ROOT / "benchmarks" / "results" / "fuzz.json"
NAMESPACE_LABELS = {"execflow.dev/benchmark": "fuzz"}
SETTINGS: dict[str, Any] = {
    "queues": {
        "default": {"maxConcurrentTasks": 100},
        "fifo": {"strategy": "FIFO", "maxConcurrentTasks": 2},
        "priority": {"strategy": "Priority", "maxConcurrentTasks": 2},
        "sjf": {"strategy": "ShortestJobFirst", "maxConcurrentTasks": 2},
        "edf": {"strategy": "DeadlineAware", "maxConcurrentTasks": 2},
        "adaptive": {"strategy": "Adaptive", "maxConcurrentTasks": 2},
        "small": {"strategy": "FIFO", "maxConcurrentTasks": 1, "maxQueuedTasks": 2},
        "preempt": {"strategy": "Priority", "maxConcurrentTasks": 1, "preemption": True},
    }
}
TOP = 15


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(
    api: client.ApiClient,
    cluster: harness.Cluster,
    specs: Sequence[GeneratedSpec],
    args: argparse.Namespace,
) -> Verdict:
    """Generate, start an operator for a fresh namespace, judge; the namespace is removed
    afterwards unless the cluster is private (it goes as a whole) or --keep-namespace, and the
    operator's folder is kept when the run fails."""
    namespace = harness.create_namespace(api, "bench-fuzz", labels=NAMESPACE_LABELS)
    operator = harness.OperatorProcess(
        cluster.kubeconfig,
        Path(tempfile.mkdtemp(prefix="execflow-fuzz-")),
        yaml.safe_dump(SETTINGS),
        namespaces=[namespace],
    )
    succeeded = False
    try:
        say(f"starting the operator for namespace {namespace}")
        operator.start(timeout=120)
        verdict = judge(
            api,
            namespace,
            specs,
            operator_log=operator.log_text,
            threads=args.threads,
            timeout=args.timeout,
            quiet=args.quiet,
            poll=max(1.0, args.count / 2000),
            progress=say,
        )
        if not operator.running:
            say(f"NOTE: the operator exited during the run; log: {operator.log_path}")
        succeeded = True
        return verdict
    finally:
        operator.stop()
        if succeeded:
            shutil.rmtree(operator.directory, ignore_errors=True)
        else:
            say(f"operator log kept: {operator.log_path}")
        if cluster.mode != "private" and not args.keep_namespace:
            say(f"deleting namespace {namespace}")
            harness.delete_namespace(api, namespace)


def examples(verdict: Verdict, per_reason: int = 3) -> dict[str, list[dict[str, Any]]]:
    """A few Tasks of each phase/reason, with their messages and specs."""
    chosen: dict[str, list[dict[str, Any]]] = {}
    for o in verdict.outcomes:
        if o.category not in ("ended", "waiting"):
            continue
        found = chosen.setdefault(f"{o.phase}/{o.reason}", [])
        if len(found) < per_reason:
            found.append({"name": o.name, "message": o.message, "spec": o.spec})
    return chosen


def report(
    verdict: Verdict,
    args: argparse.Namespace,
    *,
    generate_seconds: float,
    cluster: str,
    kubernetes: str,
    load_at_start: tuple[float, ...],
) -> dict[str, Any]:
    refusals = Counter(o.message[:200] for o in verdict.of("refused"))
    return {
        "benchmark": "fuzz",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "count": args.count,
        "seed": args.seed,
        "mix": dict(MIX),
        "environment": {
            "cluster": cluster,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "kubernetes": kubernetes,
            "revision": harness.revision(ROOT),
            "load_average_at_start": load_at_start,
            "load_average_at_end": harness.load_average(),
        },
        "seconds": {
            "generate": generate_seconds,
            "create": verdict.create_seconds,
            "settle": verdict.settle_seconds,
        },
        "settled": verdict.settled,
        "counts": verdict.counts(),
        "by_origin": verdict.by_origin(),
        "reasons": dict(verdict.reasons().most_common()),
        "refused_fields": dict(verdict.refused_fields().most_common()),
        "refusal_messages": dict(refusals.most_common(TOP)),
        "problems": [
            {
                "name": o.name,
                "origin": o.origin,
                "category": o.category,
                "phase": o.phase,
                "reason": o.reason,
                "message": o.message,
                "status_code": o.status_code,
                "spec": o.spec,
                "log": list(verdict.log_lines.get(o.name, ())),
            }
            for o in verdict.problems()
        ],
        "examples": examples(verdict),
        "running": [
            {"name": o.name, "reason": o.reason, "message": o.message, "spec": o.spec}
            for o in verdict.outcomes
            if o.category == "waiting" and o.phase == "Running"
        ],
        "crashes": list(verdict.crashes),
        "outcomes": [[o.name, o.origin, o.category, o.phase, o.reason] for o in verdict.outcomes],
        "operator_error_lines": list(verdict.error_lines[:200]),
    }


def print_table(result: dict[str, Any], written_to: Path) -> None:
    counts, seconds, environment = result["counts"], result["seconds"], result["environment"]
    print(
        f"\nexecflow spec fuzzing: N={result['count']}, seed {result['seed']}, "
        f"cluster {environment['cluster']}, {environment['cpus']} CPUs, load average "
        f"{environment['load_average_at_start'][0]} at start, "
        f"{environment['load_average_at_end'][0]} at end"
    )
    print(
        f"  generated in {seconds['generate']:.1f} s, created in {seconds['create']:.1f} s, "
        f"{'settled' if result['settled'] else 'deadline reached'} "
        f"{seconds['settle']:.1f} s after the last create"
    )
    rows = [
        ("tried", counts["tried"]),
        ("refused, message names the field", counts["refused"]),
        ("refused, unclear message", counts["unclear"]),
        ("ended with a reason", counts["ended"]),
        ("waiting with a reason", counts["waiting"]),
        ("  of which Running", counts["running"]),
        ("stuck (no phase or no reason)", counts["stuck"]),
        ("API server errors", counts["error"]),
        ("operator crashes (Traceback)", counts["crashes"]),
    ]
    width = max(len(label) for label, _ in rows) + 2
    for label, value in rows:
        print(f"  {label:<{width}}{value:>8}")
    print("  by origin:")
    for origin, row in result["by_origin"].items():
        cells = ", ".join(f"{category} {n}" for category, n in row.items() if n)
        print(f"    {origin:<10} {cells}")
    print("  most common phase/reason:")
    for reason, n in list(result["reasons"].items())[:TOP]:
        print(f"    {reason:<40}{n:>8}")
    print("  fields refusals name most:")
    for name, n in list(result["refused_fields"].items())[:TOP]:
        print(f"    {name:<40}{n:>8}")
    for problem in result["problems"][:10]:
        print(
            f"  PROBLEM {problem['category']} {problem['name']}: phase={problem['phase']!r} "
            f"reason={problem['reason']!r} {problem['message'][:160]!r}"
        )
    for crash in result["crashes"][:5]:
        lines = crash.splitlines()
        print(f"  CRASH {lines[0][:200]}\n        {lines[-1][:200]}")
    print(f"  written to {written_to}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10000, help="specs to try (10000)")
    harness.add_cluster_options(parser)
    parser.add_argument("--seed", type=int, default=0, help="generator seed (0)")
    parser.add_argument("--threads", type=int, default=8, help="client create threads (8)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds to wait after the last create (default 120 + 0.06 x N)",
    )
    parser.add_argument(
        "--quiet",
        type=float,
        default=15,
        help="seconds without any change after which the Tasks count as settled (15)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS_FILE, help="JSON results file")
    parser.add_argument(
        "--keep-namespace", action="store_true", help="leave the benchmark namespace behind"
    )
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be positive")
    if args.timeout is None:
        args.timeout = 120 + 0.06 * args.count
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_at_start = harness.load_average()
    say(f"generating {args.count} specs (seed {args.seed})")
    started = time.monotonic()
    specs = generate_specs(args.count, seed=args.seed, queues=list(SETTINGS["queues"]))
    generate_seconds = round(time.monotonic() - started, 2)
    with harness.cluster_from_options(args, say) as cluster:
        api = harness.connect(cluster.kubeconfig, pool_size=args.threads + 4, with_crds=True)
        try:
            kubernetes = client.VersionApi(api).get_code().git_version
            verdict = run(api, cluster, specs, args)
        finally:
            api.close()
    result = report(
        verdict,
        args,
        generate_seconds=generate_seconds,
        cluster=cluster.mode,
        kubernetes=kubernetes,
        load_at_start=load_at_start,
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
