"""`execflow mcp`: the namespace's Tools for AI agents, over the Model Context Protocol.

Every Tool of the namespace (except those annotated `execflow.dev/mcp: "false"`) is an MCP tool
with its description and inputSchema; each call runs as a Task. `--transport stdio` (the default)
is for an MCP client that starts this command itself and acts with your kubeconfig; `--transport
http` serves streamable HTTP at `/mcp` for many clients, each authenticated by a Kubernetes
bearer token and allowed exactly what that identity may do.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

from execflow.cli import common


def add_parser(commands: Any) -> None:
    mcp = commands.add_parser("mcp", help="serve the Tools to AI agents (MCP)", description=__doc__)
    mcp.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    mcp.add_argument("--host", default="127.0.0.1", help="http: address to listen on")
    mcp.add_argument("--port", type=int, default=8090, help="http: port (default 8090)")
    mcp.add_argument("-v", "--verbose", action="store_true", help="log what it does (stderr)")
    common.add_target(mcp)
    mcp.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from execflow.kube.connection import CredentialsError
    from execflow.mcp_server.serve import Options, StartError, serve

    logging.basicConfig(
        stream=sys.stderr,  # stdout carries the protocol over stdio
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    target = common.target(args)
    assert target.namespace is not None
    options = Options(
        namespace=target.namespace,
        transport=args.transport,
        host=args.host,
        port=args.port,
        kubeconfig=target.kubeconfig,
        context=target.context,
    )
    try:
        asyncio.run(serve(options))
    except CredentialsError as error:
        common.say(f"execflow: {error}")
        return common.NO_CREDENTIALS
    except StartError as error:
        common.say(f"execflow mcp: {error}")
        return common.FAILED
    except KeyboardInterrupt:
        return 0
    return 0
