"""Task attempt → batch/v1 Job manifest.

One attempt is one Job with a deterministic name, so a restarted operator that tries to create an
attempt again gets 409 AlreadyExists instead of a second Job. Retries belong to execflow, so the
Job never retries by itself (backoffLimit 0); the per-attempt timeout is the Job's
activeDeadlineSeconds, enforced by the Job controller. Pods run with a restricted security
context and without a ServiceAccount token unless the Tool asks for one.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

from execflow.api.common import GROUP_VERSION, EnvVar
from execflow.api.durations import parse_duration
from execflow.api.task import TaskSpec
from execflow.api.tool import ToolSpec
from execflow.core.templating import render_args

TASK_LABEL = "execflow.dev/task"
ATTEMPT_LABEL = "execflow.dev/attempt"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
PARAMETERS_ANNOTATION = "execflow.dev/parameters"
PARAMETERS_DIR = "/execflow"
CONTAINER_NAME = "tool"
NON_ROOT_ID = 65532
MAX_NAME = 63


@dataclass(frozen=True)
class Owner:
    """The Task an attempt belongs to."""

    name: str
    namespace: str
    uid: str
    labels: dict[str, str] = field(default_factory=dict)


def job_name(task_name: str, attempt: int) -> str:
    """`<task>-<attempt>`, shortened with a hash when it would exceed a label value's 63 chars."""
    suffix = f"-{attempt}"
    if len(task_name) + len(suffix) <= MAX_NAME:
        return task_name + suffix
    digest = hashlib.sha256(task_name.encode()).hexdigest()[:8]
    keep = MAX_NAME - len(suffix) - len(digest) - 1
    return f"{task_name[:keep].rstrip('-.')}-{digest}{suffix}"


def _env(items: list[EnvVar]) -> list[dict[str, Any]]:
    return [item.model_dump(by_alias=True, exclude_none=True) for item in items]


def _resources(tool: ToolSpec | None, spec: TaskSpec) -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for source in (tool.resources if tool else None, spec.resources):
        if source is None:
            continue
        for kind in ("requests", "limits"):
            values = getattr(source, kind)
            if values:
                merged.setdefault(kind, {}).update({k: str(v) for k, v in values.items()})
    return merged


def build_job(owner: Owner, spec: TaskSpec, tool: ToolSpec | None, attempt: int) -> dict[str, Any]:
    """The Job for `attempt` (1-based). Raises TemplateError when args name a missing parameter."""
    if len(owner.name) > MAX_NAME:
        raise ValueError(f"task name {owner.name[:20]}... is longer than {MAX_NAME} characters")
    container = tool if tool is not None else spec.container
    if container is None:
        raise ValueError("a task needs a tool or an inline container")
    parameters_json = json.dumps(spec.parameters, sort_keys=True, separators=(",", ":"))
    env = _env(list(container.env))
    env += [
        {"name": "EXECFLOW_PARAMETERS", "value": parameters_json},
        {"name": "EXECFLOW_TASK", "value": owner.name},
        {"name": "EXECFLOW_ATTEMPT", "value": str(attempt)},
    ]
    labels = {
        TASK_LABEL: owner.name,
        ATTEMPT_LABEL: str(attempt),
        MANAGED_BY_LABEL: "execflow",
    }
    pod_labels = {**spec.pod_template.metadata.labels, **labels}
    pod_annotations = {
        **spec.pod_template.metadata.annotations,
        PARAMETERS_ANNOTATION: parameters_json,
    }
    extras = spec.pod_template.spec
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": bool(tool and tool.automount_service_account_token),
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": NON_ROOT_ID,
            "runAsGroup": NON_ROOT_ID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": CONTAINER_NAME,
                "image": container.image,
                "command": list(container.command),
                "args": render_args(list(container.args), spec.parameters),
                "env": env,
                "resources": _resources(tool, spec),
                "terminationMessagePolicy": "FallbackToLogsOnError",
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volumeMounts": [
                    {"name": "execflow-parameters", "mountPath": PARAMETERS_DIR, "readOnly": True}
                ],
            }
        ],
        "volumes": [
            {
                "name": "execflow-parameters",
                "downwardAPI": {
                    "items": [
                        {
                            "path": "parameters.json",
                            "fieldRef": {
                                "fieldPath": f"metadata.annotations['{PARAMETERS_ANNOTATION}']"
                            },
                        }
                    ]
                },
            }
        ],
    }
    if not pod_spec["containers"][0]["command"]:
        del pod_spec["containers"][0]["command"]
    if extras.service_account_name:
        pod_spec["serviceAccountName"] = extras.service_account_name
    if extras.node_selector:
        pod_spec["nodeSelector"] = dict(extras.node_selector)
    if extras.tolerations:
        pod_spec["tolerations"] = list(extras.tolerations)
    if extras.affinity:
        pod_spec["affinity"] = dict(extras.affinity)
    if extras.priority_class_name:
        pod_spec["priorityClassName"] = extras.priority_class_name
    if extras.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": s.name} for s in extras.image_pull_secrets]
    job_spec: dict[str, Any] = {
        "backoffLimit": 0,
        "template": {
            "metadata": {"labels": pod_labels, "annotations": pod_annotations},
            "spec": pod_spec,
        },
    }
    if spec.timeout:
        job_spec["activeDeadlineSeconds"] = max(
            1, math.ceil(parse_duration(spec.timeout).total_seconds())
        )
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(owner.name, attempt),
            "namespace": owner.namespace,
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": GROUP_VERSION,
                    "kind": "Task",
                    "name": owner.name,
                    "uid": owner.uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": job_spec,
    }
