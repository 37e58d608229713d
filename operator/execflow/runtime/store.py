"""The runtime's cache of one kind of object, fed by its watch and reconciled against every listing.

Objects are kept by uid, so a new object that reuses an old name starts clean: nothing about its
predecessor (its children, its index entries) is found through it. `DELETED` forgets an object at
once. A watch can also lose objects without a `DELETED`: when the operator could not watch for a
while and the API server no longer has the events (410 Gone), the watch starts over with a fresh
listing. Every listing therefore ends with `listed()`, and whatever the store holds that the
listing did not contain is forgotten as if it had been deleted, so no ghost outlives a relist.

Secondary indexes (owner uid, a label value, a status field) are functions of the stored bodies,
maintained on every change, so an index never holds an entry for an object the store forgot and a
restart rebuilds exactly the same indexes.

Bodies are shared, never copied: treat them as read-only. A store may keep only part of each body
(its `trim`): an operator that holds every Job and pod of a large cluster must not hold the parts
no reader looks at, such as `managedFields` or a Job's pod template.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

Body = Mapping[str, Any]
Indexer = Callable[[Body], Iterable[Hashable]]
"""The index values of a body (none, one or several)."""
Trim = Callable[[Body], Body]
"""The part of a body a store keeps."""


class ChangeType(enum.Enum):
    ADDED = "added"
    MODIFIED = "modified"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class Change:
    """What one event or listing did to the store. `body` is the last known state of the object."""

    type: ChangeType
    body: Body
    old: Body | None = None


SHORT = 40
"""Strings up to this length are shared between stored objects (names, reasons, phases...)."""


def compact(value: Any) -> Any:
    """`value` rebuilt with its keys and short strings interned: one copy of "metadata",
    "lastTransitionTime" or "Succeeded" for all stored objects, not one per object. A decoded
    watch event holds its own copy of every key; across thousands of stored objects the keys
    alone took more memory than the values."""
    if isinstance(value, dict):
        return {sys.intern(key): compact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [compact(item) for item in value]
    if isinstance(value, str) and len(value) <= SHORT:
        return sys.intern(value)
    return value


def uid_of(body: Body) -> str:
    return str(body["metadata"]["uid"])


def name_of(body: Body) -> tuple[str, str]:
    metadata = body["metadata"]
    return (str(metadata.get("namespace") or ""), str(metadata["name"]))


def _version(body: Body) -> int | None:
    text = body["metadata"].get("resourceVersion")
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def is_older(incoming: Body, stored: Body) -> bool:
    """Whether `incoming` is an older version of the stored object than the one held.

    The store is written ahead of the watch with the bodies the API server returns for the
    operator's own writes, so a watch event still in flight may carry an older version. Resource
    versions are opaque by contract, but every API server backed by etcd issues them as increasing
    integers; when they do not parse as integers, every event is taken as newer.
    """
    new, old = _version(incoming), _version(stored)
    return new is not None and old is not None and new < old


class Store:
    """Objects of one kind, by uid, with a name lookup and secondary indexes."""

    def __init__(
        self,
        kind: str,
        indexers: Mapping[str, Indexer] | None = None,
        trim: Trim | None = None,
    ) -> None:
        self.kind = kind
        self._trim = trim
        self._listeners: list[Callable[[Change], None]] = []
        self._objects: dict[str, Body] = {}
        self._names: dict[tuple[str, str], str] = {}
        self._indexers = dict(indexers or {})
        self._indexes: dict[str, dict[Hashable, dict[str, Body]]] = {
            name: {} for name in self._indexers
        }
        self._listings: dict[str | None, set[str]] = {}

    def listen(self, listener: Callable[[Change], None]) -> None:
        """Call `listener` with every change, whichever way it came: a watch event, a listing,
        or the reply to the operator's own write (which the watch then echoes without change)."""
        self._listeners.append(listener)

    def _tell(self, changes: list[Change]) -> list[Change]:
        for change in changes:
            for listener in self._listeners:
                listener(change)
        return changes

    # ----- feeding ------------------------------------------------------------------------
    def apply(self, event_type: str | None, body: Body, scope: str | None = None) -> list[Change]:
        """One watch event; `None` is an object of a listing (kopf's convention).

        `scope` is the namespace the stream watches (None: all), so that several streams, one per
        namespace, can feed one store and each listing judges only its own namespace.
        """
        if event_type == "BOOKMARK":
            return []
        if event_type is None:
            self._listings.setdefault(scope, set()).add(uid_of(body))
        if event_type == "DELETED":
            return self.delete(body)
        return self.put(body)

    def put(self, body: Body) -> list[Change]:
        """Add or replace an object (a watch event, a listing, or the reply to our own write)."""
        return self._tell(self._put(body))

    def _put(self, body: Body) -> list[Change]:
        if self._trim is not None:
            body = self._trim(body)
        uid = uid_of(body)
        key = name_of(body)
        changes: list[Change] = []
        holder = self._names.get(key)
        if holder is not None and holder != uid:
            # The name now belongs to a new object: its predecessor is gone, DELETED or not.
            changes += self._forget(holder)
        old = self._objects.get(uid)
        if old is not None and (is_older(body, old) or _same_version(body, old)):
            return changes
        self._unindex(uid, old)
        self._objects[uid] = body
        self._names[key] = uid
        self._index(uid, body)
        changes.append(Change(ChangeType.ADDED if old is None else ChangeType.MODIFIED, body, old))
        return changes

    def delete(self, body: Body) -> list[Change]:
        return self._tell(self._forget(uid_of(body), last=body))

    def listed(self, scope: str | None = None) -> list[Change]:
        """A listing of `scope` ended: forget every object of it that the listing did not hold."""
        seen = self._listings.pop(scope, set())
        changes: list[Change] = []
        stale = [
            uid
            for uid, body in self._objects.items()
            if uid not in seen and (scope is None or name_of(body)[0] == scope)
        ]
        for uid in stale:
            changes += self._forget(uid)
        return self._tell(changes)

    def _forget(self, uid: str, last: Body | None = None) -> list[Change]:
        body = self._objects.pop(uid, None)
        if body is None:
            return []
        self._unindex(uid, body)
        key = name_of(body)
        if self._names.get(key) == uid:
            del self._names[key]
        return [Change(ChangeType.DELETED, last or body, body)]

    def _index(self, uid: str, body: Body) -> None:
        for name, indexer in self._indexers.items():
            index = self._indexes[name]
            for value in indexer(body):
                index.setdefault(value, {})[uid] = body

    def _unindex(self, uid: str, body: Body | None) -> None:
        if body is None:
            return
        for name, indexer in self._indexers.items():
            index = self._indexes[name]
            for value in indexer(body):
                bucket = index.get(value)
                if bucket is not None:
                    bucket.pop(uid, None)
                    if not bucket:
                        del index[value]

    # ----- reading ------------------------------------------------------------------------
    def get(self, uid: str) -> Body | None:
        return self._objects.get(uid)

    def named(self, namespace: str, name: str) -> Body | None:
        uid = self._names.get((namespace, name))
        return None if uid is None else self._objects[uid]

    def indexed(self, index: str, value: Hashable) -> list[Body]:
        return list(self._indexes[index].get(value, {}).values())

    def __len__(self) -> int:
        return len(self._objects)

    def __iter__(self) -> Iterator[Body]:
        return iter(list(self._objects.values()))


def _same_version(incoming: Body, stored: Body) -> bool:
    version = incoming["metadata"].get("resourceVersion")
    return bool(version) and version == stored["metadata"].get("resourceVersion")
