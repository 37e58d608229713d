"""The S3 server next to the local control plane, and the Secret that tells clients how to reach it.

ResultSets keep what they collect in S3, and tests of that need a real server: mocks accept wrong
checksums and any credentials. versitygw serves a folder of the cluster's state over the S3 API on
127.0.0.1, is ready within a fraction of a second and needs no configuration beyond its root
user's keys. Those are random per cluster and reach the server through its environment, so they
never show in `ps`. The cluster publishes them with the endpoint as the Secret `execflow-local-s3`
in namespace `default` (keys `endpoint`, `accessKeyId`, `secretAccessKey`), the same keys a
ResultSet's `storage.s3.secretRef` names; tools outside this project rely on that contract.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import string
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

NAME = "versitygw"
SECRET_NAME = "execflow-local-s3"
SECRET_NAMESPACE = "default"

# (method, path, body) -> the API server's reply; raises urllib.error.HTTPError on an error status.
ApiRequest = Callable[[str, str, Any], Any]


@dataclass(frozen=True)
class Credentials:
    """The S3 root user's keys."""

    access_key_id: str
    secret_access_key: str

    @classmethod
    def generate(cls) -> Credentials:
        # AWS's shapes (20 upper-case letters and digits; 40 characters), which every client takes.
        alphabet = string.ascii_uppercase + string.digits
        return cls(
            access_key_id="".join(secrets.choice(alphabet) for _ in range(20)),
            secret_access_key=secrets.token_urlsafe(30),
        )


def endpoint(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def command_line(binary: Path, data_dir: Path, sidecar_dir: Path | None) -> list[str]:
    """The server's arguments. Nothing secret: anyone on the machine may read them."""
    sidecar = [] if sidecar_dir is None else ["--sidecar", str(sidecar_dir)]
    # --quiet drops the line per request; startup and errors still reach the log.
    return [str(binary), "--quiet", "posix", *sidecar, str(data_dir)]


def environment(
    credentials: Credentials, port: int, inherited: Mapping[str, str]
) -> dict[str, str]:
    """The server's environment: the root user's keys and where to listen, on top of inherited.

    The server also takes settings and keys from other VGW_* and ROOT_ACCESS_*/ROOT_SECRET_*
    variables; a developer's own (another region, a metadata folder) are left out, so the
    cluster's server is the same on every machine.
    """
    kept = {
        key: value
        for key, value in inherited.items()
        if not key.startswith(("VGW_", "ROOT_ACCESS_", "ROOT_SECRET_"))
    }
    return kept | {
        "ROOT_ACCESS_KEY_ID": credentials.access_key_id,
        "ROOT_SECRET_ACCESS_KEY": credentials.secret_access_key,
        "VGW_PORT": f"127.0.0.1:{port}",
    }


def secret(port: int, credentials: Credentials) -> dict[str, Any]:
    """The Secret that says how to reach the server."""
    values = {
        "endpoint": endpoint(port),
        "accessKeyId": credentials.access_key_id,
        "secretAccessKey": credentials.secret_access_key,
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": SECRET_NAME,
            "namespace": SECRET_NAMESPACE,
            "labels": {"app.kubernetes.io/managed-by": "execflow-cluster"},
        },
        "type": "Opaque",
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in values.items()},
    }


def publish(request: ApiRequest, port: int, credentials: Credentials) -> None:
    """Create the Secret, or replace it so that it names the server as it runs now."""
    body = secret(port, credentials)
    collection = f"/api/v1/namespaces/{SECRET_NAMESPACE}/secrets"
    try:
        request("POST", collection, body)
    except urllib.error.HTTPError as error:
        if error.code != 409:
            raise
        request("PUT", f"{collection}/{SECRET_NAME}", body)


def answers(port: int) -> bool:
    """Whether the server serves S3: it refuses an anonymous request for / with 403."""
    try:
        with urllib.request.urlopen(f"{endpoint(port)}/", timeout=2):
            return False
    except urllib.error.HTTPError as error:
        error.close()
        return error.code == 403
    except (OSError, ValueError):
        return False


def supports_user_xattrs(directory: Path) -> bool:
    """Whether files in directory can carry `user.` extended attributes."""
    probe = "user.execflow.probe"
    try:
        os.setxattr(directory, probe, b"1")
        os.removexattr(directory, probe)
    except OSError:
        # Unsupported (ENOTSUP) or refused: either way the server cannot keep metadata there.
        return False
    return True


class ObjectStore:
    """Where one cluster's S3 server keeps its objects, their metadata and its keys."""

    def __init__(self, cluster_dir: Path) -> None:
        self.dir = cluster_dir / "s3"
        self.data = self.dir / "data"
        # Beside the data, never inside it: the server refuses a sidecar within its root.
        self.sidecar = self.dir / "sidecar"
        self.credentials_file = self.dir / "credentials.json"

    def credentials(self) -> Credentials:
        """This cluster's keys: made on first use, then kept (mode 0600), so a restarted server
        accepts the same ones and the published Secret stays true."""
        if not self.credentials_file.exists():
            self.dir.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(self.credentials_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                json.dump(asdict(Credentials.generate()), file)
        return Credentials(**json.loads(self.credentials_file.read_text()))

    def launch(
        self, binary: Path, port: int, inherited: Mapping[str, str]
    ) -> tuple[list[str], dict[str, str]]:
        """The arguments and the environment that start the server on port."""
        self.data.mkdir(parents=True, exist_ok=True)
        # The server keeps object metadata (checksums, content types) in user xattrs; a
        # filesystem without them (tmpfs before Linux 6.6, some overlays) needs a sidecar
        # folder. Once used, the sidecar stays: the metadata written so far lives there.
        sidecar = None
        if self.sidecar.exists() or not supports_user_xattrs(self.data):
            self.sidecar.mkdir(exist_ok=True)
            sidecar = self.sidecar
        return (
            command_line(binary, self.data, sidecar),
            environment(self.credentials(), port, inherited),
        )
