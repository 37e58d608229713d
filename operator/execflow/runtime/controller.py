"""The reconcile loop every kind shares: keys from a work queue, one reconcile per key at a time.

A kind's reconciler takes a key, reads a snapshot of plain data from its stores, asks the pure core
what should be, and applies the difference through the typed API layer (`execflow.kube.client`).
This loop owns everything around that: workers, per-key exclusivity, requeues the reconciler asks
for, and errors by class:

- transient API trouble (`UnavailableError`, `ConflictError`, `ForbiddenError`) is retried with
  per-key exponential backoff and logged when it starts, every eighth failure after, and when it
  ends;
- any other exception is a bug or an object the reconciler did not expect: it is logged with its
  traceback on the first failure of that key, reported on the object itself (the reconciler's
  `report_failure`, so the object never just goes silent), then retried with the same backoff;
  one bad object never stops the others and the operator never crash-loops.

Errors that are the object's fault (`InvalidError`) are the reconciler's to handle: it ends the
object with a reason and the server's message, which is the only way a user learns of them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Hashable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from execflow import metrics
from execflow.kube.errors import ConflictError, ForbiddenError, UnavailableError
from execflow.runtime.workqueue import WorkQueue

log = logging.getLogger("execflow.runtime")

K = TypeVar("K", bound=Hashable)
K_contra = TypeVar("K_contra", bound=Hashable, contravariant=True)

TRANSIENT = (UnavailableError, ConflictError, ForbiddenError)
REPORT_EVERY = 8


@dataclass(frozen=True, slots=True)
class Result:
    """What a reconcile asks of the loop: to look again after `requeue_after` seconds."""

    requeue_after: float | None = None


class Reconciler(Protocol[K_contra]):
    async def reconcile(self, key: K_contra) -> Result: ...

    async def report_failure(self, key: K_contra, error: Exception) -> None:
        """Make an unexpected failure visible on the object (its status), best effort."""


class Controller(Generic[K]):
    def __init__(
        self,
        name: str,
        reconciler: Reconciler[K],
        workers: int = 16,
        queue: WorkQueue[K] | None = None,
    ) -> None:
        self.name = name
        self.queue: WorkQueue[K] = queue if queue is not None else WorkQueue()
        self._reconciler = reconciler
        self._workers = workers
        self._tasks: list[asyncio.Task[None]] = []
        self._initial: set[K] = set()
        self.caught_up = asyncio.Event()
        """Set once every key given to `start` has been reconciled (or has failed) once."""

    def enqueue(self, key: K) -> None:
        self.queue.add(key)

    def enqueue_after(self, key: K, seconds: float) -> None:
        self.queue.add_after(key, seconds)

    def retry_later(self, key: K) -> None:
        """Count a failure of work for `key` done outside a reconcile; look again with backoff."""
        self.queue.add_after(key, self.queue.failed(key))

    def forget(self, key: K) -> None:
        """The object is gone: cancel its pending requeue and its backoff."""
        self.queue.forget(key)

    @asynccontextmanager
    async def exclusive(self, key: K) -> AsyncIterator[None]:
        """Work on `key` outside a reconcile, with no reconcile of it running meanwhile."""
        async with self.queue.exclusive(key):
            yield

    def start(self, initial: Iterable[K] = ()) -> None:
        self._initial = set(initial)
        if not self._initial:
            self.caught_up.set()
        for key in self._initial:
            self.queue.add(key)
        for index in range(self._workers):
            self._tasks.append(asyncio.create_task(self._work(), name=f"{self.name}-{index}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _work(self) -> None:
        while True:
            key = await self.queue.get()
            try:
                await self._reconcile(key)
            finally:
                self.queue.done(key)
                if self._initial:
                    self._initial.discard(key)
                    if not self._initial:
                        self.caught_up.set()

    async def _reconcile(self, key: K) -> None:
        started = time.perf_counter()
        try:
            result = await self._reconciler.reconcile(key)
        except asyncio.CancelledError:
            raise
        except TRANSIENT as error:
            self._failed(key, error, transient=True)
            return
        except Exception as error:  # one bad object must never stop the others
            self._failed(key, error, transient=False)
            if self.queue.failures(key) == 1:
                await self._report(key, error)
            return
        finally:
            metrics.RECONCILE_SECONDS.labels(controller=self.name).observe(
                time.perf_counter() - started
            )
        failures = self.queue.failures(key)
        if failures:
            log.info("%s %s: reconciled again after %d failures", self.name, key, failures)
            self.queue.succeeded(key)
        metrics.RECONCILES.labels(controller=self.name, result="ok").inc()
        if result.requeue_after is not None:
            self.queue.add_after(key, result.requeue_after)

    async def _report(self, key: K, error: Exception) -> None:
        try:
            await self._reconciler.report_failure(key, error)
        except Exception as reporting:  # the object stays as it was; the log has both errors
            log.warning("%s %s: could not report the failure: %s", self.name, key, reporting)

    def _failed(self, key: K, error: Exception, *, transient: bool) -> None:
        delay = self.queue.failed(key)
        count = self.queue.failures(key)
        metrics.RECONCILES.labels(
            controller=self.name, result="retry" if transient else "error"
        ).inc()
        if isinstance(error, ConflictError):
            # The object changed under the reconcile: routine, the next one sees the change.
            log.debug("%s %s changed meanwhile; again in %.2fs", self.name, key, delay)
        elif count == 1 and not transient:
            log.exception("%s %s failed; retrying in %.1fs", self.name, key, delay)
        elif count == 1 or count % REPORT_EVERY == 0:
            log.warning(
                "%s %s failed %d time(s): %s; retrying in %.1fs",
                self.name,
                key,
                count,
                error,
                delay,
            )
        self.queue.add_after(key, delay)
