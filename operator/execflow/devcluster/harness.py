"""Everything a run against a real cluster needs before and around its first object.

The integration tests, `make demo` and the benchmarks all choose a cluster, install the CRDs,
start the operator as the same `execflow run` process a user starts, and work in namespaces of
their own. They do it here, once, so that what the tests exercise is what the demo shows and the
benchmarks measure.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import urllib3
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from prometheus_client.parser import text_string_to_metric_families

from execflow.devcluster import processes
from execflow.devcluster.cluster import LocalCluster, NodeShape, free_port
from execflow.kube.crds import install_crds
from execflow.kube.webhook import CONFIGURATION_NAME, local_endpoint

Progress = Callable[[str], None]
ClusterMode = Literal["external", "shared", "private"]

OPERATOR_COMMAND = (sys.executable, "-m", "execflow.cli.main")
DEFAULT_SHAPE = NodeShape()


# ----- the cluster ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cluster:
    """The cluster a run uses: `external` (a given kubeconfig), `shared` (the local control plane
    in the state folder, which others may use too) or `private` (a local one for this run only)."""

    kubeconfig: Path
    mode: ClusterMode
    local: LocalCluster | None


@contextmanager
def use_cluster(
    progress: Progress,
    *,
    kubeconfig: Path | None = None,
    private: bool = False,
    shape: NodeShape = DEFAULT_SHAPE,
    stop_shared: bool = False,
) -> Iterator[Cluster]:
    """A cluster for the duration of the block.

    A given kubeconfig is used as it is. Otherwise the shared local cluster is brought up or
    reused; with stop_shared it is stopped at the end, but only when this call brought it up.
    A private cluster lives in a temporary folder that is removed at the end, whatever happens.
    """
    if kubeconfig is not None:
        yield Cluster(kubeconfig, "external", None)
        return
    if private:
        directory = Path(tempfile.mkdtemp(prefix="execflow-cluster-"))
        local = LocalCluster(directory)
        progress(f"starting a private local control plane in {directory}")
        try:
            yield Cluster(local.up(shape, progress), "private", local)
        finally:
            # Its whole folder goes, logs included, even when it failed to start.
            local.down(progress)
        return
    local = LocalCluster()
    reused = local.control_plane_ready()
    kubeconfig = local.up(shape, progress)
    try:
        yield Cluster(kubeconfig, "shared", local)
    finally:
        if stop_shared and not reused:
            local.down(progress)


def connect(
    kubeconfig: Path, *, pool_size: int | None = None, with_crds: bool = False
) -> client.ApiClient:
    """An API client for kubeconfig; with_crds installs (or updates) the execflow CRDs and
    returns once they are served. pool_size raises the connection pool for threaded callers."""
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    if pool_size is not None:
        configuration.connection_pool_maxsize = pool_size
    api = client.ApiClient(configuration)
    if with_crds:
        install_crds(api)
    return api


# ----- namespaces -------------------------------------------------------------------------------
def create_namespace(
    api: client.ApiClient,
    stem: str,
    *,
    labels: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> str:
    """Create a namespace named after stem plus a random suffix; return its name once it can run
    pods, i.e. once its `default` ServiceAccount exists (pods are refused before that)."""
    label = re.sub(r"[^a-z0-9-]+", "-", stem.lower())[:40].strip("-")
    name = f"{label}-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api)
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=dict(labels or {})))
    )
    deadline = time.monotonic() + timeout
    while True:
        try:
            core.read_namespaced_service_account("default", name)
            return name
        except ApiException as error:
            if error.status != 404:
                raise
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"no default ServiceAccount in namespace {name} after {timeout:.0f}s"
            )
        time.sleep(0.1)


def delete_namespace(api: client.ApiClient, name: str) -> None:
    """Start deleting a namespace and everything in it (already gone is fine)."""
    try:
        client.CoreV1Api(api).delete_namespace(name, propagation_policy="Background")
    except ApiException as error:
        if error.status != 404:
            raise


def wait_namespaces_gone(api: client.ApiClient, names: Iterable[str], timeout: float) -> list[str]:
    """Wait until deleted namespaces are gone; return those still terminating at the deadline."""
    core = client.CoreV1Api(api)
    remaining = list(names)
    deadline = time.monotonic() + timeout
    while remaining:
        still = []
        for name in remaining:
            try:
                core.read_namespace(name)
                still.append(name)
            except ApiException as error:
                if error.status != 404:
                    still.append(name)
        remaining = still
        if not remaining or time.monotonic() > deadline:
            break
        time.sleep(1)
    return remaining


# ----- the operator -----------------------------------------------------------------------------
class OperatorError(RuntimeError):
    """The operator process did not come up or is not running; the message names its log."""


class OperatorProcess:
    """`execflow run` as a child process, with its own metrics and webhook ports, settings file
    and one log per start (`operator-<n>.log` in directory).

    settings_path may be rewritten while it runs: the operator reloads it without a restart.
    Each start serves the Workflow admission webhook on a free port and registers it (the
    configuration `execflow.dev`, pointing at https://127.0.0.1:<webhook_port>; the last
    operator started holds it, and live operators take it back from stopped ones within
    seconds). A clean stop removes that registration if it is still this process's; a kill
    leaves it (failurePolicy Ignore makes a dead one harmless).
    """

    def __init__(
        self,
        kubeconfig: Path,
        directory: Path,
        settings: str = "",
        namespaces: Sequence[str] = (),
        *,
        command: Sequence[str] = OPERATOR_COMMAND,
        options: Sequence[str] = (),
    ) -> None:
        """`options` are further `execflow run` options, e.g. for leader election."""
        self.kubeconfig = kubeconfig
        self.directory = directory
        self.namespaces = tuple(namespaces)
        self.options = tuple(options)
        self.command = tuple(command)
        self.settings_path = directory / "settings.yaml"
        directory.mkdir(parents=True, exist_ok=True)
        self.settings_path.write_text(settings)
        self.port = 0
        self.webhook_port = 0
        self.starts = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        """The log of the current (or last) run."""
        return self.directory / f"operator-{self.starts}.log"

    @property
    def pid(self) -> int | None:
        """The process id of the current run (a replica names itself after it in its Lease)."""
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 60) -> None:
        """Start it and return once it serves /metrics; OperatorError if it exits or hangs."""
        if self.running:
            raise OperatorError(f"the operator already runs (log: {self.log_path})")
        self.port = free_port()
        self.webhook_port = free_port()
        self.starts += 1
        args = [*self.command, "run", "--metrics-port", str(self.port)]
        args += ["--webhook-port", str(self.webhook_port)]
        args += ["--settings", str(self.settings_path)]
        for namespace in self.namespaces:
            args += ["--namespace", namespace]
        args += self.options
        with self.log_path.open("wb") as log:
            process = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(os.environ, KUBECONFIG=str(self.kubeconfig)),
            )
        self._process = process
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise OperatorError(
                    f"the operator exited with code {process.returncode} while starting; "
                    f"log: {self.log_path}"
                )
            try:
                self.metrics(timeout=1)
                return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise OperatorError(
                    f"the operator did not serve metrics within {timeout:.0f}s; "
                    f"log: {self.log_path}"
                )
            time.sleep(0.1)

    def stop(self, grace: float = 30) -> None:
        """SIGTERM (kopf finishes its handlers), then SIGKILL after grace seconds."""
        if self._process is None or not self.running:
            return
        self._process.send_signal(signal.SIGTERM)
        # A paused process only acts on the SIGTERM once it runs again.
        self._process.send_signal(signal.SIGCONT)
        try:
            self._process.wait(grace)
        except subprocess.TimeoutExpired:
            self.kill()
        self._unregister_webhook()

    def _unregister_webhook(self) -> None:
        """Delete the webhook configuration if it still points at this process. Best effort: a
        dead one is harmless, and failing to tidy up must not fail the stop."""
        try:
            api = connect(self.kubeconfig)
        except (config.ConfigException, OSError):
            return
        webhooks = client.AdmissionregistrationV1Api(api)
        try:
            found = webhooks.read_validating_webhook_configuration(CONFIGURATION_NAME)
            if [hook.client_config.url for hook in found.webhooks or []] == [
                local_endpoint(self.webhook_port).url
            ]:
                # Only that version: a 409 means another operator registered itself meanwhile.
                version = client.V1Preconditions(resource_version=found.metadata.resource_version)
                webhooks.delete_validating_webhook_configuration(
                    CONFIGURATION_NAME, body=client.V1DeleteOptions(preconditions=version)
                )
        except (ApiException, OSError, urllib3.exceptions.HTTPError):
            pass
        finally:
            api.close()

    def kill(self) -> None:
        """SIGKILL: no cleanup, no final writes, as when a node dies."""
        if self._process is None or not self.running:
            return
        self._process.send_signal(signal.SIGKILL)
        self._process.wait(10)

    def pause(self) -> None:
        """SIGSTOP: the process holds its connections and state but does nothing, so the API
        server can change under it. /metrics does not answer until resume()."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after pause()."""
        self._signal(signal.SIGCONT)

    def _signal(self, number: signal.Signals) -> None:
        if self._process is None or not self.running:
            raise OperatorError(f"the operator is not running (log: {self.log_path})")
        self._process.send_signal(number)

    def metrics(self, timeout: float = 10) -> str:
        """The Prometheus exposition text it serves now."""
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            text: str = reply.read().decode()
            return text

    def metric(self, name: str, /, **labels: str) -> float | None:
        """The sum of the samples called name (a counter's name ends in `_total`) whose labels
        include these; None when no sample matches."""
        values = [
            sample.value
            for family in text_string_to_metric_families(self.metrics())
            for sample in family.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        ]
        return sum(values) if values else None

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the current run so far (Linux); None when not running."""
        if self._process is None or not self.running:
            return None
        return processes.cpu_seconds(self._process.pid)

    def peak_rss_bytes(self) -> int | None:
        """The highest resident set size of the current run so far (Linux VmHWM); None when
        not running."""
        if self._process is None or not self.running:
            return None
        return processes.peak_rss_bytes(self._process.pid)

    def log_text(self) -> str:
        """The log text of the current (or last) run; empty before the first start."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")


# ----- what a benchmark records about where it ran ------------------------------------------------
def load_average() -> tuple[float, ...]:
    """The machine's 1, 5 and 15 minute load averages, rounded (benchmarks share the machine)."""
    return tuple(round(x, 2) for x in os.getloadavg())


def revision(repository: Path) -> str:
    """`git describe --always --dirty` of the checkout, or "unknown" outside one."""
    try:
        described = subprocess.run(
            ["git", "-C", str(repository), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return described.stdout.strip()


def add_cluster_options(parser: argparse.ArgumentParser) -> None:
    """`--cluster shared|private` and `--kubeconfig`, as every benchmark offers them."""
    parser.add_argument(
        "--cluster",
        choices=("shared", "private"),
        default="shared",
        help="shared: the local control plane (`execflow cluster up`, reused); private: a "
        "separate one for this run only (default shared)",
    )
    parser.add_argument("--kubeconfig", help="use this cluster instead of a local one")


def cluster_from_options(
    options: argparse.Namespace, progress: Progress
) -> AbstractContextManager[Cluster]:
    """`use_cluster` for the options `add_cluster_options` added."""
    return use_cluster(
        progress,
        kubeconfig=Path(options.kubeconfig) if options.kubeconfig else None,
        private=options.cluster == "private",
    )
