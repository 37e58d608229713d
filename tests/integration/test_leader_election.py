"""Two operator replicas against the real local control plane: one acts, the other takes over.

The session's shared operator is paused for the test so that only the two replicas under test
act on the namespace. Both hold their Lease in the test's namespace with a short duration; only
the holder creates Jobs, and when it is killed (no chance to release the Lease) the standby takes
over once the Lease has expired, and finishes the work.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from execflow.devcluster.harness import OperatorProcess
from tests.integration.objects import TERMINAL, create_task
from tests.integration.operator_process import wait_phase
from tests.integration.waiting import wait_for

LEASE_SECONDS = 6


def _holder(api: client.ApiClient, namespace: str) -> str | None:
    try:
        lease: Any = client.CoordinationV1Api(api).read_namespaced_lease(
            "execflow-operator", namespace
        )
    except client.ApiException:
        return None
    return str(lease.spec.holder_identity or "") or None


def _job_creates(replica: OperatorProcess) -> float:
    return replica.metric("execflow_api_writes_total", verb="create", resource="jobs") or 0.0


@pytest.fixture
def replicas(
    kubeconfig: Path, namespace: str, operator: OperatorProcess, tmp_path: Path
) -> Iterator[list[OperatorProcess]]:
    options = (
        "--leader-election-namespace",
        namespace,
        "--leader-election-lease",
        str(LEASE_SECONDS),
    )
    started = [
        OperatorProcess(kubeconfig, tmp_path / name, namespaces=[namespace], options=options)
        for name in ("a", "b")
    ]
    operator.pause()
    try:
        for replica in started:
            replica.start()
        yield started
    finally:
        for replica in started:
            replica.stop()
        operator.resume()


def test_only_the_lease_holder_acts_and_a_standby_takes_over(
    api: client.ApiClient, namespace: str, replicas: list[OperatorProcess]
) -> None:
    holder = wait_for(lambda: _holder(api, namespace), 30, "a replica to take the Lease")
    leader = next(r for r in replicas if str(r.pid) in holder)
    standby = next(r for r in replicas if r is not leader)

    names = [f"first-{i}" for i in range(4)]
    for name in names:
        create_task(api, namespace, name)
    for name in names:
        assert wait_phase(api, namespace, name, TERMINAL)["status"]["phase"] == "Completed"
    assert _job_creates(leader) == len(names)
    assert _job_creates(standby) == 0, "the standby wrote nothing"

    leader.kill()
    create_task(api, namespace, "after-failover")
    status = wait_phase(api, namespace, "after-failover", TERMINAL, timeout=60)["status"]
    assert status["phase"] == "Completed"
    assert str(standby.pid) in (_holder(api, namespace) or "")
    assert _job_creates(standby) == 1
