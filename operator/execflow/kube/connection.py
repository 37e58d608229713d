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


class CredentialsError(RuntimeError):
    """No usable kubeconfig or in-cluster credentials."""


def _load(configuration: client.Configuration, kubeconfig: str | None) -> None:
    try:
        if kubeconfig:
            config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
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


class Connection:
    def __init__(self, kubeconfig: str | None = None) -> None:
        configuration = client.Configuration()
        _load(configuration, kubeconfig)
        self.configuration = configuration
        self.transport = HttpTransport(configuration, REQUEST_TIMEOUT, USER_AGENT)

    async def close(self) -> None:
        await self.transport.close()
