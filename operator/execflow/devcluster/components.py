"""Which components the local cluster runs, at which versions, and where they live.

Versions are pinned here and nowhere else: the build cache is keyed by them, so bumping one line
rebuilds exactly the binaries that changed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

KUBERNETES_VERSION = "v1.36.3"
ETCD_VERSION = "v3.6.16"
KWOK_VERSION = "v0.8.0"
HELM_VERSION = "v3.22.0"
# The S3 server next to the control plane (object_store.py).
VERSITYGW_VERSION = "v1.8.0"
MINIMUM_GO = (1, 26)


@dataclass(frozen=True)
class Component:
    """A binary built from a Go module."""

    name: str
    version: str
    package: str
    # A wrapper module is needed when the upstream go.mod uses local replace directives.
    wrapper: str | None
    # Part of the cache key beside the version: changed when the build flags change, so that a
    # binary cached from the old flags is built again.
    revision: str = ""


COMPONENTS: tuple[Component, ...] = (
    Component("etcd", ETCD_VERSION, "go.etcd.io/etcd/server/v3", "etcd"),
    Component(
        "kube-apiserver", KUBERNETES_VERSION, "k8s.io/kubernetes/cmd/kube-apiserver", "kubernetes"
    ),
    Component(
        "kube-controller-manager",
        KUBERNETES_VERSION,
        "k8s.io/kubernetes/cmd/kube-controller-manager",
        "kubernetes",
    ),
    Component(
        "kube-scheduler", KUBERNETES_VERSION, "k8s.io/kubernetes/cmd/kube-scheduler", "kubernetes"
    ),
    Component("kubectl", KUBERNETES_VERSION, "k8s.io/kubernetes/cmd/kubectl", "kubernetes"),
    Component("kwok", KWOK_VERSION, "sigs.k8s.io/kwok/cmd/kwok", None),
    Component("helm", HELM_VERSION, "helm.sh/helm/v3/cmd/helm", None, revision="-k8s"),
    Component("versitygw", VERSITYGW_VERSION, "github.com/versity/versitygw/cmd/versitygw", None),
)


def cache_dir() -> Path:
    """Where binaries and Go caches are kept between runs (override: EXECFLOW_CACHE_DIR)."""
    configured = os.environ.get("EXECFLOW_CACHE_DIR")
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "execflow"


def state_dir() -> Path:
    """Where a running cluster keeps data, certificates and logs (override: EXECFLOW_STATE_DIR)."""
    configured = os.environ.get("EXECFLOW_STATE_DIR")
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "state") / "execflow" / "cluster"


def binary_path(component: Component) -> Path:
    folder = f"{component.name}-{component.version}{component.revision}"
    return cache_dir() / "bin" / folder / component.name


def by_name(name: str) -> Component:
    for component in COMPONENTS:
        if component.name == name:
            return component
    raise KeyError(name)
