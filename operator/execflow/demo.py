"""`make demo`: the operator running the example workloads, with a table of what happened.

By default it brings up the local control plane (built on first use); with
EXECFLOW_DEMO_KUBECONFIG it uses that cluster instead (for example kind). It installs the CRDs,
starts the operator for one fresh namespace, applies `examples/`, follows each workflow through
`execflow watch` (the live view on a terminal), waits for every task to finish, prints their
outcomes (results as JSON) and exits non-zero when an outcome is not the documented one.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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
# What each example workflow must end as: (phase, progress, child Tasks).
EXPECTED_WORKFLOWS: dict[str, tuple[str, str, int]] = {
    "ml-pipeline": ("Completed", "5/5", 5),
    "diamond": ("Completed", "4/4", 4),
    "best-effort": ("Completed", "4/4", 4),
}
# What each example ResultSet must end as: (phase, count, some of its aggregations).
EXPECTED_RESULTSETS: dict[str, tuple[str, int, dict[str, Any]]] = {
    "ml-pipeline": ("Ready", 5, {"best_score": 0.93, "models": 3}),
    "training-scores": ("Ready", 3, {"best_score": 0.93, "best_rate": 0.01}),
}
S3_EXAMPLE = "resultset-s3.yaml"
"""Needs an S3 server: applied where the local cluster's is (its Secret execflow-local-s3)."""
S3_BUCKET = "execflow-demo"
# Applied in this order; each file's tasks and workflows finish before the next file is applied.
STAGES = (
    ("tools.yaml",),
    ("tasks.yaml",),
    ("cached-task.yaml",),
    (
        "workflow-ml-pipeline.yaml",
        "workflow-diamond.yaml",
        "workflow-best-effort.yaml",
        S3_EXAMPLE,
    ),
)
RESULTSET_DONE = {"Ready", "Failed", "Expired"}


def apply_file(api: client.ApiClient, namespace: str, path: Path) -> dict[str, list[str]]:
    """Create every execflow object of a YAML file in namespace; the names by plural kind."""
    custom = client.CustomObjectsApi(api)
    created: dict[str, list[str]] = {}
    for document in yaml.safe_load_all(path.read_text()):
        if not document:
            continue
        group, version = document["apiVersion"].split("/")
        plural = document["kind"].lower() + "s"
        custom.create_namespaced_custom_object(group, version, namespace, plural, document)
        created.setdefault(plural, []).append(document["metadata"]["name"])
    return created


def wait_finished(
    api: client.ApiClient,
    namespace: str,
    plural: str,
    names: list[str],
    *,
    timeout: float = 120,
    ended: frozenset[str] | set[str] = TERMINAL,
) -> dict[str, dict[str, Any]]:
    """The objects' whole bodies once every one of them has ended (a phase in `ended`)."""
    custom = client.CustomObjectsApi(api)
    deadline = time.monotonic() + timeout
    while True:
        items = custom.list_namespaced_custom_object("execflow.dev", "v1alpha1", namespace, plural)
        bodies = {t["metadata"]["name"]: t for t in items["items"]}
        phases = {n: (bodies.get(n, {}).get("status") or {}).get("phase") for n in names}
        if all(phase in ended for phase in phases.values()):
            return {n: bodies[n] for n in names}
        if time.monotonic() > deadline:
            waiting = [n for n, phase in phases.items() if phase not in ended]
            raise TimeoutError(f"{plural} still not finished after {timeout:.0f}s: {waiting}")
        time.sleep(0.2)


@dataclass
class Outcomes:
    """What the examples ended as: Task statuses, and Workflows with their child Task counts."""

    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    workflows: dict[str, dict[str, Any]] = field(default_factory=dict)
    children: dict[str, int] = field(default_factory=dict)
    resultsets: dict[str, dict[str, Any]] = field(default_factory=dict)
    watched: dict[str, int] = field(default_factory=dict)
    """The exit code of `execflow watch` for each workflow (0: it ended Completed)."""
    s3: bool = False
    """Whether an S3 server was there for the S3 example."""


def prepare_s3(api: client.ApiClient, namespace: str) -> bool:
    """Where the local cluster's S3 server runs: its Secret and a random encryption key in the
    namespace, and the bucket. False (the S3 example is left out) where there is none."""
    import botocore.exceptions

    from execflow.kube.result_storage import S3Credentials, s3_client

    core = client.CoreV1Api(api)
    try:
        source = core.read_namespaced_secret("execflow-local-s3", "default")
    except client.ApiException as error:
        if error.status == 404:
            return False
        raise
    values = {key: base64.b64decode(text).decode() for key, text in source.data.items()}
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name="execflow-local-s3"), data=source.data),
    )
    key = base64.b64encode(base64.b64encode(os.urandom(32))).decode()
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name="results-key"), data={"key": key}),
    )
    s3 = s3_client(
        S3Credentials(values["endpoint"], values["accessKeyId"], values["secretAccessKey"])
    )
    try:
        s3.create_bucket(Bucket=S3_BUCKET)
    except botocore.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") not in (
            "BucketAlreadyOwnedByYou",
            "BucketAlreadyExists",
        ):
            raise
    return True


def watch_workflows(kubeconfig: Path, namespace: str, names: list[str]) -> dict[str, int]:
    """Each workflow through `execflow watch`, as a user would follow it (live on a terminal);
    the exit code of each watch, which is its workflow's outcome."""
    codes = {}
    for name in names:
        command = ["watch", "workflow", name, "-n", namespace, "--interval", "0.5"]
        codes[name] = subprocess.run(
            [sys.executable, "-m", "execflow.cli.main", *command, "--kubeconfig", str(kubeconfig)],
            check=False,
            timeout=180,
        ).returncode
    return codes


def run_examples(
    api: client.ApiClient, namespace: str, say: Callable[[str], None], kubeconfig: Path
) -> Outcomes:
    outcomes = Outcomes(s3=prepare_s3(api, namespace))
    if not outcomes.s3:
        say(f"no local S3 server (Secret default/execflow-local-s3): skipping {S3_EXAMPLE}")
    for files in STAGES:
        created: dict[str, list[str]] = {}
        for name in files:
            if name == S3_EXAMPLE and not outcomes.s3:
                continue
            say(f"applying examples/{name}")
            for plural, names in apply_file(api, namespace, EXAMPLES / name).items():
                created.setdefault(plural, []).extend(names)
        outcomes.watched.update(
            watch_workflows(kubeconfig, namespace, created.get("workflows", []))
        )
        for name, body in wait_finished(api, namespace, "tasks", created.get("tasks", [])).items():
            outcomes.tasks[name] = body.get("status") or {}
        workflows = wait_finished(api, namespace, "workflows", created.get("workflows", []))
        outcomes.workflows.update(workflows)
        sets = created.get("resultsets", []) + [
            name for name, body in workflows.items() if (body.get("spec") or {}).get("resultSet")
        ]
        outcomes.resultsets.update(
            wait_finished(api, namespace, "resultsets", sets, ended=RESULTSET_DONE)
        )
    custom = client.CustomObjectsApi(api)
    for name in outcomes.workflows:
        children = custom.list_namespaced_custom_object(
            "execflow.dev",
            "v1alpha1",
            namespace,
            "tasks",
            label_selector=f"execflow.dev/workflow={name}",
        )
        outcomes.children[name] = len(children["items"])
    return outcomes


def problems(outcomes: Outcomes) -> list[str]:
    found = []
    for name, (phase, reason, attempts) in EXPECTED.items():
        status = outcomes.tasks.get(name, {})
        seen = (status.get("phase"), status.get("reason"), status.get("attempts", 0))
        if seen != (phase, reason, attempts):
            found.append(f"{name}: expected {(phase, reason, attempts)}, got {seen}")
    for name, expected in EXPECTED_WORKFLOWS.items():
        status = (outcomes.workflows.get(name) or {}).get("status") or {}
        got = (status.get("phase"), status.get("progress"), outcomes.children.get(name, 0))
        if got != expected:
            found.append(
                f"workflow {name}: expected {expected}, got {got}: {status.get('message')}"
            )
        if outcomes.watched.get(name) != 0:
            found.append(f"workflow {name}: `execflow watch` exited {outcomes.watched.get(name)}")
    for name, (phase, count, values) in EXPECTED_RESULTSETS.items():
        if name == "training-scores" and not outcomes.s3:
            continue
        status = (outcomes.resultsets.get(name) or {}).get("status") or {}
        aggregations = status.get("aggregations") or {}
        seen = (status.get("phase"), status.get("count"), {k: aggregations.get(k) for k in values})
        if seen != (phase, count, values):
            found.append(
                f"resultset {name}: expected {(phase, count, values)}, got {seen}: "
                f"{status.get('message')}"
            )
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


def print_outcomes(console: Console, outcomes: Outcomes) -> None:
    """One row per task; when the terminal is too narrow for the results in a column, they follow
    the table one per line instead of being folded into a sliver. Then one row per workflow."""
    tasks = outcomes.tasks
    table = _table(tasks, results=True)
    unbounded = console.options.update_width(PIPE_WIDTH)
    if Measurement.get(console, unbounded, table).maximum <= console.width:
        console.print(table)
    else:
        console.print(_table(tasks, results=False))
        for name, status in tasks.items():
            if result := _result_text(status):
                console.print(Text(f"{name}: {result}"), overflow="fold")
    if outcomes.workflows:
        console.print(_workflow_table(outcomes))
    if outcomes.resultsets:
        console.print(_result_set_table(outcomes))


def _workflow_table(outcomes: Outcomes) -> Table:
    table = Table(title="execflow demo: example workflows", box=box.SIMPLE, pad_edge=False)
    for column in ("workflow", "phase", "progress", "child tasks", "steps"):
        table.add_column(column, overflow="fold")
    for name, body in outcomes.workflows.items():
        status = body.get("status") or {}
        steps = " ".join(f"{s['name']}:{s['phase']}" for s in status.get("steps") or [])
        row = [name, str(status.get("phase")), str(status.get("progress"))]
        row += [str(outcomes.children.get(name, 0)), steps]
        table.add_row(*(Text(cell) for cell in row))
    return table


def _result_set_table(outcomes: Outcomes) -> Table:
    table = Table(title="execflow demo: example result sets", box=box.SIMPLE, pad_edge=False)
    for column in ("resultset", "phase", "count", "stored in", "aggregations"):
        table.add_column(column, overflow="fold")
    for name, body in outcomes.resultsets.items():
        status = body.get("status") or {}
        storage = status.get("storage") or {}
        where = storage.get("backend", "")
        if storage.get("bucket"):
            where = f"s3://{storage['bucket']}/{storage.get('prefix', '')}"
        elif storage.get("configMaps"):
            where = "ConfigMap " + ", ".join(storage["configMaps"])
        aggregations = json.dumps(status.get("aggregations") or {}, separators=(",", ":"))
        row = [name, str(status.get("phase")), str(status.get("count", 0)), where, aggregations]
        table.add_row(*(Text(cell) for cell in row))
    return table


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
            outcomes = run_examples(api, namespace, say, cluster.kubeconfig)
        finally:
            operator.stop()
        print_outcomes(console, outcomes)
        harness.delete_namespace(api, namespace)
    found = problems(outcomes)
    for problem in found:
        say(f"[red]unexpected outcome[/red] {problem}")
    if not found:
        ended = (
            f"all {len(outcomes.tasks)} example tasks, {len(outcomes.workflows)} workflows and "
            f"{len(outcomes.resultsets)} result sets"
        )
        say(f"[green]{ended} ended as documented[/green]")
        say(f"kubeconfig: {cluster.kubeconfig}")
        if cluster.local is not None:
            say("stop the local cluster with: execflow cluster down")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
