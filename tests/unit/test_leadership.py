"""Who may act, by execflow.core.leadership (pure core, no cluster).

A free or expired Lease is taken, one's own is renewed, a live one held by another replica is
waited for; taking it counts a transition, renewing it does not.
"""

import datetime

import pytest

from execflow.core.leadership import Lease, Move, lease_of, lease_spec, next_move, released_spec

NOW = datetime.datetime(2026, 3, 1, 12, 0, 0, tzinfo=datetime.UTC)
DURATION = datetime.timedelta(seconds=15)


def held_by(holder: str, seconds_ago: float) -> Lease:
    return Lease(holder, NOW - datetime.timedelta(seconds=seconds_ago), DURATION, transitions=3)


@pytest.mark.parametrize(
    ("lease", "move"),
    [
        (None, Move.TAKE),
        (Lease("", None, DURATION), Move.TAKE),
        (held_by("me", 5), Move.RENEW),
        (held_by("me", 60), Move.RENEW),
        (held_by("other", 5), Move.WAIT),
        (held_by("other", 14.9), Move.WAIT),
        (held_by("other", 15.1), Move.TAKE),
        (Lease("other", None, DURATION), Move.TAKE),
    ],
)
def test_the_next_move(lease: Lease | None, move: Move) -> None:
    assert next_move(lease, "me", NOW) is move


def test_taking_counts_a_transition_and_renewing_keeps_the_acquire_time() -> None:
    taken = lease_spec(held_by("other", 30), "me", NOW, DURATION)
    renewed = lease_spec(held_by("me", 5), "me", NOW, DURATION)

    assert (taken["holderIdentity"], taken["leaseTransitions"]) == ("me", 4)
    assert taken["acquireTime"] == taken["renewTime"] == "2026-03-01T12:00:00Z"
    assert "acquireTime" not in renewed and "leaseTransitions" not in renewed
    assert renewed["leaseDurationSeconds"] == 15


def test_a_released_lease_is_free_for_the_next_replica() -> None:
    body = {"spec": {**lease_spec(None, "me", NOW, DURATION), **released_spec()}}
    lease = lease_of(body)

    assert next_move(lease, "other", NOW) is Move.TAKE
