"""The validating admission webhook's I/O: the HTTPS endpoint the API server calls, and its
registration.

The API server sends an AdmissionReview for every Workflow and ResultSet create and update and
waits (at most `TIMEOUT_SECONDS`) for "allowed" or a refusal, which `kubectl apply` shows the
user. This module serves that endpoint inside the operator's event loop (aiohttp, as kopf
already uses) and registers it in the ValidatingWebhookConfiguration `execflow.dev`; what to
answer is decided elsewhere (`execflow.handlers.admission`), on a worker thread so a large spec
never blocks the loop. The failure policy is Ignore: the operator checks every spec again when
it reconciles it, so a stopped or unreachable operator never keeps users or a GitOps tool from
applying objects.

Every replica serves; registration writes the same configuration whichever replica does it, so
any replica may (in a cluster the configuration names the Service in front of all of them). The
registration is desired state, checked again every `REREGISTER_SECONDS`: a deleted configuration
comes back, and where several operators share one API server (tests, a demo on the local
cluster) one that is alive takes it back from one that stopped.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import logging
import ssl
import tempfile
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from execflow.kube import certificates
from execflow.kube.certificates import ServingCertificate
from execflow.kube.client import Kube, Resource
from execflow.kube.errors import ApiError, NotFoundError

log = logging.getLogger("execflow.webhook")

VALIDATING_WEBHOOKS = Resource(
    "admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations", namespaced=False
)
CONFIGURATION_NAME = "execflow.dev"
WEBHOOK_NAME = "validate.execflow.dev"
PATH = "/validate"
TIMEOUT_SECONDS = 5
SERVICE_PORT = 443
LOCAL_ADDRESS = "127.0.0.1"
REREGISTER_SECONDS = 15.0
MAX_REVIEW_BYTES = 8 * 1024 * 1024
"""A review carries the object and, on update, its old version: each up to etcd's 1.5 MiB."""
LABELS = {"app.kubernetes.io/part-of": "execflow", "app.kubernetes.io/component": "webhook"}

Decide = Callable[[Any], tuple[int, dict[str, Any]]]
"""An AdmissionReview as decoded JSON (possibly malformed) → the HTTP status and JSON reply."""


@dataclass(frozen=True)
class Endpoint:
    """Where the API server reaches the webhook: a URL (out of cluster) or a Service."""

    hosts: tuple[str, ...]
    """The names the serving certificate must hold."""
    url: str | None = None
    service: tuple[str, str] | None = None
    """(namespace, name) of the Service in front of the operator's pods."""

    def client_config(self, ca: bytes) -> dict[str, Any]:
        config: dict[str, Any] = {"caBundle": base64.b64encode(ca).decode()}
        if self.service is not None:
            namespace, name = self.service
            config["service"] = {
                "namespace": namespace,
                "name": name,
                "path": PATH,
                "port": SERVICE_PORT,
            }
        else:
            config["url"] = self.url
        return config


def local_endpoint(port: int) -> Endpoint:
    """The operator on this machine, for an API server on this machine (the local cluster)."""
    return Endpoint(hosts=(LOCAL_ADDRESS,), url=f"https://{LOCAL_ADDRESS}:{port}{PATH}")


def service_endpoint(namespace: str, name: str) -> Endpoint:
    """The operator behind the Service `namespace/name` (port 443), as the API server dials it."""
    return Endpoint(
        hosts=(f"{name}.{namespace}.svc", f"{name}.{namespace}"), service=(namespace, name)
    )


def configuration(endpoint: Endpoint, ca: bytes) -> dict[str, Any]:
    """The ValidatingWebhookConfiguration: Workflow and ResultSet creates and updates, failure
    policy Ignore."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": CONFIGURATION_NAME, "labels": dict(LABELS)},
        "webhooks": [
            {
                "name": WEBHOOK_NAME,
                "clientConfig": endpoint.client_config(ca),
                "rules": [
                    {
                        "apiGroups": ["execflow.dev"],
                        "apiVersions": ["v1alpha1"],
                        "resources": ["workflows", "resultsets"],
                        "operations": ["CREATE", "UPDATE"],
                        "scope": "Namespaced",
                    }
                ],
                "failurePolicy": "Ignore",
                "sideEffects": "None",
                "timeoutSeconds": TIMEOUT_SECONDS,
                "admissionReviewVersions": ["v1"],
            }
        ],
    }


def _contains(actual: Any, desired: Any) -> bool:
    """Whether `actual` holds everything `desired` sets (the server adds defaults of its own)."""
    if isinstance(desired, Mapping):
        return isinstance(actual, Mapping) and all(
            key in actual and _contains(actual[key], value) for key, value in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(desired)
            and all(_contains(a, d) for a, d in zip(actual, desired, strict=True))
        )
    return bool(actual == desired)


async def register(kube: Kube, manifest: Mapping[str, Any]) -> bool:
    """Create the configuration, or bring an existing one to `manifest`; no write when equal.

    True when it wrote (the configuration was missing or differed).
    """
    name = str(manifest["metadata"]["name"])
    wrote = False
    try:
        current = await kube.get(VALIDATING_WEBHOOKS, None, name)
    except NotFoundError:
        # A 409 returns the configuration a racing operator created instead: checked below.
        current = await kube.create(VALIDATING_WEBHOOKS, "", manifest)
        wrote = True
    wanted = {
        "metadata": {"labels": manifest["metadata"]["labels"]},
        "webhooks": manifest["webhooks"],
    }
    if _contains(current, wanted):
        return wrote
    await kube.patch(VALIDATING_WEBHOOKS, "", name, wanted)
    return True


async def keep_registered(
    kube: Kube, manifest: Mapping[str, Any], interval: float = REREGISTER_SECONDS
) -> None:
    """Hold the registration as desired state: every `interval`, register again.

    It is one GET while nothing changed. It repairs a configuration someone deleted, and on a
    machine where several operators run (tests, a demo) the live ones take it back from one that
    stopped. Failures are logged and tried again at the next interval.
    """
    while True:
        await asyncio.sleep(interval)
        try:
            if await register(kube, manifest):
                log.info("registered the admission webhook again (it was missing or changed)")
        except ApiError as error:
            log.warning("cannot check the admission webhook's registration: %s", error)


def tls_context(pair: ServingCertificate) -> ssl.SSLContext:
    """A server TLS context presenting `pair` (its PEMs pass through files only while loading)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.TemporaryDirectory(prefix="execflow-webhook-") as directory:
        certificate, key = Path(directory) / "tls.crt", Path(directory) / "tls.key"
        certificate.write_bytes(pair.certificate)
        key.write_bytes(pair.key)  # the directory is private (mode 0700)
        context.load_cert_chain(certificate, key)
    return context


class WebhookServer:
    """The HTTPS server: POST `PATH` answers AdmissionReviews through `decide`."""

    def __init__(self, decide: Decide) -> None:
        self._decide = decide
        self._runner: web.AppRunner | None = None
        self._background: set[asyncio.Task[None]] = set()

    def keep(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` (e.g. `keep_registered`) for as long as the server runs."""
        self._background.add(asyncio.create_task(work))

    async def start(self, host: str | None, port: int, pair: ServingCertificate) -> None:
        """Listen on host:port (None: every interface); OSError when the port is taken."""
        app = web.Application(client_max_size=MAX_REVIEW_BYTES)
        app.router.add_post(PATH, self._review)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port, ssl_context=tls_context(pair)).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner

    async def stop(self) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _review(self, request: web.Request) -> web.Response:
        try:
            review = json.loads(await request.read())
        except ValueError as error:
            return _status_reply(400, f"the request body is not JSON: {error}")
        try:
            status, reply = await asyncio.get_running_loop().run_in_executor(
                None, self._decide, review
            )
        except Exception:
            log.exception("admission review failed; the API server will admit the object")
            return _status_reply(500, "the webhook failed; see the operator's log")
        return web.json_response(reply, status=status)


def _status_reply(code: int, message: str) -> web.Response:
    body = {"apiVersion": "v1", "kind": "Status", "status": "Failure", "code": code}
    return web.json_response({**body, "message": message}, status=code)


async def serve(
    kube: Kube,
    decide: Decide,
    port: int,
    service: tuple[str, str] | None,
) -> WebhookServer:
    """Serve the webhook on `port` and register it (and keep it registered); returns the
    running server.

    With `service` (namespace, name) the API server reaches it through that Service and the
    certificate is shared through the Secret `<name>-tls` in that namespace; without, through
    https://127.0.0.1:<port> with a certificate made for this process alone.
    """
    now = datetime.datetime.now(datetime.UTC)
    if service is not None:
        namespace, name = service
        endpoint = service_endpoint(namespace, name)
        pair = await certificates.shared_certificate(
            kube, namespace, secret_name(name), endpoint.hosts, now=now, labels=LABELS
        )
        host = None
    else:
        endpoint = local_endpoint(port)
        pair = certificates.generate(endpoint.hosts, now)
        host = LOCAL_ADDRESS
    server = WebhookServer(decide)
    await server.start(host, port, pair)
    manifest = configuration(endpoint, pair.ca)
    try:
        await register(kube, manifest)
    except BaseException:
        await server.stop()
        raise
    server.keep(keep_registered(kube, manifest))
    log.info(
        "admission webhook %s serves on port %d, registered as %s (%s)",
        WEBHOOK_NAME,
        port,
        CONFIGURATION_NAME,
        f"Service {'/'.join(service)}" if service else endpoint.url,
    )
    return server


def secret_name(service: str) -> str:
    """The Secret holding the webhook's CA and certificate, next to the Service it serves."""
    return f"{service}-tls"
