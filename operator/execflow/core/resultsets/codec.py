"""The stored segment format: item records as JSON lines, compressed, encrypted, checksummed.

A ResultSet writes its items in immutable segments. Encoding a segment:

    records -> JSON lines (canonical JSON, one record a line)
            -> compressed (None, Gzip or Zstd with its content checksum)
            -> encrypted when a key is given (AES-256-GCM, the caller's 12-byte nonce)
            -> header line + body, and the sha256 of those stored bytes.

The header is one line of JSON, so reading needs no other metadata: `format` and `version`,
`compression`, `encrypted` and, when encrypted, `keyId` and `nonce` (base64). An unencrypted,
uncompressed segment is plain text: the header line then the records. Encryption authenticates,
besides the body, the header line and the segment's identity (where it is stored, passed in by
the caller), so a segment moved to another place, or with an altered header, fails to decrypt.

Decoding checks in the order that gives the most telling error: the sha256 of the stored bytes
(ChecksumMismatchError), the header, decryption (DecryptionFailedError, naming the key id found
and the ids available), decompression and parsing (ChecksumMismatchError), then each record's own
sha256 (ChecksumMismatchError naming the task). A single changed bit anywhere is caught by the
first check; the later ones catch what was altered before its checksum was taken.

Keys come from a Secret: 32 raw bytes or base64 text of 32 bytes; a key's id is the first 16 hex
characters of its sha256, so segments name their key without revealing it and any number of old
keys can stay readable (rotation). `chain_checksum` folds each segment's sha256 into the
ResultSet's `status.checksum` in O(1): c0 = sha256(b""), c_n = sha256(c_{n-1} + sha256_n).
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import json
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from execflow.api.result_set import Compression
from execflow.core.resultsets.errors import (
    ChecksumMismatchError,
    DecryptionFailedError,
    InvalidKeyError,
)
from execflow.core.resultsets.items import canonical_json, verify_record

FORMAT = "execflow.dev/segment"
VERSION = 1
"""The segment format version this module writes and reads."""
KEY_BYTES = 32
"""AES-256 keys."""
NONCE_BYTES = 12
"""AES-GCM nonces."""
KEY_ID_LENGTH = 16
CHAIN_START = hashlib.sha256(b"").hexdigest()
"""c0 of the chained checksum: the checksum of a ResultSet with no segment."""

_ZSTD_LEVEL = 3
_GZIP_LEVEL = 6


@dataclass(frozen=True)
class EncryptionKey:
    """An AES-256 key and its id (the first 16 hex characters of its sha256)."""

    id: str
    secret: bytes = field(repr=False)


@dataclass(frozen=True)
class EncodedSegment:
    """A segment's stored bytes and their hex sha256."""

    data: bytes
    sha256: str


@dataclass(frozen=True)
class SegmentHeader:
    """What a segment's header line says."""

    compression: Compression
    encrypted: bool
    key_id: str = ""
    nonce: bytes = b""


def key_id(secret: bytes) -> str:
    """The id of a key: the first 16 hex characters of its sha256."""
    return hashlib.sha256(secret).hexdigest()[:KEY_ID_LENGTH]


def parse_key(value: bytes | str) -> EncryptionKey:
    """The key a Secret value holds: 32 raw bytes, or base64 text (standard or URL-safe, spaces
    and newlines around it ignored) of 32 bytes. Raises InvalidKeyError for anything else,
    without showing the value."""
    raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    if len(raw) == KEY_BYTES:
        return EncryptionKey(key_id(raw), raw)
    text = raw.strip()
    if not text:
        raise InvalidKeyError(f"the key is empty; AES-256 needs {KEY_BYTES} bytes")
    for alphabet in (None, b"-_"):
        try:
            decoded = base64.b64decode(text, altchars=alphabet, validate=True)
        except (binascii.Error, ValueError):
            continue
        if len(decoded) == KEY_BYTES:
            return EncryptionKey(key_id(decoded), decoded)
        raise InvalidKeyError(
            f"the key is base64 text of {len(decoded)} bytes; AES-256 needs {KEY_BYTES} bytes "
            f"(raw, or base64 text of them)"
        )
    raise InvalidKeyError(
        f"the key is {len(raw)} bytes that are not base64 text; AES-256 needs {KEY_BYTES} bytes "
        f"(raw, or base64 text of them)"
    )


def keyring(values: Iterable[bytes | str]) -> dict[str, EncryptionKey]:
    """The keys among a Secret's values, by id; values that are not keys are left out (a Secret
    may hold other things next to its keys)."""
    keys = {}
    for value in values:
        try:
            key = parse_key(value)
        except InvalidKeyError:
            continue
        keys[key.id] = key
    return keys


def encode_segment(
    records: Sequence[Mapping[str, Any]],
    *,
    compression: Compression,
    identity: str,
    key: EncryptionKey | None = None,
    nonce: bytes | None = None,
) -> EncodedSegment:
    """The stored bytes of a segment holding `records` (see the module docstring).

    `identity` names the segment's place (e.g. `<namespace>/<resultset>/<number>`); with `key`,
    `nonce` must be 12 bytes the caller never uses twice with that key (random, or a counter).
    """
    if key is None and nonce is not None:
        raise ValueError("a nonce is for encryption only: pass the key as well")
    if key is not None and (nonce is None or len(nonce) != NONCE_BYTES):
        raise ValueError(f"encryption needs a nonce of {NONCE_BYTES} bytes")
    lines = b"".join(canonical_json(record) + b"\n" for record in records)
    body = _compress(lines, compression)
    header: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "compression": compression.value,
        "encrypted": key is not None,
    }
    if key is not None and nonce is not None:
        header.update(keyId=key.id, nonce=base64.b64encode(nonce).decode("ascii"))
    header_line = canonical_json(header)
    if key is not None and nonce is not None:
        body = AESGCM(key.secret).encrypt(nonce, body, _associated_data(identity, header_line))
    data = header_line + b"\n" + body
    return EncodedSegment(data, hashlib.sha256(data).hexdigest())


def decode_segment(
    data: bytes, *, sha256: str, identity: str, keys: Mapping[str, EncryptionKey]
) -> list[dict[str, Any]]:
    """The verified records of the segment stored as `data` (see the module docstring).

    `sha256` is the checksum recorded when it was written, `identity` its place as given to
    `encode_segment`, `keys` the keys available by id.
    """
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise ChecksumMismatchError(
            f"segment {identity} does not match its checksum: its sha256 is {actual}, "
            f"{sha256} was recorded when it was written"
        )
    header_line, _, body = data.partition(b"\n")
    header = read_header(data)
    if header.encrypted:
        body = _decrypt(body, header, header_line, identity, keys)
    lines = _decompress(body, header.compression, identity)
    return _parse_lines(lines, identity)


def read_header(data: bytes) -> SegmentHeader:
    """The header of a segment (which key it needs, how it is compressed), without decoding it.
    Raises ChecksumMismatchError when `data` does not start with a segment header."""
    try:
        return _header(json.loads(data.partition(b"\n")[0]))
    except (ValueError, binascii.Error) as error:
        raise ChecksumMismatchError(f"the data is not a readable segment header: {error}") from None


def _header(header: Any) -> SegmentHeader:
    if not isinstance(header, dict):
        raise ValueError("it is not a JSON object")
    missing = [
        key for key in ("format", "version", "compression", "encrypted") if key not in header
    ]
    if missing:
        raise ValueError(f"it lacks {', '.join(missing)}")
    if header["format"] != FORMAT:
        raise ValueError(f"its format is {header['format']!r}, not {FORMAT!r}")
    if header["version"] != VERSION:
        raise ValueError(f"its version is {header['version']!r}, this operator reads {VERSION}")
    compression = Compression(header["compression"])
    if header["encrypted"] is False:
        return SegmentHeader(compression, False)
    key, nonce = header.get("keyId"), header.get("nonce")
    if header["encrypted"] is not True or not isinstance(key, str) or not isinstance(nonce, str):
        raise ValueError("an encrypted segment has encrypted true, a keyId and a nonce")
    raw_nonce = base64.b64decode(nonce, validate=True)
    if len(raw_nonce) != NONCE_BYTES:
        raise ValueError(f"its nonce is {len(raw_nonce)} bytes, not {NONCE_BYTES}")
    return SegmentHeader(compression, True, key, raw_nonce)


def chain_checksum(previous: str, segment_sha256: str) -> str:
    """The checksum after one more segment: sha256 of the previous checksum followed by the
    segment's sha256 (both hex). An empty `previous` (a new status) is `CHAIN_START`."""
    start = previous or CHAIN_START
    return hashlib.sha256((start + segment_sha256).encode("ascii")).hexdigest()


def chained_checksum(segment_sha256s: Iterable[str]) -> str:
    """The checksum over segments in order, from `CHAIN_START`."""
    checksum = CHAIN_START
    for segment_sha256 in segment_sha256s:
        checksum = chain_checksum(checksum, segment_sha256)
    return checksum


def verify_chain(segment_sha256s: Iterable[str], expected: str) -> None:
    """Raises ChecksumMismatchError when the segments' chained checksum is not `expected`."""
    actual = chained_checksum(segment_sha256s)
    if actual != (expected or CHAIN_START):
        raise ChecksumMismatchError(
            f"the stored segments chain to checksum {actual}, the status records {expected}: "
            "a segment is missing, extra, reordered or altered"
        )


def _associated_data(identity: str, header_line: bytes) -> bytes:
    return FORMAT.encode("ascii") + b"\n" + identity.encode("utf-8") + b"\n" + header_line


def _compress(data: bytes, compression: Compression) -> bytes:
    if compression is Compression.GZIP:
        return gzip.compress(data, compresslevel=_GZIP_LEVEL, mtime=0)
    if compression is Compression.ZSTD:
        compressor = zstandard.ZstdCompressor(level=_ZSTD_LEVEL, write_checksum=True)
        return bytes(compressor.compress(data))
    return data


def _decompress(body: bytes, compression: Compression, identity: str) -> bytes:
    try:
        if compression is Compression.GZIP:
            return gzip.decompress(body)
        if compression is Compression.ZSTD:
            return bytes(zstandard.ZstdDecompressor().decompress(body))
    except (OSError, EOFError, zlib.error, zstandard.ZstdError) as error:
        raise ChecksumMismatchError(
            f"segment {identity} does not decompress ({compression.value}): {error}"
        ) from None
    return body


def _decrypt(
    body: bytes,
    header: SegmentHeader,
    header_line: bytes,
    identity: str,
    keys: Mapping[str, EncryptionKey],
) -> bytes:
    available = ", ".join(sorted(keys)) or "none"
    key = keys.get(header.key_id)
    if key is None:
        raise DecryptionFailedError(
            f"segment {identity} is encrypted with key {header.key_id}, which is not available "
            f"(keys available: {available}); keep the old key in the Secret after a rotation"
        )
    try:
        return AESGCM(key.secret).decrypt(
            header.nonce, body, _associated_data(identity, header_line)
        )
    except InvalidTag:
        raise DecryptionFailedError(
            f"segment {identity} does not decrypt with key {header.key_id} (keys available: "
            f"{available}): it was altered, or it was written for another place than {identity}"
        ) from None


def _parse_lines(lines: bytes, identity: str) -> list[dict[str, Any]]:
    try:
        text = lines.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ChecksumMismatchError(f"segment {identity} is not UTF-8: {error}") from None
    if text and not text.endswith("\n"):
        raise ChecksumMismatchError(f"segment {identity} ends in the middle of a record")
    records = []
    # JSON text holds no raw newline, so "\n" alone separates records (other line breaks, such
    # as U+2028, may stand unescaped inside strings).
    for number, line in enumerate(text.split("\n")[:-1], start=1):
        try:
            record = json.loads(line, parse_constant=_refuse_constant)
            verify_record(record)
        except ChecksumMismatchError as error:
            raise ChecksumMismatchError(f"segment {identity}, line {number}: {error}") from None
        except ValueError as error:
            raise ChecksumMismatchError(
                f"segment {identity}, line {number}: not a JSON record: {error}"
            ) from None
        records.append(record)
    return records


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
