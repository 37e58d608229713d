"""`execflow run`: wire settings, the Kubernetes connection, the controllers and kopf, then run.

This is the only place where the pieces meet; each of them can be tested without the others.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import kopf

from execflow import metrics
from execflow.api.settings import OperatorSettings, load_settings
from execflow.handlers.operator import Operator
from execflow.handlers.registration import register
from execflow.kube.client import Kube
from execflow.kube.connection import Connection, CredentialsError

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


def serve_metrics(port: int, operator: Operator) -> None:
    try:
        metrics.serve(
            port,
            lambda: (
                str((body.get("status") or {}).get("phase") or "Pending")
                for body in operator.stores.tasks
            ),
            operator.stores.sizes,
        )
    except OSError as error:
        raise StartupError(
            f"cannot serve metrics on port {port}: {error.strerror or error} (is another "
            "operator running on this machine?); choose a free one with --metrics-port, or "
            "--metrics-port 0 for none"
        ) from None


async def operate(
    settings: OperatorSettings,
    *,
    namespaces: Sequence[str],
    metrics_port: int | None,
    liveness: str | None,
    stop_flag: asyncio.Event | None = None,
    settings_path: str | None = None,
) -> None:
    try:
        connection = Connection(os.environ.get("KUBECONFIG"))
    except CredentialsError as error:
        raise StartupError(str(error)) from None
    operator = Operator(Kube.connect(connection), settings, namespaces)
    if metrics_port:
        serve_metrics(metrics_port, operator)
    registry = kopf.OperatorRegistry()
    register(operator, registry)
    watcher = (
        asyncio.create_task(watch_settings(Path(settings_path), operator))
        if settings_path
        else None
    )
    try:
        await kopf.operator(
            registry=registry,
            clusterwide=not namespaces,
            namespaces=list(namespaces),
            standalone=False,
            liveness_endpoint=liveness,
            stop_flag=stop_flag,
        )
    finally:
        if watcher is not None:
            watcher.cancel()
        connection.close()


def run(
    settings_path: str | None,
    namespaces: Sequence[str],
    metrics_port: int | None,
    liveness: str | None,
    verbose: bool,
) -> int:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        # kopf reports every handled watch event at INFO; execflow's own log says what matters.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    try:
        settings = read_settings(settings_path)
    except (OSError, ValueError) as error:
        log.error("invalid settings %s: %s", settings_path, error)
        return 2
    try:
        asyncio.run(
            operate(
                settings,
                namespaces=namespaces,
                metrics_port=metrics_port,
                liveness=liveness,
                settings_path=settings_path,
            )
        )
    except StartupError as error:
        log.error("%s", error)
        return 2
    return 0
