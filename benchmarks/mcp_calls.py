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

The two kinds of rounds and what they measure are in mcp_rounds.py, the report's figures and its
table in mcp_report.py; this script sets the cluster up, alternates the rounds and reports.

    .venv/bin/python benchmarks/mcp_calls.py [--count 100] [--rounds 2] [--cluster private]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import shutil
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx2
from kubernetes import client
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from execflow.devcluster import harness
from mcp_report import (
    Comparison,
    Measured,
    Report,
    ServerFigures,
    difference,
    notes,
    pool,
    print_table,
)
from mcp_rounds import TOOL, Context, McpServer, Seen, direct_round, mcp_round
from task_throughput import (
    DURATION_ANNOTATION,
    GROUP,
    NAMESPACE_LABELS,
    PLURAL,
    VERSION,
    Environment,
    list_resource_version,
    operator_settings,
    say,
    wait_listed,
)
from watching import RawWatch

ROOT = Path(__file__).resolve().parents[1]
RESULTS_FILE = ROOT / "benchmarks" / "results" / "mcp.json"
RESULT_MESSAGE = '{"ok": true}'
AGENT_RULES = [
    {"apiGroups": [GROUP], "resources": ["tools"], "verbs": ["list"]},
    {"apiGroups": [GROUP], "resources": ["tasks"], "verbs": ["create", "get"]},
]


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


# ----- the rounds -------------------------------------------------------------------------------
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


# ----- the run ----------------------------------------------------------------------------------
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
        environment=Environment.at_end(cluster.mode, server_version, load_at_start),
        direct=direct,
        mcp=mcp,
        comparison=Comparison(
            ratio=round(mcp.per_second / direct.per_second, 3),
            overhead_p50_seconds=difference(mcp.latency.p50, direct.latency.p50),
            overhead_p99_seconds=difference(mcp.latency.p99, direct.latency.p99),
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
