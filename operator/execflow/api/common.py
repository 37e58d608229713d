"""Building blocks shared by every execflow kind: model base, core Kubernetes shapes, conditions.

Every kind parses bodies exactly as the API server stores them (camelCase, possibly with fields a
newer version added), so the shared base fixes that once: camelCase aliases, construction by Python
name, unknown fields ignored. The core Kubernetes shapes here (EnvVar, ResourceRequirements, object
metadata) are deliberately small: execflow reads and forwards them, it does not interpret them.
"""

import enum
import re
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from execflow.api.admission import AdmissionRule

API_GROUP = "execflow.dev"
API_VERSION = "v1alpha1"
GROUP_VERSION = f"{API_GROUP}/{API_VERSION}"

QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
"""Kubernetes resource.Quantity syntax ("500m", "128Mi", "2"), as the core API validates it."""

QUANTITY_MAX_LENGTH = 64
"""Longest quantity string accepted; bounds the cost of checking it at admission."""

QUANTITY_MESSAGE = "must be a Kubernetes quantity such as 500m, 2, 128Mi or 1Gi"
"""What admission answers for a malformed quantity, after the field's path."""

# isQuantity is the parser the core API uses for pod resources; it takes only strings, so an
# integer (always a valid quantity) is let through before a string is handed to it.
QUANTITY_RULE = "type(self) == int || isQuantity(self)"

_QUANTITY = re.compile(QUANTITY_PATTERN)


class ExecflowModel(BaseModel):
    """Base of every execflow model: camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
    )


ObjectName = Annotated[str, Field(min_length=1, max_length=253)]
"""The name of a Kubernetes object in the same namespace."""


def _check_quantity(text: str) -> str:
    if _QUANTITY.fullmatch(text) is None:
        raise ValueError(f"{text!r} {QUANTITY_MESSAGE}")
    return text


Quantity = Annotated[
    int | Annotated[str, Field(max_length=QUANTITY_MAX_LENGTH), AfterValidator(_check_quantity)],
    AdmissionRule(QUANTITY_RULE, QUANTITY_MESSAGE),
]
"""A Kubernetes resource quantity: an integer or a string such as "500m" or "128Mi"."""


RESOURCE_NAMES_MAX = 64
"""Most resource names in one requests or limits map; bounds the cost of admission checks."""


class ResourceRequirements(ExecflowModel):
    """Compute resources of the task container, as in core/v1 ResourceRequirements."""

    requests: dict[str, Quantity] = Field(
        default_factory=dict,
        max_length=RESOURCE_NAMES_MAX,
        description=(
            "Minimum resources the container needs, by resource name (cpu, memory, "
            "ephemeral-storage, nvidia.com/gpu, ...). The scheduler only starts a task when "
            "they fit."
        ),
    )
    limits: dict[str, Quantity] = Field(
        default_factory=dict,
        max_length=RESOURCE_NAMES_MAX,
        description="Maximum resources the container may use, by resource name.",
    )


class EnvVar(ExecflowModel):
    """One environment variable of the task container, as in core/v1 EnvVar.

    Fields this model does not name (a future core/v1 addition) are kept and passed through.
    """

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, description="Name of the environment variable.")
    value: str | None = Field(
        default=None,
        description="Literal value; may reference other variables as $(NAME).",
    )
    value_from: dict[str, Any] | None = Field(
        default=None,
        description=(
            "Source of the value (secretKeyRef, configMapKeyRef, fieldRef, "
            "resourceFieldRef), exactly as in core/v1 EnvVarSource. Excludes `value`."
        ),
    )


class LocalObjectReference(ExecflowModel):
    """A reference to an object by name, in the same namespace."""

    name: ObjectName = Field(description="Name of the referenced object.")


class ConditionStatus(enum.StrEnum):
    """The status of a condition, as in metav1.Condition."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ExecflowModel):
    """One observation of an object's state, following Kubernetes API conventions.

    Conditions are keyed by type; lastTransitionTime changes only when status does.
    """

    type: str = Field(
        min_length=1,
        description="Kind of condition in CamelCase, e.g. Ready or Succeeded; unique in the list.",
    )
    status: ConditionStatus = Field(
        description="Whether the condition holds: True, False, Unknown."
    )
    reason: str = Field(
        default="",
        description="Machine-readable CamelCase word explaining the last transition.",
    )
    message: str = Field(default="", description="Human-readable detail about the transition.")
    last_transition_time: AwareDatetime | None = Field(
        default=None,
        description="When the condition last changed status (RFC 3339).",
    )
    observed_generation: int | None = Field(
        default=None,
        ge=0,
        description="The metadata.generation the condition was computed from.",
    )


def conditions_field(description: str) -> Any:
    """A `conditions` list field, declared as a Kubernetes list map keyed by `type`."""
    return Field(
        default_factory=list,
        description=description,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )


class ObjectMeta(ExecflowModel):
    """The parts of Kubernetes object metadata that execflow reads."""

    name: str = Field(default="", description="Name of the object, unique in its namespace.")
    namespace: str = Field(default="", description="Namespace of the object.")
    uid: str = Field(default="", description="Unique id the API server gave the object.")
    generation: int = Field(default=0, description="Sequence number of spec changes.")
    resource_version: str = Field(default="", description="Opaque version for optimistic locking.")
    labels: dict[str, str] = Field(default_factory=dict, description="Object labels.")
    annotations: dict[str, str] = Field(default_factory=dict, description="Object annotations.")
    creation_timestamp: AwareDatetime | None = Field(
        default=None, description="When the object was created (RFC 3339)."
    )


class Container(ExecflowModel):
    """What runs: an image and how to invoke it."""

    image: str = Field(
        min_length=1,
        max_length=1024,
        description="Container image reference, e.g. python:3.12-slim or registry/tool@sha256:...",
    )
    command: list[str] = Field(
        default_factory=list,
        description="Entrypoint override; empty uses the image's ENTRYPOINT.",
    )
    args: list[str] = Field(
        default_factory=list,
        description=(
            "Arguments to the entrypoint; empty uses the image's CMD. May contain "
            "{{ parameters.NAME }} placeholders, filled from the task's parameters."
        ),
    )
    env: list[EnvVar] = Field(
        default_factory=list,
        description="Environment variables, as a core/v1 EnvVar list.",
    )
