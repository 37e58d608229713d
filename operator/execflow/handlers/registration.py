"""kopf wiring: the operator's lifecycle (login, start-up, clean-up, liveness) and kopf settings.

kopf logs in (kubeconfig or in-cluster credentials), runs the start-up and clean-up handlers,
serves the liveness probe and handles signals. The watch streams are execflow's own
(`execflow.kube.watch`, over the operator's HTTP transport), read by its runtime instead of
kopf's per-object handler workers; so no resource handler is registered here, and kopf's peering
is not used: replicas agree through a Lease (`execflow.runtime.leader`).
"""

from __future__ import annotations

from typing import Any

import kopf

from execflow.handlers.operator import Operator
from execflow.kube import watch
from execflow.kube.http import HttpTransport

PREFIX = "execflow.dev"


def configure(settings: kopf.OperatorSettings) -> None:
    """Explicit kopf settings: our own finalizer and annotation prefix, quiet status, timeouts."""
    settings.persistence.finalizer = f"{PREFIX}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=PREFIX, key="last-handled-configuration"
    )
    # execflow posts its own Events with reasons users can act on; kopf's would be noise.
    settings.posting.enabled = False
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.reconnect_backoff = 1.0
    settings.networking.request_timeout = 60


def register(operator: Operator, registry: kopf.OperatorRegistry, transport: HttpTransport) -> None:
    """kopf's lifecycle around `operator`; its watches read over `transport`."""

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # The same credentials as the operator's own client: kubeconfig, else in-cluster.
        return kopf.login_via_client(**kwargs)

    @kopf.on.startup(registry=registry)
    async def start(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure(settings)

        def opener(which: watch.Watch, namespace: str | None) -> Any:
            return watch.stream(transport, which, namespace)

        operator.start(opener)

    @kopf.on.cleanup(registry=registry)
    async def stop(**_: Any) -> None:
        await operator.stop()

    @kopf.on.probe(id="synced", registry=registry)
    def synced(**_: Any) -> dict[str, bool]:
        return {kind: informer.synced.is_set() for kind, informer in operator.informers.items()}
