"""The Helm chart's static parts: its CRDs, its default settings, its values schema and its RBAC,
read as files.

Pure: nothing is installed. The CRDs are compared with a fresh generation from the models, the
default `settings:` are validated by the same loader the operator uses, values.schema.json is
checked against values.yaml and against the operator's settings models, and the RBAC templates are
scanned for wildcards and for grants nothing needs. Rendering and installing the chart with the
project's helm is tests/integration/test_helm.py's job.
"""

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pydantic
import pytest
import yaml

from execflow.api.crdgen import check_crds, render_crds
from execflow.api.durations import DURATION_PATTERN
from execflow.api.settings import (
    DEFAULT_QUEUE,
    AdaptiveWeights,
    OperatorSettings,
    QueueSettings,
    SchedulingStrategy,
    load_settings,
)
from execflow.kube.webhook import CONFIGURATION_NAME, SERVICE_PORT, secret_name
from execflow.runner import LEASE_NAME

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "execflow"


def chart_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    return values


def test_chart_crds_equal_a_fresh_generation() -> None:
    problems = check_crds(CHART / "crds", render_crds())

    assert problems == [], (
        "charts/execflow/crds is stale: run "
        "python -m execflow.api.crdgen --out crds/ charts/execflow/crds/\n" + "\n".join(problems)
    )


def test_replicas_elect_a_leader_through_a_lease_the_chart_lets_them_write() -> None:
    deployment = (CHART / "templates" / "deployment.yaml").read_text(encoding="utf-8")

    assert "- --leader-election-namespace\n            - {{ .Release.Namespace | quote }}" in (
        deployment
    )
    assert "name: POD_NAME" in deployment, "each replica names itself in the Lease"
    # Creating the Lease cannot be limited to a name; reading and renewing it can.
    assert yaml.safe_load(helper("execflow.leaseRules")) == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": [LEASE_NAME],
            "verbs": ["get", "patch"],
        },
    ]


def test_chart_version_follows_the_package() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))

    assert chart["name"] == "execflow"
    assert chart["appVersion"] == project["project"]["version"]


def test_default_settings_have_the_documented_queue_shape() -> None:
    queues = chart_values()["settings"]["queues"]

    assert queues == {
        "default": {
            "strategy": "Priority",
            "maxConcurrentTasks": 100,
            "maxQueuedTasks": 10000,
            "preemption": False,
            "resourceAware": True,
            "adaptiveWeights": {
                "priority": 1.0,
                "waitTime": 1.0,
                "deadline": 1.0,
                "shortness": 1.0,
            },
        }
    }


def test_default_settings_load_with_the_operators_loader() -> None:
    settings = load_settings(yaml.safe_dump(chart_values()["settings"]))

    queue = settings.queues[DEFAULT_QUEUE]
    assert queue.strategy is SchedulingStrategy.PRIORITY
    assert (queue.max_concurrent_tasks, queue.max_queued_tasks) == (100, 10000)
    assert (queue.preemption, queue.resource_aware) == (False, True)
    assert queue.adaptive_weights.wait_time == 1.0


def test_default_settings_load_after_helm_renders_whole_floats_as_integers() -> None:
    # Helm's toYaml writes the weight 1.0 as `1`; the ConfigMap must still load.
    settings = chart_values()["settings"]
    weights = settings["queues"][DEFAULT_QUEUE]["adaptiveWeights"]
    settings["queues"][DEFAULT_QUEUE]["adaptiveWeights"] = {k: int(v) for k, v in weights.items()}

    queue = load_settings(yaml.safe_dump(settings)).queues[DEFAULT_QUEUE]

    assert queue.adaptive_weights.priority == 1.0


def test_rbac_names_every_verb_and_resource_without_wildcards() -> None:
    for template in (CHART / "templates").iterdir():
        text = template.read_text(encoding="utf-8")
        assert '"*"' not in text, template.name
        assert "'*'" not in text, template.name


def helper(name: str) -> str:
    """The body of one `define` in _helpers.tpl."""
    helpers = (CHART / "templates" / "_helpers.tpl").read_text(encoding="utf-8")
    body = helpers.split(f'define "{name}"')[1].split("{{- end }}")[0]
    return body.split("\n", 1)[1]  # after the define's own closing braces


def test_the_admission_webhook_is_on_by_default_on_port_9443() -> None:
    assert chart_values()["webhook"] == {"enabled": True, "port": 9443}


def test_the_operator_serves_the_webhook_behind_the_release_service() -> None:
    deployment = (CHART / "templates" / "deployment.yaml").read_text(encoding="utf-8")
    service = (CHART / "templates" / "service.yaml").read_text(encoding="utf-8")

    assert "- --webhook-port\n            - {{ .Values.webhook.port | quote }}" in deployment
    assert (
        '- --webhook-service\n            - {{ printf "%s/%s" .Release.Namespace '
        '(include "execflow.webhookServiceName" .) | quote }}'
    ) in deployment
    assert "- name: webhook\n              containerPort: {{ .Values.webhook.port }}" in deployment
    webhook_service = service.split("{{- if .Values.webhook.enabled }}")[1]
    assert 'name: {{ include "execflow.webhookServiceName" . }}' in webhook_service
    # The operator registers the Service on port 443 (execflow.kube.webhook.SERVICE_PORT).
    assert f"port: {SERVICE_PORT}\n      targetPort: webhook" in webhook_service


def test_the_operator_may_register_only_its_own_webhook_configuration() -> None:
    rules = yaml.safe_load(helper("execflow.webhookClusterRules"))

    assert rules == [
        {
            "apiGroups": ["admissionregistration.k8s.io"],
            "resources": ["validatingwebhookconfigurations"],
            "verbs": ["create"],
        },
        {
            "apiGroups": ["admissionregistration.k8s.io"],
            "resources": ["validatingwebhookconfigurations"],
            "resourceNames": [CONFIGURATION_NAME],
            "verbs": ["get", "patch"],
        },
    ]


def test_the_operator_may_keep_only_its_own_certificate_secret() -> None:
    rules = helper("execflow.webhookSecretRules")
    service_name = helper("execflow.webhookServiceName")
    rbac = (CHART / "templates" / "rbac.yaml").read_text(encoding="utf-8")

    assert '"%s-webhook"' in service_name
    # The Secret is named as execflow.kube.webhook.secret_name names it after the Service.
    assert secret_name("SERVICE") == "SERVICE-tls"
    assert (
        'resourceNames: [{{ printf "%s-tls" (include "execflow.webhookServiceName" .) | quote }}]'
    ) in rules
    assert 'resources: ["secrets"]\n  verbs: ["create"]' in rules
    assert 'verbs: ["get", "patch"]' in rules
    # A Role in the release namespace, never a cluster-wide grant on Secrets.
    webhook_rbac = rbac.split("{{- if .Values.webhook.enabled }}\n---")[1]
    assert "kind: Role\n" in webhook_rbac
    assert "namespace: {{ .Release.Namespace }}" in webhook_rbac
    assert "ClusterRole\n" not in webhook_rbac.replace("kind: Role\n", "")
    assert '{{- include "execflow.webhookSecretRules" . | nindent 2 }}' in webhook_rbac


# ----- values.schema.json ---------------------------------------------------------------------
def schema_errors(values: dict[str, Any]) -> list[str]:
    """What values.schema.json says about `values` (empty: accepted), as `path: message`."""
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    return sorted(
        f"/{'/'.join(str(part) for part in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(values)
    )


def with_value(path: str, value: Any) -> dict[str, Any]:
    """The default values with one dotted key set, as `--set path=value` sets it."""
    values = chart_values()
    *parents, last = path.split(".")
    node = values
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return values


def test_the_schema_is_a_valid_draft_7_schema_that_accepts_the_defaults() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))

    jsonschema.Draft7Validator.check_schema(schema)
    assert schema_errors(chart_values()) == []


@pytest.mark.parametrize(
    ("path", "value", "complaint"),
    [
        ("replicas", "x", "/replicas: 'x' is not of type 'integer'"),
        ("replicas", -1, "/replicas: -1 is less than the minimum of 0"),
        ("settings.queues.default.strategy", "Bogus", "/settings/queues/default/strategy: 'Bogus'"),
        ("settings.queues.default.maxConcurrentTasks", 0, "less than the minimum of 1"),
        ("settings.queues.default.adaptiveWeights.waitTime", -1, "less than the minimum of 0"),
        ("settings.queues.default.maxConcurentTasks", 5, "'maxConcurentTasks' was unexpected"),
        ("settings.queues.Batch", {}, "/settings/queues: 'Batch' does not match"),
        ("settings.podCreateTimeout", "2 minutes", "/settings/podCreateTimeout: '2 minutes'"),
        ("image.pullPolicy", "Sometimes", "/image/pullPolicy: 'Sometimes' is not one of"),
        ("logLevel", "TRACE", "/logLevel: 'TRACE' is not one of"),
        ("webhook.port", 8081, "/webhook/port"),
        ("watchNamespaces", ["Team_A"], "/watchNamespaces/0: 'Team_A' does not match"),
        ("replica", 2, "'replica' was unexpected"),
    ],
)
def test_the_schema_refuses_a_bad_value_naming_where_it_is(
    path: str, value: Any, complaint: str
) -> None:
    errors = schema_errors(with_value(path, value))

    assert len(errors) == 1, errors
    assert complaint in errors[0]


def test_without_leader_election_at_most_one_replica_may_run() -> None:
    values = with_value("leaderElection.enabled", False)
    assert schema_errors(values) == []

    values["replicas"] = 2
    assert schema_errors(values) == ["/replicas: 2 is greater than the maximum of 1"]


def _aliases(model: type[pydantic.BaseModel]) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


def test_the_settings_schema_has_exactly_the_keys_the_operator_reads() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    settings = schema["properties"]["settings"]
    queue = schema["definitions"]["queue"]

    assert set(settings["properties"]) == _aliases(OperatorSettings)
    assert set(queue["properties"]) == _aliases(QueueSettings)
    assert set(queue["properties"]["adaptiveWeights"]["properties"]) == _aliases(AdaptiveWeights)
    assert queue["properties"]["strategy"]["enum"] == [s.value for s in SchedulingStrategy]
    assert schema["definitions"]["duration"]["pattern"] == DURATION_PATTERN
    # Unknown keys are refused at every level, as the operator refuses them.
    assert settings["additionalProperties"] is False
    assert queue["additionalProperties"] is False


@pytest.mark.parametrize(
    "queue",
    [
        {"strategy": "Adaptive", "agingSeconds": 30, "starvationLimit": 5, "backfillLimit": 0},
        {"strategy": "FIFO", "maxConcurrentTasks": 1, "maxQueuedTasks": 1, "starvationLimit": None},
        {"preemption": True, "resourceAware": False, "adaptiveWeights": {"shortness": 0}},
    ],
)
def test_settings_the_schema_accepts_load_in_the_operator(queue: dict[str, Any]) -> None:
    settings = {"podCreateTimeout": "30s", "storageCleanupTimeout": "1m30s", "queues": {"b": queue}}

    assert schema_errors(with_value("settings", settings)) == []
    assert load_settings(yaml.safe_dump(settings)).queues["b"].strategy in SchedulingStrategy


# ----- what the RBAC grants -----------------------------------------------------------------------
def rules_of(name: str) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = yaml.safe_load(helper(name))
    return rules


def grants(rules: list[dict[str, Any]], group: str, resource: str) -> set[str]:
    """The verbs `rules` grant on resource (any name) in the API group."""
    return {
        verb
        for rule in rules
        if group in rule["apiGroups"] and resource in rule["resources"]
        if "resourceNames" not in rule
        for verb in rule["verbs"]
    }


def test_users_secrets_are_only_read_one_by_one() -> None:
    rules = rules_of("execflow.namespacedRules")

    assert grants(rules, "", "secrets") == {"get"}, "no list or watch of users' Secrets"
    assert grants(rules, "", "configmaps") == {"list", "create", "patch", "delete"}
    assert grants(rules, "", "pods") == {"list", "watch"}
    assert grants(rules, "", "events") == {"list", "watch", "create"}
    assert all("pods/log" not in rule["resources"] for rule in rules)
    assert all(
        "update" not in rule["verbs"] or rule["resources"][0].endswith("/finalizers")
        for rule in rules
    ), "the operator patches; it never updates whole objects"


def test_leases_are_granted_only_by_a_role_in_the_release_namespace() -> None:
    rbac = (CHART / "templates" / "rbac.yaml").read_text(encoding="utf-8")
    namespaced = helper("execflow.namespacedRules") + helper("execflow.clusterRules")

    assert "leases" not in namespaced
    assert rbac.count('include "execflow.leaseRules"') == 1
    lease_role = rbac.split("{{- if .Values.leaderElection.enabled }}\n---")[1].split("---")[0]
    assert "kind: Role\n" in lease_role
    assert "namespace: {{ .Release.Namespace }}" in lease_role


# ----- the chart's documentation --------------------------------------------------------------
WHOLE = {"resources", "mcp.resources", "podSecurityContext", "securityContext", "settings"}
"""Values the README documents as a whole, not key by key."""


def value_keys(values: dict[str, Any], prefix: str = "") -> set[str]:
    """The dotted keys of values.yaml, down to the level the README documents."""
    keys = set()
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and path not in WHOLE:
            keys |= value_keys(value, f"{path}.")
        else:
            keys.add(path)
    return keys


def test_the_readme_documents_every_value_and_only_those() -> None:
    readme = (CHART / "README.md").read_text(encoding="utf-8")
    table = readme.split("\n## Values\n")[1].split("\n## ")[0]
    documented = {
        key.strip().strip("`")
        for line in table.splitlines()
        if line.startswith("| `")
        for key in line.split("|")[1].split(" / ")
    }

    assert documented == value_keys(chart_values())


def test_every_value_a_template_reads_is_declared_in_the_schema() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    read = {
        match
        for template in (CHART / "templates").iterdir()
        for match in re.findall(r"\.Values\.([A-Za-z.]+)", template.read_text(encoding="utf-8"))
    }

    undeclared = []
    for path in sorted(read):
        node = schema
        for part in path.rstrip(".").split("."):
            properties = node.get("properties", {})
            if part not in properties:
                undeclared.append(path)
                break
            node = properties[part]
    assert undeclared == [], "values.schema.json refuses what these templates read"
