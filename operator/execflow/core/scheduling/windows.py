"""Time-window maths: whether a task may start at an instant, and when it next may.

A task with time windows may only start while one of them is open. Windows are wall-clock times in
an IANA zone, so the answer depends on the zone's offset at that instant (daylight saving time
included); every computation converts the epoch instant into the window's zone rather than
shifting by a fixed offset. The next opening is used to put a task aside until then instead of
looking at it on every scheduling call.
"""

import datetime
from collections.abc import Sequence

from execflow.core.scheduling.model import TimeWindow

_DAY_SECONDS = 86400


def _second_of_day(window: TimeWindow, now: float) -> float:
    local = datetime.datetime.fromtimestamp(now, window.zone)
    return local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6


def window_is_open(window: TimeWindow, now: float) -> bool:
    """True when `now` lies in the window: start inclusive, end exclusive, wrapping at midnight."""
    second = _second_of_day(window, now)
    start = window.start_minute * 60
    end = window.end_minute * 60
    if start < end:
        return start <= second < end
    # An end at or before the start wraps past midnight; equal ends make a whole day.
    return second >= start or second < end


def any_window_open(windows: Sequence[TimeWindow], now: float) -> bool:
    """True when the task may start at `now`: no windows at all, or one of them open."""
    return not windows or any(window_is_open(window, now) for window in windows)


def next_window_opening(windows: Sequence[TimeWindow], now: float) -> float:
    """The first instant after `now` at which one of the windows opens (epoch seconds).

    On a day whose daylight-saving jump skips the start time, the opening falls just after the jump
    (the skipped wall time read with the offset before the jump); the caller re-checks with
    `any_window_open` when that instant comes, so a window that does not exist that day is skipped.
    """
    best = now + _DAY_SECONDS
    for window in windows:
        local_day = datetime.datetime.fromtimestamp(now, window.zone).date()
        hour, minute = divmod(window.start_minute, 60)
        # Today's opening may have passed; a DST shift can move "tomorrow" by an hour either way,
        # so look up to two days ahead.
        for days_ahead in range(3):
            day = local_day + datetime.timedelta(days=days_ahead)
            opening = datetime.datetime.combine(
                day, datetime.time(hour, minute), tzinfo=window.zone
            ).timestamp()
            if opening > now:
                best = min(best, opening)
                break
    return best
