"""A task's effective spec: the Tool's `defaults` filled in under what the Task itself says.

The stored Task carries only what the user wrote (the CRD schema sets no defaults), so a field the
user left out can still come from the Tool. Objects merge field by field, everything else is
replaced: a Task that sets `retryPolicy.maxRetries` keeps the Tool's `retryPolicy.retryDelay`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from execflow.api.task import TaskSpec

# Fields a Tool's defaults may not supply: they say what runs and whether it runs at all.
NOT_DEFAULTABLE = frozenset({"toolRef", "container", "parameters", "suspend", "cancel"})


class SpecError(ValueError):
    """The merged spec is not a valid Task spec (for example, bad Tool defaults)."""


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = value
    return merged


def effective_spec(raw_spec: Mapping[str, Any], tool_defaults: Mapping[str, Any]) -> TaskSpec:
    defaults = {k: v for k, v in tool_defaults.items() if k not in NOT_DEFAULTABLE}
    try:
        return TaskSpec.model_validate(deep_merge(defaults, raw_spec))
    except ValidationError as error:
        problems = "; ".join(
            f"spec.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        if not defaults:
            raise SpecError(f"the spec cannot be used: {problems}") from None
        raise SpecError(
            f"the spec with the Tool's defaults filled in cannot be used: {problems}"
        ) from None
