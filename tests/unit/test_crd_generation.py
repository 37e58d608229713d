"""CRD generation from the API models: structural schemas, admission rules, current YAML files.

Pure: the generated schemas are inspected as data, and the admission rules that are plain OpenAPI
(enum, minimum/maximum, types) are exercised with a JSON Schema validator standing in for the API
server. The CEL rules are checked for their text and for carrying the same regular expressions as
the Python validators; tests/integration/test_admission.py and test_workflow_admission.py run them
on the real API server.
"""

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import jsonschema
import pytest
import yaml
from pydantic import BaseModel, Field

from execflow.api.admission import AdmissionRule
from execflow.api.common import QUANTITY_MESSAGE, QUANTITY_RULE
from execflow.api.constraints import (
    TIME_OF_DAY_MESSAGE,
    TIME_OF_DAY_PATTERN,
    TIME_ZONE_MESSAGE,
    TIME_ZONE_PATTERN,
)
from execflow.api.crdgen import (
    KINDS,
    CustomResourceKind,
    ImmutableSpec,
    PrinterColumn,
    build_crd,
    check_crds,
    main,
    openapi_schema,
    render_crds,
)
from execflow.api.durations import DURATION_MESSAGE, DURATION_PATTERN, DURATION_RULE
from execflow.api.structural import SchemaError, immutability_rule
from execflow.api.task import (
    TASK_SPEC_IMMUTABLE_MESSAGE,
    TOOL_REF_XOR_CONTAINER_MESSAGE,
    TOOL_REF_XOR_CONTAINER_RULE,
    TaskSpec,
)
from execflow.api.workflow_limits import (
    CHILD_NAME_MESSAGE,
    DEPENDS_ON_MAX,
    DEPENDS_ON_MESSAGE,
    FINALLY_MAX,
    INDEX_SUFFIX,
    LABEL_MAX,
    MAX_RETRIES_MESSAGE,
    NAME_MESSAGE,
    NAME_PATTERN,
    STEP_NAMES_MESSAGE,
    STEPS_MAX,
    TASK_NAMES_MESSAGE,
    TASKS_PER_STEP_MAX,
)
from tests.task_specs import reference_task_spec

REPO_ROOT = Path(__file__).resolve().parents[2]
COMMITTED_CRDS = REPO_ROOT / "crds"

KIND_BY_NAME = {resource.kind: resource for resource in KINDS}

VALID_TASK: dict[str, Any] = {
    "apiVersion": "execflow.dev/v1alpha1",
    "kind": "Task",
    "metadata": {"name": "clean-data", "labels": {"team": "ml"}},
    "spec": reference_task_spec(),
    "status": {"phase": "Queued", "attempts": 0, "result": ["any", "json"]},
}


def crd_of(kind: str) -> dict[str, Any]:
    return build_crd(KIND_BY_NAME[kind])


def schema_of(kind: str) -> dict[str, Any]:
    return openapi_schema(KIND_BY_NAME[kind])


def schema_nodes(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node below `node` (properties, items, additionalProperties), with its path."""
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from schema_nodes(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from schema_nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from schema_nodes(node["additionalProperties"], f"{path}{{}}")


def all_keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, child in value.items():
            yield key
            yield from all_keys(child)
    elif isinstance(value, list):
        for child in value:
            yield from all_keys(child)


def node_at(schema: dict[str, Any], path: str) -> dict[str, Any]:
    return dict(schema_nodes(schema))[path]


def admission_errors(body: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft4Validator(schema_of("Task"))
    return [error.message for error in validator.iter_errors(body)]


def with_spec(**fields: Any) -> dict[str, Any]:
    return {**VALID_TASK, "spec": {**VALID_TASK["spec"], **fields}}


def rules_at(schema: dict[str, Any], path: str) -> list[dict[str, str]]:
    rules: list[dict[str, str]] = node_at(schema, path).get("x-kubernetes-validations", [])
    return rules


def cel_literal_in(rule: str) -> str:
    """The first single-quoted CEL string literal in `rule`, unescaped."""
    found = re.search(r"'((?:[^'\\]|\\.)*)'", rule)
    assert found is not None, rule
    return re.sub(r"\\(.)", r"\1", found.group(1))


def test_committed_crds_equal_a_fresh_generation() -> None:
    rendered = render_crds()

    assert sorted(rendered) == [
        "execflow.dev_resultsets.yaml",
        "execflow.dev_tasks.yaml",
        "execflow.dev_tools.yaml",
        "execflow.dev_workflows.yaml",
    ]
    for name, text in rendered.items():
        committed = (COMMITTED_CRDS / name).read_text(encoding="utf-8")
        assert committed == text, (
            f"crds/{name} is stale: run python -m execflow.api.crdgen --out crds/"
        )


def test_rendering_is_deterministic_and_valid_yaml() -> None:
    first, second = render_crds(), render_crds()

    assert first == second
    for text in first.values():
        assert yaml.safe_load(text)["kind"] == "CustomResourceDefinition"


@pytest.mark.parametrize("kind", sorted(KIND_BY_NAME))
def test_every_schema_property_has_a_description(kind: str) -> None:
    schema = schema_of(kind)

    missing = [
        f"{path}.{name}"
        for path, node in schema_nodes(schema)
        for name, child in node.get("properties", {}).items()
        if not child.get("description") and (path, name) != ("", "metadata")
    ]

    assert missing == []


@pytest.mark.parametrize("kind", sorted(KIND_BY_NAME))
def test_schemas_have_no_constructs_kubernetes_rejects(kind: str) -> None:
    keys = set(all_keys(schema_of(kind)))

    assert keys.isdisjoint({"$ref", "$defs", "anyOf", "allOf", "oneOf", "not", "title"})
    assert "uniqueItems" not in keys


@pytest.mark.parametrize("kind", sorted(KIND_BY_NAME))
def test_every_schema_node_is_typed_or_explicitly_free_form(kind: str) -> None:
    for path, node in schema_nodes(schema_of(kind)):
        if node.get("x-kubernetes-int-or-string"):
            assert "type" not in node, path
        else:
            assert node.get("type") or node.get("x-kubernetes-preserve-unknown-fields"), path
        if node.get("type") == "array":
            assert "items" in node, path
        assert not ("properties" in node and "additionalProperties" in node), path


@pytest.mark.parametrize("kind", sorted(KIND_BY_NAME))
def test_root_metadata_is_left_to_the_api_server(kind: str) -> None:
    schema = schema_of(kind)

    assert schema["properties"]["metadata"] == {"type": "object"}
    assert schema["required"] == ["spec"]
    assert schema["description"]


def test_task_spec_requires_exactly_one_of_tool_ref_and_container_via_cel() -> None:
    rules = rules_at(schema_of("Task"), ".spec")

    assert rules[0] == {
        "rule": "has(self.toolRef) != has(self.container)",
        "message": "exactly one of spec.toolRef or spec.container must be set",
    }


def test_task_spec_is_immutable_except_suspend_and_cancel() -> None:
    spec = node_at(schema_of("Task"), ".spec")
    (immutable,) = [r for r in spec["x-kubernetes-validations"] if "oldSelf" in r["rule"]]

    compared = re.findall(r"has\((?:dyn\()?self\)?\.(\w+)\) == has\(", immutable["rule"])

    assert immutable["message"] == TASK_SPEC_IMMUTABLE_MESSAGE
    assert sorted(compared) == sorted(set(spec["properties"]) - {"suspend", "cancel"})
    assert {field.alias for field in TaskSpec.model_fields.values()} == set(spec["properties"])
    # parameters is a map of arbitrary JSON values, which CEL only reaches through dyn().
    assert "dyn(self).parameters == dyn(oldSelf).parameters" in immutable["rule"]
    assert "self.queue == oldSelf.queue" in immutable["rule"]


def test_the_immutability_rule_compares_presence_and_value_of_every_other_field() -> None:
    spec = {
        "type": "object",
        "properties": {
            "size": {"type": "integer"},
            "extra": {
                "type": "object",
                "additionalProperties": {
                    "x-kubernetes-preserve-unknown-fields": True,
                    "nullable": True,
                },
            },
            "paused": {"type": "boolean"},
        },
    }

    assert immutability_rule(spec, ["paused"]) == (
        "has(self.size) == has(oldSelf.size) && (!has(self.size) || self.size == oldSelf.size)"
        " && has(dyn(self).extra) == has(dyn(oldSelf).extra)"
        " && (!has(dyn(self).extra) || dyn(self).extra == dyn(oldSelf).extra)"
    )
    with pytest.raises(SchemaError, match="not in the spec"):
        immutability_rule(spec, ["stopped"])


def test_tool_spec_has_no_immutability_rule() -> None:
    assert "x-kubernetes-validations" not in node_at(schema_of("Tool"), ".spec")


def test_task_schema_declares_enums_bounds_and_formats() -> None:
    schema = schema_of("Task")

    assert node_at(schema, ".spec.priority")["enum"] == ["Low", "Normal", "High", "Critical"]
    assert node_at(schema, ".status.phase")["enum"] == [
        "Pending",
        "Queued",
        "Running",
        "Paused",
        "Completed",
        "Failed",
        "Cancelled",
        "Timeout",
    ]
    assert node_at(schema, ".spec.dependencies[].type")["enum"] == [
        "FinishToStart",
        "StartToStart",
        "FinishToFinish",
        "StartToFinish",
    ]
    assert node_at(schema, ".spec.dependencies[].condition")["enum"] == [
        "Succeeded",
        "Failed",
        "Any",
    ]
    max_retries = node_at(schema, ".spec.retryPolicy.maxRetries")
    assert (max_retries["type"], max_retries["minimum"], max_retries["maximum"]) == (
        "integer",
        0,
        100,
    )
    backoff = node_at(schema, ".spec.retryPolicy.backoffMultiplier")
    assert (backoff["type"], backoff["minimum"]) == ("number", 1)
    for bound in ("start", "end"):
        window = node_at(schema, f".spec.constraints.timeWindows[].{bound}")
        assert window["maxLength"] == 5
        assert window["x-kubernetes-validations"] == [
            {"rule": f"self.matches('{TIME_OF_DAY_PATTERN}')", "message": TIME_OF_DAY_MESSAGE}
        ]
    assert node_at(schema, ".spec.constraints.deadline")["format"] == "date-time"


@pytest.mark.parametrize("kind", sorted(KIND_BY_NAME))
def test_no_schema_node_answers_with_a_regular_expression(kind: str) -> None:
    assert "pattern" not in set(all_keys(schema_of(kind)))


@pytest.mark.parametrize("kind", sorted(KIND_BY_NAME))
def test_every_cel_rule_has_a_message_in_words(kind: str) -> None:
    rules = [
        rule
        for _, node in schema_nodes(schema_of(kind))
        for rule in node.get("x-kubernetes-validations", [])
    ]

    assert rules
    for rule in rules:
        assert rule["message"]
        assert not set(rule["message"]) & set("^$\\[]|"), rule["message"]


def test_every_duration_field_carries_the_duration_rule() -> None:
    schema = schema_of("Task")

    duration_rule = {"rule": DURATION_RULE, "message": DURATION_MESSAGE}

    with_rule = {
        path
        for path, node in schema_nodes(schema)
        if duration_rule in node.get("x-kubernetes-validations", [])
    }

    assert with_rule == {
        ".spec.timeout",
        ".spec.estimatedDuration",
        ".spec.retryPolicy.retryDelay",
        ".spec.retryPolicy.maxRetryDelay",
        ".spec.cache.ttl",
    }
    for path in with_rule:
        assert node_at(schema, path)["maxLength"] == 64


@pytest.mark.parametrize(
    ("path", "pattern"),
    [
        (".spec.timeout", DURATION_PATTERN),
        (".spec.constraints.timeWindows[].start", TIME_OF_DAY_PATTERN),
        (".spec.constraints.timeWindows[].timeZone", TIME_ZONE_PATTERN),
    ],
)
def test_format_rules_carry_the_python_validators_regular_expression(
    path: str, pattern: str
) -> None:
    (rule,) = rules_at(schema_of("Task"), path)

    assert cel_literal_in(rule["rule"]) == pattern


def test_time_zones_are_looked_up_by_the_api_server() -> None:
    (rule,) = rules_at(schema_of("Task"), ".spec.constraints.timeWindows[].timeZone")

    assert rule["message"] == TIME_ZONE_MESSAGE
    assert "self != 'Local'" in rule["rule"]
    assert rule["rule"].endswith("timestamp('2000-01-01T00:00:00Z').getHours(self) >= 0")


def test_free_form_maps_hold_any_json_value_under_each_key() -> None:
    task, tool = schema_of("Task"), schema_of("Tool")

    for schema, path in [
        (task, ".spec.parameters"),
        (task, ".spec.podTemplate.spec.tolerations[]"),
        (task, ".spec.podTemplate.spec.affinity"),
        (task, ".spec.container.env[].valueFrom"),
        (tool, ".spec.defaults"),
        (tool, ".spec.inputSchema.properties"),
    ]:
        node = node_at(schema, path)
        assert node["type"] == "object", path
        assert node["additionalProperties"] == {
            "x-kubernetes-preserve-unknown-fields": True,
            "nullable": True,
        }, path


def test_objects_with_known_and_unknown_fields_preserve_the_unknown_ones() -> None:
    task, tool = schema_of("Task"), schema_of("Tool")

    for schema, path in [
        (task, ".spec.container.env[]"),
        (tool, ".spec.env[]"),
        (tool, ".spec.inputSchema"),
    ]:
        node = node_at(schema, path)
        assert node["x-kubernetes-preserve-unknown-fields"] is True, path
        assert node["properties"], path


def test_tool_input_schema_declares_the_types_of_required_and_properties() -> None:
    input_schema = node_at(schema_of("Tool"), ".spec.inputSchema")

    assert set(input_schema["properties"]) == {"required", "properties"}
    assert input_schema["properties"]["required"]["type"] == "array"
    assert input_schema["properties"]["required"]["items"] == {"type": "string"}
    assert input_schema["properties"]["properties"]["type"] == "object"


def test_a_result_may_be_any_json_value_in_the_schema() -> None:
    result = node_at(schema_of("Task"), ".status.result")

    assert result["x-kubernetes-preserve-unknown-fields"] is True
    assert "type" not in result


def test_quantities_are_int_or_string_checked_by_the_api_servers_parser() -> None:
    for kind in ("Task", "Tool"):
        for path in (".spec.resources.requests{}", ".spec.resources.limits{}"):
            quantity = node_at(schema_of(kind), path)
            assert quantity["x-kubernetes-int-or-string"] is True
            assert quantity["maxLength"] == 64
            assert quantity["x-kubernetes-validations"] == [
                {"rule": QUANTITY_RULE, "message": QUANTITY_MESSAGE}
            ]


def test_conditions_are_a_list_map_keyed_by_type() -> None:
    for kind in KIND_BY_NAME:
        conditions = node_at(schema_of(kind), ".status.conditions")
        assert conditions["x-kubernetes-list-type"] == "map"
        assert conditions["x-kubernetes-list-map-keys"] == ["type"]
        assert "type" in conditions["items"]["required"]


def test_task_schema_leaves_defaults_to_the_models_so_tool_defaults_can_apply() -> None:
    assert "default" not in set(all_keys(node_at(schema_of("Task"), ".spec")))


@pytest.mark.parametrize("kind", ["Tool", "Task", "Workflow", "ResultSet"])
def test_a_new_object_has_an_observed_generation_below_its_generation(kind: str) -> None:
    """kstatus reads a missing status as Current; 0 < generation reads as InProgress."""
    assert node_at(schema_of(kind), ".status")["default"] == {"observedGeneration": 0}


def test_tool_schema_defaults_the_service_account_token_to_off() -> None:
    token = node_at(schema_of("Tool"), ".spec.automountServiceAccountToken")

    assert token["default"] is False


def test_the_api_example_task_passes_the_schema() -> None:
    assert admission_errors(VALID_TASK) == []


@pytest.mark.parametrize(
    "spec_fields",
    [
        {"priority": "Urgent"},
        {"retryPolicy": {"maxRetries": -1}},
        {"retryPolicy": {"maxRetries": 1000}},
        {"retryPolicy": {"backoffMultiplier": 0.5}},
        {"timeout": "1" * 65 + "s"},
        {"constraints": {"timeWindows": [{"start": "22:00:00", "end": "06:00"}]}},
        {"constraints": {"timeWindows": [{"start": "22:00", "end": "06:00", "timeZone": ""}]}},
        {"dependencies": [{"task": ""}]},
        {"dependencies": [{"task": "a", "type": "Whenever"}]},
    ],
    ids=[
        "unknown-priority",
        "negative-retries",
        "absurd-retries",
        "backoff-below-one",
        "overlong-timeout",
        "overlong-window-start",
        "empty-time-zone",
        "empty-dependency-name",
        "unknown-dependency-type",
    ],
)
def test_the_schema_rejects_invalid_task_specs(spec_fields: dict[str, Any]) -> None:
    assert admission_errors(with_spec(**spec_fields)) != []


@pytest.mark.parametrize(
    ("kind", "plural", "short_name", "columns"),
    [
        ("Tool", "tools", "tl", [("Image", ".spec.image"), ("Age", ".metadata.creationTimestamp")]),
        (
            "Task",
            "tasks",
            "tk",
            [
                ("Phase", ".status.phase"),
                ("Priority", ".spec.priority"),
                ("Attempts", ".status.attempts"),
                ("Reason", ".status.reason"),
                ("Age", ".metadata.creationTimestamp"),
            ],
        ),
        (
            "Workflow",
            "workflows",
            "wf",
            [
                ("Phase", ".status.phase"),
                ("Progress", ".status.progress"),
                ("Age", ".metadata.creationTimestamp"),
            ],
        ),
    ],
)
def test_crd_names_scope_subresource_and_printer_columns(
    kind: str, plural: str, short_name: str, columns: list[tuple[str, str]]
) -> None:
    crd = crd_of(kind)
    spec = crd["spec"]
    (version,) = spec["versions"]

    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["metadata"]["name"] == f"{plural}.execflow.dev"
    assert spec["group"] == "execflow.dev"
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == kind
    assert spec["names"]["plural"] == plural
    assert spec["names"]["shortNames"] == [short_name]
    assert spec["names"]["categories"] == ["execflow"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}
    shown = [
        (column["name"], column["jsonPath"])
        for column in version["additionalPrinterColumns"]
        if column.get("priority", 0) == 0
    ]
    assert shown == columns


def test_check_passes_for_freshly_written_crds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--out", str(tmp_path)]) == 0
    assert main(["--check", str(tmp_path)]) == 0
    assert "up to date" in capsys.readouterr().out


def test_check_fails_with_a_diff_when_a_committed_crd_differs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["--out", str(tmp_path)])
    tasks = tmp_path / "execflow.dev_tasks.yaml"
    tasks.write_text(tasks.read_text().replace("maximum: 100", "maximum: 5"))

    assert main(["--check", str(tmp_path)]) == 1

    err = capsys.readouterr().err
    assert "-                    maximum: 5" in err
    assert "+                    maximum: 100" in err
    assert "--out" in err


def test_check_reports_missing_and_stale_files(tmp_path: Path) -> None:
    rendered = render_crds()
    for name, text in rendered.items():
        if name != "execflow.dev_tasks.yaml":
            (tmp_path / name).write_text(text)
    (tmp_path / "execflow.dev_widgets.yaml").write_text("kind: CustomResourceDefinition\n")

    problems = check_crds(tmp_path, rendered)

    assert len(problems) == 2
    assert "execflow.dev_tasks.yaml: missing" in problems[0]
    assert "execflow.dev_widgets.yaml: not generated" in problems[1]


class GadgetSpec(BaseModel):
    """A gadget."""

    size: int = Field(default=1, ge=1, description="Size of the gadget.")


class Gadget(BaseModel):
    """A kind registered only by this test."""

    spec: GadgetSpec = Field(description="The gadget.")


class UndocumentedSpec(BaseModel):
    """A spec with an undocumented field."""

    size: int = 1


class Undocumented(BaseModel):
    """A kind whose spec misses a description."""

    spec: UndocumentedSpec = Field(description="The spec.")


def test_a_new_kind_is_added_by_registering_its_model() -> None:
    gadget = CustomResourceKind(
        model=Gadget,
        plural="gadgets",
        short_names=("gd",),
        printer_columns=(PrinterColumn("Size", ".spec.size", "integer"),),
    )

    rendered = render_crds([gadget])

    crd = yaml.safe_load(rendered["execflow.dev_gadgets.yaml"])
    assert crd["spec"]["names"]["kind"] == "Gadget"
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert schema["properties"]["spec"]["properties"]["size"] == {
        "default": 1,
        "description": "Size of the gadget.",
        "minimum": 1,
        "type": "integer",
    }


def test_generation_refuses_a_property_without_a_description() -> None:
    resource = CustomResourceKind(model=Undocumented, plural="undocumenteds", short_names=())

    with pytest.raises(SchemaError, match=r"spec\.size: every property needs a description"):
        openapi_schema(resource)


class PatternedSpec(BaseModel):
    """A spec whose field is checked by a regular expression."""

    code: str = Field(pattern=r"^[A-Z]{3}$", description="A code.")


class Patterned(BaseModel):
    """A kind whose spec would answer a mismatch with the regular expression."""

    spec: PatternedSpec = Field(description="The spec.")


def test_generation_refuses_a_pattern_and_points_to_admission_rules() -> None:
    resource = CustomResourceKind(model=Patterned, plural="patterneds", short_names=())

    with pytest.raises(SchemaError, match=r"spec\.code: .*AdmissionRule"):
        openapi_schema(resource)


Code = Annotated[
    str,
    Field(max_length=3),
    AdmissionRule("self.matches('^[A-Z]{3}$')", "must be three capital letters such as ABC"),
]


class CodedSpec(BaseModel):
    """A spec with formats declared as admission rules, one of them optional."""

    code: Code = Field(description="A code.")
    codes: dict[str, Code] = Field(default_factory=dict, description="Codes by name.")
    paused: bool = Field(default=False, description="Paused.")
    fallback: Code | None = Field(default=None, description="Another code.")


class Coded(BaseModel):
    """A kind registered only by this test, with an immutable spec."""

    spec: CodedSpec = Field(description="The spec.")


def test_an_annotated_admission_rule_lands_on_the_fields_schema_node() -> None:
    resource = CustomResourceKind(
        model=Coded,
        plural="codeds",
        short_names=(),
        immutable_spec=ImmutableSpec(mutable=("paused",), message="only paused may change"),
    )
    rule = {
        "rule": "self.matches('^[A-Z]{3}$')",
        "message": "must be three capital letters such as ABC",
    }

    spec = openapi_schema(resource)["properties"]["spec"]

    assert spec["properties"]["code"] == {
        "description": "A code.",
        "maxLength": 3,
        "type": "string",
        "x-kubernetes-validations": [rule],
    }
    assert spec["properties"]["codes"]["additionalProperties"]["x-kubernetes-validations"] == [rule]
    assert spec["properties"]["fallback"]["x-kubernetes-validations"] == [rule]
    (immutable,) = spec["x-kubernetes-validations"]
    assert immutable["message"] == "only paused may change"
    assert "paused" not in immutable["rule"]
    assert "self.fallback == oldSelf.fallback" in immutable["rule"]


def test_the_module_command_checks_the_committed_crds() -> None:
    checked = subprocess.run(
        [sys.executable, "-m", "execflow.api.crdgen", "--check", "crds", "charts/execflow/crds"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    assert checked.returncode == 0, checked.stderr
    assert "up to date" in checked.stdout


SECTIONS = ("steps", "finally")


def workflow_rule_texts() -> list[str]:
    """Every rule and message expression of the Workflow schema."""
    return [
        rule[key]
        for _, node in schema_nodes(schema_of("Workflow"))
        for rule in node.get("x-kubernetes-validations", [])
        for key in ("rule", "messageExpression")
        if key in rule
    ]


def test_workflow_schema_leaves_defaults_to_the_models_so_tool_defaults_can_apply() -> None:
    assert "default" not in set(all_keys(node_at(schema_of("Workflow"), ".spec")))


def test_workflow_lists_carry_the_limits_the_cost_budget_allows() -> None:
    schema = schema_of("Workflow")

    assert node_at(schema, ".spec.steps")["maxItems"] == STEPS_MAX == 50
    assert node_at(schema, ".spec.finally")["maxItems"] == FINALLY_MAX == 10
    for section in SECTIONS:
        assert node_at(schema, f".spec.{section}[].tasks")["maxItems"] == TASKS_PER_STEP_MAX == 20
        depends_on = node_at(schema, f".spec.{section}[].dependsOn")
        assert depends_on["maxItems"] == DEPENDS_ON_MAX == STEPS_MAX + FINALLY_MAX - 1
        assert depends_on["x-kubernetes-list-type"] == "set"


@pytest.mark.parametrize("section", SECTIONS)
@pytest.mark.parametrize("field", ["name", "tasks[].name", "dependsOn[]"])
def test_workflow_names_are_dns_labels_checked_with_the_python_pattern(
    section: str, field: str
) -> None:
    node = node_at(schema_of("Workflow"), f".spec.{section}[].{field}")
    (rule,) = node["x-kubernetes-validations"]

    assert rule["message"] == NAME_MESSAGE
    assert cel_literal_in(rule["rule"]) == NAME_PATTERN
    assert node["maxLength"] == LABEL_MAX


def test_workflow_spec_rules_check_names_and_order_across_steps_and_finally() -> None:
    rules = rules_at(schema_of("Workflow"), ".spec")

    assert [(rule["fieldPath"], rule["message"]) for rule in rules] == [
        (".steps", STEP_NAMES_MESSAGE),
        (".finally", STEP_NAMES_MESSAGE),
        (".steps", TASK_NAMES_MESSAGE),
        (".finally", TASK_NAMES_MESSAGE),
        (".steps", DEPENDS_ON_MESSAGE),
        (".finally", DEPENDS_ON_MESSAGE),
    ]
    for rule in rules:
        assert rule["messageExpression"], rule["rule"]
        # The schema writes no defaults, so an absent finally must pass.
        assert rule["rule"].startswith("!has(self.finally) || ") == (
            rule["fieldPath"] == ".finally"
        )
    assert all("sets.intersects(a, b)" in rule["rule"] for rule in rules[2:4])
    assert all("n.indexOf(d)" in rule["rule"] for rule in rules[4:])


def test_workflow_root_rules_fit_every_child_name_into_a_label_value() -> None:
    rules = schema_of("Workflow")["x-kubernetes-validations"]

    assert [(rule["fieldPath"], rule["message"]) for rule in rules] == [
        (".spec.steps", CHILD_NAME_MESSAGE),
        (".spec.finally", CHILD_NAME_MESSAGE),
    ]
    for rule in rules:
        assert (
            "size(self.metadata.name) + size(t.name) + "
            f"(has(t.forEach) ? {1 + INDEX_SUFFIX} : 1) <= {LABEL_MAX}"
        ) in rule["rule"]
        assert rule["messageExpression"]
    assert len("-9999") == INDEX_SUFFIX


@pytest.mark.parametrize("section", SECTIONS)
def test_workflow_step_rules_check_retries_and_the_steps_own_task_names(section: str) -> None:
    rules = rules_at(schema_of("Workflow"), f".spec.{section}[]")

    assert [(rule["fieldPath"], rule["message"]) for rule in rules] == [
        (".maxRetries", MAX_RETRIES_MESSAGE),
        (".tasks", TASK_NAMES_MESSAGE),
    ]
    assert "self.onError == 'Retry'" in rules[0]["rule"]


@pytest.mark.parametrize("section", SECTIONS)
def test_workflow_tasks_carry_the_task_spec_rules(section: str) -> None:
    schema = schema_of("Workflow")

    assert rules_at(schema, f".spec.{section}[].tasks[]") == [
        {"rule": TOOL_REF_XOR_CONTAINER_RULE, "message": TOOL_REF_XOR_CONTAINER_MESSAGE}
    ]
    assert rules_at(schema, f".spec.{section}[].tasks[].timeout") == [
        {"rule": DURATION_RULE, "message": DURATION_MESSAGE}
    ]


def test_workflow_rules_use_only_cel_that_kubernetes_1_29_compiles() -> None:
    # The chart supports Kubernetes 1.29: no bindings, list extensions or two-variable macros.
    newer = re.compile(
        r"cel\.bind|lists\.range|math\."
        r"|\.(flatten|slice|distinct|sort|sortBy|reverse|format)\("
        r"|\.(transformList|transformMap|transformMapEntry|existsOne)\("
        r"|\.(all|exists|exists_one)\(\s*\w+\s*,\s*\w+\s*,"
    )

    texts = workflow_rule_texts()

    assert len(texts) > 20
    assert [text for text in texts if newer.search(text)] == []
