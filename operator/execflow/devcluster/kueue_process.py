"""The Kueue manager as a local process next to the local control plane (see `kueue`).

Why apart from `kueue`: building Kueue and creating its objects is one concern, running its
manager outside a pod (its configuration, the certificate folder the kubelet would mount, the
readiness that only its log tells) another.
"""

from __future__ import annotations

import base64
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import yaml
from kubernetes import client

from execflow.devcluster import harness, processes
from execflow.devcluster.cluster import free_port
from execflow.devcluster.kueue import (
    NAMESPACE,
    READY_LINE,
    SECRET,
    KueueError,
    create_object,
    read_json,
)


def manager_configuration(
    health: int, metrics: int, webhook: int, cert_dir: Path, *, qps: float = 50, burst: int = 100
) -> str:
    """Kueue's Configuration for a process outside the cluster: every port on 127.0.0.1, no
    leader election, only the batch/job integration, no visibility API server (it would need an
    APIService), and the controller concurrency of Kueue's default installation. Its client
    rate (API requests per second, and burst) defaults to that installation's too; a negative
    qps turns client-side rate limiting off."""
    configuration = {
        "apiVersion": "config.kueue.x-k8s.io/v1beta2",
        "kind": "Configuration",
        "namespace": NAMESPACE,
        "health": {"healthProbeBindAddress": f"127.0.0.1:{health}"},
        "metrics": {"bindAddress": f"127.0.0.1:{metrics}"},
        "webhook": {"host": "127.0.0.1", "port": webhook, "certDir": str(cert_dir)},
        "leaderElection": {"leaderElect": False},
        "internalCertManagement": {"enable": True},
        # Kueue's default installation; its other controllers run one worker each.
        "controller": {"groupKindConcurrency": {"Job.batch": 5, "Workload.kueue.x-k8s.io": 5}},
        "clientConnection": {"qps": qps, "burst": burst},
        "integrations": {"frameworks": ["batch/job"]},
        "featureGates": {"VisibilityOnDemand": False},
    }
    return yaml.safe_dump(configuration, sort_keys=False)


class KueueProcess:
    """The Kueue manager as a child process with its own ports, configuration, certificate folder
    and log (all in directory). A context manager: started on entry, stopped on exit. qps and
    burst: its client rate, as in `manager_configuration`."""

    def __init__(
        self,
        binary: Path,
        kubeconfig: Path,
        directory: Path,
        *,
        qps: float = 50,
        burst: int = 100,
    ) -> None:
        self.binary = binary
        self.qps = qps
        self.burst = burst
        self.kubeconfig = kubeconfig
        self.directory = directory
        self.cert_dir = directory / "certs"
        self.log_path = directory / "kueue.log"
        self.health_port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 180) -> None:
        """Start it and return once it is ready (it logged that its manager starts and /readyz
        answers); KueueError with its log tail if it exits or hangs."""
        if self.running:
            raise KueueError(f"kueue already runs (log: {self.log_path})")
        self.cert_dir.mkdir(parents=True, exist_ok=True)
        self.health_port = free_port()
        ports = (self.health_port, free_port(), free_port())
        config = self.directory / "config.yaml"
        config.write_text(
            manager_configuration(*ports, self.cert_dir, qps=self.qps, burst=self.burst)
        )
        api = harness.connect(self.kubeconfig)
        try:
            core = client.CoreV1Api(api)
            create_object(core.create_namespace, {"metadata": {"name": NAMESPACE}})
            # The rotator only updates this Secret: it has to exist.
            create_object(core.create_namespaced_secret, NAMESPACE, {"metadata": {"name": SECRET}})
            with self.log_path.open("ab") as log:
                self._process = subprocess.Popen(
                    [str(self.binary), f"--config={config}"],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=dict(os.environ, KUBECONFIG=str(self.kubeconfig)),
                    cwd=self.directory,
                )
            try:
                self._wait_ready(api, timeout)
            except BaseException:
                self.stop()
                raise
        finally:
            api.close()

    def _wait_ready(self, api: client.ApiClient, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                raise KueueError(f"kueue exited while starting; {self.log_tail()}")
            self._copy_certificate(api)
            if READY_LINE in self.log_path.read_text(errors="replace") and self._ready():
                return
            if time.monotonic() > deadline:
                raise KueueError(f"kueue was not ready after {timeout:.0f}s; {self.log_tail()}")
            time.sleep(0.2)

    def _copy_certificate(self, api: client.ApiClient) -> None:
        """What the kubelet does for Kueue's pod: put the Secret's key pair into the folder."""
        secret = read_json(client.CoreV1Api(api).read_namespaced_secret, SECRET, NAMESPACE)
        data = secret.get("data") or {}
        for key in ("tls.crt", "tls.key"):
            if key in data:
                target = self.cert_dir / key
                content = base64.b64decode(data[key])
                if not target.exists() or target.read_bytes() != content:
                    target.write_bytes(content)

    def _ready(self) -> bool:
        try:
            url = f"http://127.0.0.1:{self.health_port}/readyz"
            with urllib.request.urlopen(url, timeout=2) as reply:
                return bool(reply.status == 200)
        except OSError:
            return False

    def stop(self, grace: float = 30) -> None:
        """SIGTERM, then SIGKILL after grace seconds."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the current run so far (Linux); None when not running."""
        if self._process is None or not self.running:
            return None
        return processes.cpu_seconds(self._process.pid)

    def log_tail(self, lines: int = 30) -> str:
        return f"last lines of {self.log_path}:\n{processes.log_tail(self.log_path, lines)}"

    def __enter__(self) -> KueueProcess:
        self.start()
        return self

    def __exit__(self, *_exception: object) -> None:
        self.stop()
