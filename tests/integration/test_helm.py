"""The Helm chart for real: rendered and linted by the project's helm, installed into the local
control plane, and the operator run with exactly the permissions the chart gives it.

The installed chart's ServiceAccount gets a token (TokenRequest API); the operator runs out of
cluster with it, as the same `execflow run` process the Deployment starts (leader election and
the admission webhook included), through every feature (see `helm_scenario`): Tools and Tasks,
retries and Events, a pod that cannot be created, Workflows resumed, cancelled and expired, and
ResultSets in ConfigMaps, encrypted with a key from a Secret and in the local S3 server with
credentials from a Secret. Every object must end as its feature promises, nothing may be refused,
and the API server's audit log must show every verb the chart grants in use. Two more runs share
the webhook's certificate through its Secret as replicas in a cluster do; an upgrade to
`watchNamespaces` moves the rules into a Role and the operator still works; a bad value is
refused without a new revision; `helm uninstall` keeps the CRDs and the users' objects.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from execflow.devcluster import harness
from execflow.devcluster.build import ensure_binaries
from execflow.devcluster.cluster import LocalCluster
from execflow.devcluster.components import KUBERNETES_VERSION
from execflow.devcluster.configuration import audit_log
from execflow.kube.webhook import CONFIGURATION_NAME
from tests.integration import chart_rbac, helm_scenario
from tests.integration.objects import TERMINAL, create_task
from tests.integration.operator_process import OperatorProcess, wait_phase
from tests.integration.resultsets import Bucket

CHART = Path(__file__).resolve().parents[2] / "charts" / "execflow"
RELEASE = "flow"
FULLNAME = "flow-execflow"
"""The chart's full name for the release (`<release>-execflow`)."""


def run_helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(helm), *args], capture_output=True, text=True, check=False, timeout=120
    )


@pytest.fixture(scope="module")
def helm() -> Path:
    """The project's helm (built from its Go module once, then cached)."""
    return ensure_binaries()["helm"]


def rendered(helm: Path, *options: str) -> list[dict[str, Any]]:
    """The chart's objects as `helm template` renders them for this Kubernetes version."""
    done = run_helm(
        helm,
        "template",
        RELEASE,
        str(CHART),
        "-n",
        "ops",
        "--kube-version",
        KUBERNETES_VERSION,
        *options,
    )
    assert done.returncode == 0, done.stderr
    return [document for document in yaml.safe_load_all(done.stdout) if document]


def one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [found] = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


# ----- rendering and linting ---------------------------------------------------------------------
def test_helm_template_renders_the_chart_without_any_flag(helm: Path) -> None:
    done = run_helm(helm, "template", str(CHART))

    assert done.returncode == 0, (
        f"{done.stderr}\n(an 'incompatible with Kubernetes v1.20.0' here means the helm binary "
        "was built without its Kubernetes version: released helm builds stamp it)"
    )
    kinds = {document["kind"] for document in yaml.safe_load_all(done.stdout) if document}
    assert {"Deployment", "ServiceAccount", "ClusterRole", "Role", "ConfigMap"} <= kinds


def test_lint_refuses_replicas_that_are_not_a_number_saying_where(helm: Path) -> None:
    assert run_helm(helm, "lint", str(CHART)).returncode == 0

    done = run_helm(helm, "lint", str(CHART), "--set", "replicas=x")

    assert done.returncode != 0
    assert "at '/replicas': got string, want integer" in done.stdout + done.stderr


def test_watching_some_namespaces_grants_the_namespaced_rules_only_there(helm: Path) -> None:
    objects = rendered(helm, "--set", "watchNamespaces={team-a,team-b,team-a}")

    roles = {
        (o["metadata"]["namespace"], o["metadata"]["name"]) for o in objects if o["kind"] == "Role"
    }
    assert roles == {
        ("team-a", FULLNAME),
        ("team-b", FULLNAME),
        ("ops", f"{FULLNAME}-leader-election"),
        ("ops", f"{FULLNAME}-webhook"),
    }
    cluster_role = one(objects, "ClusterRole", FULLNAME)
    assert {r for rule in cluster_role["rules"] for r in rule["resources"]} == {
        "nodes",
        "customresourcedefinitions",
        "namespaces",
        "validatingwebhookconfigurations",
    }, "only cluster-scoped reads and the webhook's registration stay cluster-wide"
    args = one(objects, "Deployment", FULLNAME)["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--namespace") :] == ["--namespace", "team-a", "--namespace", "team-b"]


def test_without_leader_election_there_is_no_lease_role_and_pods_are_recreated(
    helm: Path,
) -> None:
    objects = rendered(helm, "--set", "leaderElection.enabled=false")

    deployment = one(objects, "Deployment", FULLNAME)
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert (
        "--leader-election-namespace"
        not in (deployment["spec"]["template"]["spec"]["containers"][0]["args"])
    )
    assert all("leases" not in json.dumps(o) for o in objects)
    cluster_role = one(rendered(helm), "ClusterRole", FULLNAME)
    assert "namespaces" not in json.dumps(cluster_role), "all namespaces: kopf lists none"


# ----- installed ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Installed:
    """The chart installed for one test, and what the test acts through."""

    api: client.ApiClient
    admin: Path
    """The cluster admin's kubeconfig (the test's own credentials, and helm's)."""
    as_chart: Path
    """A kubeconfig with a token of the chart's ServiceAccount: the operator's credentials."""
    helm: Path
    release: str
    """The namespace the chart is installed in."""
    namespace: str
    """The users' namespace the operator works in."""
    runs: Path
    """Where each operator run keeps its settings and log."""

    @property
    def user(self) -> str:
        return chart_rbac.service_account_user(self.release, FULLNAME)

    def helm_run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """helm against the cluster, in the release's namespace."""
        return run_helm(self.helm, *args, "-n", self.release, "--kubeconfig", str(self.admin))

    def upgrade(self, value: str) -> subprocess.CompletedProcess[str]:
        return self.helm_run("upgrade", RELEASE, str(CHART), "--reuse-values", "--set", value)

    def operator(self, run: str, *options: str, watch: tuple[str, ...] = ()) -> OperatorProcess:
        """`execflow run` with the chart's ServiceAccount token and the given options."""
        return OperatorProcess(
            self.as_chart, self.runs / run, helm_scenario.SETTINGS, watch, options=options
        )

    def stop(self, process: OperatorProcess) -> None:
        """Stop an operator and check it was refused nothing. The harness then tidies its webhook
        registration up, with the admin's credentials (the chart does not let it delete that)."""
        process.kubeconfig = self.admin
        process.stop()
        assert chart_rbac.refusals_in_log(process.log_text(), self.user) == []


@pytest.fixture
def release(api: client.ApiClient, kubeconfig: Path, helm: Path) -> Iterator[str]:
    """A namespace to install the chart into; whatever the test left installed is removed."""
    namespace = harness.create_namespace(api, "execflow-system")
    yield namespace
    run_helm(helm, "uninstall", RELEASE, "-n", namespace, "--kubeconfig", str(kubeconfig))
    harness.delete_namespace(api, namespace)


def check_installed(api: client.ApiClient, release: str) -> None:
    """The Deployment runs as the chart's ServiceAccount, which the chart's roles are bound to."""
    deployment = client.AppsV1Api(api).read_namespaced_deployment(FULLNAME, release)
    pod = deployment.spec.template.spec
    assert pod.service_account_name == FULLNAME
    args = pod.containers[0].args
    assert args[args.index("--leader-election-namespace") + 1] == release
    assert args[args.index("--webhook-service") + 1] == f"{release}/{FULLNAME}-webhook"
    client.CoreV1Api(api).read_namespaced_service_account(FULLNAME, release)
    rules = chart_rbac.granted_rules(api, release, FULLNAME)
    assert {(rule.namespace, rule.role) for rule in rules} == {
        (None, FULLNAME),
        (release, f"{FULLNAME}-leader-election"),
        (release, f"{FULLNAME}-webhook"),
    }
    secrets = [rule for rule in rules if "secrets" in rule.resources]
    assert {(rule.namespace, rule.verbs, rule.names) for rule in secrets} == {
        (None, ("get",), ()),
        (release, ("create",), ()),
        (release, ("get", "patch"), (f"{FULLNAME}-webhook-tls",)),
    }, "users' Secrets are only read, one by one; only the webhook's own is written"


def test_the_chart_installs_and_its_service_account_runs_every_feature(
    *,
    api: client.ApiClient,
    kubeconfig: Path,
    namespace: str,
    release: str,
    bucket: Bucket,
    helm: Path,
    operator: OperatorProcess,
    local_cluster: LocalCluster | None,
    tmp_path: Path,
) -> None:
    if local_cluster is None:
        pytest.skip("reading what the operator did needs the local control plane's audit log")
    log = audit_log(local_cluster.dir)
    assert log.exists(), f"no {log}: the local cluster predates its audit log; restart it"
    done = run_helm(
        helm, "install", RELEASE, str(CHART), "-n", release, "--kubeconfig", str(kubeconfig)
    )
    assert done.returncode == 0, done.stderr
    check_installed(api, release)
    token = chart_rbac.service_account_token(api, release, FULLNAME)
    as_chart = chart_rbac.token_kubeconfig(kubeconfig, token, tmp_path / "chart.kubeconfig")
    chart = Installed(api, kubeconfig, as_chart, helm, release, namespace, tmp_path)

    # Only the operators under test act: the session's one waits, and so does its webhook.
    operator.pause()
    try:
        delete_webhook_configuration(api)
        every_feature(chart, bucket)
        share_webhook_certificate(chart)
        granted = chart_rbac.granted_rules(api, release, FULLNAME)
        watch_only(chart)
    finally:
        operator.resume()

    requests = chart_rbac.audited_requests(log, chart.user)
    refused = [str(r) for r in requests if r.decision != "allow"]
    assert refused == [], "the chart's ServiceAccount was refused"
    owner = helm_scenario.task(api, namespace, "tooled")
    refusal = chart_rbac.blocking_owner_refusal(api, namespace, owner)
    assert "blockOwnerDeletion" in refusal, "this cluster checks finalizers on owner references"
    implied = helm_scenario.blocking_owner_references(api, namespace)
    unused = chart_rbac.unused(granted, [*requests, *implied])
    assert [str(grant) for grant in unused] == [], "the chart grants what nothing used"
    # Watching some namespaces, kopf lists and watches namespaces: only that mode grants it.
    now = chart_rbac.granted_rules(api, release, FULLNAME)
    namespaces = [rule for rule in now if "namespaces" in rule.resources]
    assert [rule.verbs for rule in namespaces] == [("list", "watch")]
    assert chart_rbac.unused(namespaces, requests) == []

    refuse_bad_values_then_uninstall(chart)


def every_feature(chart: Installed, bucket: Bucket) -> None:
    """The operator with the chart's permissions (and leader election) through every feature."""
    process = chart.operator("operator", "--leader-election-namespace", chart.release)
    process.start()
    try:
        helm_scenario.start(chart.api, chart.namespace, bucket)
        try:
            helm_scenario.check(chart.api, chart.admin, chart.namespace, bucket)
        except AssertionError as error:
            refused = chart_rbac.refusals_in_log(process.log_text(), chart.user)
            raise AssertionError(f"{error}\nrefused to the operator: {refused}") from None
    finally:
        chart.stop(process)


def delete_webhook_configuration(api: client.ApiClient) -> None:
    try:
        client.AdmissionregistrationV1Api(api).delete_validating_webhook_configuration(
            CONFIGURATION_NAME
        )
    except ApiException as error:
        if error.status != 404:
            raise


def share_webhook_certificate(chart: Installed) -> None:
    """As in a cluster (`--webhook-service`): the first replica creates the certificate Secret,
    a later one replaces a certificate that no longer fits."""
    core = client.CoreV1Api(chart.api)
    name = f"{FULLNAME}-webhook-tls"
    service = f"{chart.release}/{FULLNAME}-webhook"
    try:
        first = chart.operator("first-replica", "--webhook-service", service)
        first.start()
        chart.stop(first)
        created = core.read_namespaced_secret(name, chart.release).data
        broken = base64.b64encode(b"not a certificate").decode()
        core.patch_namespaced_secret(name, chart.release, {"data": {"tls.crt": broken}})
        later = chart.operator("later-replica", "--webhook-service", service)
        later.start()
        chart.stop(later)
        replaced = core.read_namespaced_secret(name, chart.release).data
        assert replaced["tls.crt"] not in (broken, created["tls.crt"])
        assert replaced["tls.key"] != created["tls.key"], "a new key pair, not the old one back"
        assert f"Service {service}" in later.log_text()
    finally:
        # It names a Service no pod serves here: leave the registration to live operators.
        delete_webhook_configuration(chart.api)


def watch_only(chart: Installed) -> None:
    """Upgrade the release to watch only the users' namespace (its rules move into a Role
    there), and run the operator as the Deployment now would, through a new Task."""
    tasks = helm_scenario.task_names(chart.api, chart.namespace)
    upgraded = chart.upgrade(f"watchNamespaces={{{chart.namespace}}}")
    assert upgraded.returncode == 0, upgraded.stderr
    deployment = client.AppsV1Api(chart.api).read_namespaced_deployment(FULLNAME, chart.release)
    assert deployment.spec.template.spec.containers[0].args[-2:] == ["--namespace", chart.namespace]
    client.RbacAuthorizationV1Api(chart.api).read_namespaced_role(FULLNAME, chart.namespace)
    assert helm_scenario.task_names(chart.api, chart.namespace) == tasks, "the Tasks stay"

    election = ("--leader-election-namespace", chart.release)
    process = chart.operator("namespaced", *election, watch=(chart.namespace,))
    process.start()
    try:
        create_task(chart.api, chart.namespace, "after-upgrade", sim={"message": '{"v": 4}'})
        status = wait_phase(chart.api, chart.namespace, "after-upgrade", TERMINAL)["status"]
        assert (status["phase"], status["result"]) == ("Completed", {"v": 4})
    finally:
        chart.stop(process)


def refuse_bad_values_then_uninstall(chart: Installed) -> None:
    """A bad value makes no revision; uninstalling keeps the CRDs and the users' objects."""
    extensions = client.ApiextensionsV1Api(chart.api)
    crds = {c.metadata.name for c in extensions.list_custom_resource_definition().items}
    tasks = helm_scenario.task_names(chart.api, chart.namespace)

    bad = chart.upgrade("settings.queues.default.strategy=Bogus")
    assert bad.returncode != 0
    assert "at '/settings/queues/default/strategy': value must be one of" in bad.stderr
    status = json.loads(chart.helm_run("status", RELEASE, "-o", "json").stdout)
    assert (status["version"], status["info"]["status"]) == (2, "deployed")

    uninstalled = chart.helm_run("uninstall", RELEASE)
    assert uninstalled.returncode == 0, uninstalled.stderr
    with pytest.raises(ApiException) as gone:
        client.RbacAuthorizationV1Api(chart.api).read_cluster_role(FULLNAME)
    assert gone.value.status == 404
    assert client.AppsV1Api(chart.api).list_namespaced_deployment(chart.release).items == []
    left = {c.metadata.name for c in extensions.list_custom_resource_definition().items}
    assert crds <= left, "helm never deletes the CRDs of crds/"
    assert helm_scenario.task_names(chart.api, chart.namespace) == tasks, "the users' objects stay"
