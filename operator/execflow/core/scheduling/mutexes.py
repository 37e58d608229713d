"""Namespace mutexes: who holds each one, who waits for it, and whom it is reserved for.

A mutex is held by at most one running task. A waiting task that finds it taken is put aside as one
of its waiters, and the waiters come back together when it is free again, except when the one that
waited longest has seen the mutex granted `starvationLimit` times to others meanwhile: then the
mutex is reserved for that one and only it comes back. This is the starvation bound for a mutex that
tasks of several queues share, where no queue's own bound reaches. A mutex's record lives only
while a task holds or wants it, so memory follows the tasks that name one.
"""

from collections.abc import Callable, Iterable

from execflow.core.scheduling.index import EntryState, WaitingEntry


class _Mutex:
    __slots__ = ("grants", "holders", "interested", "reserved_for", "waiters")

    def __init__(self) -> None:
        self.holders: set[str] = set()
        self.grants = 0
        """Starts that took this mutex: the clock its waiters' passes are counted on."""
        self.interested = 0
        """Waiting tasks naming this mutex; the record lives while anyone holds or wants it."""
        self.waiters: dict[str, WaitingEntry] = {}
        self.reserved_for: WaitingEntry | None = None


class MutexTable:
    """Every mutex some task holds or wants, keyed "namespace/name"."""

    def __init__(
        self,
        unpark: Callable[[WaitingEntry], None],
        starvation_limit: Callable[[WaitingEntry], int],
    ) -> None:
        self._mutexes: dict[str, _Mutex] = {}
        self._unpark = unpark
        """Brings a waiter back into its queue."""
        self._starvation_limit = starvation_limit
        """The grants a waiter may see go to others before the mutex is reserved for it."""

    def want(self, mutex_key: str) -> None:
        """A waiting task names the mutex."""
        self._mutex(mutex_key).interested += 1

    def unwant(self, mutex_key: str, key: str) -> None:
        """A waiting task naming the mutex started or left."""
        mutex = self._mutexes[mutex_key]
        mutex.waiters.pop(key, None)
        mutex.interested -= 1
        self._drop_if_idle(mutex_key, mutex)

    def hold(self, mutex_key: str, key: str) -> None:
        """A running task holds the mutex."""
        self._mutex(mutex_key).holders.add(key)

    def release(self, mutex_key: str, key: str) -> None:
        """A running task that held the mutex ended or left."""
        mutex = self._mutexes[mutex_key]
        mutex.holders.discard(key)
        if not mutex.holders:
            self._freed(mutex)
        self._drop_if_idle(mutex_key, mutex)

    def grant(self, mutex_key: str, entry: WaitingEntry) -> None:
        """The waiting task of `entry` started holding the mutex (it is already counted running)."""
        mutex = self._mutexes[mutex_key]
        mutex.grants += 1
        if mutex.reserved_for is entry:
            mutex.reserved_for = None

    def blocker(self, mutex_key: str, entry: WaitingEntry) -> str | None:
        """Why the mutex is not available to `entry` ("held by x", "reserved for y"), or None."""
        mutex = self._mutexes.get(mutex_key)
        if mutex is None:
            return None
        if mutex.holders:
            return f"held by {min(mutex.holders)}"
        reserved = mutex.reserved_for
        if reserved is None or reserved is entry:
            return None
        if reserved.state in (EntryState.QUEUED, EntryState.EXAMINING):
            return f"reserved for {reserved.task.key}, which waited longest for it"
        mutex.reserved_for = None
        return None

    def wait(self, mutex_key: str, entry: WaitingEntry) -> None:
        """`entry`, just put aside, waits for the mutex; its wait counts from the first refusal."""
        mutex = self._mutexes[mutex_key]
        if entry.mutex_since is None:
            entry.mutex_since = mutex.grants
        mutex.waiters[entry.task.key] = entry

    def drop_reservation(self, entry: WaitingEntry) -> None:
        """`entry` no longer competes now (put aside or gone): a mutex reserved for it is free."""
        mutex_key = entry.task.mutex_key
        if mutex_key is None:
            return
        mutex = self._mutexes.get(mutex_key)
        if mutex is not None and mutex.reserved_for is entry:
            mutex.reserved_for = None
            if not mutex.holders:
                self._freed(mutex)

    def _mutex(self, mutex_key: str) -> _Mutex:
        mutex = self._mutexes.get(mutex_key)
        if mutex is None:
            mutex = self._mutexes[mutex_key] = _Mutex()
        return mutex

    def _drop_if_idle(self, mutex_key: str, mutex: _Mutex) -> None:
        if not mutex.holders and not mutex.interested:
            self._mutexes.pop(mutex_key, None)

    def _freed(self, mutex: _Mutex) -> None:
        """Nobody holds the mutex: bring its waiters back, or only the one starved for it."""
        waiters = mutex.waiters
        if not waiters:
            return
        oldest = min(
            waiters.values(),
            key=lambda entry: (
                entry.mutex_since if entry.mutex_since is not None else mutex.grants,
                entry.arrival,
            ),
        )
        since = oldest.mutex_since if oldest.mutex_since is not None else mutex.grants
        if mutex.grants - since >= self._starvation_limit(oldest):
            mutex.reserved_for = oldest
            back: Iterable[WaitingEntry] = (oldest,)
            del waiters[oldest.task.key]
        else:
            back = list(waiters.values())
            waiters.clear()
        for entry in back:
            self._unpark(entry)
