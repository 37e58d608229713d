"""One object checked in the order the API server checks a new one.

1. Its kind, by apiVersion and kind: another API group is skipped; an execflow apiVersion with a
   kind or version the CRDs do not serve is refused, in kubectl's words.
2. metadata: a name (or generateName) that is a DNS subdomain, a namespace that is a DNS label.
3. The CRD schema (`schema`): unknown fields pruned and reported (warnings; errors when strict),
   then types, required fields, enums, bounds, formats, list types; `status` is ignored, as the API
   server ignores it when an object is created.
4. The CEL rules (`rules`). After some schema errors the API server evaluates none; here only
   the rules at, above or below such an error are left out, so all else is reported at once.
5. The kind's pydantic model (`models`), for what the schema did not already say.
6. For a Workflow or ResultSet that passed all of the above, the operator's admission webhook.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from execflow.api.common import API_GROUP, API_VERSION, GROUP_VERSION
from execflow.api.crdgen import KINDS, CustomResourceKind, openapi_schema
from execflow.core.linting import schema as structural
from execflow.core.linting.findings import Check, Finding, Severity, error, info, show, warning
from execflow.core.linting.models import admission_findings, model_findings
from execflow.core.linting.paths import JsonSchema, Path, covers, render
from execflow.core.linting.rules import evaluate_rules

NOT_CHECKED_HERE = (
    'the API server checks no validation rule before the schema errors are corrected ("some '
    'validation rules were not checked because the object was invalid"); rules on fields '
    "without such errors are reported anyway"
)

STATUS_IGNORED = "ignored: the API server drops the status of a new object (/status subresource)"
_NAME_REQUIRED = "Required value: name or generateName is required"
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_METADATA_FIELDS = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "labels",
        "annotations",
        "finalizers",
        "ownerReferences",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
    }
)
_GENERATED_SUFFIX = "xxxxx"
"""Stands in for the five characters the API server appends to a generateName."""


@dataclass
class Checked:
    """What was found in one object, and how to name it (Kind/name)."""

    kind: str = ""
    name: str = ""
    findings: list[Finding] = field(default_factory=list)

    @property
    def subject(self) -> str:
        return f"{self.kind}/{self.name or '(unnamed)'}" if self.kind else ""


@functools.cache
def _kinds() -> dict[str, CustomResourceKind]:
    return {resource.kind: resource for resource in KINDS}


@functools.cache
def _schemas(kind: str) -> tuple[JsonSchema, dict[str, Any]]:
    schema = openapi_schema(_kinds()[kind])
    return schema, structural.json_schema(schema)


def check_object(value: Any, *, strict: bool = False) -> Checked:
    """Everything the API server and the operator would say about creating `value`. With
    `strict`, unknown fields are errors, as with kubectl's field validation Strict (its default)
    instead of the API's default Warn."""
    checked = Checked()
    if not isinstance(value, Mapping):
        message = "not a Kubernetes object: expected a mapping with apiVersion and kind"
        checked.findings.append(error(Check.KIND, (), message))
        return checked
    metadata = value.get("metadata")
    if isinstance(metadata, Mapping):
        checked.name = str(metadata.get("name") or metadata.get("generateName") or "")
    api_version, kind = value.get("apiVersion"), value.get("kind")
    checked.kind = str(kind or "")
    unset = [f"{name} not set" for name in ("apiVersion", "kind") if not value.get(name)]
    if unset:
        checked.findings.append(error(Check.KIND, (), ", ".join(unset)))
        return checked
    group = str(api_version).rpartition("/")[0]
    if group != API_GROUP:
        message = f"skipped: {api_version} {kind} is not an execflow kind"
        checked.findings.append(info(Check.KIND, (), message))
        return checked
    if api_version != GROUP_VERSION or kind not in _kinds():
        served = ", ".join(sorted(_kinds()))
        message = (
            f'no matches for kind "{kind}" in version "{api_version}" '
            f"(execflow serves {served} in {API_GROUP}/{API_VERSION})"
        )
        wrong = "kind" if kind not in _kinds() else "apiVersion"
        checked.findings.append(error(Check.KIND, (wrong,), message))
        return checked
    checked.findings.extend(_check_kind(str(kind), value, strict))
    return checked


def _check_kind(kind: str, value: Mapping[str, Any], strict: bool) -> list[Finding]:
    schema, translated = _schemas(kind)
    unknown = error if strict else warning
    findings = _metadata_findings(value.get("metadata"), unknown)
    body = {key: item for key, item in value.items() if key not in ("status", "metadata")}
    if "status" in value:
        findings.append(info(Check.SCHEMA, ("status",), STATUS_IGNORED))
    normalized, pruned = structural.normalize(schema, body)
    findings.extend(
        unknown(Check.SCHEMA, path, f'unknown field "{render(path)}"') for path in pruned
    )
    checked = structural.validate(schema, normalized, translated)
    findings.extend(found.finding for found in checked)
    given = value.get("metadata")
    metadata: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    normalized["metadata"] = dict(metadata)
    rules = evaluate_rules(schema, _with_name(normalized))
    blocking = [found.finding.path for found in checked if found.blocking]
    if blocking:
        # The API server stops here; its rules are still worth knowing, where they do not read
        # a value of the wrong shape (at, above or below a blocking error).
        findings.append(info(Check.RULE, (), NOT_CHECKED_HERE))
        rules = [rule for rule in rules if not any(covers(rule.path, at) for at in blocking)]
    findings.extend(rules)
    errors: list[Path] = [f.path for f in findings if f.severity is Severity.ERROR]
    findings.extend(model_findings(_kinds()[kind].model, schema, normalized, errors))
    if not any(f.severity is Severity.ERROR for f in findings):
        namespace = str(metadata.get("namespace") or "default")
        findings.extend(admission_findings(kind, schema, normalized, namespace))
    return findings


def _with_name(value: dict[str, Any]) -> dict[str, Any]:
    """The object as its root rules see it: a generateName gets its generated suffix."""
    metadata = value["metadata"]
    if metadata.get("name") or not metadata.get("generateName"):
        return value
    named = {**metadata, "name": f"{metadata['generateName']}{_GENERATED_SUFFIX}"}
    return {**value, "metadata": named}


def _metadata_findings(
    metadata: Any, unknown: Callable[[Check, Path, str], Finding]
) -> list[Finding]:
    if metadata is None:
        return [error(Check.METADATA, ("metadata", "name"), _NAME_REQUIRED)]
    if not isinstance(metadata, Mapping):
        actual = show(metadata)
        message = f"Invalid value: {actual}: metadata in body must be of type object"
        return [error(Check.METADATA, ("metadata",), message)]
    findings = [
        unknown(Check.METADATA, ("metadata", key), f'unknown field "metadata.{key}"')
        for key in metadata
        if key not in _METADATA_FIELDS
    ]
    name, generate_name = metadata.get("name"), metadata.get("generateName")
    if not name and not generate_name:
        findings.append(error(Check.METADATA, ("metadata", "name"), _NAME_REQUIRED))
    elif name and not _is_subdomain(name):
        message = f"Invalid value: {show(name)}: {_SUBDOMAIN_MESSAGE}"
        findings.append(error(Check.METADATA, ("metadata", "name"), message))
    namespace = metadata.get("namespace")
    if namespace and not (
        isinstance(namespace, str) and len(namespace) <= 63 and _LABEL.fullmatch(namespace)
    ):
        message = f"Invalid value: {show(namespace)}: {_LABEL_MESSAGE}"
        findings.append(error(Check.METADATA, ("metadata", "namespace"), message))
    for section in ("labels", "annotations"):
        entries = metadata.get(section)
        if entries is not None and not (
            isinstance(entries, Mapping) and all(isinstance(v, str) for v in entries.values())
        ):
            message = f"Invalid value: {show(entries)}: must be a map of strings to strings"
            findings.append(error(Check.METADATA, ("metadata", section), message))
    return findings


def _is_subdomain(name: Any) -> bool:
    return isinstance(name, str) and len(name) <= 253 and _SUBDOMAIN.fullmatch(name) is not None
