"""`make demo`: the operator running the example workloads, with a table of what happened.

By default it brings up the local control plane (built on first use); with
EXECFLOW_DEMO_KUBECONFIG it uses that cluster instead (for example kind). It installs the CRDs,
starts the operator for one fresh namespace, applies `examples/`, waits for every task to finish,
prints their outcomes and exits non-zero when an outcome is not the documented one.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from execflow.devcluster import harness

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


def _result_text(status: dict[str, Any]) -> str:
    result = status.get("result")
    return "" if result in (None, {}) else json.dumps(result, separators=(",", ":"))


def _table(outcomes: dict[str, dict[str, Any]], results: bool) -> Table:
    table = Table(title="execflow demo: example tasks", box=box.SIMPLE, pad_edge=False)
    columns = ["task", "phase", "reason", "attempts"] + (["result"] if results else [])
    for column in columns:
        # JSON has few spaces to wrap at: fold it rather than cut it short.
        table.add_column(column, overflow="fold")
    for name, status in outcomes.items():
        row = [name, str(status.get("phase")), str(status.get("reason"))]
        row.append(str(status.get("attempts", 0)))
        if results:
            row.append(_result_text(status))
        # Text, not markup: a result may contain brackets.
        table.add_row(*(Text(cell) for cell in row))
    return table


def print_outcomes(console: Console, outcomes: dict[str, dict[str, Any]]) -> None:
    """One row per task; when the terminal is too narrow for the results in a column, they follow
    the table one per line instead of being folded into a sliver."""
    table = _table(outcomes, results=True)
    unbounded = console.options.update_width(PIPE_WIDTH)
    if Measurement.get(console, unbounded, table).maximum <= console.width:
        console.print(table)
        return
    console.print(_table(outcomes, results=False))
    for name, status in outcomes.items():
        if result := _result_text(status):
            console.print(Text(f"{name}: {result}"), overflow="fold")


# A pipe has no width: rows stay whole lines for grep and friends instead of wrapping at 80.
PIPE_WIDTH = 1000


def main() -> int:
    console = Console() if sys.stdout.isatty() else Console(width=PIPE_WIDTH)
    say = console.print
    given = os.environ.get("EXECFLOW_DEMO_KUBECONFIG")
    with harness.use_cluster(
        lambda m: say(f"[dim]{m}[/dim]"), kubeconfig=Path(given) if given else None
    ) as cluster:
        api = harness.connect(cluster.kubeconfig, with_crds=True)
        namespace = harness.create_namespace(api, "execflow-demo")
        operator = harness.OperatorProcess(
            cluster.kubeconfig,
            Path(tempfile.mkdtemp(prefix="execflow-demo-")),
            namespaces=[namespace],
        )
        say(f"starting the operator for namespace {namespace} (log in {operator.directory})")
        operator.start()
        try:
            outcomes = run_examples(api, namespace, say)
        finally:
            operator.stop()
        print_outcomes(console, outcomes)
        harness.delete_namespace(api, namespace)
    found = problems(outcomes)
    for problem in found:
        say(f"[red]unexpected outcome[/red] {problem}")
    if not found:
        say(f"[green]all {len(outcomes)} example tasks ended as documented[/green]")
        say(f"kubeconfig: {cluster.kubeconfig}")
        if cluster.local is not None:
            say("stop the local cluster with: execflow cluster down")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
