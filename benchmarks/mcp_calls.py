"""MCP calls: `tools/call` through `execflow mcp` next to the same Tasks created directly.

Why this exists: an agent that calls a Tool over MCP gets a Task, the same as a user who creates
one; the endpoint adds the protocol, a token check, an access review, the Task create and a wait
on its own watch. That must stay a small part of a call, and absolute figures depend on the
machine, so the benchmark measures both ways in the same run on the same cluster, operator and
Tool, and reports MCP relative to direct. It is a measurement, not a test: it asserts nothing.

One run, on one cluster with the operator running (`execflow run --namespace <ns>`, its default
queue raised to 1000 concurrent Tasks so that the operator is measured, not a limit):

- a zero-length Tool `zero` in a fresh namespace: simulated (its defaults' pod annotations
  `sim.execflow.dev/duration: 0s` and a one-line result message), no inputSchema;
- direct rounds: N Tasks of that Tool (the body `execflow.core.tools.call_task` builds, as the
  MCP endpoint does, but labelled `execflow.dev/called-by: benchmark`) created at once from N
  client threads through the Kubernetes API. Per Task: create sent -> Completed seen on a watch
  of the namespace's Tasks;
- MCP rounds: N concurrent `tools/call`s of the same Tool in ONE streamable-HTTP session (as an
  agent fanning out), against `execflow mcp --transport http` run as a separate process with the
  cluster's admin kubeconfig; the client authenticates with the token of a ServiceAccount that
  may list Tools and create and get Tasks, so every call passes the TokenReview and
  SubjectAccessReview path (both remembered by the endpoint for 30 s). Per call: call sent ->
  result received, in the client. No progress token is sent (the plainest call).

Warm-up matters (first TokenReview and access review, the SDK's and the endpoint's first
imports and connections, the API server's and kwok's first objects), so `--warmup` Tasks and
calls (default 10 each) run first and are not counted; then the rounds alternate, direct, MCP,
direct, MCP (`--rounds 2`), so that drift of a shared machine hits both ways alike. The headline
figures pool all rounds of a way: throughput = all items / the sum of the rounds' elapsed times
(first create or call sent -> last Completed or result), latency percentiles over all items
(nearest rank). Every round is in the JSON too, with its raw latencies.

Reported: calls/s next to tasks/s and their ratio; latency p50/p99 both ways; the overhead per
call = MCP latency - direct latency at p50 and at p99 (a difference of percentiles, not a
percentile of differences); where an MCP call's time goes (sent -> its Task ADDED on the
benchmark's watch, ADDED -> Completed, Completed -> result received); the MCP server's CPU
seconds per call (user + system over the MCP rounds, each window closed once the Task watch has
been quiet for 2 s, so late events count) and its peak RSS (VmHWM over its whole life); the
operator's CPU per Task both ways; the benchmark process's own CPU per item both ways (its watch
thread plus, in MCP rounds, the SDK client: the client's cost is the difference); and the
TokenReviews and SubjectAccessReviews the API server took per call (from its
apiserver_request_total: cluster-wide, so exact on a private cluster only). The figures form a
typed report printed as a table and written as JSON to benchmarks/results/mcp.json.

The cluster is chosen as in task_throughput.py: the shared local one by default (the benchmark's
operator and endpoint watch only its namespace, which is deleted afterwards), `--cluster private`
for clean figures (the review counts are exact only there), or `--kubeconfig`.

This script is not called mcp.py: a module of that name among the benchmarks would shadow the
SDK's `mcp` package, at run time and for the import sorting of every file that imports it.

    .venv/bin/python benchmarks/mcp_calls.py [--count 100] [--rounds 2] [--cluster private]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx2
from kubernetes import client
from kubernetes.client.rest import ApiException
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from execflow.core.tools import call_task
from execflow.devcluster import harness, processes
from execflow.devcluster.cluster import free_port
from task_throughput import (
    DURATION_ANNOTATION,
    GROUP,
    LABEL,
    NAMESPACE_LABELS,
    PLURAL,
    REQUEST_LINE,
    RETRIABLE_STATUS,
    TERMINAL_PHASES,
    VERSION,
    Environment,
    Latency,
    Percentiles,
    list_resource_version,
    operator_settings,
    raw,
    say,
    wait_listed,
)
from watching import RawWatch

ROOT = Path(__file__).resolve().parents[1]
RESULTS_FILE = ROOT / "benchmarks" / "results" / "mcp.json"
TOOL = "zero"
RESULT_MESSAGE = '{"ok": true}'
DIRECT_LABEL = "benchmark"
REVIEWS = ("tokenreviews", "subjectaccessreviews")
SERVE = (sys.executable, "-m", "execflow.cli.main", "mcp")
AGENT_RULES = [
    {"apiGroups": [GROUP], "resources": ["tools"], "verbs": ["list"]},
    {"apiGroups": [GROUP], "resources": ["tasks"], "verbs": ["create", "get"]},
]


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


# ----- set-up -----------------------------------------------------------------------------------
def create_tool(api: client.ApiClient, namespace: str) -> None:
    annotations = {DURATION_ANNOTATION: "0s", "sim.execflow.dev/message": RESULT_MESSAGE}
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Tool",
        "metadata": {"name": TOOL},
        "spec": {
            "description": "Does nothing, at once (simulated)",
            "image": "busybox",
            "command": ["true"],
            "defaults": {"podTemplate": {"metadata": {"annotations": annotations}}},
        },
    }
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, "tools", body
    )


def agent_token(api: client.ApiClient, namespace: str, name: str = "agent") -> str:
    """A token of a new ServiceAccount that may list Tools and create and get Tasks."""
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": name}})
    rbac.create_namespaced_role(namespace, {"metadata": {"name": name}, "rules": AGENT_RULES})
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        },
    )
    request = {"spec": {"audiences": [], "expirationSeconds": 3600}}
    return str(core.create_namespaced_service_account_token(name, namespace, request).status.token)


# ----- the report -------------------------------------------------------------------------------
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


def _delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else round(after - before, 3)


# ----- one round --------------------------------------------------------------------------------
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
        for attempt in range(6):
            try:
                reply = custom.create_namespaced_custom_object(
                    GROUP, VERSION, context.namespace, PLURAL, body, _preload_content=False
                )
                break
            except ApiException as error:
                if error.status not in RETRIABLE_STATUS or attempt == 5:
                    raise
                time.sleep(0.2 * 2**attempt)
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


SpanSamples = dict[str, list[float]]
"""Raw span values of a round, by Spans field name (pooled over the rounds for the headline)."""


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


def spans_of(samples: SpanSamples) -> Spans:
    return Spans(
        sent_to_added=Percentiles.of(samples["sent_to_added"]),
        added_to_completed=Percentiles.of(samples["added_to_completed"]),
        completed_to_result=Percentiles.of(samples["completed_to_result"])
        if "completed_to_result" in samples
        else None,
    )


def summarize(
    mode: str, index: int, items: Items, seen: Seen, cpu: dict[str, float | None]
) -> tuple[Round, SpanSamples]:
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
        reply = api.call_api(
            "/metrics",
            "GET",
            auth_settings=["BearerToken"],
            _preload_content=False,
            _return_http_data_only=True,
        )
    except ApiException:
        return dict.fromkeys(REVIEWS)
    for line in reply.data.decode().splitlines():
        match = REQUEST_LINE.match(line)
        if match is None:
            continue
        labels = dict(LABEL.findall(match["labels"]))
        resource = labels.get("resource", "")
        if resource in counts and labels.get("verb") == "POST":
            counts[resource] = (counts[resource] or 0.0) + float(match["value"])
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
        return {key: _delta(self.before[key], after[key]) for key in after}


Measured = tuple[Round, SpanSamples]


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


async def run_rounds(context: Context, token: str, args: argparse.Namespace) -> list[Measured]:
    """Warm-up, then the rounds alternating direct, MCP; one MCP session throughout."""
    limits = httpx2.Limits(max_connections=args.count + 20, max_keepalive_connections=args.count)
    transport = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {token}"},
        timeout=httpx2.Timeout(30, read=300),
        limits=limits,
    )
    measured: list[Measured] = []
    try:
        async with Client(streamable_http_client(context.server.url, http_client=transport)) as mcp:
            listed = [tool.name for tool in (await mcp.list_tools()).tools]
            if listed != [TOOL]:
                raise RuntimeError(f"the endpoint lists {listed}, not [{TOOL!r}]")
            if args.warmup:
                say(f"warm-up: {args.warmup} Tasks and {args.warmup} calls, not counted")
                await direct_round(context, 0, args.warmup)
                await mcp_round(context, mcp, 0, args.warmup)
            for index in range(1, args.rounds + 1):
                for mode in ("direct", "mcp"):
                    say(f"round {index}: {args.count} {mode} items")
                    done = (
                        await direct_round(context, index, args.count)
                        if mode == "direct"
                        else await mcp_round(context, mcp, index, args.count)
                    )
                    figures = done[0]
                    say(
                        f"  {figures.per_second} /s, p50 {figures.latency.p50} s, "
                        f"p99 {figures.latency.p99} s, outcomes {figures.outcomes}"
                    )
                    measured.append(done)
    finally:
        await transport.aclose()
    return measured


# ----- pooling and notes ------------------------------------------------------------------------
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


def _minus(left: float | None, right: float | None) -> float | None:
    return None if left is None or right is None else round(left - right, 3)


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


def measure(api: client.ApiClient, cluster: harness.Cluster, args: Any) -> Report:
    load_at_start = harness.load_average()
    server_version = client.VersionApi(api).get_code().git_version
    namespace = harness.create_namespace(api, "bench-mcp", labels=NAMESPACE_LABELS)
    directory = Path(tempfile.mkdtemp(prefix="execflow-bench-mcp-"))
    create_tool(api, namespace)
    token = agent_token(api, namespace)
    operator = harness.OperatorProcess(
        cluster.kubeconfig, directory, operator_settings(1000, 10000), namespaces=[namespace]
    )
    server: McpServer | None = None
    watch: RawWatch | None = None
    succeeded = False
    try:
        say(f"starting the operator and `execflow mcp --transport http` for {namespace}")
        operator.start(timeout=120)
        wait_listed(operator, timeout=120)
        server = McpServer(cluster.kubeconfig, namespace, directory)
        server.wait_ready()
        custom = client.CustomObjectsApi(api)

        def list_tasks(**kwargs: Any) -> Any:
            return custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, **kwargs)

        seen = Seen()
        watch = RawWatch("tasks", list_tasks, list_resource_version(list_tasks), seen.on_task)
        watch.start()
        context = Context(api, namespace, seen, watch, operator, server, args.timeout)
        measured = asyncio.run(run_rounds(context, token, args))
        peak = server.peak_rss_bytes()
        succeeded = True
    finally:
        if watch is not None:
            watch.stop()
        if server is not None:
            server.stop()
        operator.stop()
        if succeeded:
            shutil.rmtree(directory, ignore_errors=True)
        else:
            say(f"operator and MCP server logs kept in {directory}")
        if cluster.mode != "private":
            harness.delete_namespace(api, namespace)

    detail = [figures for figures, _ in measured]
    direct = pool([m for m in measured if m[0].mode == "direct"])
    mcp = pool([m for m in measured if m[0].mode == "mcp"])
    server_cpu = [r.server_cpu_seconds for r in detail if r.mode == "mcp"]
    cpu_total = None if None in server_cpu else round(sum(c or 0.0 for c in server_cpu), 2)
    return Report(
        benchmark="mcp",
        command=" ".join([Path(sys.executable).name, *sys.argv]),
        time=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        count=args.count,
        rounds=args.rounds,
        warmup=args.warmup,
        environment=Environment(
            cluster=cluster.mode,
            cpus=os.cpu_count(),
            python=platform.python_version(),
            kubernetes=server_version,
            revision=harness.revision(ROOT),
            load_average_at_start=load_at_start,
            load_average_at_end=harness.load_average(),
        ),
        direct=direct,
        mcp=mcp,
        comparison=Comparison(
            ratio=round(mcp.per_second / direct.per_second, 3),
            overhead_p50_seconds=_minus(mcp.latency.p50, direct.latency.p50),
            overhead_p99_seconds=_minus(mcp.latency.p99, direct.latency.p99),
        ),
        server=ServerFigures(
            transport="streamable HTTP, one session, ServiceAccount token",
            cpu_seconds=cpu_total,
            cpu_ms_per_call=None if cpu_total is None else round(cpu_total * 1000 / mcp.count, 2),
            peak_rss_mb=None if peak is None else round(peak / 2**20, 1),
        ),
        detail=tuple(detail),
        notes=notes(direct, mcp, detail),
    )


# ----- reporting --------------------------------------------------------------------------------
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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=int, default=100, help="Tasks and calls per round (100)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds each way, alternating (2)")
    parser.add_argument("--warmup", type=int, default=10, help="uncounted items each way (10)")
    parser.add_argument("--timeout", type=float, default=180, help="seconds per round (180)")
    parser.add_argument("--output", type=Path, default=RESULTS_FILE, help="JSON results file")
    harness.add_cluster_options(parser)
    args = parser.parse_args(argv)
    if args.count < 1 or args.rounds < 1 or args.warmup < 0:
        parser.error("--count and --rounds must be positive, --warmup at least 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with harness.cluster_from_options(args, say) as cluster:
        api = harness.connect(cluster.kubeconfig, pool_size=args.count + 8, with_crds=True)
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
