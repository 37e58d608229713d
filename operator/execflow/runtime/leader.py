"""Leader election: only the replica that holds the operator's Lease watches, decides and writes.

`acquire()` returns once this replica holds the Lease (taking it when it is free or its holder
stopped renewing it); `keep()` renews it and returns when it could not renew it within the renewal
deadline, after which the replica must stop acting (the runner then stops the process, and its
restart stands by again). `release()` frees the Lease at a clean shutdown so a standby takes over
at once instead of after a whole lease duration. Every write is conditional on the version read,
so two replicas racing for a free Lease cannot both win.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Callable
from dataclasses import dataclass

from execflow.api import timestamps
from execflow.core.leadership import Move, lease_of, lease_spec, next_move, released_spec
from execflow.kube.client import LEASES, Body, Kube
from execflow.kube.errors import ApiError, ConflictError, NotFoundError

log = logging.getLogger("execflow.leader")


@dataclass(frozen=True, slots=True)
class LeaseTiming:
    duration: datetime.timedelta = datetime.timedelta(seconds=15)
    """How long a Lease holds without renewal."""
    renew_deadline: datetime.timedelta = datetime.timedelta(seconds=10)
    """The holder stops acting when it could not renew for this long (< duration)."""
    retry: datetime.timedelta = datetime.timedelta(seconds=2)
    """How often renewal and acquisition are tried."""


class LeaderElection:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str,
        identity: str,
        *,
        timing: LeaseTiming | None = None,
        clock: Callable[[], datetime.datetime] = timestamps.now,
    ) -> None:
        self._kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self._timing = timing or LeaseTiming()
        self._clock = clock
        self._renewed_at: datetime.datetime | None = None

    async def acquire(self) -> None:
        waiting_for = ""
        while True:
            holder = await self._try()
            if holder == self.identity:
                log.info("leading as %s (Lease %s/%s)", holder, self.namespace, self.name)
                return
            if holder != waiting_for:
                log.info("standing by: %s holds Lease %s/%s", holder, self.namespace, self.name)
                waiting_for = holder
            await asyncio.sleep(self._timing.retry.total_seconds())

    async def keep(self) -> None:
        """Renew until renewal fails for longer than the deadline; then return."""
        while True:
            await asyncio.sleep(self._timing.retry.total_seconds())
            holder = await self._try()
            if holder not in ("", self.identity):
                log.error("lost Lease %s/%s to %s", self.namespace, self.name, holder)
                return
            renewed = self._renewed_at
            if renewed is None or self._clock() - renewed > self._timing.renew_deadline:
                log.error("could not renew Lease %s/%s in time", self.namespace, self.name)
                return

    async def release(self) -> None:
        try:
            body = await self._kube.get(LEASES, self.namespace, self.name)
            if lease_of(body).holder == self.identity:
                await self._kube.patch(
                    LEASES, self.namespace, self.name, {"spec": released_spec()}, expect=body
                )
        except ApiError as error:  # the Lease then expires after its duration instead
            log.warning("could not release Lease %s/%s: %s", self.namespace, self.name, error)

    async def _try(self) -> str:
        """Take or renew the Lease if we may; returns who holds it afterwards (as far as known)."""
        now = self._clock()
        try:
            body: Body | None = await self._kube.get(LEASES, self.namespace, self.name)
        except NotFoundError:
            body = None
        except ApiError as error:
            log.warning("cannot read Lease %s/%s: %s", self.namespace, self.name, error)
            return ""
        lease = None if body is None else lease_of(body)
        move = next_move(lease, self.identity, now)
        if move is Move.WAIT:
            assert lease is not None
            return lease.holder
        spec = lease_spec(lease, self.identity, now, self._timing.duration)
        try:
            if body is None:
                manifest = {"metadata": {"name": self.name}, "spec": spec}
                created = await self._kube.create(LEASES, self.namespace, manifest)
                if lease_of(created).holder != self.identity:
                    return lease_of(created).holder  # another replica created it first
            else:
                await self._kube.patch(
                    LEASES, self.namespace, self.name, {"spec": spec}, expect=body
                )
        except ConflictError:
            return ""  # someone else wrote it meanwhile: read again next time
        except ApiError as error:
            log.warning("cannot write Lease %s/%s: %s", self.namespace, self.name, error)
            return ""
        self._renewed_at = now
        return self.identity
