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
