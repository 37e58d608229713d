"""Kueue next to the local control plane, so that benchmarks can compare execflow with it.

Why this exists: the throughput benchmark, which reports execflow next to bare Jobs, gains a third
column with the same Jobs admitted through Kueue, a widely used batch queue. Kueue is built from
its Go module at a pinned version into the cache of the cluster's other binaries (only when a
benchmark asks, never for `make test`) and runs as a local process with the admin kubeconfig. In
a real cluster it runs in a pod: its cert rotator writes the webhook certificate into a Secret,
the kubelet mounts that Secret, and the rotator injects its CA into Kueue's webhook configurations
and into its CRDs' conversion webhooks. Here this module plays the kubelet (it copies the Secret
into the certificate folder), registers no webhook configuration (Jobs are created suspended with
the queue-name label, as the webhook would leave them), and gives the CRDs a conversion stanza only
so that the rotator can inject its CA and report ready. The stanza names a Service that does not
exist: only a client asking for the older API version (v1beta1) would need it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from execflow.devcluster.build import BuildError, check_go, go_environment, run_go
from execflow.devcluster.components import Component, binary_path, cache_dir

KUEUE_VERSION = "v0.17.0"
MODULE = "sigs.k8s.io/kueue"
KUEUE = Component("kueue", KUEUE_VERSION, f"{MODULE}/cmd/kueue", None)
GROUP, API_VERSION = "kueue.x-k8s.io", "v1beta2"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
NAMESPACE = "kueue-system"
"""Where Kueue keeps its webhook certificate Secret (its configuration's `namespace`)."""
SECRET = "kueue-webhook-server-cert"
SERVICE = "kueue-webhook-service"
CRD_FOLDER = Path("config/components/crd/bases")
CONVERTED_CRDS = frozenset(
    f"{plural}.{GROUP}"
    for plural in ("localqueues", "clusterqueues", "workloads", "cohorts", "multikueueclusters")
)
"""The CRDs Kueue's cert rotator injects its CA into (it waits until it could)."""
FLAVOR = "execflow-default"
LOCAL_QUEUE = "execflow"
READY_LINE = "Starting manager"
"""Logged once the certificates are in place; a bootstrap manager answers /readyz before."""
Progress = Callable[[str], None]


class KueueError(RuntimeError):
    """Kueue could not be built, set up or started; the message says why (with its log tail)."""


# ----- building ---------------------------------------------------------------------------------
def ensure_kueue(progress: Progress | None = None) -> Path:
    """The Kueue manager binary, built from its Go module on the first call and cached after."""
    say = progress or (lambda message: print(message, file=sys.stderr))
    binary = binary_path(KUEUE)
    if binary.exists():
        return binary
    go = check_go()
    log = cache_dir() / "build.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    say(f"building kueue {KUEUE.version} (first run only, several minutes; log: {log})")
    started = time.monotonic()
    stamp = f"-s -w -X {MODULE}/pkg/version.GitVersion={KUEUE.version}"
    with tempfile.TemporaryDirectory(prefix="execflow-build-", dir=cache_dir()) as tmp:
        out, target = Path(tmp), f"{KUEUE.package}@{KUEUE.version}"
        run_go([go, "install", "-ldflags", stamp, target], out, log, gobin=out)
        binary.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(out / KUEUE.name), binary)
    say(f"built kueue in {time.monotonic() - started:.0f}s")
    return binary


def module_dir() -> Path:
    """The downloaded Kueue module (its CRDs are read from there), from the Go module cache."""
    go = check_go()
    cache_dir().mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [go, "mod", "download", "-json", f"{MODULE}@{KUEUE.version}"],
        capture_output=True,
        text=True,
        check=False,
        env=go_environment(),
        cwd=cache_dir(),
    )
    if result.returncode != 0:
        raise BuildError(f"go mod download {MODULE}@{KUEUE.version} failed: {result.stderr}")
    return Path(json.loads(result.stdout)["Dir"])


# ----- objects in the cluster -------------------------------------------------------------------
def read_json(call: Callable[..., Any], *args: Any) -> Any:
    """A read as JSON, without the client models (Kueue's CRDs are too big for them)."""
    response = call(*args, _preload_content=False)
    data = response.data
    response.release_conn()
    return json.loads(data)


def has_condition(thing: dict[str, Any], kind: str) -> bool:
    """Whether an object's status has the condition kind with status True."""
    conditions = (thing.get("status") or {}).get("conditions") or []
    return any(c["type"] == kind and c["status"] == "True" for c in conditions)


def drain(response: Any) -> None:
    """Read a `_preload_content=False` reply to its end, so its connection can be reused."""
    response.read()
    response.release_conn()


def create_object(call: Callable[..., Any], *args: Any) -> bool:
    """Create an object; False when it already exists."""
    try:
        drain(call(*args, _preload_content=False))
    except ApiException as error:
        if error.status != 409:
            raise
        return False
    return True


def apply_crds(
    api: client.ApiClient,
    source: Path | None = None,
    *,
    namespace: str = NAMESPACE,
    timeout: float = 60,
) -> list[str]:
    """Create or update Kueue's CRDs from the downloaded module (source: its folder) and wait
    until they are served; returns their names. A CA injected by an earlier run is kept."""
    extensions = client.ApiextensionsV1Api(api)
    folder = (source or module_dir()) / CRD_FOLDER
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    service = {"namespace": namespace, "name": SERVICE, "path": "/convert", "port": 443}
    names: list[str] = []
    for path in sorted(folder.glob("*.yaml")):
        crd: dict[str, Any] = yaml.load(path.read_text(), Loader=loader)
        name = crd["metadata"]["name"]
        names.append(name)
        if name in CONVERTED_CRDS:
            webhook = {"conversionReviewVersions": ["v1"], "clientConfig": {"service": service}}
            crd["spec"]["conversion"] = {"strategy": "Webhook", "webhook": webhook}
        if create_object(extensions.create_custom_resource_definition, crd):
            continue
        current = read_json(extensions.read_custom_resource_definition, name)
        crd["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        config = current["spec"].get("conversion", {}).get("webhook", {}).get("clientConfig", {})
        if name in CONVERTED_CRDS and config.get("caBundle"):
            crd["spec"]["conversion"]["webhook"]["clientConfig"]["caBundle"] = config["caBundle"]
        drain(extensions.replace_custom_resource_definition(name, crd, _preload_content=False))
    deadline = time.monotonic() + timeout
    for name in names:
        while not has_condition(
            read_json(extensions.read_custom_resource_definition, name), "Established"
        ):
            if time.monotonic() > deadline:
                raise KueueError(f"CRD {name} was not established within {timeout:.0f}s")
            time.sleep(0.1)
    return names


def _apply_kueue_object(
    api: client.ApiClient, kind: str, name: str, spec: dict[str, Any], namespace: str = ""
) -> None:
    """Create a Kueue object (cluster-scoped unless namespace is given) unless it exists."""
    custom = client.CustomObjectsApi(api)
    body = {
        "apiVersion": f"{GROUP}/{API_VERSION}",
        "kind": kind,
        "metadata": {"name": name, **({"namespace": namespace} if namespace else {})},
        "spec": spec,
    }
    plural = f"{kind.lower()}s"
    if namespace:
        create_object(
            custom.create_namespaced_custom_object, GROUP, API_VERSION, namespace, plural, body
        )
    else:
        create_object(custom.create_cluster_custom_object, GROUP, API_VERSION, plural, body)


def setup_queues(api: client.ApiClient, namespace: str, capacity: int = 100_000) -> str:
    """A ResourceFlavor, a ClusterQueue (named after the namespace, admitting only from it) whose
    quota holds `capacity` pods, CPUs and GiB at once, and a LocalQueue in the namespace pointing
    at it; returns the LocalQueue's name, the value of the Jobs' queue-name label."""
    _apply_kueue_object(api, "ResourceFlavor", FLAVOR, {})
    quota = {"cpu": str(capacity), "memory": f"{capacity}Gi", "pods": str(capacity)}
    resources = [{"name": name, "nominalQuota": value} for name, value in quota.items()]
    flavors = [{"name": FLAVOR, "resources": resources}]
    spec = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
        "resourceGroups": [{"coveredResources": list(quota), "flavors": flavors}],
    }
    _apply_kueue_object(api, "ClusterQueue", namespace, spec)
    _apply_kueue_object(api, "LocalQueue", LOCAL_QUEUE, {"clusterQueue": namespace}, namespace)
    return LOCAL_QUEUE


def wait_queue_active(api: client.ApiClient, namespace: str, timeout: float = 60) -> None:
    """Wait until Kueue reports the namespace's LocalQueue (and so its ClusterQueue) Active."""
    custom = client.CustomObjectsApi(api)
    deadline = time.monotonic() + timeout
    while True:
        queue = read_json(
            custom.get_namespaced_custom_object,
            *(GROUP, API_VERSION, namespace, "localqueues", LOCAL_QUEUE),
        )
        if has_condition(queue, "Active"):
            return
        if time.monotonic() > deadline:
            raise KueueError(f"LocalQueue {namespace}/{LOCAL_QUEUE} not Active: {queue}")
        time.sleep(0.2)


def wait_workloads_released(
    api: client.ApiClient, namespace: str, count: int, timeout: float = 120
) -> None:
    """Wait until Kueue is done with count Workloads in namespace: each one Finished and its
    finalizer removed (Kueue does both after the Job completes; until then neither the namespace
    nor the ClusterQueue can be deleted)."""
    custom = client.CustomObjectsApi(api)
    deadline = time.monotonic() + timeout
    while True:
        items = read_json(
            custom.list_namespaced_custom_object, GROUP, API_VERSION, namespace, "workloads"
        )["items"]
        released = sum(
            1 for w in items if has_condition(w, "Finished") and not w["metadata"].get("finalizers")
        )
        if released >= count:
            return
        if time.monotonic() > deadline:
            raise KueueError(f"Kueue released {released}/{count} Workloads in {timeout:.0f}s")
        time.sleep(0.5)


def remove_queues(api: client.ApiClient, namespace: str, timeout: float = 30) -> bool:
    """Delete the namespace's ClusterQueue (cluster-scoped: the namespace's deletion leaves it)
    and wait until it is gone; whether it went. Kueue must run: it removes the queue's finalizer
    once no Workload uses it."""
    custom = client.CustomObjectsApi(api)
    deadline = time.monotonic() + timeout
    try:
        drain(
            custom.delete_cluster_custom_object(
                GROUP, API_VERSION, "clusterqueues", namespace, _preload_content=False
            )
        )
        while time.monotonic() < deadline:
            read_json(
                custom.get_cluster_custom_object, GROUP, API_VERSION, "clusterqueues", namespace
            )
            time.sleep(0.2)
    except ApiException as error:
        if error.status != 404:
            raise
        return True
    return False


# ----- the manager process ----------------------------------------------------------------------
