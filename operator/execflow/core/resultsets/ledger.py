"""What one ResultSet has stored: the operator's in-memory account, rebuilt from storage on start.

Storage is written before status: a segment is first put in the store, then counted into the
status (count, aggregations, checksum) by a status write that records how many segments are
counted (`status.storage.segments`). A crash between the two leaves segments stored but not
counted; the ledger, rebuilt from what storage lists, holds their items until the next status
write counts them. So a result is stored once (its uid is in `collected`) and counted once (its
segment's number is below the counted mark), whatever restarts happen.

The ledger also keeps every record while the set is small enough for whole-list expressions
(`keep_records`), so those are evaluated without reading storage back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SegmentEntry:
    number: int
    sha256: str
    size: int
    location: str
    records: tuple[Mapping[str, Any], ...]
    """The segment's item records; kept only until the segment is counted."""


@dataclass
class Ledger:
    collected: set[str] = field(default_factory=set)
    """Uids of every stored result."""
    stored: int = 0
    """Segments in storage (numbered 0..stored-1)."""
    uncounted: list[SegmentEntry] = field(default_factory=list)
    """Stored segments the status does not count yet, in order."""
    records: list[Mapping[str, Any]] | None = None
    """Every record in collection order, while `keep_records` allows; None beyond."""
    keep_records: int = 0
    shards: list[str] = field(default_factory=list)
    """Where the segments are (ConfigMap names), for the status."""
    owed: int = 0
    """Batch: results released but not yet written (a cache: a restart forgets it, and the
    rest of that batch then waits for the next size, interval or end)."""

    def add(self, entry: SegmentEntry) -> None:
        """A segment was stored."""
        if entry.number != self.stored:
            raise ValueError(f"segment {entry.number} stored out of order (next {self.stored})")
        self.stored += 1
        self.collected.update(str(record["uid"]) for record in entry.records)
        self.uncounted.append(entry)
        self._remember(entry.records)

    def counted(self, through: int) -> None:
        """The status now counts every segment below `through`."""
        self.uncounted = [entry for entry in self.uncounted if entry.number >= through]

    def _remember(self, records: Iterable[Mapping[str, Any]]) -> None:
        if self.records is None:
            return
        self.records.extend(records)
        if len(self.records) > self.keep_records:
            self.records = None


def rebuild(
    segments: Sequence[SegmentEntry], counted: int, keep_records: int, shards: Sequence[str] = ()
) -> Ledger:
    """The ledger of what storage holds, given how many segments the status counts."""
    ledger = Ledger(records=[] if keep_records else None, keep_records=keep_records)
    ledger.shards = list(shards)
    for entry in sorted(segments, key=lambda segment: segment.number):
        ledger.add(entry)
    ledger.counted(counted)
    return ledger
