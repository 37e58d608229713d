"""Watch streams for the runtime's stores: list, then watch from the listing's resourceVersion.

One stream per kind and namespace, over the operator's own HTTP transport: the events of pods,
Jobs and Tasks are the operator's largest input, and decoding them once, straight from the
response into the store, is the cheapest way to read them (kopf's handler machinery, made for
per-object handlers, added several layers per event and a task per object).

The guarantees are those of a Kubernetes informer:
- a listing is read in pages (`limit`/`continue`) and ends with the `LISTED` mark, after which
  the store forgets what the listing did not hold (objects deleted while nobody watched);
- the watch starts from the listing's resourceVersion, asks for bookmarks, and after a dropped
  connection or the server's timeout resumes from the last version it saw (event or bookmark),
  so no event is lost or seen twice;
- when the server no longer has that version (410 Gone, as an HTTP status or an ERROR event),
  the stream lists again;
- any other error (403 when RBAC does not allow the watch, the server down) is raised, and the
  informer retries with backoff.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from execflow.kube.client import Resource
from execflow.kube.errors import ApiError, from_reply
from execflow.kube.http import HttpTransport, Request

LISTED = object()
"""Yielded when a listing (the first, or a relist) has ended and the stream watches again."""
PAGE = 500
WATCH_SECONDS = (240, 360)
"""The server ends each watch after a random time in this range; the stream resumes it."""


@dataclass(frozen=True, slots=True)
class Watch:
    """What one stream watches: a kind, optionally narrowed server-side by selectors."""

    resource: Resource
    label_selector: str = ""
    field_selector: str = ""
    exact: bool = True
    """False for kinds without user data: decoded faster (see `HttpTransport.events`)."""

    def query(self) -> list[tuple[str, str]]:
        query = []
        if self.label_selector:
            query.append(("labelSelector", self.label_selector))
        if self.field_selector:
            query.append(("fieldSelector", self.field_selector))
        return query


class GoneError(Exception):
    """The server no longer has the version the watch asked for: list again."""


async def stream(
    transport: HttpTransport, watch: Watch, namespace: str | None
) -> AsyncIterator[tuple[str | None, dict[str, Any]] | object]:
    """Events as (type, object) pairs, type None for objects of a listing, and `LISTED` marks.

    It never ends on its own; errors other than 410 are raised (see the module docstring).
    """
    scope = namespace if watch.resource.namespaced else None
    path = watch.resource.path(scope)
    while True:
        token = ""
        while True:
            items, token, version = await _page(transport, path, watch, token)
            for item in items:
                yield (None, item)
            if not token:
                break
        yield LISTED
        try:
            while True:
                async for event_type, body in _watching(transport, path, watch, version):
                    version = str(body["metadata"].get("resourceVersion") or version)
                    if event_type != "BOOKMARK":
                        yield (event_type, body)
        except GoneError:
            continue


async def _page(
    transport: HttpTransport, path: str, watch: Watch, token: str
) -> tuple[list[dict[str, Any]], str, str]:
    """One page of a listing: its objects, the token of the next page, the listing's version."""
    query = [*watch.query(), ("limit", str(PAGE))]
    if token:
        query.append(("continue", token))
    reply = await transport(Request("GET", path, tuple(query)))
    metadata = reply.get("metadata") or {}
    return (
        list(reply.get("items") or ()),
        str(metadata.get("continue") or ""),
        str(metadata.get("resourceVersion") or ""),
    )


async def _watching(
    transport: HttpTransport, path: str, watch: Watch, version: str
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    query = [
        *watch.query(),
        ("watch", "true"),
        ("allowWatchBookmarks", "true"),
        ("resourceVersion", version),
        ("timeoutSeconds", str(random.randint(*WATCH_SECONDS))),
    ]
    try:
        async for event in transport.events(Request("GET", path, tuple(query)), exact=watch.exact):
            event_type = str(event.get("type"))
            body = event.get("object") or {}
            if event_type == "ERROR":
                raise from_reply(int(body.get("code") or 0), "", json.dumps(body), None)
            yield event_type, body
    except ApiError as error:
        if error.status == 410:
            raise GoneError(error.message) from None
        raise
