"""The Tool kind: a registered container that does one job, with a JSON Schema for its parameters.

A Tool is a template, not an execution: Tasks reference it by name, their parameters are validated
against its `input_schema`, and its `defaults` fill the Task spec fields a Task leaves unset.
"""

from typing import Any

from pydantic import Field

from execflow.api.common import (
    GROUP_VERSION,
    Condition,
    Container,
    ExecflowModel,
    ObjectMeta,
    ResourceRequirements,
    conditions_field,
)


class ToolSpec(Container):
    """The desired state of a Tool: the container to run and the contract of its parameters."""

    description: str = Field(
        default="",
        max_length=4096,
        description="What the tool does, for humans and for catalogues of tools.",
    )
    input_schema: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "JSON Schema (draft 2020-12) that a Task's spec.parameters must satisfy. An empty "
            "schema accepts any parameters."
        ),
    )
    resources: ResourceRequirements = Field(
        default_factory=ResourceRequirements,
        description="Default compute resources of the tool's container; a Task may override them.",
    )
    defaults: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Values for any Task spec field (timeout, retryPolicy, priority, queue, ...) that "
            "a Task referencing this tool leaves unset. Objects merge field by field."
        ),
    )
    automount_service_account_token: bool = Field(
        default=False,
        description=(
            "Mount the pod's ServiceAccount token into the task container. Off by default: "
            "a tool gets API credentials only when it asks for them."
        ),
    )


class ToolStatus(ExecflowModel):
    """The observed state of a Tool."""

    observed_generation: int | None = Field(
        default=None,
        ge=0,
        description="The metadata.generation this status was computed from.",
    )
    conditions: list[Condition] = conditions_field(
        "Current observations, e.g. Ready when the spec (including inputSchema) is usable."
    )


class Tool(ExecflowModel):
    """A Tool is a registered container that does one job, with a JSON Schema for its parameters.

    Tasks run a Tool by name (spec.toolRef) with parameters validated against its inputSchema.
    """

    api_version: str = Field(default=GROUP_VERSION, description="API group and version.")
    kind: str = Field(default="Tool", description="Kind of the object: Tool.")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta, description="Object metadata.")
    spec: ToolSpec = Field(description="The container, parameter schema and defaults of the tool.")
    status: ToolStatus = Field(
        default_factory=ToolStatus, description="Observed state, written by the operator."
    )
