"""Plain HTTP(S) requests to the local cluster's components: their health, and the admin API.

`execflow cluster up` creates nodes, publishes Secrets and waits for each component before any
Kubernetes client is configured (the kubeconfig it writes is what configures them), so it asks
with urllib: the API server with the admin client certificate, the others on their health
endpoints.
"""

from __future__ import annotations

import json
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

# (method, path, body) -> the decoded reply; raises urllib.error.HTTPError on an error status.
ApiRequest = Callable[[str, str, Any], Any]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def answers(
    url: str,
    healthy: Callable[[bytes], bool] = lambda _body: True,
    context: ssl.SSLContext | None = None,
) -> bool:
    """Whether a health endpoint answers 200 with a healthy body."""
    try:
        with urllib.request.urlopen(url, context=context, timeout=2) as reply:
            return bool(reply.status == 200) and healthy(reply.read())
    except (OSError, ValueError, urllib.error.URLError):
        return False


def post_json(url: str, body: Any) -> Any:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.loads(reply.read())


def admin_api(pki_dir: Path, port: int) -> ApiRequest:
    """Requests to the API server on port as the cluster's admin; JSON or text replies."""

    def request(method: str, path: str, body: Any = None) -> Any:
        context = ssl.create_default_context(cafile=str(pki_dir / "ca.crt"))
        context.load_cert_chain(str(pki_dir / "admin.crt"), str(pki_dir / "admin.key"))
        data = None if body is None else json.dumps(body).encode()
        message = urllib.request.Request(
            f"https://127.0.0.1:{port}{path}", data=data, method=method
        )
        message.add_header("Content-Type", "application/json")
        message.add_header("Accept", "application/json")
        with urllib.request.urlopen(message, context=context, timeout=10) as reply:
            payload = reply.read()
        return json.loads(payload) if payload.startswith(b"{") else payload.decode()

    return request


def apiserver_ready(api: ApiRequest) -> bool:
    try:
        return bool(api("GET", "/readyz", None) == "ok")
    except (OSError, urllib.error.URLError, ssl.SSLError):
        return False


def component_ready(name: str, port: int, api: ApiRequest) -> bool:
    """Whether a control-plane component answers its health check (api: for the API server)."""
    if name == "kube-apiserver":
        return apiserver_ready(api)
    if name == "etcd":
        return answers(f"http://127.0.0.1:{port}/health", lambda body: b'"true"' in body)
    if name in ("kube-controller-manager", "kube-scheduler"):
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        return answers(f"https://127.0.0.1:{port}/healthz", context=insecure)
    if name == "kwok":
        return answers(f"http://127.0.0.1:{port}/healthz")
    return True
