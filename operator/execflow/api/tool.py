"""The Tool kind: a registered container that does one job, with a JSON Schema for its parameters.

A Tool is a template, not an execution: Tasks reference it by name, their parameters are validated
against its `input_schema`, and its `defaults` fill the Task spec fields a Task leaves unset.
"""

from typing import Annotated, Any

from pydantic import AfterValidator, Field, WithJsonSchema

from execflow.api.common import (
    GROUP_VERSION,
    Condition,
    Container,
    ExecflowModel,
    ObjectMeta,
    ResourceRequirements,
    conditions_field,
)

# The parts of a JSON Schema whose form admission can check cheaply, declared so the API server
# checks their types; everything else in the schema is kept as written and checked by the operator
# when a Task uses the tool. The type keyword is not among them: it may be a name or a list of
# names, and a CRD schema can only give a field one type.
_INPUT_SCHEMA_SHAPE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "required": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Names of the parameters a Task must set.",
        },
        "properties": {
            "type": "object",
            "additionalProperties": True,
            "description": "JSON Schema of each parameter, by parameter name.",
        },
    },
    "additionalProperties": True,
}


def _check_input_schema(schema: dict[str, Any]) -> dict[str, Any]:
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(name, str) for name in required):
        raise ValueError("inputSchema.required must be a list of parameter names")
    if not isinstance(schema.get("properties", {}), dict):
        raise ValueError("inputSchema.properties must be an object of JSON Schemas by name")
    return schema


InputSchema = Annotated[
    dict[str, Any],
    WithJsonSchema(_INPUT_SCHEMA_SHAPE),
    AfterValidator(_check_input_schema),
]
"""A JSON Schema (draft 2020-12) object whose `required` and `properties` have the right types."""


class ToolSpec(Container):
    """The desired state of a Tool: the container to run and the contract of its parameters."""

    description: str = Field(
        default="",
        max_length=4096,
        description="What the tool does, for humans and for catalogues of tools.",
    )
    input_schema: InputSchema = Field(
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
