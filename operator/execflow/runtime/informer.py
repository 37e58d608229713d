"""Keeps one store current from its watch streams.

An informer owns one store and one stream per watched namespace (or one cluster-wide). It feeds
every event into the store and ends every listing with `Store.listed` (which forgets objects
deleted while nobody watched); the store tells its listeners (the kind's change handlers, which
only enqueue keys) what changed. A stream that fails (the API server is down, RBAC refuses the
watch) is restarted with backoff; the failure is logged once when it starts and once when it
ends, not per retry. A listing after the first (the watch lost its place) is logged with the
number of objects it found deleted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from execflow.runtime.store import Store

log = logging.getLogger("execflow.runtime")

StreamEvent = tuple[str | None, dict[str, Any]] | object
StreamFactory = Callable[[], AsyncIterator[StreamEvent]]
FIRST_RETRY = 1.0
MAX_RETRY = 60.0


class Informer:
    def __init__(
        self,
        store: Store,
        streams: Sequence[tuple[str | None, StreamFactory]],
        listed_mark: object,
    ) -> None:
        """`streams` pairs each namespace (None: all) with a factory of its event stream."""
        self.store = store
        self._streams = list(streams)
        self._listed_mark = listed_mark
        self._pending = {scope for scope, _ in self._streams}
        self._listed: set[str | None] = set()
        self.synced = asyncio.Event()
        """Set once every stream has completed its first listing."""
        if not self._pending:
            self.synced.set()

    async def run(self) -> None:
        await asyncio.gather(*(self._follow(scope, factory) for scope, factory in self._streams))

    async def _follow(self, scope: str | None, factory: StreamFactory) -> None:
        where = f"in namespace {scope}" if scope else "cluster-wide"
        delay = FIRST_RETRY
        failing = False
        while True:
            try:
                async for event in factory():
                    if failing:
                        log.info("watching %s %s again", self.store.kind, where)
                        failing = False
                    delay = FIRST_RETRY
                    self._feed(scope, event)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # any failure of the stream: retried, never fatal
                if not failing:
                    log.warning(
                        "cannot watch %s %s (%s: %s); retrying with backoff",
                        self.store.kind,
                        where,
                        type(error).__name__,
                        error,
                    )
                failing = True
            await asyncio.sleep(delay)
            delay = min(MAX_RETRY, delay * 2)

    def _feed(self, scope: str | None, event: StreamEvent) -> None:
        if event is self._listed_mark:
            forgotten = self.store.listed(scope)
            if scope in self._listed:
                where = f"in namespace {scope}" if scope else "cluster-wide"
                log.info(
                    "listed %s %s again (the watch lost its place); forgot %d deleted meanwhile",
                    self.store.kind,
                    where,
                    len(forgotten),
                )
            self._listed.add(scope)
            self._pending.discard(scope)
            if not self._pending:
                self.synced.set()
        else:
            assert isinstance(event, tuple)
            event_type, body = event
            self.store.apply(event_type, body, scope)
