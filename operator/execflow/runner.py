"""`execflow run`: wire settings, the Kubernetes connection, the controllers and kopf, then run.

This is the only place where the pieces meet; each of them can be tested without the others.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import kopf

from execflow import metrics
from execflow.api.settings import OperatorSettings, load_settings
from execflow.handlers.dispatch import Dispatcher
from execflow.handlers.registration import configure, register
from execflow.handlers.task_controller import TaskController
from execflow.kube.connection import Connection

log = logging.getLogger("execflow")


def read_settings(path: str | None) -> OperatorSettings:
    if not path:
        return load_settings("")
    return load_settings(Path(path).read_text())


async def operate(
    settings: OperatorSettings,
    namespaces: Sequence[str],
    metrics_port: int | None,
    liveness: str | None,
    stop_flag: asyncio.Event | None = None,
) -> None:
    connection = Connection(os.environ.get("KUBECONFIG"))
    controller = TaskController(connection, Dispatcher(settings), tuple(namespaces))
    registry = kopf.OperatorRegistry()
    register(controller, registry)

    @kopf.on.startup(registry=registry)
    async def start(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure(settings)
        await controller.prime()
        controller.start()

    @kopf.on.cleanup(registry=registry)
    async def stop(**_: Any) -> None:
        await controller.stop()
        connection.close()

    if metrics_port:
        metrics.serve(
            metrics_port,
            lambda: (
                str((body.get("status") or {}).get("phase") or "Pending")
                for body in list(controller.store.tasks.values())
            ),
        )
    await kopf.operator(
        registry=registry,
        clusterwide=not namespaces,
        namespaces=list(namespaces),
        standalone=False,
        liveness_endpoint=liveness,
        stop_flag=stop_flag,
    )


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
    try:
        settings = read_settings(settings_path)
    except (OSError, ValueError) as error:
        log.error("invalid settings %s: %s", settings_path, error)
        return 2
    asyncio.run(operate(settings, namespaces, metrics_port, liveness))
    return 0
