"""The execution cache: an execution's identity, and the newest identical result still fresh.

The index of completed executions is the store's (completed Tasks by `status.cacheKey`, derived
from the stored bodies); this module computes a Task's key and picks from the candidates.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from execflow.api.task import TaskSpec
from execflow.api.timestamps import parse_time
from execflow.api.tool import ToolSpec
from execflow.core.cache_keys import execution_key

Body = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class CachedResult:
    """A completed identical execution found in the cache."""

    task: str
    result: Any
    exit_code: int | None


def cache_key(spec: TaskSpec, tool: ToolSpec | None) -> str | None:
    container = tool or spec.container
    if container is None:
        return None
    return execution_key(
        container.image,
        container.command,
        container.args,
        [e.model_dump(by_alias=True, exclude_none=True) for e in container.env],
        spec.parameters,
    )


def newest_cached(
    name: str,
    candidates: Sequence[Body],
    ttl: datetime.timedelta,
    now: datetime.datetime,
) -> CachedResult | None:
    """The newest completed Task among `candidates` (other than `name`) within `ttl` of now."""
    best: tuple[datetime.datetime, Body] | None = None
    for body in candidates:
        if body["metadata"]["name"] == name:
            continue
        finished = parse_time((body.get("status") or {}).get("completionTime"))
        if finished is None or now - finished > ttl:
            continue
        if best is None or finished > best[0]:
            best = (finished, body)
    if best is None:
        return None
    status = best[1].get("status") or {}
    return CachedResult(best[1]["metadata"]["name"], status.get("result"), status.get("exitCode"))
