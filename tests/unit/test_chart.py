"""The Helm chart's static parts: its CRDs, its default settings and its RBAC, read as files.

Pure: nothing is installed. The CRDs are compared with a fresh generation from the models, the
default `settings:` are validated by the same loader the operator uses, and the RBAC templates are
scanned for wildcards. Rendering and installing the chart is left to the integration tests.
"""

import tomllib
from pathlib import Path
from typing import Any

import yaml

from execflow.api.crdgen import check_crds, render_crds
from execflow.api.settings import DEFAULT_QUEUE, SchedulingStrategy, load_settings
from execflow.kube.webhook import CONFIGURATION_NAME, SERVICE_PORT, secret_name

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
    helpers = (CHART / "templates" / "_helpers.tpl").read_text(encoding="utf-8")

    assert "- --leader-election-namespace\n            - {{ .Release.Namespace | quote }}" in (
        deployment
    )
    assert "name: POD_NAME" in deployment, "each replica names itself in the Lease"
    lease_rules = helpers.split('define "execflow.leaseRules"')[1].split("{{- end }}")[0]
    assert '["leases"]' in lease_rules
    assert '["get", "create", "patch"]' in lease_rules


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
