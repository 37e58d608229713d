"""Kubernetes Events about execflow objects (`kubectl describe task X` shows them).

Events are posted in the background through the typed API layer: a slow or failing Event write
must never delay or fail a reconcile, because Events are a courtesy to humans, not state. Only
notable transitions are posted (a retried failure, a changed waiting reason, a final failure); the
routine ones (started, completed) are visible in the status and would only add API writes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from execflow import metrics
from execflow.api import timestamps
from execflow.kube.client import EVENTS, Kube
from execflow.kube.errors import ApiError

log = logging.getLogger("execflow.events")
COMPONENT = "execflow"
MAX_MESSAGE = 1024


class EventRecorder:
    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self._pending: set[asyncio.Task[None]] = set()

    def record(self, body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        task = asyncio.create_task(self._post(body, type_, reason, message))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _post(self, body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        metadata = body["metadata"]
        now = timestamps.format_time(timestamps.now())
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "generateName": f"{metadata['name']}.",
                "namespace": metadata["namespace"],
            },
            "involvedObject": {
                "apiVersion": body.get("apiVersion"),
                "kind": body.get("kind"),
                "name": metadata["name"],
                "namespace": metadata["namespace"],
                "uid": metadata.get("uid"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:MAX_MESSAGE],
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": COMPONENT,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            await self.kube.create(EVENTS, str(metadata["namespace"]), event)
            metrics.EVENTS.labels(reason=reason).inc()
        except ApiError as error:  # a lost Event is logged, never raised
            log.warning("could not post event %s for %s: %s", reason, metadata["name"], error)

    async def drain(self) -> None:
        """Wait for the Events still being posted (at shutdown)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
