"""The chart's MCP endpoint (mcp.enabled), rendered by the project's helm: off by default; when on,
a Deployment running `execflow mcp --transport http` for the chosen namespace with probes on
/healthz and the operator's restricted security context, a Service, a ServiceAccount, and RBAC
with exactly the verbs the endpoint's code uses. Installing it and running the endpoint with
those permissions is tests/integration/test_helm_mcp.py's job.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_chart import schema_errors, with_value
from tests.unit.test_dashboard import helm_template

RELEASE, NAMESPACE = "release", "observed"
"""What test_dashboard.helm_template renders for."""
FULLNAME = "release-execflow"
MCP = f"{FULLNAME}-mcp"
ENABLED = ("--set", "mcp.enabled=true")
MCP_SERVER = Path(__file__).resolve().parents[2] / "operator" / "execflow" / "mcp_server"

CLUSTER_RULES = [
    {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
    {
        "apiGroups": ["authorization.k8s.io"],
        "resources": ["subjectaccessreviews"],
        "verbs": ["create"],
    },
]
NAMESPACED_GRANTS = {
    "tools": {"list", "watch"},
    "tasks": {"get", "list", "watch", "create", "patch"},
    "workflows": {"get", "list"},
    "resultsets": {"get", "list"},
}
"""What the endpoint does in the namespace it serves, resource by resource."""


def one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [found] = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    [only] = deployment["spec"]["template"]["spec"]["containers"]
    return dict(only)


def grants(rules: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Verbs by resource (every rule of the MCP Role is in the execflow.dev group, unnamed)."""
    found: dict[str, set[str]] = {}
    for rule in rules:
        assert rule["apiGroups"] == ["execflow.dev"] and "resourceNames" not in rule, rule
        for resource in rule["resources"]:
            found.setdefault(resource, set()).update(rule["verbs"])
    return found


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def test_the_default_render_has_no_mcp_object() -> None:
    objects = helm_template()

    assert objects, "the chart rendered nothing"
    assert [o["metadata"]["name"] for o in objects if "mcp" in o["metadata"]["name"]] == []
    assert all("tokenreviews" not in str(o) and "--transport" not in str(o) for o in objects)
    assert {o["kind"] for o in objects} >= {"Deployment", "ClusterRole", "ServiceAccount"}


def test_the_deployment_runs_the_http_endpoint_for_the_release_namespace() -> None:
    objects = helm_template(*ENABLED)
    operator = one(objects, "Deployment", FULLNAME)
    deployment = one(objects, "Deployment", MCP)
    pod = deployment["spec"]["template"]["spec"]
    mcp = container(deployment)

    assert deployment["metadata"]["namespace"] == NAMESPACE
    assert deployment["spec"]["replicas"] == 1
    assert mcp["image"] == container(operator)["image"] == "execflow:0.1.0"
    # The image's entrypoint is `execflow run`: the endpoint names its own command.
    assert mcp["command"] == ["execflow"]
    assert mcp["args"] == [
        "mcp",
        "--transport",
        "http",
        "--host",
        "0.0.0.0",
        "--port",
        "8090",
        "-n",
        NAMESPACE,
    ]
    assert mcp["ports"] == [{"name": "mcp", "containerPort": 8090, "protocol": "TCP"}]
    for probe in ("livenessProbe", "readinessProbe"):
        assert mcp[probe]["httpGet"] == {"path": "/healthz", "port": "mcp"}, probe
    assert pod["serviceAccountName"] == MCP
    # The operator's restricted security context, pod and container.
    assert pod["securityContext"] == operator["spec"]["template"]["spec"]["securityContext"]
    assert mcp["securityContext"] == container(operator)["securityContext"]
    assert mcp["securityContext"]["readOnlyRootFilesystem"] is True
    assert mcp["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert mcp["resources"] == {
        "requests": {"cpu": "50m", "memory": "192Mi"},
        "limits": {"memory": "384Mi"},
    }
    account = one(objects, "ServiceAccount", MCP)
    assert account["metadata"]["namespace"] == NAMESPACE


def test_the_namespace_port_replicas_and_service_are_configurable() -> None:
    objects = helm_template(
        *ENABLED,
        *("--set", "mcp.namespace=team-a", "--set", "mcp.port=9000"),
        *("--set", "mcp.replicas=2", "--set", "mcp.service.type=NodePort"),
        *("--set", "mcp.service.port=8090"),
    )
    deployment = one(objects, "Deployment", MCP)
    args = container(deployment)["args"]

    assert args[args.index("--port") + 1] == "9000"
    assert args[args.index("-n") + 1] == "team-a"
    assert container(deployment)["ports"][0]["containerPort"] == 9000
    assert deployment["spec"]["replicas"] == 2
    service = one(objects, "Service", MCP)["spec"]
    assert service["type"] == "NodePort"
    assert service["ports"] == [
        {"name": "mcp", "port": 8090, "targetPort": "mcp", "protocol": "TCP"}
    ]
    # Rights where the Tools are; the endpoint itself runs in the release namespace.
    assert one(objects, "Role", MCP)["metadata"]["namespace"] == "team-a"
    assert one(objects, "RoleBinding", MCP)["metadata"]["namespace"] == "team-a"
    assert deployment["metadata"]["namespace"] == NAMESPACE


def test_the_service_selects_the_endpoint_pods_and_the_operators_do_not() -> None:
    objects = helm_template(*ENABLED)
    operator = one(objects, "Deployment", FULLNAME)
    deployment = one(objects, "Deployment", MCP)
    mcp_pods = deployment["spec"]["template"]["metadata"]["labels"]
    operator_pods = operator["spec"]["template"]["metadata"]["labels"]
    service = one(objects, "Service", MCP)["spec"]

    assert service["type"] == "ClusterIP"
    assert service["ports"] == [{"name": "mcp", "port": 80, "targetPort": "mcp", "protocol": "TCP"}]
    # A session lives in one pod: each client stays on it.
    assert service["sessionAffinity"] == "ClientIP"
    assert selects(service["selector"], mcp_pods)
    assert selects(deployment["spec"]["selector"]["matchLabels"], mcp_pods)
    assert not selects(service["selector"], operator_pods)
    assert not selects(operator["spec"]["selector"]["matchLabels"], mcp_pods)
    for other in (f"{FULLNAME}-metrics", f"{FULLNAME}-webhook"):
        assert not selects(one(objects, "Service", other)["spec"]["selector"], mcp_pods), other


def test_the_rbac_grants_the_reviews_cluster_wide_and_the_rest_in_the_namespace_only() -> None:
    objects = helm_template(*ENABLED, "--set", "mcp.namespace=team-a")
    subject = [{"kind": "ServiceAccount", "name": MCP, "namespace": NAMESPACE}]

    assert one(objects, "ClusterRole", MCP)["rules"] == CLUSTER_RULES
    cluster_binding = one(objects, "ClusterRoleBinding", MCP)
    assert cluster_binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": MCP,
    }
    assert cluster_binding["subjects"] == subject
    assert grants(one(objects, "Role", MCP)["rules"]) == NAMESPACED_GRANTS
    binding = one(objects, "RoleBinding", MCP)
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": MCP,
    }
    assert binding["subjects"] == subject
    # Nothing else is bound to the endpoint's ServiceAccount, and it gets nothing of the operator's.
    bound = [
        o["metadata"]["name"]
        for o in objects
        if o["kind"] in {"RoleBinding", "ClusterRoleBinding"}
        and any(s["name"] == MCP for s in o["subjects"])
    ]
    assert sorted(bound) == [MCP, MCP]


def test_the_role_has_exactly_the_verbs_the_endpoint_code_calls() -> None:
    source = "\n".join(path.read_text(encoding="utf-8") for path in MCP_SERVER.glob("*.py"))
    calls = set(re.findall(r"\bkube\.(\w+)\(", source))
    watched = set(re.findall(r"\bWatch\((\w+)", source))

    # create: Tasks and the two reviews; get, list: resources; patch: a cancelled call's Task.
    assert calls == {"create", "get", "list", "patch"}, "a new call needs its RBAC rule"
    assert watched == {"TOOLS", "TASKS"}, "a new watch needs list and watch in the Role"
    verbs = set().union(*NAMESPACED_GRANTS.values()) | {"create"}
    assert verbs == calls | {"watch"}
    assert {r for r, v in NAMESPACED_GRANTS.items() if {"list", "watch"} <= v} == {"tools", "tasks"}


def test_an_existing_service_account_can_be_named_instead() -> None:
    objects = helm_template(
        *ENABLED, "--set", "mcp.serviceAccount.create=false", "--set", "mcp.serviceAccount.name=ai"
    )

    assert [o for o in objects if o["kind"] == "ServiceAccount" and "mcp" in str(o)] == []
    pod = one(objects, "Deployment", MCP)["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "ai"
    assert one(objects, "RoleBinding", MCP)["subjects"][0]["name"] == "ai"
    assert one(objects, "ClusterRoleBinding", MCP)["subjects"][0]["name"] == "ai"


def test_long_names_stay_within_63_characters() -> None:
    objects = helm_template(*ENABLED, "--set", f"fullnameOverride={'x' * 63}")

    names = {o["metadata"]["name"] for o in objects if o["metadata"]["name"].endswith("-mcp")}
    assert names == {"x" * 59 + "-mcp"}


# ----- values.schema.json -----------------------------------------------------------------------
def test_the_defaults_keep_the_endpoint_off() -> None:
    values = with_value("mcp.namespace", "team-a")

    assert values["mcp"]["enabled"] is False
    assert schema_errors(values) == []
    assert schema_errors(with_value("mcp.namespace", "")) == []


@pytest.mark.parametrize(
    ("path", "value", "complaint"),
    [
        ("mcp.port", "x", "/mcp/port: 'x' is not of type 'integer'"),
        ("mcp.port", 80, "/mcp/port: 80 is less than the minimum of 1024"),
        ("mcp.port", 70000, "/mcp/port: 70000 is greater than the maximum of 65535"),
        ("mcp.service.port", 0, "/mcp/service/port: 0 is less than the minimum of 1"),
        ("mcp.service.type", "ExternalName", "/mcp/service/type: 'ExternalName' is not one of"),
        ("mcp.namespace", "Team_A", "/mcp/namespace: 'Team_A' is not valid"),
        ("mcp.replicas", -1, "/mcp/replicas: -1 is less than the minimum of 0"),
        ("mcp.transport", "stdio", "'transport' was unexpected"),
    ],
)
def test_the_schema_refuses_a_bad_mcp_value(path: str, value: Any, complaint: str) -> None:
    errors = schema_errors(with_value(path, value))

    assert len(errors) == 1, errors
    assert complaint in errors[0]


def test_helm_refuses_a_port_below_1024_saying_where() -> None:
    with pytest.raises(AssertionError) as refused:
        helm_template(*ENABLED, "--set", "mcp.port=80")

    assert "at '/mcp/port'" in str(refused.value)
    assert "minimum: got 80, want 1,024" in str(refused.value)
