"""One connection to the API server for the whole operator: credentials and an HTTP transport.

Credentials are found as kubectl finds them (an explicit kubeconfig, in-cluster service account,
then the default kubeconfig) by the official client's loader; requests go over the asyncio
transport of `execflow.kube.http` and identify themselves as `execflow/<version>`.
"""

from __future__ import annotations

from kubernetes import client, config

from execflow import __version__
from execflow.kube.http import HttpTransport

REQUEST_TIMEOUT = 30.0
USER_AGENT = f"execflow/{__version__}"
IN_CLUSTER_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


class CredentialsError(RuntimeError):
    """No usable kubeconfig or in-cluster credentials."""


def _load(configuration: client.Configuration, kubeconfig: str | None, context: str | None) -> None:
    try:
        if kubeconfig or context:
            config.load_kube_config(
                config_file=kubeconfig, context=context, client_configuration=configuration
            )
            return
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:
            config.load_kube_config(client_configuration=configuration)
    except (config.ConfigException, OSError) as error:
        where = kubeconfig or "the default kubeconfig (KUBECONFIG or ~/.kube/config)"
        raise CredentialsError(
            f"no Kubernetes credentials: not running in a pod, and {where} cannot be used ({error})"
        ) from None


def default_namespace(kubeconfig: str | None = None, context: str | None = None) -> str:
    """The namespace kubectl would use: the context's, the pod's own in a cluster, or default."""
    try:
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
    except (config.ConfigException, OSError):
        try:
            with open(IN_CLUSTER_NAMESPACE, encoding="utf-8") as handle:
                return handle.read().strip() or "default"
        except OSError:
            return "default"
    chosen = next((item for item in contexts if item.get("name") == context), None)
    entry = chosen if context else active
    return str((entry or {}).get("context", {}).get("namespace") or "default")


class Connection:
    def __init__(self, kubeconfig: str | None = None, context: str | None = None) -> None:
        configuration = client.Configuration()
        _load(configuration, kubeconfig, context)
        self.configuration = configuration
        self.transport = HttpTransport(configuration, REQUEST_TIMEOUT, USER_AGENT)

    async def close(self) -> None:
        await self.transport.close()
