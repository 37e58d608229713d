"""Opening a ResultSet's storage and reading it back, verified: shared by the operator and the CLI.

The operator writes through these stores and rebuilds its ledger from `read_segments` on start;
`execflow results get` reads with the same functions, so what a user reads is checked exactly as
the operator checks it: every segment's sha256 against the one stored next to it, the chain of
segment checksums against `status.checksum`, each item's own sha256, and decryption with the key
whose id the segment names (any key of the encryption Secret, so rotated keys stay readable).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from execflow.api import timestamps
from execflow.api.reasons import Reason
from execflow.api.result_set import Backend, ResultSet
from execflow.api.result_set_status import ResultSetPhase, ResultSetStatus
from execflow.core.resultsets.codec import (
    EncryptionKey,
    decode_segment,
    keyring,
    parse_key,
    verify_chain,
)
from execflow.core.resultsets.errors import ChecksumMismatchError, InvalidKeyError
from execflow.core.resultsets.ledger import SegmentEntry
from execflow.kube.client import RESULTSETS, SECRETS, Kube
from execflow.kube.errors import NotFoundError
from execflow.kube.result_storage import (
    ConfigMapStore,
    Owner,
    S3Credentials,
    S3Store,
    SegmentStore,
    StorageError,
    StoredSegment,
    s3_client,
)

SEGMENT_IDENTITY = "{namespace}/{name}/{uid}/{number}"
"""What a segment is bound to when encrypted (AES-GCM associated data)."""


class MissingSecretError(Exception):
    """A Secret (or a key in it) the spec names does not exist: the set waits for it."""


class ExpiredError(StorageError):
    """The set's stored data was deleted when its ttl passed (phase Expired): nothing to read."""

    reason = Reason.EXPIRED


@dataclass(frozen=True)
class Keys:
    current: EncryptionKey | None
    """The key new segments are encrypted with (None: not encrypted)."""
    available: Mapping[str, EncryptionKey]
    """Every key of the Secret by id, for reading."""


def owner_of(resource: ResultSet) -> Owner:
    metadata = resource.metadata
    return Owner(metadata.namespace, metadata.name, metadata.uid)


def identity(owner: Owner, number: int) -> str:
    return SEGMENT_IDENTITY.format(
        namespace=owner.namespace, name=owner.name, uid=owner.uid, number=number
    )


async def _secret(kube: Kube, namespace: str, name: str) -> dict[str, bytes]:
    try:
        body = await kube.get(SECRETS, namespace, name)
    except NotFoundError as error:
        raise MissingSecretError(f"the Secret {namespace}/{name} does not exist") from error
    data = {}
    for key, text in (body.get("data") or {}).items():
        try:
            data[key] = base64.b64decode(text)
        except binascii.Error:
            continue
    return data


async def encryption_keys(kube: Kube, resource: ResultSet) -> Keys:
    encryption = resource.spec.storage.encryption
    if encryption is None:
        return Keys(None, {})
    reference = encryption.secret_ref
    data = await _secret(kube, resource.metadata.namespace, reference.name)
    if reference.key not in data:
        raise MissingSecretError(
            f"the Secret {resource.metadata.namespace}/{reference.name} has no key "
            f"{reference.key!r}"
        )
    try:
        current = parse_key(data[reference.key])
    except InvalidKeyError as error:
        raise InvalidKeyError(
            f"the Secret {reference.name} key {reference.key!r}: {error}"
        ) from error
    return Keys(current, {**keyring(data.values()), current.id: current})


async def open_store(kube: Kube, resource: ResultSet) -> SegmentStore:
    """The store the spec names (Status backend: a store over the status itself)."""
    storage = resource.spec.storage
    owner = owner_of(resource)
    if storage.backend is Backend.STATUS:
        return StatusStore(resource.status)
    if storage.backend is Backend.CONFIG_MAP:
        return ConfigMapStore(kube, owner)
    assert storage.s3 is not None
    data = await _secret(kube, owner.namespace, storage.s3.secret_ref.name)
    missing = [key for key in ("accessKeyId", "secretAccessKey") if key not in data]
    if missing:
        raise MissingSecretError(
            f"the Secret {owner.namespace}/{storage.s3.secret_ref.name} has no "
            + " and no ".join(missing)
        )
    credentials = S3Credentials(
        endpoint=storage.s3.endpoint or data.get("endpoint", b"").decode(),
        access_key_id=data["accessKeyId"].decode(),
        secret_access_key=data["secretAccessKey"].decode(),
        region=storage.s3.region,
    )
    return S3Store(s3_client(credentials), storage.s3.bucket, storage.s3.prefix, owner)


class StatusStore:
    """Backend Status: segments as base64 text in status.storage.data, written with the status."""

    backend = "Status"

    def __init__(self, status: ResultSetStatus) -> None:
        self.data = list(status.storage.data)
        self.sha256s = list(status.storage.segment_checksums)

    async def put(self, number: int, data: bytes, sha256: str) -> StoredSegment:
        if number != len(self.data):
            raise ValueError(f"segment {number} written out of order")
        self.data.append(base64.b64encode(data).decode())
        self.sha256s.append(sha256)
        return StoredSegment(number, len(data), f"status:{number}")

    async def list(self) -> list[StoredSegment]:
        return [
            StoredSegment(number, len(text) * 3 // 4, f"status:{number}")
            for number, text in enumerate(self.data)
        ]

    async def get(self, segment: StoredSegment) -> tuple[bytes, str]:
        number = segment.number
        try:
            data = base64.b64decode(self.data[number], validate=True)
        except (IndexError, binascii.Error) as error:
            message = f"status segment {number} is unreadable: {error}"
            raise ChecksumMismatchError(message) from error
        sha256 = self.sha256s[number] if number < len(self.sha256s) else ""
        return data, sha256

    async def delete_all(self) -> None:
        self.data.clear()
        self.sha256s.clear()

    def text_size(self) -> int:
        return sum(len(text) for text in self.data)


async def read_segments(
    store: SegmentStore, owner: Owner, keys: Mapping[str, EncryptionKey]
) -> list[SegmentEntry]:
    """Every stored segment, read and verified (ChecksumMismatchError, DecryptionFailedError)."""
    entries = []
    listed = await store.list()
    for expected, segment in enumerate(listed):
        if segment.number != expected:
            raise ChecksumMismatchError(
                f"segment {expected} of {owner.namespace}/{owner.name} is missing from storage"
            )
        data, sha256 = await store.get(segment)
        records = decode_segment(
            data, sha256=sha256, identity=identity(owner, segment.number), keys=keys
        )
        entries.append(
            SegmentEntry(segment.number, sha256, len(data), segment.location, tuple(records))
        )
    return entries


def verify_counted(entries: Sequence[SegmentEntry], status: ResultSetStatus) -> None:
    """The segments the status counts are the ones stored (their chained sha256s agree)."""
    counted = status.storage.segments
    if counted > len(entries):
        raise ChecksumMismatchError(
            f"the status counts {counted} segments but storage holds {len(entries)}"
        )
    if counted:
        verify_chain([entry.sha256 for entry in entries[:counted]], status.checksum)


def records_of(entries: Sequence[SegmentEntry]) -> list[dict[str, Any]]:
    return [dict(record) for entry in entries for record in entry.records]


@dataclass(frozen=True)
class ReadBack:
    """A ResultSet as read back: the object and every stored record, verified."""

    resource: ResultSet
    records: list[dict[str, Any]]


async def read_result_set(kube: Kube, namespace: str, name: str) -> ReadBack:
    """Every record a ResultSet stored, in collection order, after verifying every checksum and
    decrypting with its Secret (ChecksumMismatchError, DecryptionFailedError, StorageError,
    MissingSecretError; ExpiredError once the ttl deleted the data). Records stored but not yet
    counted by the status are included."""
    body = await kube.get(RESULTSETS, namespace, name)
    resource = ResultSet.model_validate(body)
    status = resource.status
    if status.phase is ResultSetPhase.EXPIRED:
        when = (
            f"at {timestamps.format_time(status.expired_at)}"
            if status.expired_at is not None
            else "when its ttl passed"
        )
        raise ExpiredError(
            f"its stored data expired and was deleted {when}; the status keeps the count "
            f"({status.count}) and the aggregations"
        )
    keys = await encryption_keys(kube, resource)
    store = await open_store(kube, resource)
    entries = await read_segments(store, owner_of(resource), keys.available)
    verify_counted(entries, resource.status)
    return ReadBack(resource, records_of(entries))
