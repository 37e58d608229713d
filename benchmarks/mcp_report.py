"""The MCP calls benchmark's report: its typed figures, how rounds pool into them, and the table.

Why this exists: mcp_calls.py measures, mcp_rounds.py runs and times one round; what the figures
are (the dataclasses written as JSON to benchmarks/results/mcp.json), how the rounds of one way
pool into the headline figures, what makes them suspect, and how they print is this module, so
that the shape of the results can be read in one place without the cluster code around it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from task_throughput import Environment, Latency, Percentiles


@dataclass(frozen=True)
class Spans:
    """Where an item's time went, from the benchmark's Task watch: sent -> Task ADDED,
    ADDED -> Completed, and for MCP calls Completed -> result received."""

    sent_to_added: Percentiles
    added_to_completed: Percentiles
    completed_to_result: Percentiles | None


@dataclass(frozen=True)
class Round:
    mode: str
    """`direct` (Tasks through the Kubernetes API) or `mcp` (tools/call)."""
    index: int
    count: int
    elapsed_seconds: float
    per_second: float
    outcomes: dict[str, int]
    latency: Latency
    spans: Spans
    server_cpu_seconds: float | None
    operator_cpu_seconds: float | None
    benchmark_cpu_seconds: float
    token_reviews: int | None
    access_reviews: int | None
    """TokenReviews and SubjectAccessReviews the API server took in the round (all clients)."""
    failures: tuple[str, ...]
    """The first few calls refused or ended in error."""
    latencies_seconds: tuple[float, ...]


@dataclass(frozen=True)
class Way:
    """All rounds of one way pooled."""

    rounds: int
    count: int
    elapsed_seconds: float
    per_second: float
    latency: Latency
    spans: Spans
    outcomes: dict[str, int]
    operator_cpu_ms_per_item: float | None
    benchmark_cpu_ms_per_item: float
    reviews_per_item: float | None
    """TokenReviews + SubjectAccessReviews per item (exact on a private cluster only)."""


@dataclass(frozen=True)
class Comparison:
    ratio: float
    """calls/s / tasks/s."""
    overhead_p50_seconds: float | None
    overhead_p99_seconds: float | None
    """MCP latency - direct latency at that percentile."""


@dataclass(frozen=True)
class ServerFigures:
    transport: str
    cpu_seconds: float | None
    cpu_ms_per_call: float | None
    peak_rss_mb: float | None


@dataclass(frozen=True)
class Report:
    benchmark: str
    command: str
    time: str
    count: int
    rounds: int
    warmup: int
    environment: Environment
    direct: Way
    mcp: Way
    comparison: Comparison
    server: ServerFigures
    detail: tuple[Round, ...]
    notes: tuple[str, ...]


def difference(left: float | None, right: float | None) -> float | None:
    """left - right to the millisecond; None when either is unknown."""
    return None if left is None or right is None else round(left - right, 3)


# ----- pooling and notes ------------------------------------------------------------------------
SpanSamples = dict[str, list[float]]
"""Raw span values of a round, by Spans field name (pooled over the rounds for the headline)."""

Measured = tuple[Round, SpanSamples]


def spans_of(samples: SpanSamples) -> Spans:
    return Spans(
        sent_to_added=Percentiles.of(samples["sent_to_added"]),
        added_to_completed=Percentiles.of(samples["added_to_completed"]),
        completed_to_result=Percentiles.of(samples["completed_to_result"])
        if "completed_to_result" in samples
        else None,
    )


def pool(measured: Sequence[Measured]) -> Way:
    rounds = [figures for figures, _ in measured]
    samples: SpanSamples = {}
    for _, spans in measured:
        for name, values in spans.items():
            samples.setdefault(name, []).extend(values)
    latencies = [v for r in rounds for v in r.latencies_seconds]
    count = sum(r.count for r in rounds)
    elapsed = sum(r.elapsed_seconds for r in rounds)
    outcomes: Counter[str] = Counter()
    for r in rounds:
        outcomes.update(r.outcomes)
    operator_cpu = [r.operator_cpu_seconds for r in rounds]
    reviews = [(r.token_reviews, r.access_reviews) for r in rounds]
    return Way(
        rounds=len(rounds),
        count=count,
        elapsed_seconds=round(elapsed, 3),
        per_second=round(len(latencies) / elapsed, 2),
        latency=Latency.of(latencies),
        spans=spans_of(samples),
        outcomes=dict(outcomes),
        operator_cpu_ms_per_item=None
        if None in operator_cpu
        else round(sum(c or 0.0 for c in operator_cpu) * 1000 / count, 2),
        benchmark_cpu_ms_per_item=round(
            sum(r.benchmark_cpu_seconds for r in rounds) * 1000 / count, 2
        ),
        reviews_per_item=None
        if any(None in pair for pair in reviews)
        else round(sum((t or 0) + (a or 0) for t, a in reviews) / count, 2),
    )


def notes(direct: Way, mcp: Way, detail: Sequence[Round]) -> tuple[str, ...]:
    """What makes the figures suspect: items that did not complete, rounds far apart."""
    found = []
    for way, name in ((direct, "direct Tasks"), (mcp, "MCP calls")):
        if way.outcomes.get("Completed", 0) != way.count:
            found.append(f"not every one of the {name} completed: {way.outcomes}")
    for figures in detail:
        if figures.failures:
            found.append(f"{figures.mode} round {figures.index}: {'; '.join(figures.failures)}")
    for mode in ("direct", "mcp"):
        rates = [r.per_second for r in detail if r.mode == mode]
        if len(rates) > 1 and max(rates) > 1.5 * min(rates):
            found.append(f"{mode} rounds differ by more than half: {rates} /s")
    return tuple(found)


# ----- the table --------------------------------------------------------------------------------
def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s"


def print_table(report: Report, written_to: Path) -> None:
    direct, mcp, env = report.direct, report.mcp, report.environment
    print(
        f"\nexecflow MCP calls: N={report.count} per round, {report.rounds} rounds each way "
        f"(alternating, after {report.warmup} + {report.warmup} warm-up), cluster {env.cluster}, "
        f"{env.cpus} CPUs, load average {env.load_average_at_start[0]} at start, "
        f"{env.load_average_at_end[0]} at end"
    )
    rows = [("", "direct Tasks", "MCP calls")]
    for index in range(1, report.rounds + 1):
        rates = {r.mode: r.per_second for r in report.detail if r.index == index}
        rows.append((f"round {index} throughput", f"{rates['direct']} /s", f"{rates['mcp']} /s"))
    rows += [
        ("throughput (all rounds)", f"{direct.per_second} /s", f"{mcp.per_second} /s"),
        ("latency p50", _s(direct.latency.p50), _s(mcp.latency.p50)),
        ("latency p99", _s(direct.latency.p99), _s(mcp.latency.p99)),
        ("latency max", _s(direct.latency.max), _s(mcp.latency.max)),
        ("outcomes", str(direct.outcomes), str(mcp.outcomes)),
    ]
    for label, left, right in rows:
        print(f"  {label:<26}{left:>24}{right:>24}")
    comparison = report.comparison
    print(f"  ratio calls/s / tasks/s   {comparison.ratio}")
    print(
        f"  overhead per call (MCP - direct latency): p50 {_s(comparison.overhead_p50_seconds)}, "
        f"p99 {_s(comparison.overhead_p99_seconds)}"
    )
    print("  where the time goes, p50 / p99 (benchmark's Task watch):")
    for mode, way in (("direct", direct), ("mcp", mcp)):
        spans = way.spans
        parts = [
            ("sent -> Task ADDED", spans.sent_to_added),
            ("ADDED -> Completed", spans.added_to_completed),
            ("Completed -> result", spans.completed_to_result),
        ]
        text = ", ".join(f"{name} {_s(p.p50)} / {_s(p.p99)}" for name, p in parts if p)
        print(f"    {mode:<7} {text}")
    server = report.server
    print(
        f"  MCP server ({server.transport}): CPU {server.cpu_seconds} s over {mcp.count} calls "
        f"= {server.cpu_ms_per_call} ms per call; peak RSS {server.peak_rss_mb} MB"
    )
    print(
        f"  operator CPU per Task: direct {direct.operator_cpu_ms_per_item} ms, "
        f"MCP {mcp.operator_cpu_ms_per_item} ms"
    )
    print(
        f"  benchmark process CPU per item (watch + client): direct "
        f"{direct.benchmark_cpu_ms_per_item} ms, MCP {mcp.benchmark_cpu_ms_per_item} ms"
    )
    reviews = {
        mode: [
            sum(r.token_reviews or 0 for r in report.detail if r.mode == mode),
            sum(r.access_reviews or 0 for r in report.detail if r.mode == mode),
        ]
        for mode in ("direct", "mcp")
    }
    print(
        f"  API server TokenReviews + SubjectAccessReviews ({env.cluster} cluster): direct "
        f"{' + '.join(map(str, reviews['direct']))}, MCP {' + '.join(map(str, reviews['mcp']))} "
        f"= {mcp.reviews_per_item} per call"
    )
    for note in report.notes:
        print(f"  NOTE: {note}")
    print(f"  written to {written_to}")
