"""One round of the MCP calls benchmark, either way, and what it measures.

Why this exists: mcp_calls.py sets up the cluster and alternates the rounds; a round itself is
N Tasks of the Tool created directly through the Kubernetes API, or N concurrent `tools/call`s in
one session against the `execflow mcp` process run here. Both ways are timed by the same Task
watch (`Seen`) and the same `Meter` (CPU of the MCP server, the operator and this process, and
the access reviews the API server took), and summarized into the same `mcp_report.Round`, so
they sit together: what differs between the ways is only how the items are sent.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException
from mcp import Client
from mcp.shared.exceptions import MCPError

from execflow.core.tools import call_task
from execflow.devcluster import harness, processes
from execflow.devcluster.cluster import free_port
from mcp_report import Measured, Round, SpanSamples, difference, spans_of
from task_throughput import (
    GROUP,
    PLURAL,
    ROOT,
    TERMINAL_PHASES,
    VERSION,
    Latency,
    raw,
    request_totals,
    retried,
)
from watching import RawWatch

TOOL = "zero"
DIRECT_LABEL = "benchmark"
REVIEWS = ("tokenreviews", "subjectaccessreviews")
SERVE = (sys.executable, "-m", "execflow.cli.main", "mcp")


# ----- what the watch sees ----------------------------------------------------------------------
@dataclass
class Seen:
    """Per Task name: when the watch first saw it, when it first saw it end, and how."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    added: dict[str, float] = field(default_factory=dict)
    finished: dict[str, float] = field(default_factory=dict)
    phase: dict[str, str] = field(default_factory=dict)
    last_event: float = field(default_factory=time.monotonic)

    def on_task(self, kind: str, task: dict[str, Any], at: float) -> None:
        name = str(task["metadata"]["name"])
        phase = str((task.get("status") or {}).get("phase") or "")
        with self.lock:
            self.last_event = at
            self.added.setdefault(name, at)
            if phase in TERMINAL_PHASES and name not in self.finished:
                self.finished[name] = at
                self.phase[name] = phase

    def finished_count(self, names: Sequence[str]) -> int:
        with self.lock:
            return sum(name in self.finished for name in names)

    def quiet_for(self) -> float:
        with self.lock:
            return time.monotonic() - self.last_event


def wait_finished(seen: Seen, names: Sequence[str], watch: RawWatch, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (done := seen.finished_count(names)) < len(names):
        watch.check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {done}/{len(names)} Tasks ended after {timeout:.0f} s")
        time.sleep(0.02)


def wait_quiet(seen: Seen, quiet: float = 2, limit: float = 20) -> None:
    """Until the Task watch has seen nothing for `quiet` seconds (late status writes)."""
    end = time.monotonic() + limit
    while seen.quiet_for() < quiet and time.monotonic() < end:
        time.sleep(0.1)


# ----- the MCP server ---------------------------------------------------------------------------
class McpServer:
    """`execflow mcp --transport http` for one namespace, as a child process."""

    def __init__(self, kubeconfig: Path, namespace: str, directory: Path) -> None:
        self.port = free_port()
        self.log_path = directory / "mcp.log"
        command = [*SERVE, "--transport", "http", "--port", str(self.port), "-n", namespace]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [*command, "--kubeconfig", str(kubeconfig)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=ROOT,
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1):
                    return
            except (urllib.error.URLError, OSError):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"no MCP endpoint; log: {self.log_path}") from None
                time.sleep(0.1)

    def cpu_seconds(self) -> float | None:
        return processes.cpu_seconds(self.process.pid)

    def peak_rss_bytes(self) -> int | None:
        return processes.peak_rss_bytes(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


# ----- sending the items ------------------------------------------------------------------------
@dataclass
class Items:
    """Per item of a round: its Task's name, when it was sent, and (MCP) when its result came."""

    sent: dict[str, float] = field(default_factory=dict)
    received: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Context:
    api: client.ApiClient
    namespace: str
    seen: Seen
    watch: RawWatch
    operator: harness.OperatorProcess
    server: McpServer
    timeout: float


def create_direct(context: Context, count: int) -> Items:
    """`count` Tasks of the Tool from `count` threads at once; returns when all are created."""
    custom = client.CustomObjectsApi(context.api)
    items = Items()

    def one(_: int) -> None:
        body = call_task(TOOL, {}, called_by=DIRECT_LABEL)
        sent = time.monotonic()
        reply = retried(
            lambda: custom.create_namespaced_custom_object(
                GROUP, VERSION, context.namespace, PLURAL, body, _preload_content=False
            )
        )
        name = str(raw(reply)["metadata"]["name"])
        with items.lock:
            items.sent[name] = sent

    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="create") as pool:
        list(pool.map(one, range(count)))
    return items


async def call_mcp(session: Client, count: int) -> Items:
    """`count` concurrent tools/calls in one session; returns when every result is in."""
    items = Items()

    async def one(index: int) -> None:
        sent = time.monotonic()
        try:
            result = await session.call_tool(TOOL, {})
        except MCPError as error:
            items.failures.append(f"call {index}: {error}")
            return
        received = time.monotonic()
        content = result.structured_content or {}
        name = str(content.get("task") or f"unnamed-{index}")
        items.sent[name], items.received[name] = sent, received
        if result.is_error:
            items.failures.append(f"{name}: {content.get('phase')} {content.get('message')}")

    await asyncio.gather(*(one(index) for index in range(count)))
    return items


# ----- a round's figures ------------------------------------------------------------------------
def span_samples(mode: str, items: Items, seen: Seen) -> SpanSamples:
    with seen.lock:
        added = {n: seen.added[n] for n in items.sent if n in seen.added}
        finished = {n: seen.finished[n] for n in items.sent if n in seen.finished}
    samples: SpanSamples = {
        "sent_to_added": [added[n] - items.sent[n] for n in added],
        "added_to_completed": [finished[n] - added[n] for n in finished if n in added],
    }
    if mode == "mcp":
        samples["completed_to_result"] = [
            items.received[n] - finished[n] for n in finished if n in items.received
        ]
    return samples


def summarize(
    mode: str, index: int, items: Items, seen: Seen, cpu: dict[str, float | None]
) -> Measured:
    """The round's figures: latency to the result (MCP) or to Completed on the watch (direct)."""
    names = list(items.sent)
    with seen.lock:
        finished = {n: seen.finished[n] for n in names if n in seen.finished}
        outcomes = Counter(seen.phase.get(n, "unseen") for n in names)
    done = items.received if mode == "mcp" else finished
    latencies = [done[n] - items.sent[n] for n in names if n in done]
    first = min(items.sent.values(), default=0.0)
    elapsed = max(max(done.values(), default=first) - first, 1e-9)
    refused = sum(failure.startswith("call ") for failure in items.failures)
    if refused:
        outcomes["refused"] = refused
    samples = span_samples(mode, items, seen)
    figures = Round(
        mode=mode,
        index=index,
        count=len(names) + refused,
        elapsed_seconds=round(elapsed, 3),
        per_second=round(len(latencies) / elapsed, 2),
        outcomes=dict(outcomes),
        latency=Latency.of(latencies),
        spans=spans_of(samples),
        server_cpu_seconds=cpu["server"],
        operator_cpu_seconds=cpu["operator"],
        benchmark_cpu_seconds=round(cpu["benchmark"] or 0.0, 3),
        token_reviews=_count(cpu["tokenreviews"]),
        access_reviews=_count(cpu["subjectaccessreviews"]),
        failures=tuple(items.failures[:5]),
        latencies_seconds=tuple(round(v, 4) for v in latencies),
    )
    return figures, samples


def _count(value: float | None) -> int | None:
    return None if value is None else round(value)


def review_requests(api: client.ApiClient) -> dict[str, float | None]:
    """The API server's count of TokenReview and SubjectAccessReview creates so far."""
    counts: dict[str, float | None] = dict.fromkeys(REVIEWS, 0.0)
    try:
        totals = request_totals(api)
    except ApiException:
        return dict.fromkeys(REVIEWS)
    for labels, value in totals:
        resource = labels.get("resource", "")
        if resource in counts and labels.get("verb") == "POST":
            counts[resource] = (counts[resource] or 0.0) + value
    return counts


class Meter:
    """CPU of the MCP server, the operator and this process over one window, and the access
    reviews the API server took meanwhile."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self.before = self.read()

    def read(self) -> dict[str, float | None]:
        return {
            "server": self.context.server.cpu_seconds(),
            "operator": self.context.operator.cpu_seconds(),
            "benchmark": time.process_time(),
            **review_requests(self.context.api),
        }

    def spent(self) -> dict[str, float | None]:
        after = self.read()
        return {key: difference(after[key], self.before[key]) for key in after}


# ----- the two kinds of rounds ------------------------------------------------------------------
async def direct_round(context: Context, index: int, count: int) -> Measured:
    meter = Meter(context)
    items = await asyncio.to_thread(create_direct, context, count)
    names = list(items.sent)
    await asyncio.to_thread(wait_finished, context.seen, names, context.watch, context.timeout)
    await asyncio.to_thread(wait_quiet, context.seen)
    return summarize("direct", index, items, context.seen, meter.spent())


async def mcp_round(context: Context, session: Client, index: int, count: int) -> Measured:
    meter = Meter(context)
    items = await asyncio.wait_for(call_mcp(session, count), context.timeout)
    # The benchmark's watch may see a Task end a moment after the endpoint's own watch did.
    names = [name for name in items.sent if not name.startswith("unnamed-")]
    await asyncio.to_thread(wait_finished, context.seen, names, context.watch, 30)
    await asyncio.to_thread(wait_quiet, context.seen)
    return summarize("mcp", index, items, context.seen, meter.spent())
