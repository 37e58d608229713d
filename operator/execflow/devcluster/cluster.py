"""Start, reuse, inspect and stop the local control plane: etcd, the Kubernetes control plane, kwok.

Everything runs on 127.0.0.1 with TLS, client-certificate identities, RBAC authorization and
service-account token signing, as a real cluster does; only the nodes are fake (kwok), and pods on
them follow the project's simulation stages. An S3 server runs next to it (object_store.py). All
state (data, certificates, kubeconfigs, logs, pids) lives in one folder, so `down` is a clean slate
and a second `up` reuses what already runs: components that stopped are started again with the
same ports, data and certificates, and the folder is only wiped when that state cannot be reused.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from execflow.devcluster import nodes, object_store, pki, probes, processes
from execflow.devcluster.build import ensure_binaries
from execflow.devcluster.components import state_dir
from execflow.devcluster.configuration import SERVICE_IP, command_line, kubeconfig
from execflow.devcluster.nodes import NodeShape
from execflow.devcluster.probes import free_port

# NodeShape and free_port are named here too: callers take them where they take the cluster.
__all__ = [
    "CONTROL_PLANE",
    "FAKE_POD_LOG",
    "START_ORDER",
    "ClusterError",
    "LocalCluster",
    "NodeShape",
    "free_port",
]

CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
# The S3 server comes last: publishing its Secret needs the API server.
START_ORDER = (*CONTROL_PLANE, object_store.NAME)
FAKE_POD_LOG = (
    "execflow local cluster: this pod ran on a kwok fake node, where no process runs; "
    "its simulated result is its termination message (sim.execflow.dev/message)"
)
"""What `kubectl logs` prints for any pod on the local cluster's fake nodes."""


class ClusterError(RuntimeError):
    """The cluster could not be brought up; the message names the component and its log tail."""


@dataclass
class ClusterState:
    ports: dict[str, int] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    nodes: NodeShape = field(default_factory=NodeShape)

    @classmethod
    def load(cls, path: Path) -> ClusterState | None:
        """The saved state; None when there is none or it cannot be read."""
        try:
            raw = json.loads(path.read_text())
            return cls(ports=raw["ports"], pids=raw["pids"], nodes=NodeShape(**raw["nodes"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))


class LocalCluster:
    """A control plane whose processes outlive the command that started them."""

    def __init__(self, directory: Path | None = None) -> None:
        self.dir = directory or state_dir()
        self.state_file = self.dir / "cluster.json"
        self.kubeconfig = self.dir / "kubeconfig"
        self.pki_dir = self.dir / "pki"
        self.logs = self.dir / "logs"
        self.s3 = object_store.ObjectStore(self.dir)

    # ----- inspection -------------------------------------------------------------------
    def state(self) -> ClusterState | None:
        return ClusterState.load(self.state_file)

    def running(self) -> dict[str, bool]:
        state = self.state()
        if state is None:
            return {}
        return {name: processes.alive(pid) for name, pid in state.pids.items()}

    def healthy(self) -> bool:
        state = self.state()
        if state is None or not all(self.running().values()):
            return False
        return len(state.pids) == len(START_ORDER) and self._apiserver_ready(state)

    def control_plane_ready(self) -> bool:
        """Whether `up` reuses this cluster (and only starts what else is missing)."""
        state = self.state()
        return state is not None and self._control_plane_ready(state)

    # ----- lifecycle ----------------------------------------------------------------------
    def up(self, shape: NodeShape, progress: Callable[[str], None]) -> Path:
        """Start the cluster, or reuse the one in the folder: what runs is kept, what stopped is
        started again. Only a state that cannot be reused is wiped first (and `progress` says why).
        """
        state = self.state()
        if state is not None and self._control_plane_ready(state):
            progress(f"reusing the running cluster in {self.dir}")
            self._serve_objects(state, ensure_binaries(progress), progress)
            return self.kubeconfig
        if state is not None:
            why = self._unusable(state)
            if why is None:
                try:
                    return self._revive(state, progress)
                except (ClusterError, OSError) as error:
                    why = f"restarting what had stopped failed: {error}"
            progress(f"cannot reuse the cluster in {self.dir}, starting afresh: {why}")
            self.down(progress)
        elif self.state_file.exists():
            progress(f"cannot read {self.state_file}, starting afresh")
            self.down(progress)
        binaries = ensure_binaries(progress)
        started = time.monotonic()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        pki.generate(self.pki_dir, SERVICE_IP)
        state = ClusterState(
            ports={name: free_port() for name in ("etcd-peer", *CONTROL_PLANE)}, nodes=shape
        )
        self._write_kubeconfigs(state)
        self._write_stages()
        try:
            for name in CONTROL_PLANE:
                self._spawn(name, binaries, state)
                progress(f"started {name} (pid {state.pids[name]})")
            self._wait_nodes(state)
            self._wait_default_service_account(state)
            self._serve_objects(state, binaries, progress)
            dead = [name for name, pid in state.pids.items() if not processes.alive(pid)]
            if dead:
                # A component can answer its probe and still exit (its port was taken by
                # another process meanwhile): start what died again, once.
                progress(f"{', '.join(dead)} exited after starting: starting again")
                return self._revive(state, progress)
        except ClusterError:
            self.down(lambda _message: None, keep_logs=True)
            raise
        progress(
            f"cluster ready in {time.monotonic() - started:.1f}s: "
            f"{shape.count} nodes x {shape.cpu} CPU x {shape.memory}"
        )
        return self.kubeconfig

    def down(self, progress: Callable[[str], None], keep_logs: bool = False) -> None:
        state = self.state()
        if state is not None:
            for name in reversed(START_ORDER):
                pid = state.pids.get(name)
                if pid is not None and processes.stop(pid, name, grace=10):
                    progress(f"stopped {name}")
        if self.dir.exists():
            for child in self.dir.iterdir():
                if keep_logs and child == self.logs:
                    continue
                if child.is_dir():
                    shutil.rmtree(child)
                else:
                    child.unlink()
            if not keep_logs:
                self.dir.rmdir()

    # ----- faults, for tests of what happens when the control plane misbehaves ---------------
    def restart(self, name: str, progress: Callable[[str], None] = lambda _m: None) -> None:
        """Stop one component and start it again with the same ports and data; wait until ready.

        Restarting kube-apiserver drops every watch and empties its watch cache, so clients that
        reconnect from an old resourceVersion after an etcd compaction get 410 Gone.
        """
        state = self.state()
        if state is None:
            raise ClusterError("no local cluster to restart a component of")
        pid = state.pids.get(name)
        if pid is not None:
            processes.stop(pid, name, grace=30)
        binaries = ensure_binaries(progress)
        self._spawn(name, binaries, state)
        if name == "kwok":
            self._wait_nodes(state)
        progress(f"restarted {name} (pid {state.pids[name]})")

    def _unusable(self, state: ClusterState) -> str | None:
        """Why the stopped parts of this cluster cannot be started again as they were, or None."""
        ports = {"etcd-peer", *CONTROL_PLANE} - state.ports.keys()
        if ports:
            return f"{self.state_file} has no port for {', '.join(sorted(ports))}"
        absent = pki.missing(self.pki_dir)
        if absent:
            return f"{self.pki_dir} lacks {', '.join(absent)}"
        if not (self.dir / "etcd" / "member").is_dir():
            return f"the etcd data in {self.dir / 'etcd'} is missing"
        return None

    def _revive(self, state: ClusterState, progress: Callable[[str], None]) -> Path:
        """Start the components that stopped, on their ports, with their data and certificates."""
        stopped = [name for name in CONTROL_PLANE if not self._runs(name, state)]
        restarting = f"restarting {', '.join(stopped)}" if stopped else "waiting for the API server"
        progress(f"the cluster in {self.dir} is partly running: {restarting}")
        binaries = ensure_binaries(progress)
        self.logs.mkdir(exist_ok=True)
        self._write_kubeconfigs(state)
        self._write_stages()
        for name in stopped:
            self._spawn(name, binaries, state)
            progress(f"restarted {name} (pid {state.pids[name]})")
        # The API server may still be reconnecting to a restarted etcd.
        self._wait_started("kube-apiserver", state)
        self._wait_nodes(state)
        self._serve_objects(state, binaries, progress)
        return self.kubeconfig

    def compact_etcd(self) -> int:
        """Compact etcd's history up to its current revision; returns that revision.

        Afterwards no watch can resume from an older resourceVersion: it gets 410 Gone.
        """
        state = self.state()
        if state is None:
            raise ClusterError("no local cluster to compact")
        base = f"http://127.0.0.1:{state.ports['etcd']}/v3/kv"
        header = probes.post_json(f"{base}/range", {"key": "Lw=="})["header"]  # any key: "/"
        revision = int(header["revision"])
        probes.post_json(f"{base}/compaction", {"revision": revision, "physical": True})
        return revision

    def _serve_objects(
        self, state: ClusterState, binaries: dict[str, Path], progress: Callable[[str], None]
    ) -> None:
        """Start the S3 server unless it runs, then publish the Secret that says how to reach it
        (clusters started before the server existed get both on their next `up`)."""
        name = object_store.NAME
        pid = state.pids.get(name)
        if pid is None or not processes.alive(pid) or not processes.runs(pid, name):
            # A fresh port: the one it had may have been taken since it stopped.
            state.ports[name] = free_port()
            self._spawn(name, binaries, state)
            progress(f"started {name} (pid {state.pids[name]})")
        where = f"{object_store.SECRET_NAMESPACE}/{object_store.SECRET_NAME}"
        try:
            object_store.publish(
                self._caller(state),
                state.ports[name],
                self.s3.credentials(),
            )
        except OSError as error:
            raise ClusterError(f"could not publish the Secret {where}: {error}") from error
        progress(f"S3 server at {object_store.endpoint(state.ports[name])} (Secret {where})")

    def _spawn(self, name: str, binaries: dict[str, Path], state: ClusterState) -> None:
        env = dict(os.environ)
        if name == object_store.NAME:
            args, env = self.s3.launch(binaries[name], state.ports[name], env)
        else:
            args = command_line(name, str(binaries[name]), state.ports, self.dir)
        if name == "kwok":
            # A kwok started again is a new holder of the node Leases (nodes.py).
            self._wait_started("kube-apiserver", state)
            nodes.release_leases(self._caller(state))
            # kwok reads ~/.kwok/kwok.yaml when present: keep a user's file out of it.
            home = self.dir / "kwok-home"
            home.mkdir(exist_ok=True)
            env["HOME"] = str(home)
        log = (self.logs / f"{name}.log").open("ab")
        process = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
            cwd=self.dir,
        )
        log.close()
        state.pids[name] = process.pid
        state.save(self.state_file)
        self._wait_started(name, state)

    # ----- configuration -------------------------------------------------------------------
    def _write_kubeconfigs(self, state: ClusterState) -> None:
        server = f"https://127.0.0.1:{state.ports['kube-apiserver']}"
        for identity in pki.CLIENT_IDENTITIES:
            path = (
                self.kubeconfig
                if identity is pki.ADMIN
                else self.dir / f"{identity.file_stem}.kubeconfig"
            )
            path.write_text(
                yaml.safe_dump(kubeconfig(server, self.pki_dir, identity), sort_keys=False)
            )
            path.chmod(0o600)

    def _write_stages(self) -> None:
        """kwok's --config: the stages, and the log every fake pod's container serves."""
        stages = resources.files("execflow.devcluster").joinpath("stages")
        documents = [stages.joinpath(name).read_text() for name in ("nodes.yaml", "pods.yaml")]
        documents.append(yaml.safe_dump(self._pod_logs(), sort_keys=False))
        (self.dir / "kwok-stages.yaml").write_text("\n---\n".join(documents))

    def _pod_logs(self) -> dict[str, object]:
        """A ClusterLogs for every pod on the fake nodes: kwok v0.8 serves a log file per rule
        (not per pod, and not templated), so all of them share one line, in the CRI log format,
        that says why there is no real output and where the simulated result is."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        path = self.dir / "kwok-pod.log"
        path.write_text(f"{stamp} stdout F {FAKE_POD_LOG}\n")
        return {
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "ClusterLogs",
            "metadata": {"name": "execflow-simulated-pods"},
            "spec": {"selector": {}, "logs": [{"logsFile": str(path), "follow": False}]},
        }

    # ----- readiness -------------------------------------------------------------------------
    def _apiserver_ready(self, state: ClusterState) -> bool:
        return probes.apiserver_ready(self._caller(state))

    def _caller(self, state: ClusterState) -> probes.ApiRequest:
        return probes.admin_api(self.pki_dir, state.ports["kube-apiserver"])

    def _runs(self, name: str, state: ClusterState) -> bool:
        pid = state.pids.get(name)
        return pid is not None and processes.alive(pid) and processes.runs(pid, name)

    def _control_plane_ready(self, state: ClusterState) -> bool:
        running = all(self._runs(name, state) for name in CONTROL_PLANE)
        return running and self._apiserver_ready(state)

    def _probe(self, name: str, state: ClusterState) -> bool:
        if name == object_store.NAME:
            return object_store.answers(state.ports[name])
        return probes.component_ready(name, state.ports[name], self._caller(state))

    def _wait(
        self, what: str, component: str, check: Callable[[], bool], timeout: float = 120
    ) -> None:
        deadline = time.monotonic() + timeout
        state = self.state()
        pid = state.pids.get(component) if state else None
        while time.monotonic() < deadline:
            if check():
                return
            if pid is not None and not processes.alive(pid):
                log = self.logs / f"{component}.log"
                raise ClusterError(
                    f"{component} exited while {what}; last lines of {log}:\n"
                    f"{processes.log_tail(log)}"
                )
            time.sleep(0.1)
        log = self.logs / f"{component}.log"
        raise ClusterError(
            f"timed out after {timeout:.0f}s {what} ({component}); "
            f"last lines of {log}:\n{processes.log_tail(log)}"
        )

    def _wait_started(self, name: str, state: ClusterState) -> None:
        self._wait(f"starting {name}", name, lambda: self._probe(name, state))

    def _wait_nodes(self, state: ClusterState) -> None:
        """Create the fake nodes that are missing; wait until kwok holds them and they are Ready."""
        api = self._caller(state)
        nodes.create(api, state.nodes)
        self._wait(
            "waiting for the fake nodes to become Ready",
            "kwok",
            lambda: nodes.managed(api, state.nodes.count),
        )

    def _wait_default_service_account(self, state: ClusterState) -> None:
        api = self._caller(state)

        def exists() -> bool:
            try:
                api("GET", "/api/v1/namespaces/default/serviceaccounts/default", None)
            except urllib.error.HTTPError:
                return False
            return True

        self._wait("waiting for the default ServiceAccount", "kube-controller-manager", exists)
