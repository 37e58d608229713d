"""How each component of the local control plane is configured: command lines and kubeconfigs.

Everything listens on 127.0.0.1 with TLS and client certificates; the API server authorizes with
Node and RBAC, checks who may block an owner's deletion (OwnerReferencesPermissionEnforcement, as
hardened clusters do) and signs service-account tokens, as a real cluster does. The command lines
are a function of the ports chosen for this cluster and the folder that holds its state.

The API server also keeps an audit log of what service accounts outside kube-system do (the
operator run with a chart's ServiceAccount token, see `AUDIT_POLICY`), so a test can tell which
permissions were used and which were refused. Its policy file is written into the folder with
the API server's command line.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from execflow.devcluster import pki

SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"
POD_CIDR = "10.0.0.1/16"
NODE_IP = "127.0.0.1"
ISSUER = "https://kubernetes.default.svc.cluster.local"
NODE_ANNOTATION = "kwok.x-k8s.io/node"
# A fake node's Lease lasts 40 s (kubelet's default) and kwok renews it every quarter of that.
NODE_LEASE_SECONDS = 40
# How long the node controller waits for a renewal before it marks a node NotReady (see its
# command line below).
NODE_MONITOR_GRACE_SECONDS = 90

AUDIT_POLICY: dict[str, Any] = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    # One event per request once it is answered (a watch: when it starts and when it ends).
    "omitStages": ["RequestReceived"],
    "rules": [
        # The controllers (--use-service-account-credentials) make most of the cluster's
        # requests and are nobody's question: not logged.
        {"level": "None", "userGroups": ["system:serviceaccounts:kube-system"]},
        # Other service accounts: who did what to which object, and the answer; no bodies.
        {"level": "Metadata", "userGroups": ["system:serviceaccounts"]},
        # Everyone else (the admin, the control plane, kwok): not logged.
        {"level": "None"},
    ],
}
"""What the API server records: only requests of service accounts outside kube-system, which
only a test that runs the operator with a ServiceAccount's token makes, so every other test pays
nothing for it."""


def kubeconfig(server: str, pki_dir: Path, identity: pki.Identity) -> dict[str, Any]:
    """A kubeconfig for one client identity of the local cluster."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "execflow-local",
                "cluster": {
                    "server": server,
                    "certificate-authority": str(pki_dir / "ca.crt"),
                },
            }
        ],
        "users": [
            {
                "name": identity.user,
                "user": {
                    "client-certificate": str(pki_dir / f"{identity.file_stem}.crt"),
                    "client-key": str(pki_dir / f"{identity.file_stem}.key"),
                },
            }
        ],
        "contexts": [
            {
                "name": "execflow-local",
                "context": {
                    "cluster": "execflow-local",
                    "user": identity.user,
                    "namespace": "default",
                },
            }
        ],
        "current-context": "execflow-local",
    }


def audit_log(directory: Path) -> Path:
    """The API server's audit log of the cluster in `directory`: JSON lines, one per event."""
    return directory / "logs" / "audit.log"


def write_audit_policy(directory: Path) -> Path:
    """Write `AUDIT_POLICY` into `directory` for the API server's --audit-policy-file."""
    path = directory / "audit-policy.yaml"
    path.write_text(yaml.safe_dump(AUDIT_POLICY, sort_keys=False))
    return path


def command_line(name: str, binary: str, ports: Mapping[str, int], directory: Path) -> list[str]:
    """The command line of one component, with its ports and its place in `directory` (for the
    API server, its audit policy is written there too)."""
    p = ports
    pki_dir = directory / "pki"
    if name == "etcd":
        peer = f"http://127.0.0.1:{p['etcd-peer']}"
        client = f"http://127.0.0.1:{p['etcd']}"
        return [
            binary,
            "--name=execflow",
            f"--data-dir={directory / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=execflow={peer}",
            # Durability is irrelevant for a throw-away test cluster; latency is not.
            "--unsafe-no-fsync",
            "--log-level=warn",
        ]
    if name == "kube-apiserver":
        return [
            binary,
            f"--etcd-servers=http://127.0.0.1:{p['etcd']}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={p['kube-apiserver']}",
            f"--cert-dir={directory / 'apiserver'}",
            f"--tls-cert-file={pki_dir / 'apiserver.crt'}",
            f"--tls-private-key-file={pki_dir / 'apiserver.key'}",
            f"--client-ca-file={pki_dir / 'ca.crt'}",
            f"--service-account-issuer={ISSUER}",
            f"--api-audiences={ISSUER}",
            f"--service-account-signing-key-file={pki_dir / 'sa.key'}",
            f"--service-account-key-file={pki_dir / 'sa.pub'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            # Without this the API server writes a loopback Endpoints object that fails
            # validation; nothing in-cluster needs to reach the API server through it.
            "--endpoint-reconciler-type=none",
            "--authorization-mode=Node,RBAC",
            # pods/log (`kubectl logs`) is proxied to the pod's node: kwok's kubelet-like server
            # on the node's InternalIP (NODE_IP) and kubeletEndpoint port, over TLS it verifies.
            "--kubelet-preferred-address-types=InternalIP",
            f"--kubelet-certificate-authority={pki_dir / 'ca.crt'}",
            "--profiling=false",
            "--max-requests-inflight=800",
            "--max-mutating-requests-inflight=400",
            # As on clusters that enforce it (OpenShift): setting blockOwnerDeletion on an owner
            # reference needs `update` on the owner's finalizers, which the chart's RBAC grants.
            "--enable-admission-plugins=OwnerReferencesPermissionEnforcement",
            f"--audit-policy-file={write_audit_policy(directory)}",
            f"--audit-log-path={audit_log(directory)}",
            "--audit-log-format=json",
            # Blocking: an event is in the file once its request is answered.
            "--audit-log-mode=blocking",
            "--audit-log-maxsize=100",
            "--audit-log-maxbackup=1",
        ]
    if name == "kube-controller-manager":
        kubeconfig = directory / "kube-controller-manager.kubeconfig"
        return [
            binary,
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            f"--service-account-private-key-file={pki_dir / 'sa.key'}",
            f"--root-ca-file={pki_dir / 'ca.crt'}",
            "--use-service-account-credentials=true",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={p['kube-controller-manager']}",
            "--cluster-name=execflow-local",
            "--kube-api-qps=200",
            "--kube-api-burst=400",
            "--concurrent-job-syncs=20",
            "--concurrent-gc-syncs=40",
            # kwok renews each node's Lease every NODE_LEASE_SECONDS / 4 = 10 s. With the default
            # grace (50 s), a burst that starves kwok, the API server or this process of CPU for
            # ~40 s marks every node NotReady. 90 s rides out about eight missed renewals, and a
            # kwok that really died still shows as NotReady within ~95 s (grace + the default 5 s
            # --node-monitor-period, kept), long before its pods would be evicted (300 s).
            f"--node-monitor-grace-period={NODE_MONITOR_GRACE_SECONDS}s",
            # Eviction flags keep their defaults: with 4 nodes, when 3 or more are NotReady at
            # once (a dead or starved kwok) the controller stops evicting, and when all are it
            # lifts their taints; only one or two nodes out of four lost get their pods evicted,
            # as in a real cluster.
        ]
    if name == "kube-scheduler":
        kubeconfig = directory / "kube-scheduler.kubeconfig"
        return [
            binary,
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={p['kube-scheduler']}",
        ]
    if name == "kwok":
        return [
            binary,
            f"--kubeconfig={directory / 'kubeconfig'}",
            f"--config={directory / 'kwok-stages.yaml'}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={NODE_ANNOTATION}=fake",
            f"--cidr={POD_CIDR}",
            # The fake nodes' address and kubelet port are where kwok itself serves pod logs
            # (the ClusterLogs in the --config file), so the API server can reach it.
            f"--node-ip={NODE_IP}",
            f"--node-port={p['kwok']}",
            f"--server-address={NODE_IP}:{p['kwok']}",
            f"--tls-cert-file={pki_dir / (pki.KWOK_SERVING + '.crt')}",
            f"--tls-private-key-file={pki_dir / (pki.KWOK_SERVING + '.key')}",
            # Without it kwok keeps no node Lease, and the node controller only sees the
            # heartbeat stage (stages/nodes.yaml) once a minute: more than the default 50 s
            # grace, so every node went NotReady between two heartbeats, even on an idle machine.
            f"--node-lease-duration-seconds={NODE_LEASE_SECONDS}",
        ]
    raise KeyError(name)
