"""Which finished Tasks a ResultSet collects: its filter, as one predicate over an item.

An item passes a `ResultFilter` exactly when all of these hold:

1. its phase is one of `phases`;
2. it carries every tag of `tags` (it may carry more; no tags asks nothing);
3. `sources` is empty, or its source (the Tool it ran) is one of `sources`;
4. when `since` is set, `since <= completion time`; when `until` is set, `completion time <
   until`. The range is half-open, so consecutive windows never both hold an item. An item
   whose completion time is empty or unreadable passes only when neither is set.

Completion times are read as `api.timestamps` reads every time (RFC 3339; no offset means UTC)
and compared as instants, whatever offset they are written with.
"""

from __future__ import annotations

from execflow.api.result_set import ResultFilter
from execflow.api.timestamps import parse_time
from execflow.core.resultsets.items import Item


def passes(result_filter: ResultFilter, item: Item) -> bool:
    """Whether `item` passes `result_filter` (see the module docstring)."""
    if item.phase not in {phase.value for phase in result_filter.phases}:
        return False
    if not set(result_filter.tags) <= set(item.tags):
        return False
    if result_filter.sources and item.source not in result_filter.sources:
        return False
    if result_filter.since is None and result_filter.until is None:
        return True
    finished = parse_time(item.completion_time)
    if finished is None:
        return False
    after_since = result_filter.since is None or result_filter.since <= finished
    before_until = result_filter.until is None or finished < result_filter.until
    return after_since and before_until
