"""How the local cluster starts its S3 server and publishes it (execflow.devcluster.object_store).

No cluster and no S3 server: the launch (arguments, environment, folders, kept keys) and the
Secret are plain data, checked directly; the readiness probe is checked against tiny HTTP servers
on loopback. The real server, reached through the real Secret, is exercised in
tests/integration/test_local_s3.py.
"""

from __future__ import annotations

import base64
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from execflow.devcluster.cluster import free_port
from execflow.devcluster.object_store import (
    SECRET_NAME,
    SECRET_NAMESPACE,
    Credentials,
    ObjectStore,
    answers,
    command_line,
    environment,
    secret,
)

BINARY = Path("/cache/versitygw")
KEYS = Credentials("AKIAEXAMPLEEXAMPLE01", "secret-example-secret-example-secret-exa")


def test_the_keys_reach_the_server_only_through_its_environment() -> None:
    args = command_line(BINARY, Path("/state/s3/data"), None)
    env = environment(KEYS, 4321, {"PATH": "/usr/bin"})

    assert args == [str(BINARY), "--quiet", "posix", "/state/s3/data"]
    assert not any(KEYS.access_key_id in arg or KEYS.secret_access_key in arg for arg in args)
    assert env == {
        "PATH": "/usr/bin",
        "ROOT_ACCESS_KEY_ID": KEYS.access_key_id,
        "ROOT_SECRET_ACCESS_KEY": KEYS.secret_access_key,
        "VGW_PORT": "127.0.0.1:4321",
    }


def test_a_sidecar_folder_is_a_posix_option_before_the_data_folder() -> None:
    args = command_line(BINARY, Path("/state/s3/data"), Path("/state/s3/sidecar"))

    assert args == [
        str(BINARY),
        "--quiet",
        "posix",
        "--sidecar",
        "/state/s3/sidecar",
        "/state/s3/data",
    ]


def test_a_developers_own_server_settings_do_not_reach_the_clusters_server() -> None:
    inherited = {
        "HOME": "/home/dev",
        "VGW_REGION": "eu-west-3",
        "VGW_PORT": ":7070",
        "ROOT_ACCESS_KEY": "theirs",
        "ROOT_SECRET_KEY": "theirs",
    }

    env = environment(KEYS, 4321, inherited)

    assert env["HOME"] == "/home/dev"
    assert env["VGW_PORT"] == "127.0.0.1:4321"
    assert env["ROOT_ACCESS_KEY_ID"] == KEYS.access_key_id
    assert not {"VGW_REGION", "ROOT_ACCESS_KEY", "ROOT_SECRET_KEY"} & env.keys()
    assert inherited["VGW_PORT"] == ":7070", "the caller's mapping is left alone"


def test_the_secret_holds_exactly_the_contract_keys() -> None:
    manifest = secret(4321, KEYS)

    assert (manifest["kind"], manifest["type"]) == ("Secret", "Opaque")
    assert manifest["metadata"]["name"] == SECRET_NAME == "execflow-local-s3"
    assert manifest["metadata"]["namespace"] == SECRET_NAMESPACE == "default"
    decoded = {key: base64.b64decode(value).decode() for key, value in manifest["data"].items()}
    assert decoded == {
        "endpoint": "http://127.0.0.1:4321",
        "accessKeyId": KEYS.access_key_id,
        "secretAccessKey": KEYS.secret_access_key,
    }


def test_generated_keys_are_new_each_time_and_shaped_as_aws_keys() -> None:
    made = [Credentials.generate() for _ in range(20)]

    assert len({keys.access_key_id for keys in made}) == 20
    assert len({keys.secret_access_key for keys in made}) == 20
    for keys in made:
        assert len(keys.access_key_id) == 20
        assert keys.access_key_id.isalnum() and keys.access_key_id.upper() == keys.access_key_id
        assert len(keys.secret_access_key) == 40


def test_a_clusters_keys_are_made_once_and_readable_only_by_their_owner(tmp_path: Path) -> None:
    first = ObjectStore(tmp_path).credentials()

    again = ObjectStore(tmp_path).credentials()

    assert again == first
    mode = stat.S_IMODE(ObjectStore(tmp_path).credentials_file.stat().st_mode)
    assert mode == 0o600


def test_the_launch_creates_the_data_folder_and_passes_the_kept_keys(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)

    args, env = store.launch(BINARY, 4321, {})

    assert store.data.is_dir()
    assert args[-1] == str(store.data)
    keys = store.credentials()
    assert (env["ROOT_ACCESS_KEY_ID"], env["ROOT_SECRET_ACCESS_KEY"]) == (
        keys.access_key_id,
        keys.secret_access_key,
    )


def test_a_sidecar_folder_once_made_is_used_again(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    store.sidecar.mkdir(parents=True)

    args, _env = store.launch(BINARY, 4321, {})

    assert args[-3:] == ["--sidecar", str(store.sidecar), str(store.data)]
    assert not store.sidecar.is_relative_to(store.data), "the server refuses one inside its root"


@contextmanager
def http_server(status: int) -> Iterator[int]:
    class Reply(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Reply)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_the_server_counts_as_started_once_it_refuses_anonymous_requests() -> None:
    with http_server(403) as port:
        assert answers(port)
    with http_server(200) as port:
        assert not answers(port), "a server that lets anyone in is not the S3 server"
    assert not answers(free_port())
