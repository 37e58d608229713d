"""The observed state of a ResultSet: its phase, counts, outputs and where its data lives.

Apart from the spec's models (`result_set`) because it answers a different question: the spec is
what a user asks for, this is the operator's checkpoint, kept small at any scale (the newest
items only, large outputs referenced, the full data in storage).
"""

import enum
from typing import Any

from pydantic import AwareDatetime, Field

from execflow.api.common import Condition, ExecflowModel, conditions_field


class ResultSetPhase(enum.StrEnum):
    PENDING = "Pending"
    COLLECTING = "Collecting"
    READY = "Ready"
    FAILED = "Failed"
    EXPIRED = "Expired"


class ItemSummary(ExecflowModel):
    """One collected result as status lists it (without the result itself)."""

    task: str = Field(description="Name of the Task.")
    phase: str = Field(description="Its final phase.")
    source: str = Field(default="", description="The Tool it ran, if any.")
    tags: list[str] = Field(default_factory=list, description="Its tags.")
    completion_time: AwareDatetime | None = Field(default=None, description="When it finished.")
    size: int = Field(default=0, ge=0, description="Bytes of the item's JSON.")
    sha256: str = Field(
        default="", description="Hex sha256 of the item's record (its canonical JSON without it)."
    )
    ref: str = Field(default="", description="The stored segment that holds it.")


class StorageStatus(ExecflowModel):
    """Where the full data lives."""

    backend: str = Field(default="", description="Status, ConfigMap or S3.")
    config_maps: list[str] = Field(
        default_factory=list, description="The owned ConfigMaps holding segments."
    )
    bucket: str = Field(default="", description="The S3 bucket.")
    prefix: str = Field(default="", description="The S3 key prefix of this set's objects.")
    segments: int = Field(default=0, ge=0, description="Segments written and counted.")
    bytes: int = Field(default=0, ge=0, description="Stored bytes (after compression).")
    key_id: str = Field(default="", description="Id of the encryption key of the last segment.")
    data: list[str] = Field(
        default_factory=list,
        description="Backend Status only: the encoded segments, base64.",
    )
    segment_checksums: list[str] = Field(
        default_factory=list,
        description="Backend Status only: the hex sha256 of each encoded segment.",
    )
    left_behind: str = Field(
        default="", description="What could not be deleted, if cleanup gave up."
    )


class ResultSetStatus(ExecflowModel):
    """The observed state of a ResultSet, written by the operator only; its checkpoint."""

    phase: ResultSetPhase = Field(
        default=ResultSetPhase.PENDING,
        description="Pending, Collecting, Ready, Failed or Expired.",
    )
    reason: str = Field(default="", description="One CamelCase word explaining the phase.")
    message: str = Field(default="", description="Human-readable detail about the phase.")
    count: int = Field(default=0, ge=0, description="Results collected.")
    aggregations: dict[str, Any] = Field(
        default_factory=dict, description="Aggregation values by name."
    )
    transforms: dict[str, Any] = Field(
        default_factory=dict,
        description="Transform outputs by name; a large one is {ref, count} instead.",
    )
    accumulators: dict[str, Any] = Field(
        default_factory=dict,
        description="The running state of aggregations and reduce transforms (sums, counts, "
        "extremes), so a new result is folded in without re-reading the others.",
    )
    items: list[ItemSummary] = Field(
        default_factory=list, description="The newest collected items (capped)."
    )
    storage: StorageStatus = Field(
        default_factory=StorageStatus, description="Where the full data lives."
    )
    checksum: str = Field(
        default="", description="sha256 chained over the sha256 of every counted segment."
    )
    last_collected_at: AwareDatetime | None = Field(
        default=None, description="When a result was last collected."
    )
    collect_token: str = Field(
        default="",
        description="The execflow.dev/collect annotation value the last snapshot answered.",
    )
    expired_at: AwareDatetime | None = Field(
        default=None, description="When the stored data was deleted (ttl)."
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The metadata.generation this status was computed from."
    )
    conditions: list[Condition] = conditions_field(
        "Reconciling, Stalled, Ready and Succeeded, as for Tasks."
    )
