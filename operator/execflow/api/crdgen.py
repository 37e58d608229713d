"""CustomResourceDefinitions generated from the pydantic models, so the schema has one source.

Each kind's root model is turned into a structural schema (`execflow.api.structural`: refuses what
the API server would reject, formats as CEL rules with messages in words) and wrapped in a
CustomResourceDefinition with its names, printer columns and subresources.

Kinds are listed in `KINDS`; adding one is one more `CustomResourceKind` entry.

The same files go to `crds/` and to the Helm chart's `crds/`, so both directories are written
and checked by one command:

    python -m execflow.api.crdgen --out crds/ charts/execflow/crds/     # write the YAML files
    python -m execflow.api.crdgen --check crds/ charts/execflow/crds/   # exit 1 when stale
"""

import argparse
import difflib
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel

from execflow.api.admission import VALIDATIONS
from execflow.api.common import API_GROUP, API_VERSION
from execflow.api.result_set import ResultSet
from execflow.api.structural import Context, JsonSchema, SchemaError, immutability_rule, structural
from execflow.api.task import TASK_SPEC_IMMUTABLE_MESSAGE, TASK_SPEC_MUTABLE_FIELDS, Task
from execflow.api.tool import Tool
from execflow.api.workflow import Workflow

CATEGORY = "execflow"

GENERATED_HEADER = (
    "# Generated from the execflow.api models by `python -m execflow.api.crdgen --out crds/`.\n"
    "# Do not edit by hand: change the models and regenerate.\n"
)

_API_VERSION_PROPERTY: JsonSchema = {
    "type": "string",
    "description": (
        "APIVersion defines the versioned schema of this representation of an object. "
        "More info: https://git.k8s.io/community/contributors/devel/sig-architecture/"
        "api-conventions.md#resources"
    ),
}
_KIND_PROPERTY: JsonSchema = {
    "type": "string",
    "description": (
        "Kind is a string value representing the REST resource this object represents. "
        "More info: https://git.k8s.io/community/contributors/devel/sig-architecture/"
        "api-conventions.md#types-kinds"
    ),
}
# The API server owns the metadata schema and rejects a CRD that says more than this about it.
_METADATA_PROPERTY: JsonSchema = {"type": "object"}


@dataclass(frozen=True)
class PrinterColumn:
    """One column of `kubectl get` output."""

    name: str
    json_path: str
    type: Literal["string", "integer", "number", "boolean", "date"] = "string"
    description: str = ""
    priority: int = 0

    def to_crd(self) -> JsonSchema:
        """The column as an additionalPrinterColumns entry."""
        column: JsonSchema = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        if self.description:
            column["description"] = self.description
        if self.priority:
            column["priority"] = self.priority
        return column


AGE_COLUMN = PrinterColumn(
    name="Age",
    json_path=".metadata.creationTimestamp",
    type="date",
    description="Time since the object was created.",
)


@dataclass(frozen=True)
class ImmutableSpec:
    """The spec may not change after creation, except the `mutable` fields (as a Job's template).

    Adding or removing an optional field counts as a change. `message` is what the API server
    answers, after the path `spec`.
    """

    mutable: tuple[str, ...]
    message: str


@dataclass(frozen=True)
class CustomResourceKind:
    """A kind served by the operator, described by its root model (apiVersion, kind, spec, status).

    `schema_defaults` decides whether model defaults are written into the CRD schema, where the API
    server applies them on admission. A kind whose unset fields must stay distinguishable from
    defaulted ones (a Task's, which a Tool's defaults may fill) turns it off. `immutable_spec`
    makes the API server refuse changes to the spec after creation.
    """

    model: type[BaseModel]
    plural: str
    short_names: tuple[str, ...]
    printer_columns: tuple[PrinterColumn, ...] = ()
    schema_defaults: bool = True
    immutable_spec: ImmutableSpec | None = None

    @property
    def kind(self) -> str:
        """The Kind, which is the root model's class name."""
        return self.model.__name__

    @property
    def singular(self) -> str:
        """Lower-case singular resource name."""
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        """Name of the CustomResourceDefinition object."""
        return f"{self.plural}.{API_GROUP}"

    @property
    def file_name(self) -> str:
        """File the generated CRD is written to, in the controller-gen naming convention."""
        return f"{API_GROUP}_{self.plural}.yaml"


KINDS: tuple[CustomResourceKind, ...] = (
    CustomResourceKind(
        model=Tool,
        plural="tools",
        short_names=("tl",),
        printer_columns=(
            PrinterColumn("Image", ".spec.image", description="Container image of the tool."),
        ),
    ),
    CustomResourceKind(
        model=Task,
        plural="tasks",
        short_names=("tk",),
        printer_columns=(
            PrinterColumn("Phase", ".status.phase", description="Phase of the task."),
            PrinterColumn("Priority", ".spec.priority", description="Priority of the task."),
            PrinterColumn(
                "Attempts", ".status.attempts", "integer", description="Attempts started so far."
            ),
            PrinterColumn("Reason", ".status.reason", description="Why the task is in its phase."),
            PrinterColumn(
                "Queue", ".spec.queue", description="Scheduling queue of the task.", priority=1
            ),
            PrinterColumn(
                "Tool", ".spec.toolRef.name", description="Tool the task runs.", priority=1
            ),
        ),
        schema_defaults=False,
        immutable_spec=ImmutableSpec(
            mutable=TASK_SPEC_MUTABLE_FIELDS, message=TASK_SPEC_IMMUTABLE_MESSAGE
        ),
    ),
    CustomResourceKind(
        model=Workflow,
        plural="workflows",
        short_names=("wf",),
        printer_columns=(
            PrinterColumn("Phase", ".status.phase", description="Phase of the workflow."),
            PrinterColumn(
                "Progress", ".status.progress", description="Finished tasks / all tasks."
            ),
        ),
        # A workflow task's unset fields must stay unset, as a Task's, so a Tool's defaults apply.
        schema_defaults=False,
    ),
    CustomResourceKind(
        model=ResultSet,
        plural="resultsets",
        short_names=("rs",),
        printer_columns=(
            PrinterColumn("Phase", ".status.phase", description="Phase of the result set."),
            PrinterColumn("Count", ".status.count", "integer", description="Results collected."),
            PrinterColumn(
                "Storage", ".spec.storage.backend", description="Where the data is kept."
            ),
        ),
    ),
)
"""Every kind the operator serves, in the order their CRDs are listed."""


def openapi_schema(resource: CustomResourceKind) -> JsonSchema:
    """The structural openAPIV3Schema of a kind, generated from its root model."""
    model_schema = resource.model.model_json_schema(by_alias=True)
    context = Context(
        definitions=model_schema.pop("$defs", {}),
        keep_defaults=resource.schema_defaults,
    )
    properties = dict(model_schema.get("properties", {}))
    for owned_by_server in ("apiVersion", "kind", "metadata"):
        properties.pop(owned_by_server, None)
    if "spec" not in properties:
        raise SchemaError(f"{resource.kind}: the root model has no spec field")
    model_schema["properties"] = properties
    model_schema.pop("required", None)
    if resource.model.model_fields["spec"].is_required():
        model_schema["required"] = ["spec"]
    schema = structural(model_schema, context, resource.kind)
    if resource.immutable_spec is not None:
        spec = schema["properties"]["spec"]
        rule = immutability_rule(spec, resource.immutable_spec.mutable, f"{resource.kind}.spec")
        spec[VALIDATIONS] = [
            *spec.get(VALIDATIONS, []),
            {"rule": rule, "message": resource.immutable_spec.message},
        ]
    status = schema["properties"].get("status")
    if status is not None:
        # kstatus (Flux, kpt) reads an object without a status as Current, so a Task just created,
        # before the operator first writes its status, would look done. An observedGeneration of
        # 0 below metadata.generation reads as InProgress until the operator has seen it.
        status["default"] = {"observedGeneration": 0}
    schema["properties"] = {
        "apiVersion": _API_VERSION_PROPERTY,
        "kind": _KIND_PROPERTY,
        "metadata": _METADATA_PROPERTY,
        **schema["properties"],
    }
    return schema


def build_crd(resource: CustomResourceKind) -> JsonSchema:
    """The apiextensions.k8s.io/v1 CustomResourceDefinition of a kind."""
    version: JsonSchema = {
        "name": API_VERSION,
        "served": True,
        "storage": True,
        "subresources": {"status": {}},
        "additionalPrinterColumns": [
            column.to_crd() for column in (*resource.printer_columns, AGE_COLUMN)
        ],
        "schema": {"openAPIV3Schema": openapi_schema(resource)},
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": resource.crd_name,
            "labels": {"app.kubernetes.io/part-of": "execflow"},
        },
        "spec": {
            "group": API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": resource.kind,
                "listKind": f"{resource.kind}List",
                "plural": resource.plural,
                "singular": resource.singular,
                "shortNames": list(resource.short_names),
                "categories": [CATEGORY],
            },
            "versions": [version],
        },
    }


def render_crds(kinds: Sequence[CustomResourceKind] = KINDS) -> dict[str, str]:
    """YAML text of every CRD, by file name. Deterministic: keys are sorted, lines are stable."""
    return {
        resource.file_name: GENERATED_HEADER
        + yaml.safe_dump(
            build_crd(resource),
            sort_keys=True,
            default_flow_style=False,
            allow_unicode=True,
            width=100,
        )
        for resource in kinds
    }


def write_crds(directory: Path, rendered: Mapping[str, str]) -> list[Path]:
    """Write the rendered CRDs into `directory` (created if missing); returns the written paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in rendered.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def check_crds(directory: Path, rendered: Mapping[str, str]) -> list[str]:
    """Differences between `directory` and the rendered CRDs, as messages; empty when equal.

    A generated file that is missing or differs is reported with a unified diff; a file that looks
    generated (`<group>_*.yaml`) but belongs to no registered kind is reported as stale.
    """
    problems: list[str] = []
    for name, expected in rendered.items():
        path = directory / name
        if not path.is_file():
            problems.append(f"{path}: missing")
            continue
        actual = path.read_text(encoding="utf-8")
        if actual != expected:
            diff = difflib.unified_diff(
                actual.splitlines(keepends=True),
                expected.splitlines(keepends=True),
                fromfile=f"{path} (committed)",
                tofile=f"{path} (generated)",
            )
            problems.append("".join(diff))
    for path in sorted(directory.glob(f"{API_GROUP}_*.yaml")):
        if path.name not in rendered:
            problems.append(f"{path}: not generated by any registered kind (stale?)")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: write the CRDs with --out, or verify committed ones with --check.

    Both take one or more directories; every directory gets (or must hold) the same files.
    """
    parser = argparse.ArgumentParser(
        prog="python -m execflow.api.crdgen",
        description="Generate the execflow CustomResourceDefinitions from the API models.",
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument(
        "--out", type=Path, nargs="+", metavar="DIR", help="write the CRD files into each DIR"
    )
    action.add_argument(
        "--check",
        type=Path,
        nargs="+",
        metavar="DIR",
        help="exit 1 with a diff when the CRD files in any DIR differ from the models",
    )
    arguments = parser.parse_args(argv)
    rendered = render_crds()
    if arguments.out is not None:
        for directory in arguments.out:
            for path in write_crds(directory, rendered):
                print(f"wrote {path}")
        return 0
    directories: list[Path] = arguments.check
    problems = [problem for directory in directories for problem in check_crds(directory, rendered)]
    listed = " ".join(str(directory) for directory in directories)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        print(
            f"CRDs in {listed} are out of date; regenerate them with "
            f"`python -m execflow.api.crdgen --out {listed}`",
            file=sys.stderr,
        )
        return 1
    print(f"CRDs in {listed} are up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
