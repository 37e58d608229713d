"""Fixtures for tests against a real Kubernetes control plane.

The session uses the cluster named by EXECFLOW_TEST_KUBECONFIG when set (kind, for example);
otherwise it brings up the project's local control plane (`execflow cluster up`), and stops it at
the end when it was the one that started it (EXECFLOW_KEEP_CLUSTER=1 keeps it for the next run).
Every test gets a fresh namespace that is deleted afterwards.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from execflow.devcluster.cluster import LocalCluster, NodeShape
from execflow.kube.crds import install_crds
from tests.integration.operator_process import OperatorProcess
from tests.integration.waiting import wait_for

LOCAL_SHAPE = NodeShape(count=4, cpu="8", memory="32Gi")

# Queues the scheduling tests use: one slot each, so start order shows the strategy's order.
OPERATOR_SETTINGS = """
queues:
  default: {maxConcurrentTasks: 100}
  fifo: {strategy: FIFO, maxConcurrentTasks: 1}
  priority: {strategy: Priority, maxConcurrentTasks: 1}
  sjf: {strategy: ShortestJobFirst, maxConcurrentTasks: 1}
  edf: {strategy: DeadlineAware, maxConcurrentTasks: 1}
  adaptive: {strategy: Adaptive, maxConcurrentTasks: 1}
  one-slot: {strategy: FIFO, maxConcurrentTasks: 1}
  small: {strategy: FIFO, maxConcurrentTasks: 1, maxQueuedTasks: 2}
  preempt: {strategy: Priority, maxConcurrentTasks: 1, preemption: true}
  shared: {strategy: FIFO, maxConcurrentTasks: 3}
"""


@pytest.fixture(scope="session")
def local_cluster() -> Iterator[LocalCluster | None]:
    if os.environ.get("EXECFLOW_TEST_KUBECONFIG"):
        yield None
        return
    cluster = LocalCluster()
    reused = cluster.healthy()
    cluster.up(LOCAL_SHAPE, lambda message: print(message, file=sys.stderr))
    yield cluster
    if not reused and not os.environ.get("EXECFLOW_KEEP_CLUSTER"):
        cluster.down(lambda _message: None)


@pytest.fixture(scope="session")
def kubeconfig(local_cluster: LocalCluster | None) -> Path:
    if local_cluster is None:
        return Path(os.environ["EXECFLOW_TEST_KUBECONFIG"])
    return local_cluster.kubeconfig


@pytest.fixture(scope="session")
def api(kubeconfig: Path) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(kubeconfig))


@pytest.fixture
def namespace(api: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    core = client.CoreV1Api(api)
    stem = request.node.name.replace("_", "-").lower()[:40].strip("-")
    name = f"{stem}-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))

    def default_service_account() -> bool:
        return any(
            sa.metadata.name == "default" for sa in core.list_namespaced_service_account(name).items
        )

    # Pods are refused until the namespace's default ServiceAccount exists.
    wait_for(default_service_account, 60, f"the default ServiceAccount in {name}")
    yield name
    core.delete_namespace(name)


@pytest.fixture(scope="session")
def operator(
    api: client.ApiClient, kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    install_crds(api)
    process = OperatorProcess(kubeconfig, tmp_path_factory.mktemp("operator"), OPERATOR_SETTINGS)
    process.start()
    yield process
    process.stop()
