"""The `execflow` command as a user runs it, against the real control plane and operator:
submit (and --watch), get (tables, the workflow tree, JSON/YAML), the live `watch` view on a real
pseudo-terminal, workflow suspend/resume/cancel, crds and --version.

Every command runs as a separate process with the test cluster's kubeconfig; assertions are on
what it printed, its exit code, and the objects it made or changed.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from tests.integration.cli import EXECFLOW, execflow
from tests.integration.objects import create_workflow, get_workflow
from tests.integration.operator_process import OperatorProcess
from tests.integration.waiting import wait_for
from tests.integration.workflows import sim, step_of, wait_workflow

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")
COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-8]|9[0-7])[;m]")
"""A foreground colour code; bold and the like are not colour (NO_COLOR keeps them)."""


def _workflow(
    name: str, *, fail: bool = False, long: bool = False, last_for: str = "200ms"
) -> dict[str, Any]:
    last = sim("report", last_for, message='{"rows": 3}')
    if fail:
        last = sim("report", last_for, exit_code="3")
    return {
        "apiVersion": "execflow.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {
            "steps": [
                {
                    "name": "prepare",
                    "executionMode": "Parallel",
                    "tasks": [sim("left", "5m" if long else "300ms"), sim("right", "300ms")],
                },
                {"name": "report", "dependsOn": ["prepare"], "tasks": [last]},
            ]
        },
    }


def _write(path: Path, *documents: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump_all(documents), encoding="utf-8")
    return path


def _on_terminal(
    kubeconfig: Path, *args: str, timeout: float = 120, no_color: bool = False
) -> tuple[int, str]:
    """Run the command on a pseudo-terminal (stdout and stderr); its exit code and screen text."""
    leader, follower = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "110", "LINES": "40"}
    env.pop("NO_COLOR", None)
    if no_color:
        env["NO_COLOR"] = "1"
    process = subprocess.Popen(
        [*EXECFLOW, *args, "--kubeconfig", str(kubeconfig)],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        env=env,
    )
    os.close(follower)
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the pty closes when the process ends
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    os.close(leader)
    code = process.wait(timeout=10)
    return code, b"".join(chunks).decode("utf-8", "replace")


def test_submit_watch_follows_a_workflow_in_a_pipe(
    kubeconfig: Path, namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    path = _write(tmp_path / "wf.yaml", _workflow("piped"))
    done = execflow(kubeconfig, "submit", "-f", str(path), "-n", namespace, "--watch")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "workflow.execflow.dev/piped created"
    assert "step prepare Running" in lines
    assert "task left Completed (Succeeded)" in lines
    assert "task report Completed (Succeeded)" in lines
    assert lines[-1] == "workflow Completed 3/3 (Succeeded)"
    # Steps run in order: report starts only after prepare completed.
    assert lines.index("step prepare Completed") < lines.index("step report Running")

    again = execflow(kubeconfig, "submit", "-f", str(path), "-n", namespace)
    assert again.returncode == 1
    assert "already exists" in again.stderr


def test_submit_watch_exit_code_is_the_outcome(
    kubeconfig: Path, namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    path = _write(tmp_path / "bad.yaml", _workflow("broken", fail=True))
    done = execflow(kubeconfig, "submit", "-f", str(path), "-n", namespace, "-w")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "task report Failed (" in done.stdout
    assert done.stdout.splitlines()[-1].startswith("workflow Failed")

    task = {
        "apiVersion": "execflow.dev/v1alpha1",
        "kind": "Task",
        "metadata": {"name": "slow"},
        "spec": {
            "container": {"image": "example.invalid/job:1"},
            "timeout": "1s",
            "podTemplate": {"metadata": {"annotations": {"sim.execflow.dev/duration": "5m"}}},
        },
    }
    timed_out = execflow(
        kubeconfig, "submit", "-f", str(_write(tmp_path / "t.yaml", task)), "-n", namespace, "-w"
    )
    assert timed_out.returncode == 124, timed_out.stdout + timed_out.stderr
    assert "task slow Timeout" in timed_out.stdout


def test_submit_refuses_what_is_not_an_execflow_object(kubeconfig: Path, tmp_path: Path) -> None:
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
    done = execflow(kubeconfig, "submit", "-f", str(_write(tmp_path / "cm.yaml", config_map)))
    assert done.returncode == 1
    assert "ConfigMap of v1 is not an execflow object" in done.stderr
    missing = execflow(kubeconfig, "submit", "-f", str(tmp_path / "absent.yaml"))
    assert missing.returncode == 1 and "absent.yaml" in missing.stderr


def test_get_lists_tables_trees_and_json(
    api: client.ApiClient, kubeconfig: Path, namespace: str, operator: OperatorProcess
) -> None:
    create_workflow(api, namespace, "tree", **_workflow("tree")["spec"])
    wait_workflow(api, namespace, "tree", {"Completed"})

    tree = execflow(kubeconfig, "get", "workflow", "tree", "-n", namespace, "-o", "table")
    assert tree.returncode == 0, tree.stderr
    lines = tree.stdout.splitlines()
    assert lines[0].startswith("tree Completed  3/3")
    prepare = next(index for index, line in enumerate(lines) if "prepare Completed" in line)
    report = next(index for index, line in enumerate(lines) if "report Completed" in line)
    assert prepare < report
    children = [line for line in lines if "(tree-" in line]
    assert len(children) == 3
    assert all("Completed" in line and "attempts 1" in line for line in children)

    listed = execflow(kubeconfig, "get", "tasks", "-n", namespace, "-o", "table")
    rows = [line.split() for line in listed.stdout.splitlines()]
    assert rows[0] == ["NAME", "PHASE", "REASON", "ATTEMPTS", "DURATION", "AGE"]
    assert sorted(row[0] for row in rows[1:]) == ["tree-left", "tree-report", "tree-right"]
    assert all(row[1] == "Completed" and row[3] == "1" for row in rows[1:])

    piped = execflow(kubeconfig, "get", "task", "tree-report", "-n", namespace)
    assert json.loads(piped.stdout)["status"]["result"] == {"rows": 3}  # a pipe gets JSON
    summary = execflow(kubeconfig, "get", "tk", "tree-report", "-n", namespace, "-o", "table")
    assert re.search(r"Result\s+\{\"rows\": 3\}", summary.stdout)
    as_yaml = yaml.safe_load(
        execflow(kubeconfig, "get", "wf", "-n", namespace, "-o", "yaml").stdout
    )
    assert [item["metadata"]["name"] for item in as_yaml["items"]] == ["tree"]

    everywhere = execflow(kubeconfig, "get", "workflows", "-A", "-o", "table")
    assert any(
        line.split()[:3] == [namespace, "tree", "Completed"]
        for line in everywhere.stdout.splitlines()
    )
    missing = execflow(kubeconfig, "get", "task", "nope", "-n", namespace)
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_watch_on_a_terminal_shows_bars_in_flight_and_failures(
    api: client.ApiClient, kubeconfig: Path, namespace: str, operator: OperatorProcess
) -> None:
    create_workflow(api, namespace, "live", **_workflow("live", fail=True, last_for="3s")["spec"])
    code, screen = _on_terminal(
        kubeconfig, "watch", "workflow", "live", "-n", namespace, "--interval", "0.3"
    )
    text = ANSI.sub("", screen)
    assert code == 1, text
    assert COLOUR.search(screen)  # a terminal gets colours
    frames = [found.start() for found in re.finditer(r"live +[A-Z][a-z]+ +━", text)]
    final = text[frames[-1] :]
    assert re.search(r"live\s+Failed\s+━+\s+3/3", final), final
    assert re.search(r"prepare\s+Completed\s+━+\s+2/2", final), final
    assert "Failures (1)" in final
    assert re.search(r"report \(live-report\)\s+Failed.*exit code 3", final), final
    assert "Workflow live Failed" in final
    # While it ran, the screen showed what was in flight.
    assert re.search(r"In flight \(1\)\s+report \(live-report\)\s+Running", text), text


def test_watch_without_colour_when_asked(
    api: client.ApiClient, kubeconfig: Path, namespace: str, operator: OperatorProcess
) -> None:
    create_workflow(api, namespace, "plain", **_workflow("plain")["spec"])
    wait_workflow(api, namespace, "plain", {"Completed"})
    code, screen = _on_terminal(kubeconfig, "watch", "wf", "plain", "-n", namespace, no_color=True)
    assert code == 0
    assert "Workflow plain Completed" in screen
    assert not COLOUR.search(screen)


def test_suspend_resume_and_cancel(
    api: client.ApiClient, kubeconfig: Path, namespace: str, operator: OperatorProcess
) -> None:
    create_workflow(api, namespace, "ctl", **_workflow("ctl", long=True)["spec"])
    wait_for(
        lambda: (
            step_of(get_workflow(api, namespace, "ctl"), "prepare")["phase"] == "Running"
            if (get_workflow(api, namespace, "ctl").get("status") or {}).get("steps")
            else None
        ),
        60,
        "the first step to run",
    )
    nothing = execflow(kubeconfig, "workflow", "resume", "ctl", "-n", namespace)
    assert nothing.returncode == 1 and "not suspended" in nothing.stderr

    paused = execflow(kubeconfig, "workflow", "suspend", "ctl", "-n", namespace)
    assert paused.stdout.strip() == "workflow.execflow.dev/ctl suspended"
    wait_workflow(api, namespace, "ctl", {"Paused"})

    resumed = execflow(kubeconfig, "workflow", "resume", "ctl", "-n", namespace)
    assert resumed.stdout.strip() == "workflow.execflow.dev/ctl resumed"
    wait_workflow(api, namespace, "ctl", {"Running"})

    cancelled = execflow(kubeconfig, "workflow", "cancel", "ctl", "-n", namespace)
    assert cancelled.returncode == 0, cancelled.stderr
    wait_workflow(api, namespace, "ctl", {"Cancelled"})
    again = execflow(kubeconfig, "workflow", "cancel", "ctl", "-n", namespace)
    assert again.returncode == 1 and "has ended (Cancelled)" in again.stderr

    restarted = execflow(kubeconfig, "workflow", "resume", "ctl", "-n", namespace)
    assert "resumed from its checkpoint (Cancelled before)" in restarted.stdout
    workflow = wait_for(
        lambda: (w := get_workflow(api, namespace, "ctl"))["status"].get("resumes") == 1 and w,
        60,
        "the resume to be taken",
    )
    assert workflow["spec"]["cancel"] is False
    assert workflow["status"]["phase"] in {"Running", "Pending"}
    execflow(kubeconfig, "workflow", "cancel", "ctl", "-n", namespace)
    wait_workflow(api, namespace, "ctl", {"Cancelled"})


def test_crds_version_and_plugin_name(tmp_path: Path) -> None:
    printed = subprocess.run(
        [*EXECFLOW, "crds"], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    kinds = [doc["spec"]["names"]["kind"] for doc in yaml.safe_load_all(printed.stdout)]
    assert sorted(kinds) == ["ResultSet", "Task", "Tool", "Workflow"]
    assert list(tmp_path.iterdir()) == []  # nothing written where it runs
    subprocess.run([*EXECFLOW, "crds", "--out", str(tmp_path / "out")], check=True)
    assert len(list((tmp_path / "out").glob("*.yaml"))) == 4

    version = subprocess.run([*EXECFLOW, "--version"], capture_output=True, text=True, check=True)
    assert re.fullmatch(r"execflow \d+\.\d+\.\d+\n", version.stdout)
    plugin = Path(sys.executable).parent / "kubectl-execflow"
    helped = subprocess.run([str(plugin), "--help"], capture_output=True, text=True, check=True)
    assert helped.stdout.startswith("usage: kubectl execflow")
