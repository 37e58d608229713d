"""When and beside what a Task may run: daily time windows (in an IANA time zone), a deadline,
exclusivity and a mutex. The formats here are checked twice, by pydantic in the operator and by
CEL at admission, with the same message."""

import datetime
import re
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field

from execflow.api.admission import AdmissionRule, cel_string, matches
from execflow.api.common import ExecflowModel

TIME_OF_DAY_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
"""A wall-clock time "HH:MM" (24-hour), as used by time windows."""

TIME_OF_DAY_MESSAGE = 'must be a 24-hour time of day "HH:MM" such as 06:00 or 22:30'
"""What admission answers for a malformed start or end of a time window."""

TIME_ZONE_PATTERN = r"^[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*$"
"""The shape of an IANA time zone name such as UTC, Europe/Berlin or America/Argentina/Salta."""

TIME_ZONE_MAX_LENGTH = 64
"""Longest time zone name accepted; the longest IANA name has 32 characters."""

TIME_ZONE_MESSAGE = "must be an IANA time zone name such as UTC, Europe/Berlin or America/New_York"
"""What admission answers for a time zone it does not know, after the field's path."""

# Go resolves "Local" to the API server's own zone, which is no zone a task can name; the scheduler
# (Python's zoneinfo) does not know it either.
_HOST_ZONE = "Local"

# Converting a fixed instant into the zone makes the API server look the name up in its time zone
# database (kube-apiserver embeds Go's time/tzdata, so every IANA zone is known even on hosts
# without /usr/share/zoneinfo). An unknown name is an evaluation error, which refuses the object
# with the error ("unknown time zone Mars/Olympus") followed by TIME_ZONE_MESSAGE. The shape check
# runs first so a name with a ":" is never read as a UTC offset.
TIME_ZONE_RULE = (
    f"{matches(TIME_ZONE_PATTERN)} && self != {cel_string(_HOST_ZONE)}"
    " && timestamp('2000-01-01T00:00:00Z').getHours(self) >= 0"
)

_TIME_OF_DAY = re.compile(TIME_OF_DAY_PATTERN)
_TIME_ZONE = re.compile(TIME_ZONE_PATTERN)


def _check_time_of_day(text: str) -> str:
    if _TIME_OF_DAY.fullmatch(text) is None:
        raise ValueError(f"{text!r} {TIME_OF_DAY_MESSAGE}")
    return text


def _check_time_zone(text: str) -> str:
    # Only the shape: whether the zone exists depends on the time zone database at hand, so the
    # scheduler checks that when it evaluates the window.
    if _TIME_ZONE.fullmatch(text) is None or text == _HOST_ZONE:
        raise ValueError(f"{text!r} {TIME_ZONE_MESSAGE}")
    return text


TimeOfDay = Annotated[
    str,
    Field(max_length=5),
    AfterValidator(_check_time_of_day),
    AdmissionRule(matches(TIME_OF_DAY_PATTERN), TIME_OF_DAY_MESSAGE),
]
"""A wall-clock time "HH:MM" (24-hour)."""

TimeZoneName = Annotated[
    str,
    Field(min_length=1, max_length=TIME_ZONE_MAX_LENGTH),
    AfterValidator(_check_time_zone),
    AdmissionRule(TIME_ZONE_RULE, TIME_ZONE_MESSAGE),
]
"""The name of an IANA time zone, such as UTC or Europe/Berlin."""


class TimeWindow(ExecflowModel):
    """A daily wall-clock window in which a task may start; it may wrap past midnight."""

    start: TimeOfDay = Field(
        description='Start of the window, "HH:MM" (24-hour), inclusive.',
    )
    end: TimeOfDay = Field(
        description='End of the window, "HH:MM" (24-hour), exclusive; before start: overnight.',
    )
    time_zone: TimeZoneName = Field(
        default="UTC",
        description="IANA time zone of start and end, e.g. Europe/Berlin. Default UTC.",
    )

    @property
    def start_time(self) -> datetime.time:
        """The start as a time of day."""
        return datetime.time.fromisoformat(self.start)

    @property
    def end_time(self) -> datetime.time:
        """The end as a time of day."""
        return datetime.time.fromisoformat(self.end)


class Constraints(ExecflowModel):
    """When and beside what a task may run."""

    deadline: AwareDatetime | None = Field(
        default=None,
        description=(
            "Time (RFC 3339) by which the task must finish; drives deadline-aware ordering. "
            "A task still waiting at its deadline fails with reason DeadlineMissed."
        ),
    )
    time_windows: list[TimeWindow] = Field(
        default_factory=list,
        max_length=32,
        description="Windows in which the task may start; empty means any time.",
    )
    exclusive: bool = Field(
        default=False,
        description="Run alone: nothing else in the task's queue runs beside it.",
    )
    mutex: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        description="Mutual-exclusion key: at most one running Task per key in the namespace.",
    )
