"""The MCP server itself, on the official SDK's low-level server: tools, calls, resources, notices.

The low-level server because the tools are data, not Python functions: each Tool's inputSchema is
advertised as its author wrote it and enforced with the same check the operator applies. Both
protocol eras the SDK speaks are served: `notifications/tools/list_changed` reaches clients of
the handshake era through a registry of their sessions (the SDK keeps none) and clients of the
subscription era through its subscription bus.

Over HTTP each request's bearer token has been checked before a handler runs (see `access`); a
handler then asks Kubernetes whether that identity may do what the request does: list Tools,
create Tasks, get Tasks, Workflows or ResultSets. A refusal is the JSON-RPC error 403 with the
reason. Over stdio the caller is whoever the kubeconfig says, and the API server decides.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import mcp_types as types
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ToolsListChanged
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from execflow import __version__
from execflow.mcp_server.access import Access, Identity
from execflow.mcp_server.calls import Caller, CallError
from execflow.mcp_server.catalogue import Catalogue
from execflow.mcp_server.resources import KINDS, Resources

log = logging.getLogger("execflow.mcp")
FORBIDDEN = 403
"""The JSON-RPC error code of a refused request (outside the range JSON-RPC reserves)."""


class Notifier:
    """`list_changed` for every connected client, sent from the Tools watch."""

    def __init__(self) -> None:
        self.bus = InMemorySubscriptionBus()
        self.listen = ListenHandler(self.bus)
        self._sessions: dict[int, Any] = {}

    async def middleware(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        """Remember each handshake-era connection's session until the connection ends."""
        result = await call_next(ctx)
        if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS and ctx.method != "initialize":
            connection = ctx.session._connection  # the SDK offers no public handle of it
            key = id(connection)
            if key not in self._sessions:
                self._sessions[key] = ctx.session
                connection.exit_stack.callback(self._sessions.pop, key, None)
        return result

    async def tools_changed(self) -> None:
        await self.bus.publish(ToolsListChanged())
        for session in list(self._sessions.values()):
            await session.send_tool_list_changed()


class ExecflowServer(Server[Any]):
    """Advertises `listChanged` for tools and resources on every transport (the HTTP session
    manager builds its initialization options without arguments)."""

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: Any = None,
    ) -> Any:
        return super().create_initialization_options(
            notification_options or NotificationOptions(tools_changed=True),
            experimental_capabilities,
            extensions,
        )


def caller_identity() -> Identity | None:
    """The HTTP caller, as the token check found them (None over stdio)."""
    token = get_access_token()
    if token is None:
        return None
    claims = token.claims or {}
    return Identity(
        username=token.subject or token.client_id,
        uid=str(claims.get("uid") or ""),
        groups=tuple(claims.get("groups") or ()),
        extra={k: tuple(v) for k, v in (claims.get("extra") or {}).items()},
    )


class Endpoint:
    """The handlers, wired to one namespace's catalogue, calls and resources."""

    def __init__(
        self, catalogue: Catalogue, caller: Caller, resources: Resources, access: Access | None
    ) -> None:
        self.catalogue = catalogue
        self.caller = caller
        self.resources = resources
        self.access = access
        self.notifier = Notifier()
        self.server = ExecflowServer(
            "execflow",
            version=__version__,
            instructions=(
                f"Tools of the Kubernetes namespace {catalogue.namespace}: each call runs as an "
                "execflow Task (queued, retried, timed out as the Tool says)."
            ),
            on_list_tools=self.list_tools,
            on_call_tool=self.call_tool,
            on_list_resources=self.list_resources,
            on_list_resource_templates=self.list_resource_templates,
            on_read_resource=self.read_resource,
            on_subscriptions_listen=self.notifier.listen,
            get_tool_input_schema=self._schema,
        )
        self.server.middleware.append(self.notifier.middleware)

    def _schema(self, name: str) -> Mapping[str, Any] | None:
        tool = self.catalogue.tool(name)
        return None if tool is None else tool.input_schema

    async def _may(self, verb: str, resource: str) -> bool:
        who = caller_identity()
        if who is None or self.access is None:
            return True
        return await self.access.allowed(who, verb, resource, self.catalogue.namespace)

    async def _authorize(self, verb: str, resource: str) -> str:
        """Refuse what the HTTP caller's Kubernetes identity may not do; who the caller is."""
        who = caller_identity()
        if who is None or self.access is None:
            return "stdio"
        if not await self.access.allowed(who, verb, resource, self.catalogue.namespace):
            raise MCPError(
                FORBIDDEN,
                f'Forbidden: {who.username} cannot {verb} resource "{resource}" in API group '
                f'"execflow.dev" in the namespace "{self.catalogue.namespace}"',
                data={"reason": "Forbidden", "status": 403},
            )
        return who.username

    # ----- tools ----------------------------------------------------------------------------------
    async def list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        await self._authorize("list", "tools")
        return types.ListToolsResult(
            tools=[
                types.Tool(
                    name=tool.name, description=tool.description, input_schema=tool.input_schema
                )
                for tool in self.catalogue.listed()
            ]
        )

    async def call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        client = await self._authorize("create", "tasks")
        if client == "stdio":
            info = getattr(ctx.session.client_params, "client_info", None)
            client = f"stdio:{getattr(info, 'name', '') or 'client'}"
        told = 0

        async def progress(message: str) -> None:
            nonlocal told
            told += 1
            await ctx.session.report_progress(float(told), None, message)

        meta = {k: v for k, v in dict(ctx.meta or {}).items() if isinstance(k, str)}
        try:
            outcome = await self.caller.call(
                params.name, params.arguments or {}, meta=meta, client=client, progress=progress
            )
        except CallError as error:
            raise MCPError(types.INVALID_PARAMS, str(error), data=error.data) from None
        text = json.dumps(outcome.content, ensure_ascii=False)
        if outcome.failed:
            content = outcome.content
            text = (
                f"{content['task']} {content['phase']}: {content['reason']}: {content['message']}"
            )
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=text)],
            structured_content=outcome.content,
            is_error=outcome.failed,
        )

    # ----- resources ------------------------------------------------------------------------------
    async def list_resources(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        kinds = [kind for kind in KINDS if await self._may("list", kind)]
        if not kinds:
            await self._authorize("list", "tasks")  # refused, with the reason
        return types.ListResourcesResult(resources=await self.resources.listed(kinds))

    async def list_resource_templates(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=self.resources.templates())

    async def read_resource(
        self, ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        kind, name = self.resources.parse(str(params.uri))
        await self._authorize("get", kind)
        return types.ReadResourceResult(contents=[await self.resources.read(kind, name)])
