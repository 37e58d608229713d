"""The extras a Task may merge into the pod template of its Jobs: labels and annotations (the
simulation annotations among them), and a few placement and identity fields of the pod spec."""

from typing import Any

from pydantic import Field

from execflow.api.common import ExecflowModel, LocalObjectReference


class PodTemplateMetadata(ExecflowModel):
    """Metadata added to the pods of the task's Jobs."""

    labels: dict[str, str] = Field(default_factory=dict, description="Extra pod labels.")
    annotations: dict[str, str] = Field(default_factory=dict, description="Extra pod annotations.")


class PodTemplatePodSpec(ExecflowModel):
    """Pod spec fields merged into the pods of the task's Jobs."""

    service_account_name: str = Field(
        default="",
        max_length=253,
        description="ServiceAccount the pod runs as; empty uses the namespace default.",
    )
    node_selector: dict[str, str] = Field(
        default_factory=dict,
        description="Node labels the pod must be scheduled onto.",
    )
    tolerations: list[dict[str, Any]] = Field(
        default_factory=list,
        description="core/v1 Tolerations of the pod.",
    )
    affinity: dict[str, Any] = Field(
        default_factory=dict,
        description="core/v1 Affinity of the pod (nodeAffinity, podAffinity, podAntiAffinity).",
    )
    priority_class_name: str = Field(
        default="",
        max_length=253,
        description="PriorityClass of the pod, for the cluster scheduler.",
    )
    image_pull_secrets: list[LocalObjectReference] = Field(
        default_factory=list,
        description="Secrets used to pull the task image from private registries.",
    )


class PodTemplate(ExecflowModel):
    """Optional extras merged into the pod template of the task's Jobs."""

    metadata: PodTemplateMetadata = Field(
        default_factory=PodTemplateMetadata,
        description="Extra labels and annotations of the pod.",
    )
    spec: PodTemplatePodSpec = Field(
        default_factory=PodTemplatePodSpec,
        description="Extra pod spec fields (service account, placement, pull secrets).",
    )
