"""One Kubernetes API client for the whole operator, and a pool to call it without blocking.

The official client is synchronous; every request runs on a bounded thread pool so the operator's
event loop never waits on the network. Requests identify themselves as `execflow/<version>`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from kubernetes import client, config

from execflow import __version__

API_THREADS = 32
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
        configuration.connection_pool_maxsize = API_THREADS
        self.configuration = configuration
        self.api_client = client.ApiClient(configuration)
        self.api_client.user_agent = USER_AGENT
        self.request_timeout = REQUEST_TIMEOUT
        self.pool = ThreadPoolExecutor(max_workers=API_THREADS, thread_name_prefix="kube-api")

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.api_client.close()
