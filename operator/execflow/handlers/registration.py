"""kopf wiring: startup configuration and the watch handlers, each a one-liner into a controller.

kopf owns the watches (with reconnects and resource-version bookkeeping), the Event posting queue
and peering; execflow's controllers own every decision. Handlers here only forward raw events.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import kopf

from execflow.api.common import GROUP_VERSION
from execflow.handlers.task_controller import TaskController
from execflow.kube.job_builder import TASK_LABEL

GROUP, VERSION = GROUP_VERSION.split("/")
PREFIX = "execflow.dev"


class EventOnlyDiffBase(kopf.AnnotationsDiffBaseStorage):
    """No diff base: execflow registers only event handlers, which never compare old and new.

    kopf builds a deep copy of every object's essence on every event for change detection; with
    thousands of pods and tasks that copy was the operator's largest CPU cost.
    """

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
    ) -> kopf.BodyEssence:
        del body, extra_fields
        return cast(kopf.BodyEssence, {})


def configure(settings: kopf.OperatorSettings) -> None:
    """Explicit kopf settings: our own finalizer and annotation prefix, quiet status, peering."""
    settings.persistence.finalizer = f"{PREFIX}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.peering.name = "execflow"
    settings.peering.mandatory = False
    # execflow posts its own Events with reasons users can act on; kopf's would be noise.
    settings.posting.enabled = False
    settings.persistence.diffbase_storage = EventOnlyDiffBase(
        prefix=PREFIX, key="last-handled-configuration"
    )
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    # Handlers only update the store and mark tasks dirty, so per-object workers are cheap: no
    # limit (a limit made new objects wait for idle workers to expire), and short idle lives.
    settings.queueing.worker_limit = None
    settings.queueing.idle_timeout = 1.0
    settings.networking.request_timeout = 60


def register(controller: TaskController, registry: kopf.OperatorRegistry) -> None:
    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # The same credentials as the operator's own client: kubeconfig, else in-cluster.
        return kopf.login_via_client(**kwargs)

    @kopf.on.event(GROUP, VERSION, "tasks", registry=registry)
    def task_event(event: kopf.RawEvent, **_: Any) -> None:
        controller.task_event(event.get("type"), dict(event["object"]))

    @kopf.on.event(GROUP, VERSION, "tools", registry=registry)
    def tool_event(event: kopf.RawEvent, **_: Any) -> None:
        controller.tool_event(event.get("type"), dict(event["object"]))

    @kopf.on.event("batch", "v1", "jobs", labels={TASK_LABEL: kopf.PRESENT}, registry=registry)
    def job_event(event: kopf.RawEvent, **_: Any) -> None:
        controller.child_event("job", event.get("type"), dict(event["object"]))

    @kopf.on.event("", "v1", "pods", registry=registry)
    def pod_event(event: kopf.RawEvent, **_: Any) -> None:
        # Every pod: bound pods' requests are the cluster's used room; execflow's own pods also
        # tell how attempts ended.
        controller.pod_event(event.get("type"), dict(event["object"]))

    @kopf.on.event("", "v1", "nodes", registry=registry)
    def node_event(event: kopf.RawEvent, **_: Any) -> None:
        controller.node_event(event.get("type"), dict(event["object"]))

    @kopf.on.event("", "v1", "resourcequotas", registry=registry)
    def quota_event(event: kopf.RawEvent, **_: Any) -> None:
        controller.quota_event(event.get("type"), dict(event["object"]))
