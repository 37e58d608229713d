"""The ResultSet kind: finished Tasks' results collected, filtered, aggregated and stored.

A ResultSet only reads finished Tasks (picked by a label selector, a Workflow or a list of names)
and writes what it collected to a storage backend: its own status for small sets, owned
ConfigMaps, or an S3 bucket. The data is written in immutable segments (JSON lines, optionally
compressed, then optionally encrypted with AES-256-GCM), each with a sha256; the status keeps the
count, the aggregations, small transform outputs, the newest items and a checksum over all
segments, so it stays small at any scale.

Admission checks the shape: exactly one source, a batch size or interval for Batch, a bucket and
a Secret for S3, a Secret for encryption, an expression where a function needs one, unique
aggregation and transform names. Expressions are compiled by the operator's admission webhook
and again when the operator first sees the set; one that does not compile fails it with reason
InvalidExpression and the position.
"""

import enum
import re
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, ConfigDict, Field, model_validator

from execflow.api.admission import AdmissionRule, matches
from execflow.api.common import (
    GROUP_VERSION,
    ExecflowModel,
    LocalObjectReference,
    ObjectMeta,
    ObjectName,
)
from execflow.api.durations import Duration
from execflow.api.result_set_status import ResultSetStatus
from execflow.api.task import TaskPhase

COLLECT_ANNOTATION = "execflow.dev/collect"
"""A new value asks a Lazy set to start collecting, or an OnDemand set for one snapshot."""
AGGREGATIONS_MAX = 32
"""Most aggregations in one ResultSet."""
TRANSFORMS_MAX = 32
"""Most transforms in one ResultSet."""
TASK_REFS_MAX = 1000
"""Most Tasks a ResultSet may name one by one; larger sets use a selector or a workflow."""
FILTER_VALUES_MAX = 64
"""Most values in one filter list."""

Expression = Annotated[str, Field(min_length=1, max_length=4096)]
"""A CEL expression: over one result `r`, or over the list `results` (custom)."""

FIELD_PATH_PATTERN = r"^[^.]+(\.[^.]+)*$"
FIELD_PATH_MESSAGE = "must be a dotted path into the result such as score or metrics.f1"
OUTPUT_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]*$"
OUTPUT_NAME_MESSAGE = "must start with a letter or '_' and hold only letters, digits, '_' and '-'"


def _format(pattern: str, message: str) -> AfterValidator:
    compiled = re.compile(pattern)

    def check(text: str) -> str:
        if compiled.fullmatch(text) is None:
            raise ValueError(f"{text!r} {message}")
        return text

    return AfterValidator(check)


FieldPath = Annotated[
    str,
    Field(min_length=1, max_length=256),
    _format(FIELD_PATH_PATTERN, FIELD_PATH_MESSAGE),
    AdmissionRule(matches(FIELD_PATH_PATTERN), FIELD_PATH_MESSAGE),
]
"""A dotted path into a task's result, e.g. `metrics.f1`."""

OutputName = Annotated[
    str,
    Field(min_length=1, max_length=63),
    _format(OUTPUT_NAME_PATTERN, OUTPUT_NAME_MESSAGE),
    AdmissionRule(matches(OUTPUT_NAME_PATTERN), OUTPUT_NAME_MESSAGE),
]
"""The name of an aggregation or transform: a key of status.aggregations or status.transforms."""


class Strategy(enum.StrEnum):
    """When results are collected."""

    IMMEDIATE = "Immediate"
    BATCH = "Batch"
    STREAMING = "Streaming"
    LAZY = "Lazy"
    ON_DEMAND = "OnDemand"


class AggregationFunction(enum.StrEnum):
    SUM = "sum"
    AVG = "avg"
    MIN = "min"
    MAX = "max"
    COUNT = "count"
    CUSTOM = "custom"


class TransformType(enum.StrEnum):
    FILTER = "filter"
    MAP = "map"
    REDUCE = "reduce"
    GROUP = "group"
    CUSTOM = "custom"


class Backend(enum.StrEnum):
    STATUS = "Status"
    CONFIG_MAP = "ConfigMap"
    S3 = "S3"


class Compression(enum.StrEnum):
    NONE = "None"
    GZIP = "Gzip"
    ZSTD = "Zstd"


class SelectorOperator(enum.StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class LabelSelectorRequirement(ExecflowModel):
    """One requirement of a label selector, as in metav1.LabelSelectorRequirement."""

    key: str = Field(min_length=1, description="The label key.")
    operator: SelectorOperator = Field(description="In, NotIn, Exists or DoesNotExist.")
    values: list[str] = Field(
        default_factory=list, description="Values for In and NotIn; empty otherwise."
    )


class LabelSelector(ExecflowModel):
    """A label selector over Tasks, as in metav1.LabelSelector."""

    match_labels: dict[str, str] = Field(
        default_factory=dict, description="Labels a Task must carry with these values."
    )
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=list, description="Further requirements, all of which must hold."
    )


class ResultSource(ExecflowModel):
    """Which Tasks are collected: exactly one of selector, workflowRef and taskRefs."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "[has(self.selector), has(self.workflowRef), has(self.taskRefs)]"
                    ".filter(x, x).size() == 1",
                    "message": "exactly one of selector, workflowRef and taskRefs must be set",
                }
            ]
        }
    )

    selector: LabelSelector | None = Field(
        default=None,
        description="Tasks of the ResultSet's namespace matching this label selector.",
    )
    workflow_ref: LocalObjectReference | None = Field(
        default=None, description="The Tasks of this Workflow (label execflow.dev/workflow)."
    )
    task_refs: list[ObjectName] | None = Field(
        default=None,
        max_length=TASK_REFS_MAX,
        description=f"These Tasks, by name (at most {TASK_REFS_MAX}).",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> "ResultSource":
        chosen = [self.selector, self.workflow_ref, self.task_refs]
        if sum(value is not None for value in chosen) != 1:
            raise ValueError("exactly one of selector, workflowRef and taskRefs must be set")
        return self


class BatchPolicy(ExecflowModel):
    """When a Batch collection writes: every `size` results or every `interval`, first wins."""

    size: int | None = Field(
        default=None, ge=1, le=10_000, description="Write once this many results wait."
    )
    interval: Duration | None = Field(
        default=None,
        description="Write when the oldest waiting result has waited this long.",
    )


FINAL_PHASES = (TaskPhase.COMPLETED, TaskPhase.FAILED, TaskPhase.CANCELLED, TaskPhase.TIMEOUT)
PHASES_MESSAGE = "phases must be final phases: Completed, Failed, Cancelled or Timeout"


class ResultFilter(ExecflowModel):
    """Which finished Tasks are collected; every condition set must hold."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.phases) || self.phases.all(p, p in "
                    + str([phase.value for phase in FINAL_PHASES])
                    + ")",
                    "message": PHASES_MESSAGE,
                }
            ]
        }
    )

    phases: list[TaskPhase] = Field(
        default_factory=lambda: [TaskPhase.COMPLETED],
        max_length=4,
        description=(
            "Final phases collected: Completed, Failed, Cancelled, Timeout. Default Completed."
        ),
    )
    tags: list[str] = Field(
        default_factory=list,
        max_length=FILTER_VALUES_MAX,
        description="Tags a Task must all carry (spec.tags).",
    )
    sources: list[str] = Field(
        default_factory=list,
        max_length=FILTER_VALUES_MAX,
        description="Tool names: a Task must run one of these Tools (spec.toolRef.name).",
    )
    since: AwareDatetime | None = Field(
        default=None, description="Only Tasks that finished at or after this time (RFC 3339)."
    )
    until: AwareDatetime | None = Field(
        default=None, description="Only Tasks that finished before this time (RFC 3339)."
    )

    @model_validator(mode="after")
    def _final_phases(self) -> "ResultFilter":
        if any(phase not in FINAL_PHASES for phase in self.phases):
            raise ValueError(PHASES_MESSAGE)
        return self


class Aggregation(ExecflowModel):
    """A value computed over the collected results."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.function == 'custom' ? has(self.expression) : "
                    "!has(self.expression)",
                    "message": "expression is for function custom only, and custom needs one",
                },
                {
                    "rule": "self.function in ['custom', 'count'] || has(self.field)",
                    "message": "sum, avg, min and max need a field",
                },
            ]
        }
    )

    name: OutputName = Field(description="Key of the value in status.aggregations.")
    function: AggregationFunction = Field(
        description=(
            "sum, avg, min, max (over the numbers at field), count (results, or results with "
            "field when set) or custom (a CEL expression over the list results)."
        )
    )
    field: FieldPath | None = Field(
        default=None, description="Dotted path into each result, e.g. metrics.f1."
    )
    expression: Expression | None = Field(
        default=None,
        description="For custom: CEL over results (the list of items), e.g. "
        "results.map(r, r.result.score).max().",
    )

    @model_validator(mode="after")
    def _shape(self) -> "Aggregation":
        custom = self.function is AggregationFunction.CUSTOM
        if custom != (self.expression is not None):
            raise ValueError("expression is for function custom only, and custom needs one")
        if not custom and self.function is not AggregationFunction.COUNT and not self.field:
            raise ValueError(f"{self.function.value} needs a field")
        return self


class Transform(ExecflowModel):
    """A derived output: per result (filter, map, group, reduce) or over the list (custom)."""

    name: OutputName = Field(description="Key of the output in status.transforms.")
    type: TransformType = Field(
        description=(
            "filter (the items for which the expression is true), map (one value per item), "
            "group (items by the key the expression gives), reduce (acc folded over the items "
            "from initial) or custom (CEL over the list results)."
        )
    )
    expression: Expression = Field(
        description="CEL over r (one item) and, for reduce, acc; for custom over results."
    )
    initial: Any = Field(default=None, description="For reduce: the first value of acc.")


class SecretKeyReference(ExecflowModel):
    """A key of a Secret in the ResultSet's namespace."""

    name: ObjectName = Field(description="Name of the Secret.")
    key: str = Field(default="key", min_length=1, description="Key in the Secret. Default key.")


class Encryption(ExecflowModel):
    """AES-256-GCM encryption of the stored data."""

    secret_ref: SecretKeyReference = Field(
        description=(
            "The Secret key holding the 32-byte key (raw, or base64 of 32 bytes). Other keys "
            "of the same Secret are tried by key id when reading, so a rotated key stays "
            "readable while its old key is kept there."
        )
    )


class S3Storage(ExecflowModel):
    """Where an S3 backend writes."""

    bucket: str = Field(min_length=3, max_length=63, description="The bucket (must exist).")
    prefix: str = Field(
        default="",
        max_length=512,
        description="Key prefix; objects go to <prefix><namespace>/<name>/.",
    )
    endpoint: str = Field(
        default="",
        description="The S3 endpoint URL; empty takes the Secret's endpoint key, else AWS.",
    )
    region: str = Field(default="us-east-1", description="The region to sign requests for.")
    secret_ref: LocalObjectReference = Field(
        description="A Secret with accessKeyId, secretAccessKey and optionally endpoint."
    )


class Storage(ExecflowModel):
    """Where and how the collected data is stored."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.backend) || self.backend != 'S3' || has(self.s3)",
                    "message": "backend S3 needs s3 with a bucket and a secretRef",
                },
            ]
        }
    )

    backend: Backend = Field(
        default=Backend.CONFIG_MAP,
        description=(
            "Status (in the ResultSet's status; small sets only), ConfigMap (owned ConfigMaps, "
            "sharded below the object size limit) or S3. Default ConfigMap."
        ),
    )
    compression: Compression = Field(
        default=Compression.NONE, description="None, Gzip or Zstd; applied before encryption."
    )
    encryption: Encryption | None = Field(
        default=None, description="AES-256-GCM with a key from a Secret; unset stores plain."
    )
    s3: S3Storage | None = Field(default=None, description="For backend S3.")

    @model_validator(mode="after")
    def _s3_configured(self) -> "Storage":
        if self.backend is Backend.S3 and self.s3 is None:
            raise ValueError("backend S3 needs s3 with a bucket and a secretRef")
        return self


class ResultSetTemplate(ExecflowModel):
    """A ResultSet spec without its source: what a Workflow's spec.resultSet holds."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.strategy) || self.strategy != 'Batch' || "
                    "(has(self.batch) && (has(self.batch.size) || has(self.batch.interval)))",
                    "message": "strategy Batch needs batch.size or batch.interval",
                },
                {
                    "rule": "!has(self.aggregations) || self.aggregations.all(a, "
                    "self.aggregations.exists_one(b, b.name == a.name))",
                    "message": "aggregation names must be unique",
                },
                {
                    "rule": "!has(self.transforms) || self.transforms.all(a, "
                    "self.transforms.exists_one(b, b.name == a.name))",
                    "message": "transform names must be unique",
                },
            ]
        }
    )

    strategy: Strategy = Field(
        default=Strategy.IMMEDIATE,
        description=(
            "Immediate (each finished task as it is seen), Batch (every batch.size results or "
            "batch.interval), Streaming (each result appended to storage at once, the status "
            "following at most every few seconds), Lazy (nothing until the first read), "
            "OnDemand (one snapshot per execflow.dev/collect annotation value). Default "
            "Immediate."
        ),
    )
    batch: BatchPolicy | None = Field(default=None, description="For Batch: size and interval.")
    filter: ResultFilter = Field(
        default_factory=ResultFilter, description="Which finished Tasks are collected."
    )
    aggregations: list[Aggregation] = Field(
        default_factory=list,
        max_length=AGGREGATIONS_MAX,
        description="Values computed over the results, in status.aggregations.",
    )
    transforms: list[Transform] = Field(
        default_factory=list,
        max_length=TRANSFORMS_MAX,
        description="Outputs derived from the results, in status.transforms (large ones "
        "referenced).",
    )
    storage: Storage = Field(default_factory=Storage, description="Where the data is kept.")
    ttl: Duration | None = Field(
        default=None,
        description=(
            "Delete the stored data this long after the last collection (phase Expired); "
            "unset keeps it until the ResultSet is deleted."
        ),
    )

    @model_validator(mode="after")
    def _consistent(self) -> "ResultSetTemplate":
        problems = result_set_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self


class ResultSetSpec(ResultSetTemplate):
    """What to collect, when, what to compute from it and where to keep it."""

    source: ResultSource = Field(description="Which Tasks are collected.")


def result_set_problems(spec: ResultSetTemplate) -> list[str]:
    """What admission refuses across fields, checked again when a body is parsed."""
    problems = []
    if spec.strategy is Strategy.BATCH and (
        spec.batch is None or (spec.batch.size is None and spec.batch.interval is None)
    ):
        problems.append("batch: strategy Batch needs batch.size or batch.interval")
    for section, names in (
        ("aggregations", [a.name for a in spec.aggregations]),
        ("transforms", [t.name for t in spec.transforms]),
    ):
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            problems.append(f"{section}: names must be unique: {', '.join(twice)} used twice")
    return problems


class ResultSet(ExecflowModel):
    """A ResultSet collects finished Tasks' results, filters, aggregates and transforms them,
    and stores them in its status, ConfigMaps or S3, compressed, encrypted and checksummed."""

    api_version: str = Field(default=GROUP_VERSION, description="API group and version.")
    kind: str = Field(default="ResultSet", description="Kind of the object: ResultSet.")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta, description="Object metadata.")
    spec: ResultSetSpec = Field(description="What to collect and where to keep it.")
    status: ResultSetStatus = Field(
        default_factory=ResultSetStatus, description="Observed state, written by the operator."
    )
