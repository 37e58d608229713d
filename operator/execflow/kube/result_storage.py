"""Where a ResultSet's segments live: owned ConfigMaps or an S3 bucket. The only storage I/O.

A segment is an immutable blob (see core.resultsets.codec) numbered from 0. Both backends offer
the same four operations, each idempotent so a reconcile interrupted at any point can repeat it:
`put` a segment (the same number again overwrites it with the same bytes), `list` what is
stored, `get` one segment's bytes with the sha256 recorded next to them, `delete_all`.

- ConfigMap: shards named `<resultset>-<uid prefix>-<n>`, owned by the ResultSet (the garbage
  collector deletes them with it) and labelled with its uid. A segment is the binaryData key
  `seg-<number>` and its sha256 the data key `seg-<number>.sha256`; a new segment is merged into
  the newest shard (the patch carries only the new keys) until the shard would pass
  `SHARD_BYTES`, below the API server's 1 MiB limit, then a new shard starts.
- S3: objects `<prefix><namespace>/<resultset>-<uid prefix>/seg-<number>`, sent with
  `ChecksumSHA256` (the server refuses bytes that do not match) and the hex sha256 as metadata.
  Requests time out quickly and retry twice, so an unreachable store gives a StorageError within
  seconds instead of a hanging reconcile.

Every failure is a `StorageError` with the reason `StorageUnavailable` and the store's words.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from execflow.api.reasons import Reason
from execflow.kube.client import CONFIG_MAPS, Kube
from execflow.kube.errors import ApiError, NotFoundError

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

RESULTSET_LABEL = "execflow.dev/resultset"
RESULTSET_UID_LABEL = "execflow.dev/resultset-uid"
SHARD_BYTES = 900 * 1024
"""Most segment bytes in one ConfigMap shard (the API server refuses ConfigMaps over 1 MiB)."""
SEGMENT_PREFIX = "seg-"
_UID_PREFIX = 8
_NAME_MAX = 253


class StorageError(Exception):
    """The store could not be reached or refused a request."""

    reason = Reason.STORAGE_UNAVAILABLE


@dataclass(frozen=True)
class StoredSegment:
    number: int
    size: int
    location: str
    """Where it is, for people: `configmap/<name>:seg-<n>` or `s3://<bucket>/<key>`."""


class SegmentStore(Protocol):
    backend: str

    async def put(self, number: int, data: bytes, sha256: str) -> StoredSegment: ...

    async def list(self) -> list[StoredSegment]: ...

    async def get(self, segment: StoredSegment) -> tuple[bytes, str]:
        """The segment's bytes and the sha256 stored next to them."""
        ...

    async def delete_all(self) -> None: ...


def segment_key(number: int) -> str:
    return f"{SEGMENT_PREFIX}{number:08d}"


def _segment_number(key: str) -> int | None:
    if not key.startswith(SEGMENT_PREFIX) or "." in key:
        return None
    digits = key[len(SEGMENT_PREFIX) :]
    return int(digits) if digits.isdigit() else None


@dataclass(frozen=True)
class Owner:
    """The ResultSet whose data is stored."""

    namespace: str
    name: str
    uid: str

    @property
    def stem(self) -> str:
        """`<name>-<uid prefix>`: a new ResultSet under an old name never reads old data."""
        suffix = f"-{self.uid[:_UID_PREFIX]}"
        return self.name[: _NAME_MAX - len(suffix) - 6] + suffix

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": "execflow.dev/v1alpha1",
            "kind": "ResultSet",
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": False,
        }


class ConfigMapStore:
    """Segments in owned ConfigMaps (see the module docstring)."""

    backend = "ConfigMap"

    def __init__(self, kube: Kube, owner: Owner, shard_bytes: int = SHARD_BYTES) -> None:
        self.kube = kube
        self.owner = owner
        self.shard_bytes = shard_bytes
        self._shards: dict[str, dict[str, Any]] = {}
        """Shard name → its body as last listed or written."""

    def shard_name(self, index: int) -> str:
        return f"{self.owner.stem}-{index}"

    @property
    def shard_names(self) -> list[str]:
        return sorted(self._shards, key=_shard_index)

    async def list(self) -> list[StoredSegment]:
        try:
            bodies = await self.kube.list(
                CONFIG_MAPS,
                self.owner.namespace,
                label_selector=f"{RESULTSET_UID_LABEL}={self.owner.uid}",
            )
        except ApiError as error:
            raise StorageError(f"cannot list the result ConfigMaps: {error}") from error
        self._shards = {body["metadata"]["name"]: body for body in bodies}
        segments = []
        for name, body in self._shards.items():
            for key, text in (body.get("binaryData") or {}).items():
                number = _segment_number(key)
                if number is not None:
                    size = len(text) * 3 // 4
                    segments.append(StoredSegment(number, size, f"configmap/{name}:{key}"))
        return sorted(segments, key=lambda segment: segment.number)

    async def get(self, segment: StoredSegment) -> tuple[bytes, str]:
        name, key = segment.location.removeprefix("configmap/").split(":", 1)
        body = self._shards.get(name)
        if body is None or key not in (body.get("binaryData") or {}):
            # Written after the last listing: list again (the same read the operator's role
            # grants, rather than one more verb for this rare case).
            await self.list()
            body = self._shards.get(name)
            if body is None:
                raise StorageError(f"the ConfigMap {name} holding segment {key} is gone")
        text = (body.get("binaryData") or {}).get(key)
        if text is None:
            raise StorageError(f"ConfigMap {name} has no segment {key}")
        try:
            data = base64.b64decode(text, validate=True)
        except binascii.Error as error:
            raise StorageError(f"ConfigMap {name} key {key} is not base64: {error}") from error
        return data, str((body.get("data") or {}).get(f"{key}.sha256", ""))

    async def put(self, number: int, data: bytes, sha256: str) -> StoredSegment:
        key = segment_key(number)
        encoded = base64.b64encode(data).decode()
        entry = {"binaryData": {key: encoded}, "data": {f"{key}.sha256": sha256}}
        names = self.shard_names
        newest = names[-1] if names else None
        try:
            if newest is not None and _shard_size(self._shards[newest]) + len(data) <= (
                self.shard_bytes
            ):
                reply = await self.kube.patch(CONFIG_MAPS, self.owner.namespace, newest, entry)
            else:
                index = _shard_index(newest) + 1 if newest is not None else 0
                reply = await self._create_shard(index, entry)
        except NotFoundError as error:
            self._shards.pop(newest or "", None)
            raise StorageError(f"the result ConfigMap {newest} is gone: {error}") from error
        except ApiError as error:
            raise StorageError(f"cannot write segment {key}: {error}") from error
        name = reply["metadata"]["name"]
        self._shards[name] = reply
        return StoredSegment(number, len(data), f"configmap/{name}:{key}")

    async def _create_shard(self, index: int, entry: Mapping[str, Any]) -> dict[str, Any]:
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": self.shard_name(index),
                "namespace": self.owner.namespace,
                "labels": {
                    RESULTSET_LABEL: self.owner.name[:63],
                    RESULTSET_UID_LABEL: self.owner.uid,
                },
                "ownerReferences": [self.owner.reference()],
            },
            **entry,
        }
        created = await self.kube.create(CONFIG_MAPS, self.owner.namespace, body)
        if (created["metadata"].get("labels") or {}).get(RESULTSET_UID_LABEL) != self.owner.uid:
            raise StorageError(f"ConfigMap {self.shard_name(index)} exists and is not this set's")
        if created.get("binaryData") != body["binaryData"]:
            created = await self.kube.patch(
                CONFIG_MAPS, self.owner.namespace, self.shard_name(index), entry
            )
        return created

    async def delete_all(self) -> None:
        await self.list()
        for name in list(self._shards):
            try:
                await self.kube.delete(CONFIG_MAPS, self.owner.namespace, name)
            except ApiError as error:
                raise StorageError(f"cannot delete ConfigMap {name}: {error}") from error
            self._shards.pop(name, None)


def _shard_index(name: str | None) -> int:
    return int(str(name).rsplit("-", 1)[-1])


def _shard_size(body: Mapping[str, Any]) -> int:
    return sum(len(text) * 3 // 4 for text in (body.get("binaryData") or {}).values())


@dataclass(frozen=True)
class S3Credentials:
    endpoint: str
    access_key_id: str
    secret_access_key: str
    region: str = "us-east-1"


def s3_client(credentials: S3Credentials) -> S3Client:
    """A client with short timeouts and path-style addressing (works with any S3 server).

    boto3 is imported here, not with the module: an operator that stores no result in S3 does
    not carry it (about 8 MB)."""
    import boto3
    import botocore.config

    config = botocore.config.Config(
        connect_timeout=2,
        read_timeout=10,
        retries={"max_attempts": 2, "mode": "standard"},
        s3={"addressing_style": "path"},
        signature_version="s3v4",
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=credentials.endpoint or None,
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        region_name=credentials.region,
        config=config,
    )


class S3Store:
    """Segments as S3 objects (see the module docstring). boto3 is blocking: it runs in a pool."""

    backend = "S3"

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        prefix: str,
        owner: Owner,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = f"{prefix}{owner.namespace}/{owner.stem}/"

    async def _call(self, function: Callable[..., Any], **kwargs: Any) -> Any:
        import botocore.exceptions  # loaded with the client (see s3_client)

        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(None, lambda: function(**kwargs))
        except botocore.exceptions.ClientError as error:
            details = error.response.get("Error", {})
            raise StorageError(
                f"S3 {self.bucket}: {details.get('Code', 'Error')}: "
                f"{details.get('Message', str(error))}"
            ) from error
        except botocore.exceptions.BotoCoreError as error:
            raise StorageError(f"S3 {self.bucket}: {error}") from error

    def key(self, number: int) -> str:
        return f"{self.prefix}{segment_key(number)}"

    async def put(self, number: int, data: bytes, sha256: str) -> StoredSegment:
        key = self.key(number)
        await self._call(
            self.client.put_object,
            Bucket=self.bucket,
            Key=key,
            Body=data,
            ChecksumSHA256=base64.b64encode(bytes.fromhex(sha256)).decode(),
            Metadata={"sha256": sha256},
        )
        return StoredSegment(number, len(data), f"s3://{self.bucket}/{key}")

    async def list(self) -> list[StoredSegment]:
        segments = []
        token: str | None = None
        while True:
            extra = {"ContinuationToken": token} if token else {}
            page = await self._call(
                self.client.list_objects_v2, Bucket=self.bucket, Prefix=self.prefix, **extra
            )
            for item in page.get("Contents", []):
                number = _segment_number(item["Key"].removeprefix(self.prefix))
                if number is not None:
                    location = f"s3://{self.bucket}/{item['Key']}"
                    segments.append(StoredSegment(number, int(item["Size"]), location))
            if not page.get("IsTruncated"):
                break
            token = page.get("NextContinuationToken")
        return sorted(segments, key=lambda segment: segment.number)

    async def get(self, segment: StoredSegment) -> tuple[bytes, str]:
        key = segment.location.removeprefix(f"s3://{self.bucket}/")
        reply = await self._call(self.client.get_object, Bucket=self.bucket, Key=key)
        data = await asyncio.get_running_loop().run_in_executor(None, reply["Body"].read)
        return bytes(data), str((reply.get("Metadata") or {}).get("sha256", ""))

    async def delete_all(self) -> None:
        segments = await self.list()
        keys = [segment.location.removeprefix(f"s3://{self.bucket}/") for segment in segments]
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            await self._call(
                self.client.delete_objects,
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True},
            )
