"""The stored segment format of execflow.core.resultsets.codec: encode, decode, verify, keys.

Pure core with the real compressors and AES-GCM, no storage. Examples pin the header, the key
rules, rotation and the chained checksum; hypothesis round-trips random records through every
compression with and without encryption, and flips single bits anywhere in stored bytes: the
flip is always caught by the recorded sha256, and even when whoever flipped it also recomputed
that sha256, decoding either fails with a ResultSet error or gives back the original records.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from execflow.api.reasons import Reason
from execflow.api.result_set import Compression
from execflow.core.resultsets.codec import (
    CHAIN_START,
    EncryptionKey,
    chain_checksum,
    chained_checksum,
    decode_segment,
    encode_segment,
    keyring,
    parse_key,
    read_header,
    verify_chain,
)
from execflow.core.resultsets.errors import (
    ChecksumMismatchError,
    DecryptionFailedError,
    InvalidKeyError,
    ResultSetError,
)
from execflow.core.resultsets.items import Item, item_record

KEY = parse_key(bytes(range(32)))
OLD_KEY = parse_key(bytes(range(1, 33)))
NONCE = bytes(12)
PLACE = "default/nightly-scores/0"


def record(index: int, result: Any) -> dict[str, Any]:
    return item_record(
        Item(
            f"u{index}",
            f"task-{index}",
            "Completed",
            "tool",
            ("a",),
            "2024-05-01T00:00:00Z",
            result,
        )
    )


RECORDS = [record(0, {"score": 0.5, "note": "zürich\u2028next"}), record(1, "plain text")]


def decode(data: bytes, sha256: str, *, identity: str = PLACE, keys: Any = None) -> Any:
    available = {KEY.id: KEY} if keys is None else keys
    return decode_segment(data, sha256=sha256, identity=identity, keys=available)


def test_a_plain_segment_is_a_header_line_then_json_lines() -> None:
    segment = encode_segment(RECORDS, compression=Compression.NONE, identity=PLACE)
    header, *lines = segment.data.decode("utf-8").split("\n")

    assert json.loads(header) == {
        "format": "execflow.dev/segment",
        "version": 1,
        "compression": "None",
        "encrypted": False,
    }
    assert [json.loads(line) for line in lines[:-1]] == RECORDS
    assert lines[-1] == ""
    assert segment.sha256 == hashlib.sha256(segment.data).hexdigest()


def test_an_encrypted_segment_names_its_key_and_hides_the_records() -> None:
    segment = encode_segment(
        RECORDS, compression=Compression.NONE, identity=PLACE, key=KEY, nonce=NONCE
    )
    header = read_header(segment.data)

    assert (header.encrypted, header.key_id, header.nonce) == (True, KEY.id, NONCE)
    assert b"task-0" not in segment.data
    assert decode(segment.data, segment.sha256) == RECORDS


@pytest.mark.parametrize("compression", list(Compression))
def test_every_compression_round_trips_and_encodes_the_same_bytes_twice(
    compression: Compression,
) -> None:
    first = encode_segment(RECORDS * 50, compression=compression, identity=PLACE)
    second = encode_segment(RECORDS * 50, compression=compression, identity=PLACE)

    assert first == second
    assert read_header(first.data).compression is compression
    assert decode(first.data, first.sha256) == RECORDS * 50
    if compression is not Compression.NONE:
        plain = encode_segment(RECORDS * 50, compression=Compression.NONE, identity=PLACE)
        assert len(first.data) < len(plain.data) / 4


def test_an_empty_segment_round_trips() -> None:
    segment = encode_segment([], compression=Compression.GZIP, identity=PLACE, key=KEY, nonce=NONCE)

    assert decode(segment.data, segment.sha256) == []


def test_a_wrong_checksum_is_a_checksum_mismatch() -> None:
    segment = encode_segment(RECORDS, compression=Compression.NONE, identity=PLACE)

    with pytest.raises(ChecksumMismatchError, match="does not match its checksum") as raised:
        decode(segment.data, "0" * 64)

    assert raised.value.reason is Reason.CHECKSUM_MISMATCH


def test_a_segment_moved_to_another_place_fails_to_decrypt() -> None:
    segment = encode_segment(
        RECORDS, compression=Compression.ZSTD, identity=PLACE, key=KEY, nonce=NONCE
    )

    with pytest.raises(DecryptionFailedError, match="another place") as raised:
        decode(segment.data, segment.sha256, identity="default/other-set/0")

    assert raised.value.reason is Reason.DECRYPTION_FAILED


def test_a_missing_key_is_named_with_the_keys_available() -> None:
    segment = encode_segment(
        RECORDS, compression=Compression.NONE, identity=PLACE, key=OLD_KEY, nonce=NONCE
    )

    with pytest.raises(DecryptionFailedError) as raised:
        decode(segment.data, segment.sha256)

    assert f"encrypted with key {OLD_KEY.id}, which is not available" in str(raised.value)
    assert f"(keys available: {KEY.id})" in str(raised.value)


def test_after_a_rotation_old_and_new_segments_stay_readable() -> None:
    old = encode_segment(
        RECORDS, compression=Compression.GZIP, identity=PLACE, key=OLD_KEY, nonce=NONCE
    )
    new = encode_segment(
        RECORDS, compression=Compression.GZIP, identity=PLACE, key=KEY, nonce=NONCE
    )
    keys = keyring([KEY.secret, base64.b64encode(OLD_KEY.secret), b"not a key"])

    assert set(keys) == {KEY.id, OLD_KEY.id}
    assert decode(old.data, old.sha256, keys=keys) == decode(new.data, new.sha256, keys=keys)


def test_an_altered_record_is_named_even_with_a_recomputed_segment_checksum() -> None:
    segment = encode_segment(RECORDS, compression=Compression.NONE, identity=PLACE)
    altered = segment.data.replace(b'"score":0.5', b'"score":0.9')

    with pytest.raises(ChecksumMismatchError, match="line 1: the item of task 'task-0'"):
        decode(altered, hashlib.sha256(altered).hexdigest())


def test_a_damaged_compressed_body_is_a_checksum_mismatch() -> None:
    segment = encode_segment(RECORDS * 20, compression=Compression.GZIP, identity=PLACE)
    damaged = segment.data[:-12] + bytes(12)

    with pytest.raises(ChecksumMismatchError, match="does not decompress"):
        decode(damaged, hashlib.sha256(damaged).hexdigest())


@pytest.mark.parametrize(
    ("header", "words"),
    [
        (b"garbage", "not a readable segment header"),
        (
            b'{"format":"execflow.dev/segment","version":2,"compression":"None","encrypted":false}',
            "its version is 2, this operator reads 1",
        ),
        (b'{"format":"other","version":1,"compression":"None","encrypted":false}', "format"),
        (
            b'{"format":"execflow.dev/segment","version":1,"compression":"Lz4","encrypted":false}',
            "Lz4",
        ),
        (
            b'{"format":"execflow.dev/segment","version":1,"compression":"None","encrypted":true}',
            "has encrypted true, a keyId and a nonce",
        ),
    ],
)
def test_an_unreadable_header_is_a_checksum_mismatch(header: bytes, words: str) -> None:
    data = header + b"\n"

    with pytest.raises(ChecksumMismatchError, match=words):
        decode(data, hashlib.sha256(data).hexdigest())


def test_encryption_needs_a_twelve_byte_nonce_and_a_nonce_needs_a_key() -> None:
    with pytest.raises(ValueError, match="nonce of 12 bytes"):
        encode_segment(RECORDS, compression=Compression.NONE, identity=PLACE, key=KEY)
    with pytest.raises(ValueError, match="nonce of 12 bytes"):
        encode_segment(RECORDS, compression=Compression.NONE, identity=PLACE, key=KEY, nonce=b"1")
    with pytest.raises(ValueError, match="pass the key"):
        encode_segment(RECORDS, compression=Compression.NONE, identity=PLACE, nonce=NONCE)


# --- keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        bytes(range(32)),
        base64.b64encode(bytes(range(32))),
        base64.b64encode(bytes(range(32))) + b"\n",
        base64.b64encode(bytes(range(32))).decode("ascii"),
        base64.urlsafe_b64encode(bytes(range(32))),
    ],
)
def test_a_key_is_32_raw_bytes_or_base64_text_of_them(value: bytes | str) -> None:
    key = parse_key(value)

    assert key.secret == bytes(range(32))
    assert key.id == hashlib.sha256(bytes(range(32))).hexdigest()[:16]


def test_a_key_hides_its_secret_when_shown() -> None:
    assert "secret" not in repr(KEY)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (bytes(16), "the key is 16 bytes that are not base64 text"),
        (base64.b64encode(bytes(16)), "base64 text of 16 bytes; AES-256 needs 32 bytes"),
        ("", "the key is empty"),
        (b" \n", "the key is empty"),
    ],
)
def test_anything_else_is_an_invalid_key(value: bytes | str, words: str) -> None:
    with pytest.raises(InvalidKeyError, match=words) as raised:
        parse_key(value)

    assert raised.value.reason is Reason.INVALID_KEY


# --- chained checksum -----------------------------------------------------------------------


def test_the_chain_starts_at_the_checksum_of_nothing_and_folds_each_segment() -> None:
    first, second = "a" * 64, "b" * 64
    c1 = hashlib.sha256((hashlib.sha256(b"").hexdigest() + first).encode()).hexdigest()
    c2 = hashlib.sha256((c1 + second).encode()).hexdigest()

    assert chained_checksum([]) == CHAIN_START == hashlib.sha256(b"").hexdigest()
    assert chain_checksum("", first) == chain_checksum(CHAIN_START, first) == c1
    assert chained_checksum([first, second]) == chain_checksum(c1, second) == c2


def test_a_missing_or_reordered_segment_breaks_the_chain() -> None:
    shas = ["a" * 64, "b" * 64, "c" * 64]
    expected = chained_checksum(shas)

    verify_chain(shas, expected)
    for wrong in (shas[:2], [shas[1], shas[0], shas[2]], [*shas, "d" * 64]):
        with pytest.raises(ChecksumMismatchError, match="chain to checksum"):
            verify_chain(wrong, expected)


# --- properties ------------------------------------------------------------------------------

TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=8)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
RECORD_LISTS = st.lists(
    st.builds(
        lambda index, tags, result: item_record(
            Item(f"u{index}", f"task-{index}", "Completed", "tool", tuple(tags), "", result)
        ),
        st.integers(0, 10**6),
        st.lists(TEXT, max_size=2),
        JSON,
    ),
    max_size=4,
)
SECRETS = st.none() | st.binary(min_size=32, max_size=32).map(parse_key)


def encoded(
    records: list[dict[str, Any]], compression: Compression, key: EncryptionKey | None, nonce: bytes
) -> Any:
    return encode_segment(
        records,
        compression=compression,
        identity=PLACE,
        key=key,
        nonce=nonce if key is not None else None,
    )


@settings(max_examples=150, deadline=None)
@given(
    records=RECORD_LISTS,
    compression=st.sampled_from(list(Compression)),
    key=SECRETS,
    nonce=st.binary(min_size=12, max_size=12),
)
def test_encode_then_decode_gives_the_records_back(
    records: list[dict[str, Any]], compression: Compression, key: EncryptionKey | None, nonce: bytes
) -> None:
    segment = encoded(records, compression, key, nonce)
    keys = {} if key is None else {key.id: key}

    assert decode(segment.data, segment.sha256, keys=keys) == records
    assert read_header(segment.data).encrypted == (key is not None)


@settings(max_examples=200, deadline=None)
@given(
    records=RECORD_LISTS,
    compression=st.sampled_from(list(Compression)),
    key=SECRETS,
    nonce=st.binary(min_size=12, max_size=12),
    data=st.data(),
)
def test_a_flipped_bit_anywhere_is_never_decoded_silently(
    records: list[dict[str, Any]],
    compression: Compression,
    key: EncryptionKey | None,
    nonce: bytes,
    data: st.DataObject,
) -> None:
    segment = encoded(records, compression, key, nonce)
    # Uniform over the whole segment (drawn integers favour small values, i.e. the header).
    bit = data.draw(st.randoms(use_true_random=False)).randrange(len(segment.data) * 8)
    flipped = bytearray(segment.data)
    flipped[bit // 8] ^= 1 << (bit % 8)
    tampered = bytes(flipped)
    keys = {} if key is None else {key.id: key}

    with pytest.raises(ChecksumMismatchError):
        decode(tampered, segment.sha256, keys=keys)
    try:
        again = decode(tampered, hashlib.sha256(tampered).hexdigest(), keys=keys)
    except ResultSetError:
        return
    assert again == records


def test_gzip_bodies_are_plain_gzip() -> None:
    segment = encode_segment(RECORDS, compression=Compression.GZIP, identity=PLACE)
    body = segment.data.partition(b"\n")[2]

    assert gzip.decompress(body).decode("utf-8").count("\n") == len(RECORDS)
