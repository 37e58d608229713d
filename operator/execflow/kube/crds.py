"""Install or update the execflow CRDs from the generated YAML, and wait until they are served."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from execflow.api.crdgen import render_crds


def install_crds(api: client.ApiClient, timeout: float = 60) -> list[str]:
    extensions = client.ApiextensionsV1Api(api)
    names: list[str] = []
    for text in render_crds().values():
        crd: dict[str, Any] = yaml.safe_load(text)
        name = crd["metadata"]["name"]
        names.append(name)
        try:
            extensions.create_custom_resource_definition(crd)
        except ApiException as error:
            if error.status != 409:
                raise
            current = extensions.read_custom_resource_definition(name)
            crd["metadata"]["resourceVersion"] = current.metadata.resource_version
            extensions.replace_custom_resource_definition(name, crd)
    _wait_established(extensions, names, timeout)
    return names


def _wait_established(
    extensions: client.ApiextensionsV1Api, names: Iterable[str], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    for name in names:
        while True:
            conditions = extensions.read_custom_resource_definition(name).status.conditions or []
            if any(c.type == "Established" and c.status == "True" for c in conditions):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"CRD {name} was not established within {timeout:.0f}s")
            time.sleep(0.1)
