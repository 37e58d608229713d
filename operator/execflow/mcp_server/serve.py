"""Running the endpoint: over stdio for one local client, or over streamable HTTP for many.

stdio is what an MCP client starts as a subprocess (`execflow mcp -n NAMESPACE`): it acts with
the caller's kubeconfig, and nothing but protocol goes to stdout (logs go to stderr). HTTP serves
`/mcp` (streamable HTTP) and `/healthz`; every request needs `Authorization: Bearer TOKEN`, a
Kubernetes token (a ServiceAccount's, or any token the API server accepts): without one, or with
one the API server does not take, the answer is 401 before anything else happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.stdio import stdio_server
from mcp.server.transport_security import TransportSecuritySettings

from execflow.kube.client import Kube
from execflow.kube.connection import Connection
from execflow.mcp_server.access import Access
from execflow.mcp_server.calls import Caller
from execflow.mcp_server.catalogue import Catalogue
from execflow.mcp_server.resources import Resources
from execflow.mcp_server.server import Endpoint

log = logging.getLogger("execflow.mcp")
SYNC_SECONDS = 30.0


class StartError(RuntimeError):
    """The endpoint cannot serve: why, in words for the user."""


@dataclass(frozen=True)
class Options:
    namespace: str
    transport: str = "stdio"
    host: str = "127.0.0.1"
    port: int = 8090
    kubeconfig: str | None = None
    context: str | None = None


class TokenReviewVerifier:
    """The SDK's token check, answered by the API server's TokenReview (None: 401)."""

    def __init__(self, access: Access) -> None:
        self.access = access

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            who = await self.access.identify(token)
        except Exception as error:  # the API server unreachable: refuse rather than guess
            log.warning("cannot review a token: %s", error)
            return None
        if who is None:
            return None
        return AccessToken(
            token=token,
            client_id=who.username,
            subject=who.username,
            scopes=[],
            claims={"uid": who.uid, "groups": list(who.groups), "extra": dict(who.extra)},
        )


def build(kube: Kube, connection: Connection, namespace: str, *, http: bool) -> Endpoint:
    endpoint: Endpoint | None = None
    sending: set[asyncio.Task[None]] = set()

    def tools_changed() -> None:
        if endpoint is None:
            return
        task = asyncio.get_running_loop().create_task(endpoint.notifier.tools_changed())
        sending.add(task)
        task.add_done_callback(sending.discard)

    catalogue = Catalogue(connection.transport, namespace, tools_changed)
    endpoint = Endpoint(
        catalogue,
        Caller(kube, catalogue),
        Resources(kube, namespace),
        Access(kube) if http else None,
    )
    return endpoint


async def serve(options: Options) -> None:
    connection = Connection(options.kubeconfig, options.context)
    kube = Kube.connect(connection)
    endpoint = build(kube, connection, options.namespace, http=options.transport == "http")
    watching = asyncio.create_task(endpoint.catalogue.run(), name="mcp-watch")
    try:
        try:
            await asyncio.wait_for(endpoint.catalogue.synced(), SYNC_SECONDS)
        except TimeoutError:
            raise StartError(
                f"cannot list and watch Tools and Tasks in namespace {options.namespace} "
                f"within {SYNC_SECONDS:.0f}s (is the API server reachable, and may these "
                "credentials list and watch them?)"
            ) from None
        if options.transport == "stdio":
            async with stdio_server() as (read, write):
                server = endpoint.server
                await server.run(read, write, server.create_initialization_options())
        else:
            await _serve_http(endpoint, options)
    finally:
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching
        await connection.close()


async def _serve_http(endpoint: Endpoint, options: Options) -> None:
    import uvicorn
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    assert endpoint.access is not None
    app: Any = endpoint.server.streamable_http_app(
        streamable_http_path="/mcp",
        auth=AuthSettings(issuer_url="https://kubernetes.default.svc", resource_server_url=None),
        token_verifier=TokenReviewVerifier(endpoint.access),
        # Clients reach it by a Service's name in a cluster: no loopback-only Host check.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )

    async def healthz(_: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app.router.routes.insert(0, Route("/healthz", healthz))
    config = uvicorn.Config(
        app, host=options.host, port=options.port, log_level="warning", lifespan="on"
    )
    where = f"http://{options.host}:{options.port}/mcp"
    log.info("MCP endpoint for namespace %s at %s", options.namespace, where)
    await uvicorn.Server(config).serve()
