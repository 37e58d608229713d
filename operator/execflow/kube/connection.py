"""One Kubernetes API client for the whole operator, and a way to call it without blocking.

The official client is synchronous; every call goes through `call()`, which runs it on a bounded
thread pool so the operator's event loop never waits on the network.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from kubernetes import client, config

T = TypeVar("T")

API_THREADS = 32


class Connection:
    def __init__(self, kubeconfig: str | None = None) -> None:
        configuration = client.Configuration()
        if kubeconfig:
            config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
        else:
            try:
                config.load_incluster_config(client_configuration=configuration)
            except config.ConfigException:
                config.load_kube_config(client_configuration=configuration)
        configuration.connection_pool_maxsize = API_THREADS
        self.configuration = configuration
        self.api_client = client.ApiClient(configuration)
        self.core = client.CoreV1Api(self.api_client)
        self.batch = client.BatchV1Api(self.api_client)
        self.custom = client.CustomObjectsApi(self.api_client)
        self._pool = ThreadPoolExecutor(max_workers=API_THREADS, thread_name_prefix="kube-api")
        self.writes = 0

    async def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(function, *args, **kwargs))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.api_client.close()
