"""The chart's MCP endpoint for real: installed by the project's helm with `mcp.enabled`, and the
endpoint run with exactly the permissions the chart gives its ServiceAccount.

The installed endpoint ServiceAccount gets a token (TokenRequest API); the same `execflow mcp
--transport http` process the Deployment starts runs out of cluster with it. An agent, a
ServiceAccount allowed only what the chart README says an agent needs, lists the Tools, calls one
to its result, cancels a call of another (its Task is cancelled), lists the namespace's resources
and reads a Task, a Workflow and a ResultSet. Every answer must be right, the API server's audit
log must show the endpoint's ServiceAccount refused nothing and using every verb the chart grants
it, and `helm uninstall` must remove its Deployment and RBAC.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from mcp import Client

from execflow.devcluster import harness
from execflow.devcluster.build import ensure_binaries
from execflow.devcluster.cluster import LocalCluster
from execflow.devcluster.configuration import audit_log
from tests.integration import chart_rbac
from tests.integration.mcp_clients import http_client, http_server, service_account_token, sim_tool
from tests.integration.objects import GROUP, TERMINAL, create_workflow
from tests.integration.operator_process import OperatorProcess, wait_phase
from tests.integration.resultsets import create_result_set, wait_result_set
from tests.integration.waiting import wait_for
from tests.integration.workflows import sim, wait_workflow

CHART = Path(__file__).resolve().parents[2] / "charts" / "execflow"
RELEASE = "agents"
MCP = "agents-execflow-mcp"
"""The endpoint's objects for the release (`<release>-execflow-mcp`)."""
SCHEMA = {"type": "object", "required": ["input"], "properties": {"input": {"type": "string"}}}
AGENT_RULES = [
    {"apiGroups": [GROUP], "resources": ["tools"], "verbs": ["list"]},
    {"apiGroups": [GROUP], "resources": ["tasks"], "verbs": ["create", "get", "list"]},
    {"apiGroups": [GROUP], "resources": ["workflows", "resultsets"], "verbs": ["get", "list"]},
]
"""What the chart README says an agent that calls Tools and reads results needs."""


def run_helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(helm), *args], capture_output=True, text=True, check=False, timeout=120
    )


@pytest.fixture
def release(api: client.ApiClient, kubeconfig: Path) -> Iterator[tuple[str, Path]]:
    """A namespace to install the chart into and the project's helm; whatever the test left
    installed is removed."""
    helm = ensure_binaries()["helm"]
    namespace = harness.create_namespace(api, "execflow-mcp")
    yield namespace, helm
    run_helm(helm, "uninstall", RELEASE, "-n", namespace, "--kubeconfig", str(kubeconfig))
    harness.delete_namespace(api, namespace)


def test_the_chart_runs_the_mcp_endpoint_with_only_its_own_permissions(
    *,
    api: client.ApiClient,
    kubeconfig: Path,
    namespace: str,
    release: tuple[str, Path],
    operator: OperatorProcess,
    local_cluster: LocalCluster | None,
    tmp_path: Path,
) -> None:
    if local_cluster is None:
        pytest.skip("reading what the endpoint did needs the local control plane's audit log")
    log = audit_log(local_cluster.dir)
    assert log.exists(), f"no {log}: the local cluster predates its audit log; restart it"
    home, helm = release
    admin = ("-n", home, "--kubeconfig", str(kubeconfig))
    values = ("--set", "mcp.enabled=true", "--set", f"mcp.namespace={namespace}")
    installed = run_helm(helm, "install", RELEASE, str(CHART), *admin, *values)
    assert installed.returncode == 0, installed.stderr
    assert f"http://{MCP}.{home}.svc:80/mcp" in installed.stdout, "the notes say where it is"
    check_installed(api, home, namespace)
    granted = chart_rbac.granted_rules(api, home, MCP)
    token = chart_rbac.service_account_token(api, home, MCP)
    as_endpoint = chart_rbac.token_kubeconfig(kubeconfig, token, tmp_path / "mcp.kubeconfig")

    sim_tool(api, namespace, "echo", schema=SCHEMA, message='{"rows": 3}')
    sim_tool(api, namespace, "long", duration="5m")
    steps = [{"name": "work", "tasks": [sim("only", message='{"v": 7}')]}]
    create_workflow(api, namespace, "pipeline", steps=steps)
    agent = service_account_token(api, namespace, "agent", AGENT_RULES)
    with http_server(as_endpoint, namespace, tmp_path / "mcp.log") as url:
        asyncio.run(asyncio.wait_for(as_agent(api, url, agent, namespace), 90))

    user = chart_rbac.service_account_user(home, MCP)

    def last_read_logged() -> bool:
        # A request's audit event is written as it ends, a moment after its answer.
        requests = chart_rbac.audited_requests(log, user)
        return any((r.verb, r.resource) == ("get", "resultsets") for r in requests)

    wait_for(last_read_logged, 10, "the endpoint's last request in the audit log")
    requests = chart_rbac.audited_requests(log, user)
    assert [str(r) for r in requests if r.decision != "allow"] == [], "the endpoint was refused"
    assert [str(grant) for grant in chart_rbac.unused(granted, requests)] == []
    assert {r.namespace for r in requests} == {namespace, None}, "the served namespace only"

    uninstall(api, helm, kubeconfig, home, namespace)


def check_installed(api: client.ApiClient, home: str, namespace: str) -> None:
    """The endpoint's Deployment serves the namespace as its ServiceAccount, which is bound to a
    ClusterRole and to a Role in that namespace and nothing else."""
    pod = client.AppsV1Api(api).read_namespaced_deployment(MCP, home).spec.template.spec
    assert pod.service_account_name == MCP
    [mcp] = pod.containers
    assert mcp.command == ["execflow"]
    assert mcp.args == [
        *("mcp", "--transport", "http", "--host", "0.0.0.0", "--port", "8090"),
        *("-n", namespace),
    ]
    assert client.CoreV1Api(api).read_namespaced_service(MCP, home).spec.ports[0].port == 80
    rules = chart_rbac.granted_rules(api, home, MCP)
    assert {(rule.namespace, rule.role) for rule in rules} == {(None, MCP), (namespace, MCP)}
    cluster_wide = {
        (rule.groups, rule.resources, rule.verbs) for rule in rules if not rule.namespace
    }
    assert cluster_wide == {
        (("authentication.k8s.io",), ("tokenreviews",), ("create",)),
        (("authorization.k8s.io",), ("subjectaccessreviews",), ("create",)),
    }


async def as_agent(api: client.ApiClient, url: str, token: str, namespace: str) -> None:
    """List and call the Tools, cancel a call, then list and read resources, as the agent."""
    async with http_client(url, token) as mcp:
        listed = await mcp.list_tools()
        assert [(t.name, t.input_schema) for t in listed.tools] == [
            ("echo", SCHEMA),
            ("long", {"type": "object"}),
        ]
        result = await mcp.call_tool("echo", {"input": "a.csv"})
        assert not result.is_error, result.content
        content = result.structured_content or {}
        assert (content["phase"], content["result"]) == ("Completed", {"rows": 3})
        made = await asyncio.to_thread(
            client.CustomObjectsApi(api).get_namespaced_custom_object,
            GROUP,
            "v1alpha1",
            namespace,
            "tasks",
            content["task"],
        )
        caller = made["metadata"]["annotations"]["execflow.dev/mcp-client"]
        assert caller == f"system:serviceaccount:{namespace}:agent", "made for the agent"
        await cancel_a_call(api, mcp, namespace)

    echoed = str(content["task"])
    create_result_set(api, namespace, "echoed", source={"taskRefs": [echoed]})
    await asyncio.to_thread(wait_result_set, api, namespace, "echoed", {"Ready"}, count=1)
    await asyncio.to_thread(wait_workflow, api, namespace, "pipeline", {"Completed"})

    async with http_client(url, token) as mcp:
        found = {str(r.uri) for r in (await mcp.list_resources()).resources}
        root = f"execflow://{namespace}"
        wanted = {
            f"{root}/tasks/{echoed}",
            f"{root}/workflows/pipeline",
            f"{root}/resultsets/echoed",
        }
        assert wanted <= found, found
        task = await read(mcp, f"{root}/tasks/{echoed}")
        assert (task["phase"], task["result"], task["tool"]) == ("Completed", {"rows": 3}, "echo")
        workflow = await read(mcp, f"{root}/workflows/pipeline")
        assert (workflow["phase"], workflow["steps"][0]["name"]) == ("Completed", "work")
        result_set = await read(mcp, f"{root}/resultsets/echoed")
        assert (result_set["phase"], result_set["count"]) == ("Ready", 1)


async def cancel_a_call(api: client.ApiClient, mcp: Client, namespace: str) -> None:
    """Call the long Tool, cancel the call once its Task runs: the endpoint cancels the Task."""
    running = asyncio.Event()

    async def progress(progress: float, total: float | None, message: str | None) -> None:
        if str(message).startswith("Running"):
            running.set()

    call = asyncio.create_task(mcp.call_tool("long", {}, progress_callback=progress))
    await asyncio.wait_for(running.wait(), 30)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    [task] = await asyncio.to_thread(called_tasks, api, namespace, "long")
    status = await asyncio.to_thread(wait_phase, api, namespace, task, TERMINAL)
    assert status["spec"]["cancel"] is True
    assert status["status"]["phase"] == "Cancelled"


def called_tasks(api: client.ApiClient, namespace: str, tool: str) -> list[str]:
    listed = client.CustomObjectsApi(api).list_namespaced_custom_object(
        GROUP, "v1alpha1", namespace, "tasks", label_selector="execflow.dev/called-by=mcp"
    )
    return [
        item["metadata"]["name"]
        for item in listed["items"]
        if item["spec"].get("toolRef", {}).get("name") == tool
    ]


async def read(mcp: Client, uri: str) -> dict[str, Any]:
    [contents] = (await mcp.read_resource(uri)).contents
    assert isinstance(contents, types.TextResourceContents)
    view: dict[str, Any] = json.loads(contents.text)
    return view


def uninstall(api: client.ApiClient, helm: Path, kubeconfig: Path, home: str, served: str) -> None:
    """`helm uninstall` removes the endpoint and all its RBAC; the Tasks its calls made stay."""
    uninstalled = run_helm(helm, "uninstall", RELEASE, "-n", home, "--kubeconfig", str(kubeconfig))
    assert uninstalled.returncode == 0, uninstalled.stderr
    rbac = client.RbacAuthorizationV1Api(api)
    reads: list[Callable[[], object]] = [
        lambda: rbac.read_cluster_role(MCP),
        lambda: rbac.read_cluster_role_binding(MCP),
        lambda: rbac.read_namespaced_role(MCP, served),
        lambda: rbac.read_namespaced_role_binding(MCP, served),
        lambda: client.AppsV1Api(api).read_namespaced_deployment(MCP, home),
        lambda: client.CoreV1Api(api).read_namespaced_service_account(MCP, home),
    ]
    for read_gone in reads:
        with pytest.raises(ApiException) as gone:
            read_gone()
        assert gone.value.status == 404
    assert called_tasks(api, served, "echo"), "the Tasks the calls made stay"
