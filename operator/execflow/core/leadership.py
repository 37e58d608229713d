"""Who may act: one replica at a time holds a coordination.k8s.io Lease, as Kubernetes' own
controllers do.

The holder renews the Lease well within its duration; any other replica takes it over only once it
has not been renewed for a whole duration (the holder is gone or cut off). A holder that cannot
renew in time must stop acting before others may take over, so two replicas never act at once as
long as clocks agree to within the renewal margin.
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from execflow.api.timestamps import format_time, parse_time


class Move(enum.Enum):
    TAKE = enum.auto()
    """Nobody holds the Lease, or its holder stopped renewing it: take it."""
    RENEW = enum.auto()
    """We hold it: renew it."""
    WAIT = enum.auto()
    """Another replica holds it and renews it: stand by."""


@dataclass(frozen=True, slots=True)
class Lease:
    holder: str
    renewed_at: datetime.datetime | None
    duration: datetime.timedelta
    transitions: int = 0


def lease_of(body: Mapping[str, Any]) -> Lease:
    spec = body.get("spec") or {}
    return Lease(
        holder=str(spec.get("holderIdentity") or ""),
        renewed_at=parse_time(spec.get("renewTime")),
        duration=datetime.timedelta(seconds=int(spec.get("leaseDurationSeconds") or 0)),
        transitions=int(spec.get("leaseTransitions") or 0),
    )


def next_move(lease: Lease | None, me: str, now: datetime.datetime) -> Move:
    if lease is None or not lease.holder:
        return Move.TAKE
    if lease.holder == me:
        return Move.RENEW
    if lease.renewed_at is None or now - lease.renewed_at > lease.duration:
        return Move.TAKE
    return Move.WAIT


def lease_spec(
    lease: Lease | None, me: str, now: datetime.datetime, duration: datetime.timedelta
) -> dict[str, Any]:
    """The Lease's spec after `me` takes or renews it at `now`."""
    taking = lease is None or lease.holder != me
    spec: dict[str, Any] = {
        "holderIdentity": me,
        "leaseDurationSeconds": max(1, int(duration.total_seconds())),
        "renewTime": format_time(now),
    }
    if taking:
        spec["acquireTime"] = format_time(now)
        spec["leaseTransitions"] = (lease.transitions + 1) if lease is not None else 0
    return spec


def released_spec() -> dict[str, Any]:
    """The Lease's spec after its holder steps down: free at once for the next replica."""
    return {"holderIdentity": None, "renewTime": None, "acquireTime": None}
