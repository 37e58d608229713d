"""`{{ parameters.NAME }}` placeholders in a tool's args, filled from a task's parameters.

Only this one form is supported, on purpose: args are not a programming language. A placeholder
naming a missing parameter is an error (the task fails with InvalidParameters), never an empty
string that would run the tool with a silently wrong command line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

PLACEHOLDER = re.compile(r"\{\{\s*parameters\.([A-Za-z_][A-Za-z0-9_-]*)\s*\}\}")


class TemplateError(ValueError):
    """An arg names a parameter the task does not have."""


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def render_args(args: Sequence[str], parameters: Mapping[str, Any]) -> list[str]:
    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in parameters:
            raise TemplateError(f"args refer to parameter {name!r}, which the task does not set")
        return _text(parameters[name])

    return [PLACEHOLDER.sub(substitute, arg) for arg in args]
