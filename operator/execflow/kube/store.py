"""The operator's in-memory view of the cluster: the last seen Tasks, Tools, Jobs and pods.

Filled by a LIST at start and kept current by watch events; every decision reads from here
instead of asking the API server. It is a cache, never the truth: losing it (a restart) costs one
LIST per kind, nothing else.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from execflow.kube.job_builder import TASK_LABEL

Key = tuple[str, str]  # (namespace, name)
Body = dict[str, Any]


def key_of(body: Mapping[str, Any]) -> Key:
    metadata = body["metadata"]
    return (str(metadata.get("namespace", "")), str(metadata["name"]))


@dataclass
class Store:
    tasks: dict[Key, Body] = field(default_factory=dict)
    tools: dict[Key, Body] = field(default_factory=dict)
    jobs: dict[Key, dict[str, Body]] = field(default_factory=lambda: defaultdict(dict))
    pods: dict[Key, dict[str, Body]] = field(default_factory=lambda: defaultdict(dict))

    def owner_task(self, body: Mapping[str, Any]) -> Key | None:
        task = body["metadata"].get("labels", {}).get(TASK_LABEL)
        if not task:
            return None
        return (str(body["metadata"]["namespace"]), str(task))

    def put_child(self, kind: str, body: Body, deleted: bool) -> Key | None:
        owner = self.owner_task(body)
        if owner is None:
            return None
        children = self.jobs if kind == "job" else self.pods
        name = body["metadata"]["name"]
        if deleted:
            children[owner].pop(name, None)
            if not children[owner]:
                children.pop(owner, None)
        else:
            children[owner][name] = body
        return owner

    def pods_of_job(self, task: Key, job_name: str) -> list[Body]:
        return [
            pod
            for pod in self.pods.get(task, {}).values()
            if pod["metadata"].get("labels", {}).get("job-name") == job_name
            or pod["metadata"].get("labels", {}).get("batch.kubernetes.io/job-name") == job_name
        ]

    def tasks_using_tool(self, tool: Key) -> list[Key]:
        namespace, name = tool
        return [
            key
            for key, body in self.tasks.items()
            if key[0] == namespace
            and (body.get("spec", {}).get("toolRef") or {}).get("name") == name
        ]
