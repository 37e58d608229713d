"""The identity of an execution, for the execution cache.

Two executions are identical when they would run the same image with the same command, args,
environment and parameters; the key is a sha256 over those in canonical JSON. Resources, priority
and scheduling fields are deliberately left out: they change where and when, not what.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any


def execution_key(
    image: str,
    command: Sequence[str],
    args: Sequence[str],
    env: Sequence[Mapping[str, Any]],
    parameters: Mapping[str, Any],
) -> str:
    identity = {
        "image": image,
        "command": list(command),
        "args": list(args),
        "env": sorted((dict(e) for e in env), key=lambda e: str(e.get("name", ""))),
        "parameters": parameters,
    }
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
