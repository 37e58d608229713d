"""The typed API layer: every write the operator makes goes through here, and nothing else writes.

Each operation comes with the answer that makes reconciles idempotent:

- `patch_status` writes a status from a typed model (only the fields set on it) through the
  `/status` subresource; a 404 means the object is gone.
- `patch` merges a change into an object the operator owns (a Job it stops).
- `create` makes a child; a 409 AlreadyExistsError returns the existing object instead, so creating
  a deterministic name twice is harmless. The caller checks that it is really its own child.
- `delete` removes an object; a 404 means it was gone already.
- `get` reads one object and `list` the objects with a label: the only reads of objects, for
  what is not watched (a Secret's key, a ResultSet's stored segments); everything else comes
  from the stores.
- `pod_log` reads a container's log (plain text, not JSON) and `follow_pod_log` streams it: for
  the CLI's `logs`; the operator itself never reads logs.

Bodies travel as plain JSON (no model classes, which would only convert dicts into objects and
back), over the transport of `execflow.kube.http`. Transient failures (`UnavailableError`) are
retried here a few times with exponential backoff (honouring Retry-After) before they reach the
caller, who then backs off per object; every other error is raised at once, classified (see
`errors`). Every request names the field manager `execflow`, and every write is counted by verb
and resource.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from execflow import metrics
from execflow.api.common import ExecflowModel
from execflow.kube.connection import Connection
from execflow.kube.errors import (
    TRANSPORT_ERRORS,
    AlreadyExistsError,
    ApiError,
    NotFoundError,
    UnavailableError,
    classify,
)
from execflow.kube.http import Request

log = logging.getLogger("execflow.kube")

FIELD_MANAGER = "execflow"
MERGE_PATCH = "application/merge-patch+json"
ATTEMPTS = 5
FIRST_DELAY = 0.1
MAX_DELAY = 2.0

Body = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Resource:
    """One kind of object: where it lives in the API."""

    group: str
    version: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None, name: str | None = None, sub: str | None = None) -> str:
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        parts = [root]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name is not None:
            parts.append(name)
        if sub is not None:
            parts.append(sub)
        return "/".join(parts)


TASKS = Resource("execflow.dev", "v1alpha1", "tasks")
TOOLS = Resource("execflow.dev", "v1alpha1", "tools")
WORKFLOWS = Resource("execflow.dev", "v1alpha1", "workflows")
JOBS = Resource("batch", "v1", "jobs")
PODS = Resource("", "v1", "pods")
EVENTS = Resource("", "v1", "events")
NODES = Resource("", "v1", "nodes", namespaced=False)
QUOTAS = Resource("", "v1", "resourcequotas")
LEASES = Resource("coordination.k8s.io", "v1", "leases")
RESULTSETS = Resource("execflow.dev", "v1alpha1", "resultsets")
CONFIG_MAPS = Resource("", "v1", "configmaps")
TOKEN_REVIEWS = Resource("authentication.k8s.io", "v1", "tokenreviews", namespaced=False)
ACCESS_REVIEWS = Resource("authorization.k8s.io", "v1", "subjectaccessreviews", namespaced=False)
SECRETS = Resource("", "v1", "secrets")


Transport = Callable[[Request], Awaitable[Any]]
"""Sends a request and returns the decoded JSON reply; raises ApiError or a transport error."""

Sleep = Callable[[float], Awaitable[None]]

Stream = Callable[[Request], AsyncIterator[bytes]]
"""Sends a request whose plain-text reply streams (a followed log); yields it in chunks."""


class Kube:
    """The operator's client of the API server (see the module docstring)."""

    def __init__(
        self,
        transport: Transport,
        *,
        sleep: Sleep = asyncio.sleep,
        attempts: int = ATTEMPTS,
        stream: Stream | None = None,
    ) -> None:
        self._transport = transport
        self._stream = stream
        self._sleep = sleep
        self._attempts = attempts
        self.writes = 0

    @classmethod
    def connect(cls, connection: Connection) -> Kube:
        """The layer over a real connection."""
        return cls(connection.transport, stream=connection.transport.chunks)

    async def patch_status(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        status: ExecflowModel,
        *,
        expect: Mapping[str, Any] | None = None,
    ) -> Body:
        """Write the fields set on `status`; returns the updated object. NotFound when gone.

        With `expect` (the object as the caller last saw it), the write happens only if the
        object is still at that resourceVersion; otherwise ConflictError, since the caller
        decided on stale data. Resource versions are unique across objects, so this also
        refuses a new object that took the name meanwhile.
        """
        patch: Body = {"status": status.model_dump(mode="json", by_alias=True, exclude_unset=True)}
        if expect is not None:
            patch["metadata"] = {"resourceVersion": expect["metadata"]["resourceVersion"]}
        request = Request(
            "PATCH",
            resource.path(namespace, name, "status"),
            (("fieldManager", FIELD_MANAGER),),
            patch,
            MERGE_PATCH,
        )
        reply: Body = await self._write(request, "patch", resource)
        return reply

    async def patch(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        patch: Mapping[str, Any],
        *,
        expect: Mapping[str, Any] | None = None,
    ) -> Body:
        """A JSON merge patch of an object the operator owns (a Job it stops, its Lease).

        With `expect`, conditional on the resourceVersion as in `patch_status`.
        """
        body = dict(patch)
        if expect is not None:
            version = expect["metadata"]["resourceVersion"]
            body["metadata"] = {**body.get("metadata", {}), "resourceVersion": version}
        request = Request(
            "PATCH",
            resource.path(namespace, name),
            (("fieldManager", FIELD_MANAGER),),
            body,
            MERGE_PATCH,
        )
        reply: Body = await self._write(request, "patch", resource)
        return reply

    async def create(
        self,
        resource: Resource,
        namespace: str,
        body: Mapping[str, Any],
        *,
        existing_ok: bool = True,
    ) -> Body:
        """Create `body`; when its name exists already, return the existing object (unless
        `existing_ok` is false: then AlreadyExistsError, as `kubectl create` says)."""
        request = Request(
            "POST", resource.path(namespace), (("fieldManager", FIELD_MANAGER),), dict(body)
        )
        try:
            created: Body = await self._write(request, "create", resource)
        except AlreadyExistsError:
            name = body["metadata"].get("name")
            if not name or not existing_ok:
                raise  # a generated name collided: the caller may simply try again
            return await self.get(resource, namespace, str(name))
        return created

    async def delete(
        self, resource: Resource, namespace: str, name: str, *, uid: str | None = None
    ) -> bool:
        """Delete in the background (dependents by the garbage collector). False: already gone.

        With `uid`, only that incarnation is deleted: a new object of the same name is left alone.
        """
        options: Body = {"propagationPolicy": "Background"}
        if uid is not None:
            options["preconditions"] = {"uid": uid}
        request = Request("DELETE", resource.path(namespace, name), (), options)
        try:
            await self._write(request, "delete", resource)
        except NotFoundError:
            return False
        except ApiError as error:
            if uid is not None and error.status == 409:
                return False  # the precondition failed: another object holds the name now
            raise
        return True

    async def get(self, resource: Resource, namespace: str | None, name: str) -> Body:
        reply: Body = await self._send(Request("GET", resource.path(namespace, name)))
        return reply

    async def list(
        self, resource: Resource, namespace: str | None, *, label_selector: str = ""
    ) -> list[Body]:
        """Every object with the labels, across pages."""
        items: list[Body] = []
        token = ""
        while True:
            query = [("limit", "500")]
            if label_selector:
                query.append(("labelSelector", label_selector))
            if token:
                query.append(("continue", token))
            reply = await self._send(Request("GET", resource.path(namespace), tuple(query)))
            items.extend(reply.get("items") or [])
            token = (reply.get("metadata") or {}).get("continue") or ""
            if not token:
                return items

    async def pod_log(
        self,
        namespace: str,
        name: str,
        *,
        container: str | None = None,
        previous: bool = False,
        tail_lines: int | None = None,
    ) -> str:
        """A container's log as the node serves it (pods/log): all of it, or its last lines."""
        query = _log_query(container, previous, tail_lines)
        reply: str = await self._send(
            Request("GET", PODS.path(namespace, name, "log"), query, text=True)
        )
        return reply

    async def follow_pod_log(
        self,
        namespace: str,
        name: str,
        *,
        container: str | None = None,
        tail_lines: int | None = None,
    ) -> AsyncIterator[bytes]:
        """A container's log, then what it prints next, until the container ends."""
        if self._stream is None:
            raise RuntimeError("this client was made without a streaming transport")
        query = (*_log_query(container, False, tail_lines), ("follow", "true"))
        request = Request("GET", PODS.path(namespace, name, "log"), query, text=True)
        async for chunk in self._stream(request):
            yield chunk

    async def _write(self, request: Request, verb: str, resource: Resource) -> Any:
        reply = await self._send(request)
        self.writes += 1
        metrics.API_WRITES.labels(verb=verb, resource=resource.plural).inc()
        return reply

    async def _send(self, request: Request) -> Any:
        delay = FIRST_DELAY
        attempt = 1
        while True:
            try:
                return await self._transport(request)
            except (ApiError, *TRANSPORT_ERRORS) as raised:
                error = classify(raised)
                if not isinstance(error, UnavailableError) or attempt >= self._attempts:
                    raise error from raised
            wait = error.retry_after if error.retry_after is not None else delay
            log.debug(
                "%s %s: %s; retry %d in %.1fs", request.method, request.path, error, attempt, wait
            )
            await self._sleep(wait)
            delay = min(MAX_DELAY, delay * 2)
            attempt += 1


def _log_query(
    container: str | None, previous: bool, tail_lines: int | None
) -> tuple[tuple[str, str], ...]:
    query: list[tuple[str, str]] = []
    if container:
        query.append(("container", container))
    if previous:
        query.append(("previous", "true"))
    if tail_lines is not None and tail_lines >= 0:
        query.append(("tailLines", str(tail_lines)))
    return tuple(query)
