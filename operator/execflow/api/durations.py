"""Durations as users write them in Kubernetes objects: Go-style strings such as "500ms" or "1h30m".

The same grammar is enforced in three places, so this module owns it: a CEL rule in the CRD
(admission, answering with `DURATION_MESSAGE`), the pydantic `Duration` type (parsing cluster
bodies) and `parse_duration` (turning a string into a `timedelta` for scheduling and retry
maths). Accepted units are `h`, `m`, `s`, `ms`, `us` and `ns`; components may carry a decimal
fraction and repeat in any order, as in Go's `time.ParseDuration`. A bare `0` is accepted. Signs
are not: an execflow duration is never negative.
"""

import datetime
import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Annotated

from pydantic import AfterValidator, Field

from execflow.api.admission import AdmissionRule, matches

DURATION_PATTERN = r"^(0|([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+)$"
"""Regular expression (RE2- and Python-compatible) that a duration string must fully match."""

DURATION_MESSAGE = "must be a Go-style duration such as 500ms, 30s, 5m or 1h30m"
"""What admission answers for a malformed duration, after the field's path."""

DURATION_MAX_LENGTH = 64
"""Longest duration string accepted; bounds admission cost and rejects absurd input early."""

_COMPONENT = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|ms|s|m|h)")
_FULL = re.compile(DURATION_PATTERN)

_MICROSECONDS_PER_UNIT: dict[str, Decimal] = {
    "ns": Decimal("0.001"),
    "us": Decimal(1),
    "ms": Decimal(1_000),
    "s": Decimal(1_000_000),
    "m": Decimal(60_000_000),
    "h": Decimal(3_600_000_000),
}

_MICROSECONDS_PER_SECOND = 1_000_000
_MICROSECONDS_PER_MINUTE = 60 * _MICROSECONDS_PER_SECOND
_MICROSECONDS_PER_HOUR = 60 * _MICROSECONDS_PER_MINUTE


def parse_duration(text: str) -> datetime.timedelta:
    """Parse a Go-style duration string into a timedelta (nanoseconds round to microseconds).

    Raises ValueError naming the offending text and the expected form when `text` is not a
    duration or is too large to represent.
    """
    if len(text) > DURATION_MAX_LENGTH or _FULL.fullmatch(text) is None:
        raise ValueError(
            f"invalid duration {text!r}: expected a Go-style duration such as "
            f'"500ms", "30s", "5m" or "1h30m" (units h, m, s, ms, us, ns)'
        )
    if text == "0":
        return datetime.timedelta(0)
    try:
        microseconds = sum(
            (
                Decimal(number) * _MICROSECONDS_PER_UNIT[unit]
                for number, unit in _COMPONENT.findall(text)
            ),
            Decimal(0),
        )
        whole = int(microseconds.to_integral_value(rounding=ROUND_HALF_EVEN))
        return datetime.timedelta(microseconds=whole)
    except (OverflowError, InvalidOperation) as error:
        raise ValueError(f"invalid duration {text!r}: too large") from error


def format_duration(value: datetime.timedelta) -> str:
    """Render a non-negative timedelta as the shortest Go-style string that parses back to it.

    Whole hours and minutes come first ("1h30m"); seconds keep their fraction ("1.5s"); spans under
    a second use "ms" or "us" ("500ms", "250us"); zero is "0s". Raises ValueError when negative.
    """
    total = (value.days * 86_400 + value.seconds) * _MICROSECONDS_PER_SECOND + value.microseconds
    if total < 0:
        raise ValueError(f"cannot format a negative duration: {value!r}")
    if total == 0:
        return "0s"
    if total < _MICROSECONDS_PER_SECOND:
        if total % 1_000 == 0:
            return f"{total // 1_000}ms"
        return f"{total}us"
    hours, rest = divmod(total, _MICROSECONDS_PER_HOUR)
    minutes, rest = divmod(rest, _MICROSECONDS_PER_MINUTE)
    seconds, fraction = divmod(rest, _MICROSECONDS_PER_SECOND)
    parts: list[str] = []
    if hours:
        parts.append(f"{hours}h")
    if minutes:
        parts.append(f"{minutes}m")
    if fraction:
        parts.append(f"{seconds}.{fraction:06d}".rstrip("0") + "s")
    elif seconds:
        parts.append(f"{seconds}s")
    return "".join(parts)


DURATION_RULE = f"{matches(DURATION_PATTERN)} && duration(self) >= duration('0s')"
"""The CRD's check: the grammar, and what the API server's 64-bit durations hold (about 290
years; `duration()` refuses more)."""


def _check_duration(text: str) -> str:
    parse_duration(text)
    return text


Duration = Annotated[
    str,
    Field(max_length=DURATION_MAX_LENGTH),
    AfterValidator(_check_duration),
    AdmissionRule(DURATION_RULE, DURATION_MESSAGE),
]
"""A duration field: kept as the user's string, validated to parse with `parse_duration`."""
