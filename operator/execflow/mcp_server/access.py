"""Who calls over HTTP, and what they may do: Kubernetes' own answers, not ours.

A bearer token is checked with a TokenReview (the API server says whose it is, or that it is no
token at all: the transport then answers 401), and every call with a SubjectAccessReview for that
user, their groups and extras (may they create Tasks in this namespace? read Workflows?), so an
MCP client gets exactly the rights its Kubernetes identity has. Both answers are kept for a short
while (`REMEMBER` seconds) so that a busy client does not cost two reviews per request; a revoked
token or role takes at most that long to bite.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from execflow.kube.client import ACCESS_REVIEWS, TOKEN_REVIEWS, Kube

REMEMBER = 30.0
GROUP = "execflow.dev"


@dataclass(frozen=True)
class Identity:
    """A user as the API server knows them."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


class Access:
    """TokenReview and SubjectAccessReview, remembered briefly."""

    def __init__(self, kube: Kube, clock: Callable[[], float] = time.monotonic) -> None:
        self.kube = kube
        self.clock = clock
        self._tokens: dict[str, tuple[float, Identity | None]] = {}
        self._decisions: dict[tuple[Any, ...], tuple[float, bool]] = {}

    async def identify(self, token: str) -> Identity | None:
        """Whose token this is; None when the API server does not take it."""
        key = hashlib.sha256(token.encode()).hexdigest()
        known = self._tokens.get(key)
        if known is not None and known[0] > self.clock():
            return known[1]
        review = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token},
        }
        status = (await self.kube.create(TOKEN_REVIEWS, "", review)).get("status") or {}
        identity = None
        if status.get("authenticated"):
            user = status.get("user") or {}
            identity = Identity(
                username=str(user.get("username") or ""),
                uid=str(user.get("uid") or ""),
                groups=tuple(user.get("groups") or ()),
                extra={k: tuple(v) for k, v in (user.get("extra") or {}).items()},
            )
        self._tokens[key] = (self.clock() + REMEMBER, identity)
        return identity

    async def allowed(self, who: Identity, verb: str, resource: str, namespace: str) -> bool:
        """Whether `who` may `verb` execflow `resource` in `namespace`."""
        key = (who.username, who.groups, verb, resource, namespace)
        known = self._decisions.get(key)
        if known is not None and known[0] > self.clock():
            return known[1]
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": who.username,
                "uid": who.uid,
                "groups": list(who.groups),
                "extra": {k: list(v) for k, v in who.extra.items()},
                "resourceAttributes": {
                    "group": GROUP,
                    "resource": resource,
                    "verb": verb,
                    "namespace": namespace,
                },
            },
        }
        status = (await self.kube.create(ACCESS_REVIEWS, "", review)).get("status") or {}
        allowed = bool(status.get("allowed"))
        self._decisions[key] = (self.clock() + REMEMBER, allowed)
        return allowed
