"""Times as execflow writes and reads them: RFC 3339 in UTC with a `Z`, microseconds kept.

Every status timestamp the operator writes goes through `format_time`, and every timestamp it reads
from an object (its own statuses, Jobs, pods, Events) through `parse_time`, so there is one format
and one parser. `now` is the operator's single clock: the runtime reads it once per reconcile and
hands it to the pure core, which never reads a clock itself. Start and completion times both come
from it, so a completion is never earlier than its start, whatever precision other components use.
"""

import datetime
from typing import Any

UTC = datetime.UTC


def now() -> datetime.datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.datetime.now(UTC)


def format_time(moment: datetime.datetime) -> str:
    """RFC 3339 in UTC with a `Z`; sub-second digits are kept when present."""
    if moment.tzinfo is None:
        raise ValueError(f"refusing to format a naive datetime: {moment!r}")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def format_seconds(moment: datetime.datetime) -> str:
    """RFC 3339 in UTC to the second, for messages people read ("retrying at ...")."""
    return format_time(moment.astimezone(UTC).replace(microsecond=0))


def format_optional(moment: datetime.datetime | None) -> str | None:
    """`format_time`, passing None through."""
    return None if moment is None else format_time(moment)


def parse_time(value: Any) -> datetime.datetime | None:
    """An RFC 3339 string (or a datetime) as an aware datetime; None for empty or invalid input.

    Objects written by other components are read leniently: a timestamp that does not parse is
    treated as absent rather than failing the reconcile of the object that carries it.
    """
    if not value:
        return None
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    try:
        parsed = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def from_epoch(seconds: float) -> datetime.datetime:
    """Epoch seconds (as the scheduler counts time) as an aware datetime."""
    return datetime.datetime.fromtimestamp(seconds, UTC)
