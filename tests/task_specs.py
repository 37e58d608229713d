"""The Task spec of the API reference, every field set, shared by the tests that need a full one.

Tests that need variations copy it and change what they exercise, so a field added to the API is
added here once.
"""

from __future__ import annotations

import copy
from typing import Any

REFERENCE_TASK_SPEC: dict[str, Any] = {
    "toolRef": {"name": "data-cleaner"},
    "parameters": {"input": "raw_data.csv"},
    "queue": "default",
    "priority": "Normal",
    "timeout": "30s",
    "retryPolicy": {
        "maxRetries": 3,
        "retryDelay": "1s",
        "backoffMultiplier": 2,
        "maxRetryDelay": "5m",
        "retryOn": {
            "exitCodes": [1, 137],
            "reasons": ["Error", "OOMKilled", "DeadlineExceeded", "Evicted"],
        },
    },
    "dependencies": [{"task": "fetch-data", "type": "FinishToStart", "condition": "Succeeded"}],
    "constraints": {
        "deadline": "2026-12-01T12:00:00Z",
        "timeWindows": [{"start": "22:00", "end": "06:00", "timeZone": "Europe/Berlin"}],
        "exclusive": False,
        "mutex": "gpu-0",
    },
    "estimatedDuration": "5s",
    "resources": {"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"memory": 512}},
    "cache": {"enabled": True, "ttl": "1h"},
    "tags": ["processed", "nightly"],
    "suspend": False,
    "cancel": False,
    "podTemplate": {
        "metadata": {"labels": {}, "annotations": {}},
        "spec": {"serviceAccountName": "", "nodeSelector": {}, "tolerations": []},
    },
}


def reference_task_spec(**changes: Any) -> dict[str, Any]:
    """A deep copy of the reference spec with top-level fields replaced."""
    spec = copy.deepcopy(REFERENCE_TASK_SPEC)
    spec.update(changes)
    return spec
