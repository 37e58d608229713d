"""Call an execflow Tool over MCP with the official SDK's client, as an agent would.

It starts `execflow mcp` (stdio, your kubeconfig), or with --url and --token calls `execflow mcp
--transport http` as a Kubernetes token's identity; lists the tools, calls one, prints the result.

    python examples/mcp/call_tool.py -n tools data-cleaner '{"input": "s3://raw/a.csv"}'
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError


def stdio(namespace: str | None) -> StdioServerParameters:
    beside = Path(sys.executable).with_name("execflow")  # installed next to this Python?
    command = str(beside) if beside.exists() else "execflow"
    # The SDK passes only a few variables to the server: keep the kubeconfig chosen here.
    env = {"KUBECONFIG": os.environ["KUBECONFIG"]} if "KUBECONFIG" in os.environ else None
    namespaced = ["-n", namespace] if namespace else []
    return StdioServerParameters(command=command, args=["mcp", *namespaced], env=env)


async def tell(progress: float, total: float | None, message: str | None) -> None:
    print(f"  {message}", file=sys.stderr)


async def main(args: argparse.Namespace) -> int:
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=None)) as http:
        server = streamable_http_client(args.url, http_client=http) if args.url else None
        async with Client(server or stdio(args.namespace)) as client:
            try:
                for tool in (await client.list_tools()).tools:
                    print(f"tool {tool.name}: {tool.description}", file=sys.stderr)
                result = await client.call_tool(args.tool, args.arguments, progress_callback=tell)
            except MCPError as refused:  # no Task: unknown tool, bad arguments, forbidden
                print(f"refused ({refused.code}): {refused.message}", file=sys.stderr)
                return 2
    print(json.dumps(result.structured_content, indent=2))
    return 1 if result.is_error else 0  # the Task Failed, timed out or was cancelled


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tool", help="the Tool to call")
    parser.add_argument("arguments", nargs="?", type=json.loads, default={}, help="JSON object")
    parser.add_argument("-n", "--namespace", help="stdio: namespace (default: the context's)")
    parser.add_argument("--url", help="http: the endpoint, e.g. http://127.0.0.1:8090/mcp")
    parser.add_argument("--token", help="http: a Kubernetes bearer token")
    sys.exit(asyncio.run(main(parser.parse_args())))
