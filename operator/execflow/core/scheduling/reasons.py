"""Waiting reasons as news: the caller hears of a waiting task's reason only when it changes.

The caller writes a Task's status when told, so a reason that changes and changes back within one
call is no news, and a new version of a task starts from what the caller heard of the old one.
`NoSchedulableNodes` speaks of the cluster, not of the task: the tasks that carry it are remembered,
so that the reason can be lifted from all of them as soon as nodes are back, whether or not each
task is looked at again in that call.
"""

from execflow.core.scheduling.index import WaitingEntry
from execflow.core.scheduling.model import BlockReason, WaitingStatus

Reported = tuple[BlockReason | None, str]
"""A reason with its message, as the caller hears it; (None, "") when a task just waits its turn."""


class ReasonReports:
    """The reason changes of waiting tasks not yet handed to the caller."""

    def __init__(self) -> None:
        self._updates: dict[str, tuple[Reported, WaitingStatus]] = {}
        """Reason changes since the last plan, with what the caller heard before them."""
        self._waiting_for_nodes: dict[str, WaitingEntry] = {}
        """Tasks reported `NoSchedulableNodes` since nodes were last seen, while they wait."""

    def heard(self, entry: WaitingEntry) -> Reported:
        """What the caller last heard of the task; changes not yet handed over do not count."""
        pending = self._updates.get(entry.task.key)
        return entry.reported if pending is None else pending[0]

    def report(self, entry: WaitingEntry, reason: BlockReason | None, message: str) -> None:
        """`entry` waits for `reason` now; the caller hears of it if that is news."""
        current = (reason, message)
        if entry.reported == current:
            return
        key = entry.task.key
        pending = self._updates.get(key)
        # The caller heard of the state before any update still pending; a change back to that
        # state within one call is no news.
        heard = entry.reported if pending is None else pending[0]
        entry.reported = current
        if heard == current:
            del self._updates[key]
        else:
            self._updates[key] = (heard, WaitingStatus(key, reason, message))
        if reason is BlockReason.NO_SCHEDULABLE_NODES:
            self._waiting_for_nodes[key] = entry

    def forget(self, key: str) -> None:
        """The task stopped waiting: nothing more is reported of it."""
        self._updates.pop(key, None)
        if self._waiting_for_nodes:
            self._waiting_for_nodes.pop(key, None)

    def lift_no_nodes(self) -> None:
        """Nodes are back: tasks still reported `NoSchedulableNodes` simply wait their turn."""
        if not self._waiting_for_nodes:
            return
        entries = self._waiting_for_nodes.values()
        self._waiting_for_nodes = {}
        for entry in entries:
            if entry.reported[0] is BlockReason.NO_SCHEDULABLE_NODES:
                self.report(entry, None, "")

    def drain(self) -> tuple[WaitingStatus, ...]:
        """Hand over the changes since the last call."""
        updates = tuple(status for _, status in self._updates.values())
        self._updates.clear()
        return updates
