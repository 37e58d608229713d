"""Polling for a condition on real objects, with a deadline and a message naming what was awaited.

Tests wait for outcomes, never for fixed times: the deadline is a ceiling, not a tuned sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(check: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """Return check()'s first truthy value; fail the test when the deadline passes."""
    deadline = time.monotonic() + timeout
    last: T = check()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
        last = check()
    return last
