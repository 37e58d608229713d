"""`make demo`: the operator running the example workloads, with a table of what happened.

By default it brings up the local control plane (built on first use); with
EXECFLOW_DEMO_KUBECONFIG it uses that cluster instead (for example kind). It installs the CRDs,
starts the operator for one fresh namespace, applies `examples/`, waits for every task to finish,
prints their outcomes and exits non-zero when an outcome is not the documented one.
"""

from __future__ import annotations

import datetime
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from rich.console import Console
from rich.table import Table

from execflow.devcluster.cluster import LocalCluster, NodeShape, free_port
from execflow.kube.crds import install_crds

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TERMINAL = {"Completed", "Failed", "Timeout", "Cancelled"}
# What each example task must end as: (phase, reason, attempts).
EXPECTED: dict[str, tuple[str, str, int]] = {
    "clean-data": ("Completed", "Succeeded", 1),
    "fetch-with-retries": ("Completed", "Succeeded", 3),
    "slow-report": ("Timeout", "DeadlineExceeded", 1),
    "clean-data-again": ("Completed", "CacheHit", 0),
}
# Applied in this order; each file's tasks finish before the next file is applied.
STAGES = (("tools.yaml",), ("tasks.yaml",), ("cached-task.yaml",))


def apply_file(api: client.ApiClient, namespace: str, path: Path) -> list[str]:
    """Create every execflow object of a YAML file in namespace; return the Task names."""
    custom = client.CustomObjectsApi(api)
    tasks = []
    for document in yaml.safe_load_all(path.read_text()):
        if not document:
            continue
        group, version = document["apiVersion"].split("/")
        plural = document["kind"].lower() + "s"
        custom.create_namespaced_custom_object(group, version, namespace, plural, document)
        if document["kind"] == "Task":
            tasks.append(document["metadata"]["name"])
    return tasks


def wait_finished(
    api: client.ApiClient, namespace: str, names: list[str], timeout: float = 120
) -> dict[str, dict[str, Any]]:
    custom = client.CustomObjectsApi(api)
    deadline = time.monotonic() + timeout
    while True:
        items = custom.list_namespaced_custom_object("execflow.dev", "v1alpha1", namespace, "tasks")
        statuses = {t["metadata"]["name"]: t.get("status") or {} for t in items["items"]}
        if all(statuses.get(n, {}).get("phase") in TERMINAL for n in names):
            return {n: statuses[n] for n in names}
        if time.monotonic() > deadline:
            waiting = [n for n in names if statuses.get(n, {}).get("phase") not in TERMINAL]
            raise TimeoutError(f"tasks still not finished after {timeout:.0f}s: {waiting}")
        time.sleep(0.2)


def run_examples(
    api: client.ApiClient, namespace: str, say: Callable[[str], None]
) -> dict[str, dict[str, Any]]:
    outcomes: dict[str, dict[str, Any]] = {}
    for files in STAGES:
        names: list[str] = []
        for name in files:
            say(f"applying examples/{name}")
            names += apply_file(api, namespace, EXAMPLES / name)
        if names:
            outcomes.update(wait_finished(api, namespace, names))
    return outcomes


def problems(outcomes: dict[str, dict[str, Any]]) -> list[str]:
    found = []
    for name, (phase, reason, attempts) in EXPECTED.items():
        status = outcomes.get(name, {})
        seen = (status.get("phase"), status.get("reason"), status.get("attempts", 0))
        if seen != (phase, reason, attempts):
            found.append(f"{name}: expected {(phase, reason, attempts)}, got {seen}")
    return found


def _table(outcomes: dict[str, dict[str, Any]]) -> Table:
    table = Table(title="execflow demo: example tasks")
    for column in ("task", "phase", "reason", "attempts", "result"):
        table.add_column(column)
    for name, status in outcomes.items():
        result = status.get("result")
        table.add_row(
            name,
            str(status.get("phase")),
            str(status.get("reason")),
            str(status.get("attempts", 0)),
            "" if result in (None, {}) else str(result)[:60],
        )
    return table


def main() -> int:
    console = Console()
    say = console.print
    kubeconfig = os.environ.get("EXECFLOW_DEMO_KUBECONFIG")
    if not kubeconfig:
        kubeconfig = str(LocalCluster().up(NodeShape(), lambda m: say(f"[dim]{m}[/dim]")))
    api = config.new_client_from_config(config_file=kubeconfig)
    install_crds(api)
    namespace = "execflow-demo-" + datetime.datetime.now().strftime("%H%M%S")
    client.CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})
    port = free_port()
    log_path = Path(kubeconfig).parent / "demo-operator.log"
    say(f"starting the operator for namespace {namespace} (log: {log_path})")
    with log_path.open("wb") as log:
        operator = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "execflow.cli.main",
                "run",
                "--namespace",
                namespace,
                "--metrics-port",
                str(port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, KUBECONFIG=kubeconfig),
        )
    try:
        outcomes = run_examples(api, namespace, say)
    finally:
        operator.send_signal(signal.SIGTERM)
        try:
            operator.wait(20)
        except subprocess.TimeoutExpired:
            operator.kill()
    console.print(_table(outcomes))
    client.CoreV1Api(api).delete_namespace(namespace)
    found = problems(outcomes)
    for problem in found:
        say(f"[red]unexpected outcome[/red] {problem}")
    if not found:
        say(f"[green]all {len(outcomes)} example tasks ended as documented[/green]")
        say(f"kubeconfig: {kubeconfig}  (stop the local cluster with: execflow cluster down)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
