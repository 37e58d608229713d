"""A de-duplicating work queue: each key is worked on by one worker at a time.

Watch events for an object and for everything related to it land here as the object's key. A key
already waiting is not added twice; a key being worked on is marked dirty and worked on once more
afterwards, so no event is lost and no two workers ever handle the same key concurrently. Work
that is not a reconcile (a scheduler decision carried out for one task) takes the same per-key
turn with `exclusive()`.

Delayed re-adds keep the earliest request. Failures back off per key: the delay doubles with each
consecutive failure of that key, up to a cap, and resets on its first success, so one broken
object never slows the others down and a flapping API server is not hammered.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

BASE_DELAY = 0.25
MAX_DELAY = 120.0


class WorkQueue(Generic[K]):
    def __init__(self, base_delay: float = BASE_DELAY, max_delay: float = MAX_DELAY) -> None:
        self._queue: asyncio.Queue[K] = asyncio.Queue()
        self._waiting: set[K] = set()
        self._active: set[K] = set()
        self._dirty: set[K] = set()
        self._released: dict[K, asyncio.Event] = {}
        self._timers: dict[K, asyncio.TimerHandle] = {}
        self._failures: dict[K, int] = {}
        self._base_delay = base_delay
        self._max_delay = max_delay

    def add(self, key: K) -> None:
        if key in self._active:
            self._dirty.add(key)
            return
        if key in self._waiting:
            return
        self._waiting.add(key)
        self._queue.put_nowait(key)

    def add_after(self, key: K, delay: float) -> None:
        """Work on `key` again after `delay` seconds (the earliest pending request wins)."""
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        timer = self._timers.get(key)
        if timer is not None and not timer.cancelled() and timer.when() <= when:
            return
        if timer is not None:
            timer.cancel()
        self._timers[key] = loop.call_at(when, self._fire, key)

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def failed(self, key: K) -> float:
        """Count a failure of `key` and return the delay before it is tried again."""
        count = self._failures.get(key, 0) + 1
        self._failures[key] = count
        delay: float = self._base_delay * 2.0 ** (count - 1)
        return min(self._max_delay, delay)

    def failures(self, key: K) -> int:
        """Consecutive failures of `key` so far."""
        return self._failures.get(key, 0)

    def succeeded(self, key: K) -> None:
        self._failures.pop(key, None)

    def forget(self, key: K) -> None:
        """The object is gone: drop its pending timer and failure count."""
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        self._failures.pop(key, None)

    async def get(self) -> K:
        """The next key to work on; the caller must call `done(key)` when finished."""
        while True:
            key = await self._queue.get()
            self._waiting.discard(key)
            if key in self._active:
                # Taken by an exclusive section meanwhile: it runs again after that.
                self._dirty.add(key)
                continue
            self._active.add(key)
            return key

    def done(self, key: K) -> None:
        self._active.discard(key)
        released = self._released.pop(key, None)
        if released is not None:
            released.set()
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    @asynccontextmanager
    async def exclusive(self, key: K) -> AsyncIterator[None]:
        """Hold `key`'s turn: wait until no worker has it, keep workers off it meanwhile."""
        while key in self._active:
            released = self._released.get(key)
            if released is None:
                released = self._released[key] = asyncio.Event()
            await released.wait()
        self._active.add(key)
        try:
            yield
        finally:
            self.done(key)

    def __len__(self) -> int:
        return len(self._waiting)

    @property
    def busy(self) -> int:
        return len(self._active)
