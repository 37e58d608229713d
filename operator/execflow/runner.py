"""`execflow run`: wire settings, the Kubernetes connection, the controllers and kopf, then run.

This is the only place where the pieces meet; each of them can be tested without the others.
"""

from __future__ import annotations

import asyncio
import datetime
import gc
import logging
import os
import socket
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kopf

from execflow import metrics
from execflow.api.settings import OperatorSettings, load_settings
from execflow.handlers.admission import admit
from execflow.handlers.operator import Operator
from execflow.handlers.registration import register
from execflow.kube import webhook
from execflow.kube.client import Kube
from execflow.kube.connection import Connection, CredentialsError
from execflow.kube.errors import ApiError, ForbiddenError
from execflow.runtime.leader import LeaderElection, LeaseTiming

log = logging.getLogger("execflow")


def read_settings(path: str | None) -> OperatorSettings:
    if not path:
        return load_settings("")
    return load_settings(Path(path).read_text())


SETTINGS_POLL_SECONDS = 2.0


async def watch_settings(path: Path, operator: Operator) -> None:
    """Apply a changed settings file without a restart; keep the last good settings on error.

    A mounted ConfigMap changes by swapping a symlink, which a modification-time check of the
    resolved file sees; polling also works for files edited in place.
    """

    def stamp() -> tuple[float, int] | None:
        try:
            info = path.stat()
        except OSError:
            return None
        return (info.st_mtime, info.st_ino)

    seen = stamp()
    while True:
        await asyncio.sleep(SETTINGS_POLL_SECONDS)
        current = stamp()
        if current is None or current == seen:
            continue
        seen = current
        try:
            settings = load_settings(path.read_text())
        except (OSError, ValueError) as error:
            metrics.SETTINGS_RELOADS.labels(result="rejected").inc()
            log.error("settings %s rejected, the previous settings stay in force: %s", path, error)
            continue
        operator.reconfigure(settings)
        metrics.SETTINGS_RELOADS.labels(result="applied").inc()
        log.info("settings %s applied: queues %s", path, ", ".join(sorted(settings.queues)))


class StartupError(RuntimeError):
    """The environment does not let the operator start; the message says what to change."""


def _phases(store: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    return (str((body.get("status") or {}).get("phase") or "Pending") for body in store)


def serve_metrics(port: int, operator: Operator) -> None:
    try:
        metrics.serve(
            port,
            {
                "tasks": lambda: _phases(operator.stores.tasks),
                "workflows": lambda: _phases(operator.stores.workflows),
                "resultsets": lambda: _phases(operator.stores.resultsets),
            },
            operator.stores.sizes,
        )
    except OSError as error:
        raise StartupError(
            f"cannot serve metrics on port {port}: {error.strerror or error} (is another "
            "operator running on this machine?); choose a free one with --metrics-port, or "
            "--metrics-port 0 for none"
        ) from None


@dataclass(frozen=True)
class RunOptions:
    """`execflow run`'s command line."""

    settings_path: str | None = None
    namespaces: Sequence[str] = ()
    metrics_port: int | None = 8080
    liveness: str | None = None
    verbose: bool = False
    leader_namespace: str | None = None
    """Hold the Lease `execflow-operator` in this namespace: only its holder acts."""
    lease_seconds: float = 15.0
    webhook_port: int = 0
    """Serve the Workflow admission webhook on this port and register it (0: no webhook)."""
    webhook_service: tuple[str, str] | None = None
    """(namespace, name) of the Service the API server reaches the webhook through; None: the
    API server runs on this machine and calls https://127.0.0.1:<webhook_port>."""


LEASE_NAME = "execflow-operator"


def identity() -> str:
    """This replica's name in the Lease: the pod's name in a cluster, else host and process."""
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


def _leader(kube: Kube, options: RunOptions) -> LeaderElection | None:
    if not options.leader_namespace:
        return None
    duration = datetime.timedelta(seconds=options.lease_seconds)
    timing = LeaseTiming(duration=duration, renew_deadline=duration * 2 / 3, retry=duration / 7)
    return LeaderElection(kube, options.leader_namespace, LEASE_NAME, identity(), timing=timing)


async def serve_webhook(kube: Kube, options: RunOptions) -> webhook.WebhookServer:
    try:
        return await webhook.serve(kube, admit, options.webhook_port, options.webhook_service)
    except OSError as error:
        raise StartupError(
            f"cannot serve the admission webhook on port {options.webhook_port}: "
            f"{error.strerror or error}; choose a free one with --webhook-port, or "
            "--webhook-port 0 for none"
        ) from None
    except ApiError as error:
        hint = (
            " (it needs get, create and patch on validatingwebhookconfigurations, and with "
            "--webhook-service on Secrets in the Service's namespace)"
            if isinstance(error, ForbiddenError)
            else ""
        )
        raise StartupError(
            f"cannot register the admission webhook: {error}{hint}; "
            "or run with --webhook-port 0 for none"
        ) from None


async def operate(
    settings: OperatorSettings,
    options: RunOptions,
    stop_flag: asyncio.Event | None = None,
) -> bool:
    """Run until stopped; False when the process must stop because it lost its Lease."""
    try:
        connection = Connection(os.environ.get("KUBECONFIG"))
    except CredentialsError as error:
        raise StartupError(str(error)) from None
    kube = Kube.connect(connection)
    stop = stop_flag or asyncio.Event()
    lost: list[bool] = []

    def lost_leadership() -> None:
        lost.append(True)
        stop.set()

    operator = Operator(kube, settings, options.namespaces, _leader(kube, options), lost_leadership)
    # Registered before /metrics answers, which is what start-up scripts wait for.
    admission = await serve_webhook(kube, options) if options.webhook_port else None
    if options.metrics_port:
        serve_metrics(options.metrics_port, operator)
    registry = kopf.OperatorRegistry()
    register(operator, registry, connection.transport)
    watcher = (
        asyncio.create_task(watch_settings(Path(options.settings_path), operator))
        if options.settings_path
        else None
    )
    try:
        await kopf.operator(
            registry=registry,
            clusterwide=not options.namespaces,
            namespaces=list(options.namespaces),
            # Replicas agree through the Lease, not through kopf's peering.
            standalone=True,
            liveness_endpoint=options.liveness,
            stop_flag=stop,
        )
    finally:
        if watcher is not None:
            watcher.cancel()
        if admission is not None:
            await admission.stop()
        await connection.close()
    return not lost


GC_THRESHOLDS = (20_000, 20, 20)


def tune_garbage_collection() -> None:
    """Collect less often than Python's default (every 700 net new containers).

    The operator decodes every watch event into fresh dicts and keeps most of them in its stores,
    so the default threshold ran a collection every few events, each walking the young objects,
    and the full collections walked every stored object. What is alive after start-up (modules,
    classes) is frozen out of the collections altogether.
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run(options: RunOptions) -> int:
    logging.basicConfig(
        level=logging.DEBUG if options.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not options.verbose:
        # kopf reports every handled watch event at INFO; execflow's own log says what matters.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    try:
        settings = read_settings(options.settings_path)
    except (OSError, ValueError) as error:
        log.error("invalid settings %s: %s", options.settings_path, error)
        return 2
    tune_garbage_collection()
    try:
        kept = asyncio.run(operate(settings, options))
    except StartupError as error:
        log.error("%s", error)
        return 2
    if not kept:
        log.error("stopped: another replica may hold the Lease now; restart to stand by again")
        return 1
    return 0
