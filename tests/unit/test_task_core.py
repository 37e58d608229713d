"""Task building blocks of execflow.core (pure core, no cluster).

Covers `{{ parameters.NAME }}` rendering (templating), termination-message parsing (results), the
execution cache key (cache_keys) and the effective spec built from a Tool's defaults (task_spec).
"""

from typing import Any

import pytest

from execflow.api.task import Priority
from execflow.core.cache_keys import execution_key
from execflow.core.results import parse_result
from execflow.core.task_spec import SpecError, deep_merge, effective_spec
from execflow.core.templating import TemplateError, render_args

# --- templating -------------------------------------------------------------------------------


def test_string_parameter_is_inserted_verbatim() -> None:
    rendered = render_args(["--input={{ parameters.input }}"], {"input": 'raw "data".csv'})

    assert rendered == ['--input=raw "data".csv']


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (3, "3"),
        (2.5, "2.5"),
        (True, "true"),
        (None, "null"),
        ([1, "a"], '[1,"a"]'),
        ({"b": 1, "a": {"c": [2]}}, '{"a":{"c":[2]},"b":1}'),
    ],
)
def test_non_string_parameters_are_inserted_as_compact_json(value: Any, text: str) -> None:
    assert render_args(["{{ parameters.x }}"], {"x": value}) == [text]


def test_placeholders_tolerate_missing_spaces_and_repeat_within_an_arg() -> None:
    rendered = render_args(
        ["{{parameters.a}}-{{  parameters.b  }}-{{ parameters.a }}"], {"a": 1, "b": "x"}
    )

    assert rendered == ["1-x-1"]


def test_args_without_placeholders_are_unchanged() -> None:
    args = ["--flag", "{ not a placeholder }", "{{ other.thing }}"]

    assert render_args(args, {}) == args


def test_parameter_values_are_not_rendered_again() -> None:
    rendered = render_args(["{{ parameters.a }}"], {"a": "{{ parameters.b }}", "b": "no"})

    assert rendered == ["{{ parameters.b }}"]


def test_missing_parameter_raises_template_error_naming_it() -> None:
    with pytest.raises(TemplateError, match="'output'"):
        render_args(["--in={{ parameters.input }}", "--out={{ parameters.output }}"], {"input": 1})


def test_template_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="missing"):
        render_args(["{{ parameters.missing }}"], {})


# --- results ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "result"),
    [
        ('{"rows": 42, "ok": true}', {"rows": 42, "ok": True}),
        ("[1, 2]", [1, 2]),
        ("42", 42),
        ('"done"', "done"),
        ("true", True),
        ('  {"a": 1}\n', {"a": 1}),
    ],
)
def test_json_termination_message_is_parsed(message: str, result: Any) -> None:
    assert parse_result(message) == result


@pytest.mark.parametrize("message", ["done: 42 rows", "{not json", "line 1\nline 2"])
def test_non_json_termination_message_is_kept_as_string(message: str) -> None:
    assert parse_result(message) == message


@pytest.mark.parametrize("message", ["NaN", "Infinity", "-Infinity"])
def test_non_standard_json_constants_are_kept_as_string(message: str) -> None:
    assert parse_result(message) == message


@pytest.mark.parametrize("message", [None, "", "   ", "\n"])
def test_empty_termination_message_is_an_empty_result(message: str | None) -> None:
    assert parse_result(message) == {}


# --- cache keys -------------------------------------------------------------------------------

BASE_KEY: dict[str, Any] = {
    "image": "registry.example/cleaner:1.0",
    "command": ["python", "-m", "cleaner"],
    "args": ["--input={{ parameters.input }}"],
    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
    "parameters": {"input": "raw.csv", "options": {"drop": True, "limit": 10}},
}


def key_of(**changes: Any) -> str:
    return execution_key(**{**BASE_KEY, **changes})


def test_cache_key_is_a_sha256_hex_digest() -> None:
    key = key_of()

    assert len(key) == 64
    assert int(key, 16) >= 0


def test_cache_key_is_stable_under_env_order() -> None:
    reversed_env = list(reversed(BASE_KEY["env"]))

    assert key_of(env=reversed_env) == key_of()


def test_cache_key_is_stable_under_dict_key_order() -> None:
    reordered = {"options": {"limit": 10, "drop": True}, "input": "raw.csv"}
    env = [{"value": "1", "name": "A"}, {"value": "2", "name": "B"}]

    assert key_of(parameters=reordered, env=env) == key_of()


@pytest.mark.parametrize(
    "change",
    [
        {"image": "registry.example/cleaner:1.1"},
        {"command": ["python", "-m", "other"]},
        {"command": []},
        {"args": ["--input={{ parameters.input }}", "--verbose"]},
        {"args": ["--verbose", "--input={{ parameters.input }}"]},
        {"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}]},
        {"env": [{"name": "A", "value": "1"}]},
        {"parameters": {"input": "other.csv", "options": {"drop": True, "limit": 10}}},
        {"parameters": {"input": "raw.csv", "options": {"drop": False, "limit": 10}}},
        {"parameters": {"input": "raw.csv"}},
    ],
)
def test_cache_key_changes_with_every_input(change: dict[str, Any]) -> None:
    assert key_of(**change) != key_of()


def test_cache_key_does_not_confuse_fields() -> None:
    assert execution_key("img", ["x"], [], [], {}) != execution_key("img", [], ["x"], [], {})


# --- effective spec ---------------------------------------------------------------------------

TOOL_TASK: dict[str, Any] = {"toolRef": {"name": "data-cleaner"}}


def test_deep_merge_merges_objects_and_replaces_everything_else() -> None:
    merged = deep_merge(
        {"a": {"x": 1, "y": [1, 2]}, "b": 1, "c": "keep"},
        {"a": {"y": [3]}, "b": {"now": "object"}},
    )

    assert merged == {"a": {"x": 1, "y": [3]}, "b": {"now": "object"}, "c": "keep"}


def test_deep_merge_leaves_its_inputs_untouched() -> None:
    base = {"a": {"x": 1}}
    override = {"a": {"y": 2}}

    deep_merge(base, override)

    assert base == {"a": {"x": 1}}
    assert override == {"a": {"y": 2}}


def test_tool_defaults_fill_unset_fields() -> None:
    spec = effective_spec(
        TOOL_TASK,
        {"timeout": "30s", "priority": "High", "queue": "gpu", "tags": ["nightly"]},
    )

    assert spec.timeout == "30s"
    assert spec.priority is Priority.HIGH
    assert spec.queue == "gpu"
    assert spec.tags == ["nightly"]


def test_without_defaults_the_model_defaults_apply() -> None:
    spec = effective_spec(TOOL_TASK, {})

    assert spec.timeout is None
    assert spec.priority is Priority.NORMAL
    assert spec.queue == "default"
    assert spec.retry_policy.max_retries == 0


def test_task_fields_win_over_tool_defaults() -> None:
    spec = effective_spec(
        {**TOOL_TASK, "timeout": "5s", "priority": "Low", "tags": ["mine"]},
        {"timeout": "30s", "priority": "High", "tags": ["nightly"]},
    )

    assert spec.timeout == "5s"
    assert spec.priority is Priority.LOW
    assert spec.tags == ["mine"]


def test_nested_objects_merge_field_by_field() -> None:
    spec = effective_spec(
        {**TOOL_TASK, "retryPolicy": {"maxRetries": 3}},
        {"retryPolicy": {"maxRetries": 1, "retryDelay": "5s", "retryOn": {"exitCodes": [137]}}},
    )

    assert spec.retry_policy.max_retries == 3
    assert spec.retry_policy.retry_delay == "5s"
    assert spec.retry_policy.retry_on.exit_codes == [137]
    assert spec.retry_policy.max_retry_delay == "5m"


def test_resources_and_pod_template_merge_field_by_field() -> None:
    spec = effective_spec(
        {
            **TOOL_TASK,
            "resources": {"limits": {"memory": "1Gi"}},
            "podTemplate": {"spec": {"nodeSelector": {"zone": "a"}}},
        },
        {
            "resources": {"requests": {"cpu": "500m"}, "limits": {"memory": "512Mi"}},
            "podTemplate": {"spec": {"serviceAccountName": "runner"}},
        },
    )

    assert spec.resources.requests == {"cpu": "500m"}
    assert spec.resources.limits == {"memory": "1Gi"}
    assert spec.pod_template.spec.service_account_name == "runner"
    assert spec.pod_template.spec.node_selector == {"zone": "a"}


def test_what_runs_and_whether_it_runs_never_come_from_defaults() -> None:
    spec = effective_spec(
        TOOL_TASK,
        {
            "toolRef": {"name": "other-tool"},
            "container": {"image": "evil:latest"},
            "parameters": {"input": "injected.csv"},
            "suspend": True,
            "cancel": True,
        },
    )

    assert spec.tool_ref is not None
    assert spec.tool_ref.name == "data-cleaner"
    assert spec.container is None
    assert spec.parameters == {}
    assert spec.suspend is False
    assert spec.cancel is False


def test_inline_container_task_ignores_a_default_tool_ref() -> None:
    spec = effective_spec({"container": {"image": "busybox"}}, {"toolRef": {"name": "t"}})

    assert spec.tool_ref is None
    assert spec.container is not None
    assert spec.container.image == "busybox"


@pytest.mark.parametrize(
    ("defaults", "field"),
    [
        ({"priority": "Urgent"}, "priority"),
        ({"timeout": "soon"}, "timeout"),
        ({"retryPolicy": {"maxRetries": -1}}, "retryPolicy.maxRetries"),
        ({"retryPolicy": {"backoffMultiplier": 0.5}}, "retryPolicy.backoffMultiplier"),
    ],
)
def test_invalid_defaults_raise_spec_error_naming_the_field(
    defaults: dict[str, Any], field: str
) -> None:
    with pytest.raises(SpecError) as raised:
        effective_spec(TOOL_TASK, defaults)

    message = str(raised.value)
    assert "the spec with the Tool's defaults filled in cannot be used" in message
    assert f"spec.{field}:" in message


def test_an_invalid_spec_without_defaults_does_not_blame_a_tool() -> None:
    with pytest.raises(SpecError) as raised:
        effective_spec({"container": {"image": "x"}, "timeout": "99999999999999999999h"}, {})

    assert str(raised.value).startswith("the spec cannot be used: spec.timeout:")


def test_spec_error_is_a_value_error_without_the_pydantic_chain() -> None:
    with pytest.raises(ValueError) as raised:
        effective_spec(TOOL_TASK, {"priority": "Urgent"})

    assert isinstance(raised.value, SpecError)
    assert raised.value.__cause__ is None
