"""Kubernetes Events about execflow objects (`kubectl describe task X` shows them).

Events are posted in the background: a slow or failing Event write must never delay or fail a
reconcile, because Events are a courtesy to humans, not state.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Mapping
from typing import Any

from execflow.kube.connection import Connection

log = logging.getLogger("execflow.events")
COMPONENT = "execflow"


class EventRecorder:
    def __init__(self, connection: Connection) -> None:
        self.kube = connection
        self._pending: set[asyncio.Task[None]] = set()

    def record(self, body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        task = asyncio.create_task(self._post(body, type_, reason, message))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _post(self, body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        metadata = body["metadata"]
        now = datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")
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
            "message": message[:1024],
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": COMPONENT,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            await self.kube.call(
                self.kube.core.create_namespaced_event, metadata["namespace"], event
            )
            self.kube.writes += 1
        except Exception as error:  # a lost Event is logged, never raised
            log.warning("could not post event %s for %s: %s", reason, metadata["name"], error)
