"""The local cluster's fake nodes: their shape, their creation, and when kwok has them in hand.

kwok only simulates a node whose Lease it holds (--node-lease-duration-seconds), and a Lease
names its holder, a kwok process. A kwok that is started again is another holder, and would wait
for the old Leases to expire before simulating anything; since the old kwok is known to be gone
by then, its Leases are deleted first, so the new one takes every node at once.
"""

from __future__ import annotations

import urllib.error
from dataclasses import dataclass
from typing import Any

from execflow.devcluster.configuration import NODE_ANNOTATION
from execflow.devcluster.probes import ApiRequest as Api

LABEL_SELECTOR = "type%3Dkwok"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"


@dataclass(frozen=True)
class NodeShape:
    count: int = 4
    cpu: str = "8"
    memory: str = "32Gi"
    pods: int = 1000


def node_name(index: int) -> str:
    return f"kwok-node-{index}"


def create(api: Api, shape: NodeShape) -> None:
    """Create the nodes of shape that do not exist yet, for kwok to manage."""
    resources = {"cpu": shape.cpu, "memory": shape.memory, "pods": str(shape.pods)}
    existing = {item["metadata"]["name"] for item in api("GET", "/api/v1/nodes", None)["items"]}
    for index in range(shape.count):
        if node_name(index) in existing:
            continue
        api(
            "POST",
            "/api/v1/nodes",
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": node_name(index),
                    "annotations": {NODE_ANNOTATION: "fake"},
                    "labels": {
                        "type": "kwok",
                        "kubernetes.io/hostname": node_name(index),
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                    },
                },
                "status": {"allocatable": resources, "capacity": resources},
            },
        )


def _fake_nodes(api: Api) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = api("GET", f"/api/v1/nodes?labelSelector={LABEL_SELECTOR}", None)[
        "items"
    ]
    return nodes


def managed(api: Api, count: int) -> bool:
    """Whether at least count fake nodes are Ready and each of those has a Lease (kwok holds it)."""
    leased = {item["metadata"]["name"] for item in api("GET", LEASES, None)["items"]}
    ready = [
        node
        for node in _fake_nodes(api)
        if node["metadata"]["name"] in leased
        and any(
            condition["type"] == "Ready" and condition["status"] == "True"
            for condition in node.get("status", {}).get("conditions", [])
        )
    ]
    return len(ready) >= count


def release_leases(api: Api) -> None:
    """Delete the fake nodes' Leases; only while no kwok runs (the holder is gone)."""
    for node in _fake_nodes(api):
        try:
            api("DELETE", f"{LEASES}/{node['metadata']['name']}", None)
        except urllib.error.HTTPError as error:
            if error.code != 404:
                raise
