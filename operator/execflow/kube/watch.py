"""Watch streams for the runtime's stores: kopf's own list-then-watch stream, read directly.

kopf's stream lists a kind, then watches it from the listing's resourceVersion; it reconnects
after dropped connections from the last version it saw, relists when the API server answers
410 Gone, authenticates through kopf's login (re-logging in on 401), and marks the end of every
listing. kopf's handler machinery drops that end-of-listing mark and adds a worker task per object
and per event; execflow needs the mark (a store reconciles itself against every listing, which is
the only way to notice objects deleted while nobody watched) and not the per-event machinery, so
the runtime reads the stream itself. The stream is kopf's internal API: the kopf version is pinned
in pyproject.toml, and the integration tests exercise every path used here (listing, watching,
410 relist, selectors).

A stream must run inside the kopf operator's context (started from a startup handler), where kopf
keeps the credentials its login handler produced.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import kopf
from kopf._cogs.clients import watching
from kopf._cogs.configs.arrays import SelectorMapping
from kopf._cogs.structs import references

from execflow.kube.client import Resource

LISTED = object()
"""Yielded when a listing (the first, or a relist) has ended and the stream watches again."""


@dataclass(frozen=True, slots=True)
class Watch:
    """What one stream watches: a kind, optionally narrowed server-side by selectors."""

    resource: Resource
    label_selector: str = ""
    field_selector: str = ""


def _kopf_resource(resource: Resource) -> references.Resource:
    return references.Resource(
        group=resource.group,
        version=resource.version,
        plural=resource.plural,
        namespaced=resource.namespaced,
    )


def _settings_for(settings: kopf.OperatorSettings, watch: Watch) -> kopf.OperatorSettings:
    """The operator's settings with this stream's selectors (and only them)."""
    selector = references.Selector(
        group=watch.resource.group, version=watch.resource.version, plural=watch.resource.plural
    )
    labels: SelectorMapping[str] = SelectorMapping()
    fields: SelectorMapping[str] = SelectorMapping()
    if watch.label_selector:
        labels[selector] = watch.label_selector
    if watch.field_selector:
        fields[selector] = watch.field_selector
    return dataclasses.replace(
        settings,
        watching=dataclasses.replace(
            settings.watching, label_selectors=labels, field_selectors=fields
        ),
    )


async def stream(
    settings: kopf.OperatorSettings, watch: Watch, namespace: str | None
) -> AsyncIterator[tuple[str | None, dict[str, Any]] | object]:
    """Events as (type, object) pairs, type None for objects of a listing, and `LISTED` marks.

    It never ends on its own; API errors other than 410 (for example 403 when RBAC does not allow
    the watch) are raised, and the caller decides how to retry.
    """
    resource = _kopf_resource(watch.resource)
    scope = references.NamespaceName(namespace) if namespace and watch.resource.namespaced else None
    events = watching.infinite_watch(
        settings=_settings_for(settings, watch), resource=resource, namespace=scope
    )
    async for event in events:
        if event is watching.Bookmark.LISTED:
            yield LISTED
        elif isinstance(event, dict):
            yield (event.get("type"), dict(event["object"]))
