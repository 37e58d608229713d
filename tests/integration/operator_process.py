"""The operator as a real process for integration tests: installed CRDs, started, killed, restarted.

Tests talk to the API server only; the operator under test is the same `execflow run` a user
starts, so what passes here is what ships.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from kubernetes import client

from execflow.devcluster.cluster import free_port
from tests.integration.waiting import wait_for


class OperatorProcess:
    def __init__(self, kubeconfig: Path, log_dir: Path, settings: str | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.log_dir = log_dir
        self.settings = settings
        self.settings_path = log_dir / "settings.yaml"
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.starts = 0

    def start(self) -> None:
        self.port = free_port()
        self.starts += 1
        args = [sys.executable, "-m", "execflow.cli.main", "run", "--metrics-port", str(self.port)]
        if self.settings:
            if not self.settings_path.exists():
                self.settings_path.write_text(self.settings)
            args += ["--settings", str(self.settings_path)]
        log = (self.log_dir / f"operator-{self.starts}.log").open("wb")
        env = dict(os.environ, KUBECONFIG=str(self.kubeconfig))
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()

        def serving() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"the operator exited; see {self.log_dir}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=1):
                    return True
            except OSError:
                return False

        wait_for(serving, 60, "the operator to serve metrics")

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as reply:
            text: str = reply.read().decode()
            return text

    def kill(self) -> None:
        """SIGKILL: no cleanup, no final writes, as when a node dies."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_phase(
    api: client.ApiClient, namespace: str, name: str, phases: set[str], timeout: float = 60
) -> dict[str, Any]:
    custom = client.CustomObjectsApi(api)

    def reached() -> dict[str, Any] | None:
        task: dict[str, Any] = custom.get_namespaced_custom_object(
            "execflow.dev", "v1alpha1", namespace, "tasks", name
        )
        return task if (task.get("status") or {}).get("phase") in phases else None

    return wait_for(reached, timeout, f"task {name} to reach {sorted(phases)}")
