"""What a ServiceAccount may do and what it did: RBAC rules read from the cluster, requests read
from the local API server's audit log, and the credentials to act as that ServiceAccount.

The chart grants its ServiceAccount rules through a ClusterRoleBinding and RoleBindings; the local
control plane's audit log (`execflow.devcluster.configuration.AUDIT_POLICY`) records every request
a service account makes, with the authorizer's verdict. A rule is used when at least one allowed
request falls under it, verb by verb: a least-privilege role grants no verb on any resource that
no request used.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client


@dataclass(frozen=True)
class Request:
    """One request as the audit log recorded it (resource requests only)."""

    verb: str
    group: str
    resource: str
    """With its subresource, as RBAC names it: `tasks` or `tasks/status`."""
    namespace: str | None
    name: str | None
    code: int
    decision: str
    """The authorizer's verdict: `allow` or `forbid`."""

    def __str__(self) -> str:
        where = f" in {self.namespace}" if self.namespace else ""
        named = f" {self.name}" if self.name else ""
        return f"{self.verb} {self.group or 'core'}/{self.resource}{named}{where} -> {self.code}"


@dataclass(frozen=True)
class Rule:
    """One rule of a role bound to the ServiceAccount, and where the binding makes it valid."""

    groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    names: tuple[str, ...]
    namespace: str | None
    """None: bound by a ClusterRoleBinding, valid in every namespace and cluster-wide."""
    role: str

    def allows(self, request: Request) -> bool:
        """Whether RBAC grants `request` through this rule."""
        if self.namespace is not None and request.namespace != self.namespace:
            return False
        return (
            request.group in self.groups
            and request.resource in self.resources
            and request.verb in self.verbs
            and (not self.names or request.name in self.names)
        )

    def grants(self) -> list[Rule]:
        """This rule as one rule per API group, resource and verb: each a grant of its own."""
        return [
            Rule((group,), (resource,), (verb,), self.names, self.namespace, self.role)
            for group in self.groups
            for resource in self.resources
            for verb in self.verbs
        ]

    def __str__(self) -> str:
        named = f" named {list(self.names)}" if self.names else ""
        scope = (
            f"Role {self.namespace}/{self.role}" if self.namespace else f"ClusterRole {self.role}"
        )
        return f"{scope}: {list(self.verbs)} on {list(self.groups)} {list(self.resources)}{named}"


def _rules(role: Any, namespace: str | None, name: str) -> list[Rule]:
    return [
        Rule(
            groups=tuple(rule.api_groups or ()),
            resources=tuple(rule.resources or ()),
            verbs=tuple(rule.verbs),
            names=tuple(rule.resource_names or ()),
            namespace=namespace,
            role=name,
        )
        for rule in role.rules or ()
    ]


def _binds(binding: Any, namespace: str, account: str) -> bool:
    return any(
        subject.kind == "ServiceAccount"
        and subject.name == account
        and subject.namespace == namespace
        for subject in binding.subjects or ()
    )


def granted_rules(api: client.ApiClient, namespace: str, account: str) -> list[Rule]:
    """Every rule bound to the ServiceAccount `namespace/account`, as the cluster holds them."""
    rbac = client.RbacAuthorizationV1Api(api)
    rules: list[Rule] = []
    for binding in rbac.list_cluster_role_binding().items:
        if _binds(binding, namespace, account):
            role = rbac.read_cluster_role(binding.role_ref.name)
            rules += _rules(role, None, binding.role_ref.name)
    for binding in rbac.list_role_binding_for_all_namespaces().items:
        if not _binds(binding, namespace, account):
            continue
        where = binding.metadata.namespace
        reference = binding.role_ref
        if reference.kind == "ClusterRole":
            role = rbac.read_cluster_role(reference.name)
        else:
            role = rbac.read_namespaced_role(reference.name, where)
        rules += _rules(role, where, reference.name)
    return rules


def service_account_user(namespace: str, account: str) -> str:
    """The user name the API server gives the ServiceAccount's tokens."""
    return f"system:serviceaccount:{namespace}:{account}"


def audited_requests(log: Path, user: str) -> list[Request]:
    """The resource requests `user` made, as the audit log recorded them (a watch twice: when it
    started and when it ended)."""
    requests = []
    with log.open(encoding="utf-8") as lines:
        for line in lines:
            event = json.loads(line)
            target = event.get("objectRef")
            if event["user"]["username"] != user or target is None:
                continue  # another user, or a discovery request (no object)
            resource = target["resource"]
            if target.get("subresource"):
                resource += "/" + target["subresource"]
            requests.append(
                Request(
                    verb=event["verb"],
                    group=target.get("apiGroup", ""),
                    resource=resource,
                    namespace=target.get("namespace"),
                    name=target.get("name"),
                    code=int((event.get("responseStatus") or {}).get("code") or 0),
                    decision=(event.get("annotations") or {}).get(
                        "authorization.k8s.io/decision", ""
                    ),
                )
            )
    return requests


def unused(rules: Iterable[Rule], requests: Sequence[Request]) -> list[Rule]:
    """The grants (one verb on one resource, see `Rule.grants`) no allowed request fell under."""
    allowed = [request for request in requests if request.decision == "allow"]
    return [
        grant
        for rule in rules
        for grant in rule.grants()
        if not any(grant.allows(request) for request in allowed)
    ]


def token_kubeconfig(admin: Path, token: str, path: Path) -> Path:
    """A kubeconfig at `path` for the cluster of `admin`'s current context, authenticating with
    `token` instead of the admin's certificate."""
    config = yaml.safe_load(admin.read_text(encoding="utf-8"))
    context = next(c for c in config["contexts"] if c["name"] == config["current-context"])
    cluster = next(c for c in config["clusters"] if c["name"] == context["context"]["cluster"])
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": "service-account", "user": {"token": token}}],
                "contexts": [
                    {
                        "name": "service-account",
                        "context": {"cluster": cluster["name"], "user": "service-account"},
                    }
                ],
                "current-context": "service-account",
            }
        ),
        encoding="utf-8",
    )
    path.chmod(0o600)
    return path


def service_account_token(api: client.ApiClient, namespace: str, account: str) -> str:
    """A token of the ServiceAccount from the TokenRequest API (valid for an hour)."""
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
    )
    issued = client.CoreV1Api(api).create_namespaced_service_account_token(
        account, namespace, request
    )
    return str(issued.status.token)


PROBE_USER = "execflow-blocking-probe"


def blocking_owner_refusal(api: client.ApiClient, namespace: str, owner: dict[str, Any]) -> str:
    """What the API server answers a user who may create Jobs in `namespace`, and nothing else,
    when it creates a Job whose owner reference blocks the deletion of `owner`, as the operator's
    Jobs do: the refusal's message, or "" when the Job was admitted (no finalizers check)."""
    rbac = client.RbacAuthorizationV1Api(api)
    meta = client.V1ObjectMeta(name=PROBE_USER)
    rbac.create_namespaced_role(
        namespace,
        client.V1Role(
            metadata=meta,
            rules=[client.V1PolicyRule(api_groups=["batch"], resources=["jobs"], verbs=["create"])],
        ),
    )
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=meta,
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name=PROBE_USER
            ),
            subjects=[
                client.RbacV1Subject(
                    kind="User", name=PROBE_USER, api_group="rbac.authorization.k8s.io"
                )
            ],
        ),
    )
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "generateName": "blocking-probe-",
            "ownerReferences": [
                {
                    "apiVersion": owner["apiVersion"],
                    "kind": owner["kind"],
                    "name": owner["metadata"]["name"],
                    "uid": owner["metadata"]["uid"],
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "suspend": True,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "example.invalid/probe:1"}],
                }
            },
        },
    }
    probe = client.ApiClient(
        api.configuration, header_name="Impersonate-User", header_value=PROBE_USER
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                client.BatchV1Api(probe).create_namespaced_job(namespace, job)
                return ""
            except client.ApiException as error:
                message = str(json.loads(error.body).get("message", "")) if error.body else ""
                # Until the new RoleBinding reaches the authorizer, the create itself is refused.
                if "cannot create resource" not in message or time.monotonic() > deadline:
                    return message
            time.sleep(0.1)
    finally:
        probe.close()


def refusals_in_log(text: str, user: str) -> list[str]:
    """The lines of an operator's log that report a refused permission: the API server's RBAC
    message about `user`, or kopf's warning that it may not list or watch something."""
    return [
        line
        for line in text.splitlines()
        if f'User "{user}" cannot' in line or "Not enough permissions" in line
    ]
