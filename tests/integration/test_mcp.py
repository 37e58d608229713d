"""`execflow mcp` with the official SDK's client, over stdio and streamable HTTP, on the real
control plane and operator: list, call with a result, invalid arguments, failure, timeout,
progress in order, cancellation removing the pods, a cache hit, resources, `list_changed`, and
over HTTP a missing or bad token (401) and a token without the right to create Tasks (403)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx2
import mcp_types as types
import pytest
from kubernetes import client
from mcp import Client
from mcp.shared.exceptions import MCPError

from tests.integration.mcp_clients import (
    http_client,
    http_server,
    service_account_token,
    sim_tool,
    stdio_client,
    text_of,
)
from tests.integration.objects import GROUP, VERSION, custom_api
from tests.integration.operator_process import OperatorProcess
from tests.integration.waiting import wait_for

SCHEMA = {"type": "object", "required": ["input"], "properties": {"input": {"type": "string"}}}
ONCE = {"retryPolicy": {"maxRetries": 0}}
RIGHTS = [
    {
        "apiGroups": [GROUP],
        "resources": ["tools", "tasks", "workflows", "resultsets"],
        "verbs": ["list", "get", "create"],
    }
]
Connect = Callable[[], AbstractAsyncContextManager[Client]]


@pytest.fixture(params=["stdio", "http"])
def connect(
    request: pytest.FixtureRequest,
    api: client.ApiClient,
    kubeconfig: Path,
    namespace: str,
    tmp_path: Path,
) -> Iterator[Connect]:
    """Opens a session with the endpoint: over stdio with the kubeconfig, or over HTTP with the
    token of a ServiceAccount allowed what these tests do."""
    if request.param == "stdio":
        yield lambda: stdio_client(kubeconfig, namespace)
        return
    token = service_account_token(api, namespace, "caller", RIGHTS)
    with http_server(kubeconfig, namespace, tmp_path / "mcp.log") as url:
        yield lambda: http_client(url, token)


def _mcp_tasks(api: client.ApiClient, namespace: str) -> list[dict[str, Any]]:
    found = custom_api(api).list_namespaced_custom_object(
        GROUP, VERSION, namespace, "tasks", label_selector="execflow.dev/called-by=mcp"
    )
    return list(found["items"])


def _pods(api: client.ApiClient, namespace: str, task: str) -> list[Any]:
    selector = f"execflow.dev/task={task}"
    return list(client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=selector).items)


def test_lists_calls_with_progress_and_serves_results(
    api: client.ApiClient, connect: Connect, namespace: str, operator: OperatorProcess
) -> None:
    sim_tool(api, namespace, "echo", schema=SCHEMA, duration="1s", message='{"rows": 3}')
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Tool",
        "metadata": {"name": "private", "annotations": {"execflow.dev/mcp": "false"}},
        "spec": {"image": "example.invalid/tool:1"},
    }
    custom_api(api).create_namespaced_custom_object(GROUP, VERSION, namespace, "tools", body)

    async def session() -> None:
        async with connect() as mcp:
            listed = await mcp.list_tools()
            assert [(t.name, t.input_schema) for t in listed.tools] == [("echo", SCHEMA)]

            told: list[str] = []

            async def progress(done: float, total: float | None, message: str | None) -> None:
                told.append(str(message))

            result = await mcp.call_tool("echo", {"input": "a.csv"}, progress_callback=progress)
            assert not result.is_error, text_of(result)
            content = result.structured_content or {}
            assert (content["phase"], content["result"], content["attempts"]) == (
                "Completed",
                {"rows": 3},
                1,
            )
            assert json.loads(text_of(result)) == content
            # Progress, in the order the Task moved: it ran (attempt 1), then completed.
            assert told[-1] == "Completed", told
            assert (
                "Running (attempt 1)" in told and told.index("Running (attempt 1)") < len(told) - 1
            )

            with pytest.raises(MCPError) as refused:
                await mcp.call_tool("echo", {"input": 3})
            assert refused.value.code == types.INVALID_PARAMS
            assert "parameters input: 3 is not of type 'string'" in refused.value.message
            with pytest.raises(MCPError):
                await mcp.call_tool("private", {})

            uri = f"execflow://{namespace}/tasks/{content['task']}"
            listed_resources = await mcp.list_resources()
            assert uri in [str(r.uri) for r in listed_resources.resources]
            read = await mcp.read_resource(uri)
            first = read.contents[0]
            assert isinstance(first, types.TextResourceContents)
            assert json.loads(first.text)["result"] == {"rows": 3}

    asyncio.run(session())
    tasks = _mcp_tasks(api, namespace)
    assert len(tasks) == 1  # the refused calls created nothing
    metadata = tasks[0]["metadata"]
    caller = f"system:serviceaccount:{namespace}:caller"
    assert metadata["annotations"]["execflow.dev/mcp-client"].startswith(("stdio:", caller))
    assert metadata["labels"]["execflow.dev/mcp-client"].startswith(("stdio-", "system-"))


def test_failure_timeout_and_cache_hit(
    api: client.ApiClient, connect: Connect, namespace: str, operator: OperatorProcess
) -> None:
    sim_tool(api, namespace, "broken", exit_code="3", message="bad input")
    custom_api(api).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "tools", "broken", {"spec": {"defaults": ONCE}}
    )
    sim_tool(api, namespace, "slow", duration="60s")
    sim_tool(api, namespace, "cached", message='{"n": 1}')
    custom_api(api).patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "tools",
        "cached",
        {"spec": {"defaults": {"cache": {"enabled": True, "ttl": "1h"}}}},
    )

    async def session() -> None:
        async with connect() as mcp:
            failed = await mcp.call_tool("broken", {})
            assert failed.is_error
            content = failed.structured_content or {}
            assert (content["phase"], content["exitCode"]) == ("Failed", 3)
            assert "exit code 3" in content["message"] and content["reason"]
            assert text_of(failed).startswith(f"{content['task']} Failed: ")

            late = await mcp.call_tool("slow", {}, meta={"execflow.dev/timeout": "1s"})
            assert late.is_error
            assert (late.structured_content or {})["phase"] == "Timeout"
            assert (late.structured_content or {})["reason"] == "DeadlineExceeded"
            with pytest.raises(MCPError) as bad_meta:
                await mcp.call_tool("slow", {}, meta={"execflow.dev/priority": "Urgent"})
            assert "not one of Low, Normal, High, Critical" in bad_meta.value.message

            first = await mcp.call_tool("cached", {"k": 1})
            again = await mcp.call_tool("cached", {"k": 1})
            assert (first.structured_content or {})["cacheHit"] is False
            assert (again.structured_content or {})["cacheHit"] is True
            assert (again.structured_content or {})["result"] == {"n": 1}

    asyncio.run(session())


def test_cancelling_a_call_cancels_its_task_and_removes_the_pods(
    api: client.ApiClient, connect: Connect, namespace: str, operator: OperatorProcess
) -> None:
    sim_tool(api, namespace, "long", duration="5m")

    async def session() -> None:
        async with connect() as mcp:
            running = asyncio.Event()

            async def progress(done: float, total: float | None, message: str | None) -> None:
                if str(message).startswith("Running"):
                    running.set()

            call = asyncio.create_task(mcp.call_tool("long", {}, progress_callback=progress))
            await asyncio.wait_for(running.wait(), 60)
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call

    asyncio.run(session())
    (task,) = _mcp_tasks(api, namespace)
    name = task["metadata"]["name"]
    wait_for(
        lambda: (
            custom_api(api)
            .get_namespaced_custom_object(GROUP, VERSION, namespace, "tasks", name)
            .get("status", {})
            .get("phase")
            == "Cancelled"
        ),
        60,
        "the called Task to be cancelled",
    )
    wait_for(lambda: not _pods(api, namespace, name), 60, "the cancelled call's pods to go")


def test_stdio_tells_of_a_new_tool(
    api: client.ApiClient, kubeconfig: Path, namespace: str, operator: OperatorProcess
) -> None:
    async def session() -> None:
        async with stdio_client(kubeconfig, namespace) as mcp:
            assert (await mcp.list_tools()).tools == []
            async with mcp.listen(tools_list_changed=True) as changes:
                sim_tool(api, namespace, "fresh")
                async for _ in changes:
                    break
            assert [t.name for t in (await mcp.list_tools()).tools] == ["fresh"]

    asyncio.run(asyncio.wait_for(session(), 60))


def test_http_checks_tokens_and_rights_and_tells_of_new_tools(
    api: client.ApiClient,
    kubeconfig: Path,
    namespace: str,
    operator: OperatorProcess,
    tmp_path: Path,
) -> None:
    sim_tool(api, namespace, "echo", schema=SCHEMA, message='{"ok": true}')
    agent = service_account_token(
        api,
        namespace,
        "agent",
        [
            {
                "apiGroups": [GROUP],
                "resources": ["tools", "tasks"],
                "verbs": ["list", "get", "create"],
            }
        ],
    )
    reader = service_account_token(
        api,
        namespace,
        "reader",
        [{"apiGroups": [GROUP], "resources": ["tools"], "verbs": ["list"]}],
    )

    async def session(url: str) -> None:
        request = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        headers = {"Accept": "application/json, text/event-stream"}
        async with httpx2.AsyncClient() as raw:
            for extra in ({}, {"Authorization": "Bearer not-a-token"}):
                answer = await raw.post(url, json=request, headers={**headers, **extra})
                assert answer.status_code == 401, answer.text

        async with http_client(url, reader) as mcp:
            assert [t.name for t in (await mcp.list_tools()).tools] == ["echo"]
            with pytest.raises(MCPError) as refused:
                await mcp.call_tool("echo", {"input": "x"})
            assert refused.value.code == 403
            assert (
                f"system:serviceaccount:{namespace}:reader cannot create" in refused.value.message
            )
            with pytest.raises(MCPError) as no_reading:
                await mcp.list_resources()
            assert no_reading.value.code == 403

        changed = asyncio.Event()

        async def handler(message: Any) -> None:
            if isinstance(message, types.ToolListChangedNotification):
                changed.set()

        async with http_client(url, agent, mode="legacy", message_handler=handler) as mcp:
            result = await mcp.call_tool("echo", {"input": "x"})
            assert (result.structured_content or {})["result"] == {"ok": True}
            # It may list Tasks, not Workflows or ResultSets: it is shown what it may see.
            uris = [str(r.uri) for r in (await mcp.list_resources()).resources]
            task = (result.structured_content or {})["task"]
            assert uris == [f"execflow://{namespace}/tasks/{task}"]
            with pytest.raises(MCPError) as hidden:
                await mcp.read_resource(f"execflow://{namespace}/workflows/any")
            assert hidden.value.code == 403
            sim_tool(api, namespace, "later")
            await asyncio.wait_for(changed.wait(), 30)
            assert [t.name for t in (await mcp.list_tools()).tools] == ["echo", "later"]

    with http_server(kubeconfig, namespace, tmp_path / "mcp.log") as url:
        asyncio.run(session(url))
    (task,) = _mcp_tasks(api, namespace)
    client_name = f"system:serviceaccount:{namespace}:agent"
    assert task["metadata"]["annotations"]["execflow.dev/mcp-client"] == client_name
