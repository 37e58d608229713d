"""What a finished container returned: its termination message, parsed.

A task's result is the text its container wrote to /dev/termination-log. JSON is parsed (an
object, list, number, string or boolean); anything else is kept as the raw string. An empty
message is an empty result (`{}`), so a task that prints nothing still completes cleanly.
"""

from __future__ import annotations

import json
from typing import Any

TERMINATION_MESSAGE_LIMIT = 4096


def parse_result(message: str | None) -> Any:
    if message is None or not message.strip():
        return {}
    try:
        return json.loads(message, parse_constant=_reject_constant)
    except ValueError:
        return message


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; the API server would refuse them in the status.
    raise ValueError(f"{name} is not JSON")
