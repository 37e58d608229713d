"""Requests to the API server over aiohttp, on the operator's event loop.

The official Kubernetes client is synchronous, so each request needed a thread of a pool, and its
request path (body sanitising, urllib3, header parsing by the email package, the thread hand-off)
was the largest part of the operator's CPU per API call. Credentials still come from the client's
configuration (kubeconfig or in-cluster service account, with its token refresh); only the HTTP
goes over one aiohttp session with a bounded pool of kept-alive connections. A reply other than
2xx is raised as the `ApiError` its status means (see `errors`); a failed connection or a timeout
as the transport error the caller retries.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from kubernetes import client

from execflow.kube.errors import from_reply

JSON = "application/json"
TEXT_ACCEPT = "application/json, */*"
"""What a plain-text reply (a pod's log) is asked for with: errors still come as JSON Status."""
CONNECTIONS = 32
WATCH_SILENCE = 600.0
"""Seconds a watch may go without a byte (the server sends bookmarks about every minute)."""


@dataclass(frozen=True, slots=True)
class Request:
    """One API request, as the transport sends it."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    body: Any = None
    content_type: str = JSON
    text: bool = False
    """The reply is plain text (a pod's log): returned decoded, not parsed as JSON."""


def ssl_context(configuration: client.Configuration) -> ssl.SSLContext | bool:
    """TLS as the configuration says: its CA (or the system's), its client certificate."""
    if not configuration.verify_ssl:
        return False
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file or None)
    return context


class HttpTransport:
    """Sends `Request`s and returns the decoded JSON reply (None for an empty one)."""

    def __init__(
        self, configuration: client.Configuration, timeout: float, user_agent: str
    ) -> None:
        self._configuration = configuration
        self._base = str(configuration.host).rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._user_agent = user_agent
        self._ssl = ssl_context(configuration) if self._base.startswith("https") else False
        self._session: aiohttp.ClientSession | None = None
        self._watches: aiohttp.ClientSession | None = None

    def _headers(self, content_type: str, text: bool = False) -> dict[str, str]:
        headers = {
            "Accept": TEXT_ACCEPT if text else JSON,
            "Content-Type": content_type,
            "User-Agent": self._user_agent,
        }
        # Read per request: the client refreshes a rotated service-account token here.
        bearer = self._configuration.auth_settings().get("BearerToken")
        if bearer and bearer.get("value"):
            headers["Authorization"] = str(bearer["value"])
        return headers

    def _open(self) -> aiohttp.ClientSession:
        """Requests share a bounded pool of connections."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=CONNECTIONS, ssl=self._ssl)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    def _open_watches(self) -> aiohttp.ClientSession:
        """Each watch holds a connection for minutes: they have their own, unbounded pool."""
        if self._watches is None or self._watches.closed:
            connector = aiohttp.TCPConnector(limit=0, ssl=self._ssl)
            self._watches = aiohttp.ClientSession(connector=connector)
        return self._watches

    async def __call__(self, request: Request) -> Any:
        data = None if request.body is None else json.dumps(request.body)
        async with self._open().request(
            request.method,
            self._base + request.path,
            params=request.query or None,
            data=data,
            headers=self._headers(request.content_type, request.text),
            proxy=self._configuration.proxy or None,
            server_hostname=self._configuration.tls_server_name or None,
        ) as response:
            payload = await response.read()
            if response.status >= 300:
                raise from_reply(response.status, response.reason or "", payload, response.headers)
        if request.text:
            return payload.decode("utf-8", errors="replace")
        return json.loads(payload) if payload else None

    async def events(self, request: Request, *, exact: bool = True) -> AsyncIterator[Any]:
        """The decoded lines of a streamed reply (a watch): one JSON document per line. No
        total timeout: the server ends a watch itself; a connection that goes silent for
        longer than `WATCH_SILENCE` is given up.

        `exact=False` decodes with orjson, about three times faster, but integers beyond 64 bits
        become floats: for objects without user data (Jobs, pods, nodes), which are most of
        the operator's input; users' objects (a Task's result) keep every digit."""
        loads = json.loads if exact else orjson.loads
        async with self._open_watches().request(
            request.method,
            self._base + request.path,
            params=request.query or None,
            headers=self._headers(request.content_type),
            proxy=self._configuration.proxy or None,
            server_hostname=self._configuration.tls_server_name or None,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=WATCH_SILENCE),
        ) as response:
            if response.status >= 300:
                payload = await response.read()
                raise from_reply(response.status, response.reason or "", payload, response.headers)
            pending = b""
            async for chunk in response.content.iter_any():
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield loads(line)

    async def chunks(self, request: Request) -> AsyncIterator[bytes]:
        """A streamed plain-text reply (a followed pod log), in chunks as they arrive. No
        timeout once connected: a quiet container may print nothing for long, and the server
        ends the stream when the container ends."""
        async with self._open_watches().request(
            request.method,
            self._base + request.path,
            params=request.query or None,
            headers=self._headers(request.content_type, text=True),
            proxy=self._configuration.proxy or None,
            server_hostname=self._configuration.tls_server_name or None,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
        ) as response:
            if response.status >= 300:
                payload = await response.read()
                raise from_reply(response.status, response.reason or "", payload, response.headers)
            async for chunk in response.content.iter_any():
                yield chunk

    async def close(self) -> None:
        for session in (self._session, self._watches):
            if session is not None:
                await session.close()
        self._session = self._watches = None
