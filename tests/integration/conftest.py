"""Fixtures for tests against a real Kubernetes control plane.

The session uses the cluster named by EXECFLOW_TEST_KUBECONFIG when set (kind, for example);
otherwise it brings up the project's local control plane (`execflow cluster up`), and stops it at
the end when it was the one that started it (EXECFLOW_KEEP_CLUSTER=1 keeps it for the next run).
The session's API client installs the execflow CRDs first; every test gets a fresh namespace that
is deleted afterwards.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from execflow.devcluster import harness
from execflow.devcluster.cluster import LocalCluster, NodeShape
from tests.integration.operator_process import OperatorProcess
from tests.integration.resultsets import Bucket, s3_bucket

LOCAL_SHAPE = NodeShape(count=4, cpu="8", memory="32Gi")

# Queues the scheduling tests use: one slot each, so start order shows the strategy's order.
# A pod that cannot be created fails its attempt after 5 s instead of 2 minutes, and a deleted
# ResultSet whose S3 store cannot be reached is let go after 5 s instead of a minute.
OPERATOR_SETTINGS = """
podCreateTimeout: 5s
storageCleanupTimeout: 5s
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
def cluster() -> Iterator[harness.Cluster]:
    given = os.environ.get("EXECFLOW_TEST_KUBECONFIG")
    with harness.use_cluster(
        lambda message: print(message, file=sys.stderr),
        kubeconfig=Path(given) if given else None,
        shape=LOCAL_SHAPE,
        stop_shared=not os.environ.get("EXECFLOW_KEEP_CLUSTER"),
    ) as chosen:
        yield chosen


@pytest.fixture(scope="session")
def local_cluster(cluster: harness.Cluster) -> LocalCluster | None:
    return cluster.local


@pytest.fixture(scope="session")
def kubeconfig(cluster: harness.Cluster) -> Path:
    return cluster.kubeconfig


@pytest.fixture(scope="session")
def api(kubeconfig: Path) -> client.ApiClient:
    return harness.connect(kubeconfig, with_crds=True)


@pytest.fixture
def namespace(api: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    name = harness.create_namespace(api, request.node.name)
    yield name
    harness.delete_namespace(api, name)


@pytest.fixture(scope="session")
def operator(
    api: client.ApiClient, kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    process = OperatorProcess(kubeconfig, tmp_path_factory.mktemp("operator"), OPERATOR_SETTINGS)
    process.start()
    yield process
    process.stop()


@pytest.fixture
def bucket(api: client.ApiClient) -> Iterator[Bucket]:
    """A bucket of the local S3 server for one test, emptied and removed afterwards."""
    with s3_bucket(api) as made:
        yield made
