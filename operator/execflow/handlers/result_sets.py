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

import datetime
import logging
import time
from collections.abc import Callable

from pydantic import ValidationError

from execflow import metrics
from execflow.api import timestamps
from execflow.api.reasons import Reason
from execflow.api.result_set import COLLECT_ANNOTATION, Backend, ResultSet, Strategy
from execflow.api.result_set_status import ResultSetPhase, ResultSetStatus
from execflow.api.workflow import FINAL_PHASES as WORKFLOW_FINAL
from execflow.core.conditions import Health, status_write
from execflow.core.resultsets import accounting
from execflow.core.resultsets.collection import (
    Candidate,
    CollectionPlan,
    CollectionView,
    SourceState,
    plan,
)
from execflow.core.resultsets.errors import ResultSetError
from execflow.core.resultsets.ledger import Ledger
from execflow.core.resultsets.sources import candidate, source_selects
from execflow.core.resultsets.transforms import Programs, compile_programs
from execflow.handlers.result_set_storage import Open, SetStorage, finish, storage_status
from execflow.handlers.stores import Stores
from execflow.kube.client import RESULTSETS, Kube
from execflow.kube.errors import NotFoundError
from execflow.kube.events import EventRecorder
from execflow.kube.result_access import MissingSecretError, StatusStore
from execflow.kube.result_storage import SegmentStore, StorageError
from execflow.runtime.controller import Controller, Result
from execflow.runtime.store import Body, uid_of

log = logging.getLogger("execflow.resultsets")

Key = tuple[str, str]
STREAMING_STATUS_SECONDS = 5.0
"""Streaming: the status follows storage at most this often (storage is written at once)."""
RETRY_SECONDS = 10.0
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
        self.clock = clock
        self.runtime: Controller[Key] = Controller("resultsets", self, workers=4)
        self.storage = SetStorage(kube, events, stores.resultsets, cleanup_grace, clock)
        self._status_written: dict[str, float] = {}

    @property
    def cleanup_grace(self) -> datetime.timedelta:
        return self.storage.cleanup_grace

    @cleanup_grace.setter
    def cleanup_grace(self, grace: datetime.timedelta) -> None:
        self.storage.cleanup_grace = grace

    def forget(self, uid: str) -> None:
        self.storage.forget(uid)
        self._status_written.pop(uid, None)

    # ----- the reconcile -------------------------------------------------------------------------
    async def reconcile(self, key: Key) -> Result:
        body = self.stores.resultsets.named(*key)
        if body is None or body["metadata"].get("deletionTimestamp"):
            delay = None if body is None else await self.storage.clean(key, body)
            return Result(requeue_after=delay)
        try:
            resource = ResultSet.model_validate(body)
        except ValidationError as error:
            return await self._fail(key, body, Reason.INVALID_SPEC, _validation_message(error))
        generation = resource.metadata.generation or 1
        status = resource.status
        # Failed: for good until the spec changes. Expired: its data is deleted, so nothing is
        # left to read back, verify or add to; the status keeps its counts and aggregations.
        failed = status.phase is ResultSetPhase.FAILED and status.observed_generation == generation
        if failed or status.phase is ResultSetPhase.EXPIRED:
            return Result()
        try:
            programs = compile_programs(resource.spec.aggregations, resource.spec.transforms)
            return await self._collect(key, body, resource, programs, generation)
        except ResultSetError as error:
            if error.reason is Reason.CHECKSUM_MISMATCH:
                metrics.CHECKSUM_FAILURES.inc()
            self.forget(resource.metadata.uid)
            return await self._fail(key, body, str(error.reason), str(error))
        except (MissingSecretError, StorageError) as error:
            self.storage.forget(resource.metadata.uid)
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
        if resource.spec.storage.backend is Backend.S3:
            body = await self.storage.keep_until_cleaned(key, body)
        opened = await self.storage.opened(resource, programs)
        status = resource.status
        if accounting.needs_recount(status, generation):
            await self.storage.reread(resource, programs, opened)
            status = accounting.emptied(status)
        status = _count(resource, programs, opened, status, (generation, now))
        decision = plan(self._view(resource, status, opened.ledger), now)
        opened.ledger.owed = decision.owed
        if decision.expire:
            await self.storage.expire(resource, opened)
            status = status.model_copy(update={"expired_at": now})
        elif decision.take:
            entry = await self.storage.write(resource, opened, decision.take)
            status = _count(resource, programs, opened, status, (generation, now))
            metrics.RESULTS_COLLECTED.inc(len(entry.records))
            _observe_latency(decision.take, now)
        status = _with_decision(storage_status(status, decision, opened), decision)
        if decision.phase is ResultSetPhase.READY:
            status = await finish(status, programs, opened.ledger.records)
        urgent = _urgent(resource, decision, opened.store)
        delay = await self._write(key, body, status, generation, urgent=urgent)
        written = self.stores.resultsets.named(*key)
        if written is not None:
            counted = ((written.get("status") or {}).get("storage") or {}).get("segments") or 0
            opened.ledger.counted(int(counted))
        self._announce(body, resource.status, status)
        return Result(requeue_after=_next(decision, now, delay))

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
                state = SourceState(workflow_running=phase not in WORKFLOW_FINAL)
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
            self.storage.forget(uid)  # what is stored is re-read, so nothing is counted twice
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


def _count(
    resource: ResultSet,
    programs: Programs,
    opened: Open,
    status: ResultSetStatus,
    at: tuple[int, datetime.datetime],
) -> ResultSetStatus:
    """`status` with every stored segment it does not count yet counted (for the spec of
    generation `at[0]`, at time `at[1]`)."""
    pending = [e for e in opened.ledger.uncounted if e.number >= status.storage.segments]
    generation, now = at
    return accounting.count_into(
        status,
        resource.spec,
        programs,
        pending,
        name=resource.metadata.name,
        generation=generation,
        now=now,
    )


def _with_decision(status: ResultSetStatus, decision: CollectionPlan) -> ResultSetStatus:
    update: dict[str, object] = {
        "phase": decision.phase,
        "reason": decision.reason,
        "message": decision.message,
    }
    if decision.served_token is not None:
        update["collect_token"] = decision.served_token
    return status.model_copy(update=update)


def _urgent(resource: ResultSet, decision: CollectionPlan, store: SegmentStore) -> bool:
    """Streaming writes storage at once and its status only every few seconds while results
    keep coming; a phase change, and anything kept in the status itself, is written at once."""
    if resource.spec.strategy is not Strategy.STREAMING or isinstance(store, StatusStore):
        return True
    return decision.phase is not resource.status.phase


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
