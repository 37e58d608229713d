"""The ResultSet controller: wiring only — which snapshot, which pure functions, which writes.

A reconcile parses the set, compiles its expressions, opens its store (and its keys), makes sure
the ledger of what is stored is loaded (read back and verified once per operator start), counts
into the status whatever is stored but not yet counted, asks `core.resultsets.collection` what
to collect now, writes that as one segment (encoded, compressed, encrypted, checksummed), counts
it, and writes the status. Storage is always written before the status that counts it, so a crash
between the two is repaired by the next reconcile, never lost or counted twice.

Failures of the data or the spec end the set Failed with their reason and leave what is stored
alone; an unreachable store or a missing Secret keeps the phase, says why in the status, and is
retried with backoff. A ResultSet stored in S3 carries the finalizer `execflow.dev/storage`: its
objects are deleted before it goes, for at most `storageCleanupTimeout`, after which it is let go
with an Event naming what was left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from execflow import metrics
from execflow.api import timestamps
from execflow.api.reasons import Reason
from execflow.api.result_set import Backend, ResultSet, ResultSetPhase, ResultSetStatus, Strategy
from execflow.core.conditions import Health, status_write
from execflow.core.resultsets import accounting
from execflow.core.resultsets.codec import encode_segment
from execflow.core.resultsets.collection import (
    Candidate,
    CollectionPlan,
    CollectionView,
    SourceState,
    plan,
)
from execflow.core.resultsets.errors import ResultSetError
from execflow.core.resultsets.items import item_record
from execflow.core.resultsets.ledger import Ledger, SegmentEntry, rebuild
from execflow.core.resultsets.sources import candidate, source_selects
from execflow.core.resultsets.transforms import MAX_WHOLE_LIST_RESULTS, Programs, compile_programs
from execflow.handlers.stores import Stores
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
from execflow.runtime.controller import Controller, Result
from execflow.runtime.store import Body, uid_of

log = logging.getLogger("execflow.resultsets")

Key = tuple[str, str]
COLLECT_ANNOTATION = "execflow.dev/collect"
FINALIZER = "execflow.dev/storage"
STREAMING_STATUS_SECONDS = 5.0
"""Streaming: the status follows storage at most this often (storage is written at once)."""
RETRY_SECONDS = 10.0
WHOLE_LIST_SECONDS = 2.0
"""Longest time custom (whole-list) aggregations and transforms may take, together."""
STATUS_DATA_MAX = 128 * 1024
"""Backend Status: most bytes of encoded segments kept in the status."""
FREE_FORM = ("aggregations", "transforms", "accumulators")

_HEALTH = {
    ResultSetPhase.PENDING: Health.PROGRESSING,
    ResultSetPhase.COLLECTING: Health.PROGRESSING,
    ResultSetPhase.READY: Health.READY,
    ResultSetPhase.EXPIRED: Health.READY,
    ResultSetPhase.FAILED: Health.FAILED,
}


def health(phase: str) -> Health:
    return _HEALTH[ResultSetPhase(phase)]


@dataclass
class Open:
    """A set's storage as this operator holds it: the store, the keys and the ledger."""

    store: SegmentStore
    keys: Keys
    ledger: Ledger


class ResultSetController:
    def __init__(
        self,
        stores: Stores,
        kube: Kube,
        events: EventRecorder,
        cleanup_grace: datetime.timedelta = datetime.timedelta(minutes=1),
        clock: Callable[[], datetime.datetime] = timestamps.now,
    ) -> None:
        self.stores = stores
        self.kube = kube
        self.events = events
        self.cleanup_grace = cleanup_grace
        self.clock = clock
        self.runtime: Controller[Key] = Controller("resultsets", self, workers=4)
        self._open: dict[str, Open] = {}
        self._status_written: dict[str, float] = {}

    def forget(self, uid: str) -> None:
        self._open.pop(uid, None)
        self._status_written.pop(uid, None)

    # ----- the reconcile -------------------------------------------------------------------------
    async def reconcile(self, key: Key) -> Result:
        body = self.stores.resultsets.named(*key)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return Result() if body is None else await self._delete(key, body)
        try:
            resource = ResultSet.model_validate(body)
        except ValidationError as error:
            return await self._fail(key, body, Reason.INVALID_SPEC, _validation_message(error))
        generation = resource.metadata.generation or 1
        status = resource.status
        if status.phase is ResultSetPhase.FAILED and status.observed_generation == generation:
            return Result()  # failed for good until the spec changes
        try:
            programs = compile_programs(resource.spec.aggregations, resource.spec.transforms)
            return await self._collect(key, body, resource, programs, generation)
        except ResultSetError as error:
            if error.reason is Reason.CHECKSUM_MISMATCH:
                metrics.CHECKSUM_FAILURES.inc()
            self.forget(resource.metadata.uid)
            return await self._fail(key, body, str(error.reason), str(error))
        except (MissingSecretError, StorageError) as error:
            self._open.pop(resource.metadata.uid, None)
            reason = (
                Reason.SECRET_NOT_FOUND
                if isinstance(error, MissingSecretError)
                else Reason.STORAGE_UNAVAILABLE
            )
            return await self._wait(key, body, reason, str(error))

    async def _collect(
        self, key: Key, body: Body, resource: ResultSet, programs: Programs, generation: int
    ) -> Result:
        now = self.clock()
        spec = resource.spec
        if spec.storage.backend is Backend.S3 and FINALIZER not in _finalizers(body):
            body = await self._add_finalizer(key, body)
        opened = await self._opened(resource, programs)
        status = resource.status
        if accounting.needs_recount(status, generation):
            entries = await read_segments(opened.store, owner_of(resource), opened.keys.available)
            status = accounting.emptied(status)
            opened.ledger = rebuild(entries, 0, _keep(programs), _shards(opened.store))
        status = self._count(
            resource,
            programs=programs,
            opened=opened,
            status=status,
            generation=generation,
            now=now,
        )
        decision = plan(self._view(resource, status, opened.ledger), now)
        opened.ledger.owed = decision.owed
        if decision.expire:
            await opened.store.delete_all()
            self._open.pop(resource.metadata.uid, None)
            status = status.model_copy(update={"expired_at": now})
        elif decision.take:
            entry = await self._store_segment(resource, opened, decision.take)
            status = self._count(
                resource,
                programs=programs,
                opened=opened,
                status=status,
                generation=generation,
                now=now,
            )
            metrics.RESULTS_COLLECTED.inc(len(entry.records))
            _observe_latency(decision.take, now)
        status = _with_decision(status, decision, opened)
        if decision.phase is ResultSetPhase.READY:
            status = await _finish(status, programs, opened.ledger.records)
        urgent = _urgent(resource, decision, opened.store)
        delay = await self._write(key, body, status, generation, urgent=urgent)
        written = self.stores.resultsets.named(*key)
        if written is not None:
            counted = ((written.get("status") or {}).get("storage") or {}).get("segments") or 0
            opened.ledger.counted(int(counted))
        self._announce(body, resource.status, status)
        return Result(requeue_after=_next(decision, now, delay))

    async def _opened(self, resource: ResultSet, programs: Programs) -> Open:
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
        ledger = rebuild(entries, resource.status.storage.segments, _keep(programs), _shards(store))
        opened = Open(store, keys, ledger)
        self._open[uid] = opened
        return opened

    def _count(
        self,
        resource: ResultSet,
        *,
        programs: Programs,
        opened: Open,
        status: ResultSetStatus,
        generation: int,
        now: datetime.datetime,
    ) -> ResultSetStatus:
        pending = [e for e in opened.ledger.uncounted if e.number >= status.storage.segments]
        return accounting.count_into(
            status,
            resource.spec,
            programs,
            pending,
            name=resource.metadata.name,
            generation=generation,
            now=now,
        )

    async def _store_segment(
        self, resource: ResultSet, opened: Open, take: tuple[Candidate, ...]
    ) -> SegmentEntry:
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

    def _view(self, resource: ResultSet, status: ResultSetStatus, ledger: Ledger) -> CollectionView:
        namespace = resource.metadata.namespace
        source = resource.spec.source
        state = SourceState()
        workflow_uid = None
        if source.workflow_ref is not None:
            workflow = self.stores.workflows.named(namespace, source.workflow_ref.name)
            if workflow is None:
                state = SourceState(workflow_missing=True)
            else:
                workflow_uid = uid_of(workflow)
                phase = (workflow.get("status") or {}).get("phase")
                state = SourceState(workflow_running=phase not in _WORKFLOW_DONE)
            tasks = self.stores.tasks.indexed("owner", workflow_uid) if workflow_uid else []
        elif source.task_refs is not None:
            named = {name: self.stores.tasks.named(namespace, name) for name in source.task_refs}
            tasks = [task for task in named.values() if task is not None]
            state = SourceState(missing=tuple(n for n, task in named.items() if task is None))
        else:
            tasks = self.stores.tasks.indexed("namespace", namespace)
        selected = [candidate(t) for t in tasks if source_selects(source, t, workflow_uid)]
        return CollectionView(
            spec=resource.spec,
            phase=status.phase,
            candidates=selected,
            collected=ledger.collected,
            source=state,
            collect_token=resource.metadata.annotations.get(COLLECT_ANNOTATION, ""),
            served_token=status.collect_token,
            last_collected_at=status.last_collected_at,
            created_at=resource.metadata.creation_timestamp,
            owed=ledger.owed,
        )

    # ----- writes ------------------------------------------------------------------------------
    async def _write(
        self,
        key: Key,
        body: Body,
        status: ResultSetStatus,
        generation: int,
        *,
        urgent: bool = True,
    ) -> float | None:
        """Write the status (a non-urgent one at most every few seconds: returns the wait)."""
        uid = uid_of(body)
        if not urgent:
            last = self._status_written.get(uid)
            elapsed = time.monotonic() - last if last is not None else STREAMING_STATUS_SECONDS
            if elapsed < STREAMING_STATUS_SECONDS:
                return STREAMING_STATUS_SECONDS - elapsed
        update = status_write(
            body.get("status") or {},
            ResultSetStatus.model_validate(status.model_dump(by_alias=True, exclude_unset=True)),
            generation=generation,
            now=self.clock(),
            health=health,
            free_form=FREE_FORM,
        )
        if update is None:
            return None
        try:
            reply = await self.kube.patch_status(RESULTSETS, key[0], key[1], update, expect=body)
        except NotFoundError:
            return None
        except Exception:
            self._open.pop(uid, None)  # what is stored is re-read, so nothing is counted twice
            raise
        self.stores.resultsets.put(reply)
        self._status_written[uid] = time.monotonic()
        return None

    async def _fail(self, key: Key, body: Body, reason: str, message: str) -> Result:
        log.warning("resultset %s/%s: %s: %s", key[0], key[1], reason, message)
        current = ResultSetStatus.model_validate(body.get("status") or {})
        failed = current.model_copy(
            update={"phase": ResultSetPhase.FAILED, "reason": reason, "message": message[:2048]}
        )
        if current.phase is not ResultSetPhase.FAILED or current.reason != reason:
            self.events.record(body, "Warning", reason, message)
        generation = int(body["metadata"].get("generation") or 1)
        await self._write(key, body, failed, generation)
        return Result()

    async def _wait(self, key: Key, body: Body, reason: str, message: str) -> Result:
        """Cannot go on now (a missing Secret, an unreachable store): say why, try again later."""
        current = ResultSetStatus.model_validate(body.get("status") or {})
        if current.reason != reason:
            self.events.record(body, "Warning", reason, message)
        waiting = current.model_copy(update={"reason": reason, "message": message[:2048]})
        generation = int(body["metadata"].get("generation") or 1)
        await self._write(key, body, waiting, generation)
        return Result(requeue_after=RETRY_SECONDS)

    def _announce(self, body: Body, before: ResultSetStatus, after: ResultSetStatus) -> None:
        if after.phase is before.phase:
            return
        if after.phase is ResultSetPhase.READY:
            self.events.record(body, "Normal", Reason.COLLECTED, f"{after.count} results collected")
            if after.aggregations:
                self.events.record(body, "Normal", Reason.AGGREGATED, _summary(after.aggregations))
            if after.transforms:
                self.events.record(body, "Normal", Reason.TRANSFORMED, _summary(after.transforms))
        elif after.phase is ResultSetPhase.EXPIRED:
            self.events.record(body, "Normal", Reason.EXPIRED, after.message)

    # ----- deletion ----------------------------------------------------------------------------
    async def _add_finalizer(self, key: Key, body: Body) -> Body:
        finalizers = [*_finalizers(body), FINALIZER]
        reply = await self.kube.patch(
            RESULTSETS, key[0], key[1], {"metadata": {"finalizers": finalizers}}, expect=body
        )
        self.stores.resultsets.put(reply)
        return reply

    async def _delete(self, key: Key, body: Body) -> Result:
        self.forget(uid_of(body))
        if FINALIZER not in _finalizers(body):
            return Result()
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
                    return Result(requeue_after=min(RETRY_SECONDS, remaining))
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
        return Result()

    async def report_failure(self, key: Key, error: Exception) -> None:
        body = self.stores.resultsets.named(*key)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return
        message = (
            f"the operator cannot reconcile this ResultSet ({type(error).__name__}: {error}); it "
            "keeps retrying with backoff. This is a bug in execflow: please report it"
        )
        current = ResultSetStatus.model_validate(body.get("status") or {})
        update = current.model_copy(update={"reason": Reason.OPERATOR_ERROR, "message": message})
        await self._write(key, body, update, int(body["metadata"].get("generation") or 1))


async def _finish(
    status: ResultSetStatus, programs: Programs, records: list[Mapping[str, Any]] | None
) -> ResultSetStatus:
    """The whole-list expressions, on a worker thread and under `WHOLE_LIST_SECONDS`."""
    loop = asyncio.get_running_loop()
    work = loop.run_in_executor(None, accounting.finish, status, programs, records)
    try:
        return await asyncio.wait_for(work, WHOLE_LIST_SECONDS)
    except TimeoutError:
        raise WholeListTimeoutError(status.count) from None


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


_WORKFLOW_DONE = frozenset({"Completed", "Failed", "Cancelled", "Timeout"})


def _finalizers(body: Body) -> list[str]:
    return list(body["metadata"].get("finalizers") or [])


def _keep(programs: Programs) -> int:
    customs = programs.aggregations or any(p.kind == "custom" for p in programs.transforms)
    return MAX_WHOLE_LIST_RESULTS if customs else 0


def _shards(store: SegmentStore) -> list[str]:
    return list(getattr(store, "shard_names", []))


def _with_decision(
    status: ResultSetStatus, decision: CollectionPlan, opened: Open
) -> ResultSetStatus:
    store = opened.store
    storage = status.storage.model_copy(
        update={
            "backend": store.backend,
            "config_maps": _shards(store),
            "bucket": getattr(store, "bucket", ""),
            "prefix": getattr(store, "prefix", ""),
            "key_id": opened.keys.current.id if opened.keys.current else "",
        }
    )
    if isinstance(store, StatusStore):
        storage = storage.model_copy(update={"data": store.data, "segment_sha256s": store.sha256s})
    elif decision.expire:
        storage = storage.model_copy(update={"config_maps": []})
    update = {
        "phase": decision.phase,
        "reason": decision.reason,
        "message": decision.message,
        "storage": storage,
    }
    if decision.served_token is not None:
        update["collect_token"] = decision.served_token
    return status.model_copy(update=update)


def _urgent(resource: ResultSet, decision: CollectionPlan, store: SegmentStore) -> bool:
    """Streaming writes storage at once and its status only every few seconds while results
    keep coming; a phase change, and anything kept in the status itself, is written at once."""
    if resource.spec.strategy is not Strategy.STREAMING or isinstance(store, StatusStore):
        return True
    return decision.phase is not resource.status.phase or not decision.more


def _next(decision: CollectionPlan, now: datetime.datetime, delay: float | None) -> float | None:
    waits = [delay] if delay is not None else []
    if decision.more:
        waits.append(0.0)
    if decision.requeue_at is not None:
        waits.append(max(0.0, (decision.requeue_at - now).total_seconds()))
    return min(waits) if waits else None


def _observe_latency(take: tuple[Candidate, ...], now: datetime.datetime) -> None:
    for task in take:
        if task.finished_at is not None:
            metrics.RESULT_LATENCY.observe(max(0.0, (now - task.finished_at).total_seconds()))


def _summary(values: dict[str, object]) -> str:
    text = ", ".join(f"{name}={value}" for name, value in values.items())
    return text if len(text) <= 512 else text[:509] + "..."


def _validation_message(error: ValidationError) -> str:
    parts = []
    for problem in error.errors()[:5]:
        where = ".".join(str(part) for part in problem["loc"])
        parts.append(f"{where}: {problem['msg']}" if where else str(problem["msg"]))
    return "; ".join(parts)


def _parsed(body: Body) -> ResultSet | None:
    try:
        return ResultSet.model_validate(body)
    except ValidationError:
        return None
