"""The ResultSet controller's hold on each set's storage: opening it, writing segments, cleanup.

A set's store, keys and ledger are opened once per operator start (or after a failure): the
ledger is rebuilt by reading back and verifying everything stored, so the controller knows which
results are stored and which stored segments its status does not count yet. Writing a segment
encodes it (compressed, encrypted with a fresh random nonce, checksummed) and puts it in the
store before the status may count it. Deleting a set stored in S3 deletes its objects first,
giving up after the cleanup grace with an Event that names what was left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from execflow import metrics
from execflow.api import timestamps
from execflow.api.reasons import Reason
from execflow.api.result_set import ResultSet
from execflow.api.result_set_status import ResultSetStatus
from execflow.core.resultsets import accounting
from execflow.core.resultsets.codec import encode_segment
from execflow.core.resultsets.collection import Candidate, CollectionPlan
from execflow.core.resultsets.errors import ResultSetError
from execflow.core.resultsets.items import item_record
from execflow.core.resultsets.ledger import Ledger, SegmentEntry, rebuild
from execflow.core.resultsets.transforms import MAX_WHOLE_LIST_RESULTS, Programs
from execflow.kube.client import RESULTSETS, Kube
from execflow.kube.errors import NotFoundError
from execflow.kube.events import EventRecorder
from execflow.kube.result_access import (
    Keys,
    MissingSecretError,
    StatusStore,
    encryption_keys,
    identity,
    open_store,
    owner_of,
    read_segments,
    verify_counted,
)
from execflow.kube.result_storage import SegmentStore, StorageError
from execflow.runtime.store import Body, Store, uid_of

log = logging.getLogger("execflow.resultsets")

Key = tuple[str, str]
FINALIZER = "execflow.dev/storage"
RETRY_SECONDS = 10.0
WHOLE_LIST_SECONDS = 2.0
"""Longest time custom (whole-list) aggregations and transforms may take, together."""
STATUS_DATA_MAX = 128 * 1024
"""Backend Status: most bytes of encoded segments kept in the status."""


@dataclass
class Open:
    """A set's storage as this operator holds it: the store, the keys and the ledger."""

    store: SegmentStore
    keys: Keys
    ledger: Ledger


class SetStorage:
    def __init__(
        self,
        kube: Kube,
        events: EventRecorder,
        sets: Store,
        cleanup_grace: datetime.timedelta,
        clock: Callable[[], datetime.datetime] = timestamps.now,
    ) -> None:
        self.kube = kube
        self.events = events
        self.sets = sets
        self.cleanup_grace = cleanup_grace
        self.clock = clock
        self._open: dict[str, Open] = {}

    def forget(self, uid: str) -> None:
        self._open.pop(uid, None)

    async def opened(self, resource: ResultSet, programs: Programs) -> Open:
        """The set's store, keys and ledger; the ledger is read back from storage once."""
        uid = resource.metadata.uid
        keys = await encryption_keys(self.kube, resource)
        opened = self._open.get(uid)
        if opened is not None and opened.store.backend == resource.spec.storage.backend.value:
            opened.keys = keys
            return opened
        store = await open_store(self.kube, resource)
        entries = await read_segments(store, owner_of(resource), keys.available)
        verify_counted(entries, resource.status)
        counted = resource.status.storage.segments
        opened = Open(store, keys, rebuild(entries, counted, _keep(programs), shards(store)))
        self._open[uid] = opened
        return opened

    async def reread(self, resource: ResultSet, programs: Programs, opened: Open) -> None:
        """Rebuild the ledger with nothing counted, for a recount of everything stored."""
        entries = await read_segments(opened.store, owner_of(resource), opened.keys.available)
        opened.ledger = rebuild(entries, 0, _keep(programs), shards(opened.store))

    async def write(
        self, resource: ResultSet, opened: Open, take: tuple[Candidate, ...]
    ) -> SegmentEntry:
        """Store the next segment, holding the results of `take`."""
        number = opened.ledger.stored
        records = tuple(item_record(candidate.item()) for candidate in take)
        key = opened.keys.current
        encoded = encode_segment(
            records,
            compression=resource.spec.storage.compression,
            identity=identity(owner_of(resource), number),
            key=key,
            nonce=os.urandom(12) if key is not None else None,
        )
        stored = await opened.store.put(number, encoded.data, encoded.sha256)
        if isinstance(opened.store, StatusStore) and opened.store.text_size() > STATUS_DATA_MAX:
            raise StatusTooLargeError(resource.status.count + len(records))
        metrics.RESULT_BYTES.labels(backend=opened.store.backend).inc(len(encoded.data))
        entry = SegmentEntry(number, encoded.sha256, len(encoded.data), stored.location, records)
        opened.ledger.add(entry)
        return entry

    async def expire(self, resource: ResultSet, opened: Open) -> None:
        await opened.store.delete_all()
        self.forget(resource.metadata.uid)

    # ----- deletion ----------------------------------------------------------------------------
    async def keep_until_cleaned(self, key: Key, body: Body) -> Body:
        """The set with the finalizer that holds it until its S3 objects are deleted."""
        if FINALIZER in _finalizers(body):
            return body
        finalizers = [*_finalizers(body), FINALIZER]
        reply = await self.kube.patch(
            RESULTSETS, key[0], key[1], {"metadata": {"finalizers": finalizers}}, expect=body
        )
        self.sets.put(reply)
        return reply

    async def clean(self, key: Key, body: Body) -> float | None:
        """Delete a deleted set's S3 objects, then let it go; the wait while the store cannot be
        reached (at most the cleanup grace, then it goes with a StorageLeftBehind Event)."""
        self.forget(uid_of(body))
        if FINALIZER not in _finalizers(body):
            return None
        resource = _parsed(body)
        if resource is not None and resource.spec.storage.s3 is not None:
            try:
                store = await open_store(self.kube, resource)
                await store.delete_all()
            except (StorageError, MissingSecretError) as error:
                started = timestamps.parse_time(body["metadata"]["deletionTimestamp"])
                deadline = (started or self.clock()) + self.cleanup_grace
                remaining = (deadline - self.clock()).total_seconds()
                if remaining > 0:
                    log.info("resultset %s/%s: cleanup waits: %s", key[0], key[1], error)
                    return min(RETRY_SECONDS, remaining)
                s3 = resource.spec.storage.s3
                owner = owner_of(resource)
                where = f"s3://{s3.bucket}/{s3.prefix}{owner.namespace}/{owner.stem}/"
                self.events.record(
                    body,
                    "Warning",
                    Reason.STORAGE_LEFT_BEHIND,
                    f"gave up deleting the stored data after {self.cleanup_grace}: {error}; "
                    f"left behind: the objects under {where}",
                )
        finalizers = [name for name in _finalizers(body) if name != FINALIZER]
        with contextlib.suppress(NotFoundError):
            await self.kube.patch(
                RESULTSETS,
                key[0],
                key[1],
                {"metadata": {"finalizers": finalizers or None}},
                expect=body,
            )
        return None


async def finish(
    status: ResultSetStatus, programs: Programs, records: list[Mapping[str, Any]] | None
) -> ResultSetStatus:
    """The whole-list expressions, on a worker thread and under `WHOLE_LIST_SECONDS`."""
    loop = asyncio.get_running_loop()
    work = loop.run_in_executor(None, accounting.finish, status, programs, records)
    try:
        return await asyncio.wait_for(work, WHOLE_LIST_SECONDS)
    except TimeoutError:
        raise WholeListTimeoutError(status.count) from None


def storage_status(
    status: ResultSetStatus, decision: CollectionPlan, opened: Open
) -> ResultSetStatus:
    """`status` with where the data lives now (and, backend Status, the data itself)."""
    store = opened.store
    storage = status.storage.model_copy(
        update={
            "backend": store.backend,
            "config_maps": [] if decision.expire else shards(store),
            "bucket": getattr(store, "bucket", ""),
            "prefix": getattr(store, "prefix", ""),
            "key_id": opened.keys.current.id if opened.keys.current else "",
        }
    )
    if isinstance(store, StatusStore):
        storage = storage.model_copy(
            update={"data": store.data, "segment_checksums": store.sha256s}
        )
    return status.model_copy(update={"storage": storage})


class WholeListTimeoutError(ResultSetError):
    reason = Reason.TOO_LARGE

    def __init__(self, count: int) -> None:
        super().__init__(
            f"custom aggregations and transforms over {count} results took more than "
            f"{WHOLE_LIST_SECONDS:.0f} s, the time they may take; use built-in aggregations or "
            "per-result transforms, which have no limit"
        )


class StatusTooLargeError(ResultSetError):
    reason = Reason.TOO_LARGE

    def __init__(self, count: int) -> None:
        super().__init__(
            f"backend Status keeps at most {STATUS_DATA_MAX // 1024} KiB of data in the "
            f"ResultSet's status, and {count} results need more; use backend ConfigMap or S3 "
            "(what was collected is kept)"
        )


def shards(store: SegmentStore) -> list[str]:
    return list(getattr(store, "shard_names", []))


def _finalizers(body: Body) -> list[str]:
    return list(body["metadata"].get("finalizers") or [])


def _keep(programs: Programs) -> int:
    customs = programs.aggregations or any(p.kind == "custom" for p in programs.transforms)
    return MAX_WHOLE_LIST_RESULTS if customs else 0


def _parsed(body: Body) -> ResultSet | None:
    try:
        return ResultSet.model_validate(body)
    except ValidationError:
        return None
