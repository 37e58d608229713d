"""MCP clients for integration tests: the official SDK's client against `execflow mcp`, run as a
separate process over stdio or streamable HTTP, and Kubernetes tokens to call it with."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx2
import mcp_types as types
from kubernetes import client
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.integration.objects import create_tool

SERVE = [sys.executable, "-m", "execflow.cli.main", "mcp"]


def sim_tool(
    api: client.ApiClient, namespace: str, name: str, *, schema: Any = None, **sim: str
) -> None:
    """A Tool whose calls the simulated nodes run as `sim` says (duration, message, exit-code)."""
    annotations = {f"sim.execflow.dev/{key.replace('_', '-')}": value for key, value in sim.items()}
    defaults: dict[str, Any] = {"podTemplate": {"metadata": {"annotations": annotations}}}
    spec: dict[str, Any] = {"description": f"{name} on the simulated nodes", "defaults": defaults}
    if schema is not None:
        spec["inputSchema"] = schema
    create_tool(api, namespace, name, **spec)


@contextlib.asynccontextmanager
async def stdio_client(
    kubeconfig: Path, namespace: str, mode: str = "auto", **options: Any
) -> AsyncIterator[Client]:
    params = StdioServerParameters(
        command=SERVE[0], args=[*SERVE[1:], "-n", namespace, "--kubeconfig", str(kubeconfig)]
    )
    async with Client(params, mode=mode, **options) as session:
        yield session


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def http_server(kubeconfig: Path, namespace: str, log: Path) -> Iterator[str]:
    """`execflow mcp --transport http` for the namespace; yields its /mcp URL once it answers."""
    port = _free_port()
    command = [*SERVE, "--transport", "http", "--port", str(port), "-n", namespace, "-v"]
    with log.open("w") as output:
        process = subprocess.Popen(
            [*command, "--kubeconfig", str(kubeconfig)], stdout=output, stderr=output
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    break
            except (urllib.error.URLError, OSError):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"no MCP endpoint: {log.read_text()}") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextlib.asynccontextmanager
async def http_client(
    url: str, token: str, mode: str = "auto", **options: Any
) -> AsyncIterator[Client]:
    transport = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {token}"}, timeout=httpx2.Timeout(30, read=300)
    )
    try:
        async with Client(
            streamable_http_client(url, http_client=transport), mode=mode, **options
        ) as session:
            yield session
    finally:
        await transport.aclose()


def service_account_token(
    api: client.ApiClient, namespace: str, name: str, rules: list[dict[str, Any]]
) -> str:
    """A token of a new ServiceAccount allowed `rules` in the namespace (none: no Role)."""
    core = client.CoreV1Api(api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": name}})
    if rules:
        rbac = client.RbacAuthorizationV1Api(api)
        rbac.create_namespaced_role(namespace, {"metadata": {"name": name}, "rules": rules})
        rbac.create_namespaced_role_binding(
            namespace,
            {
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
            },
        )
    request = {"spec": {"audiences": [], "expirationSeconds": 3600}}
    reply = core.create_namespaced_service_account_token(name, namespace, request)
    return str(reply.status.token)


def text_of(result: types.CallToolResult) -> str:
    first = result.content[0]
    assert isinstance(first, types.TextContent)
    return first.text
