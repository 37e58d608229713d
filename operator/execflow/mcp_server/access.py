"""Who calls over HTTP, and what they may do: Kubernetes' own answers, not ours.

A bearer token is checked with a TokenReview (the API server says whose it is, or that it is no
token at all: the transport then answers 401), and every call with a SubjectAccessReview for that
user, their groups and extras (may they create Tasks in this namespace? read Workflows?), so an
MCP client gets exactly the rights its Kubernetes identity has. Both answers are kept for a short
while (`REMEMBER` seconds) so that a busy client does not cost two reviews per request, and
simultaneous questions share one review; a revoked token or role takes at most that long to bite.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from execflow.kube.client import ACCESS_REVIEWS, TOKEN_REVIEWS, Kube

REMEMBER = 30.0
GROUP = "execflow.dev"
T = TypeVar("T")


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
        self._answers: dict[Hashable, tuple[float, Any]] = {}
        self._asking: dict[Hashable, asyncio.Future[Any]] = {}

    async def _remembered(self, key: Hashable, ask: Callable[[], Awaitable[T]]) -> T:
        """The answer to `ask`: remembered, being asked already, or asked now."""
        known = self._answers.get(key)
        if known is not None and known[0] > self.clock():
            answer: T = known[1]
            return answer
        pending = self._asking.get(key)
        if pending is not None:
            shared: T = await asyncio.shield(pending)
            return shared
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._asking[key] = future
        try:
            answer = await ask()
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: a failure nobody else awaited is not reported twice
            raise
        finally:
            del self._asking[key]
        future.set_result(answer)
        self._answers[key] = (self.clock() + REMEMBER, answer)
        return answer

    async def identify(self, token: str) -> Identity | None:
        """Whose token this is; None when the API server does not take it."""
        key = ("token", hashlib.sha256(token.encode()).hexdigest())
        return await self._remembered(key, lambda: self._review_token(token))

    async def _review_token(self, token: str) -> Identity | None:
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
        return identity

    async def allowed(self, who: Identity, verb: str, resource: str, namespace: str) -> bool:
        """Whether `who` may `verb` execflow `resource` in `namespace`."""
        key = ("access", who.username, who.groups, verb, resource, namespace)
        return await self._remembered(
            key, lambda: self._review_access(who, verb, resource, namespace)
        )

    async def _review_access(self, who: Identity, verb: str, resource: str, namespace: str) -> bool:
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
        return bool(status.get("allowed"))
