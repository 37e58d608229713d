"""Retry decisions of execflow.core.retries: backoff, retryOn matching, giving up (pure core).

No cluster and no clock: times are plain floats passed in.
"""

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from execflow.core.retries import Failure, RetryRule, backoff_delay, is_retryable, next_retry_at


def rule(
    *,
    max_retries: int = 3,
    retry_delay: float = 1.0,
    backoff_multiplier: float = 2.0,
    max_retry_delay: float = 300.0,
    exit_codes: frozenset[int] = frozenset(),
    reasons: frozenset[str] = frozenset(),
) -> RetryRule:
    return RetryRule(
        max_retries=max_retries,
        retry_delay=retry_delay,
        backoff_multiplier=backoff_multiplier,
        max_retry_delay=max_retry_delay,
        exit_codes=exit_codes,
        reasons=reasons,
    )


def test_retry_delay_doubles_until_max() -> None:
    doubling = rule(retry_delay=1.0, backoff_multiplier=2.0, max_retry_delay=10.0)

    delays = [backoff_delay(doubling, n) for n in range(1, 8)]

    assert delays == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


def test_first_retry_waits_the_plain_retry_delay() -> None:
    assert backoff_delay(rule(retry_delay=7.5, backoff_multiplier=3.0), 1) == 7.5


def test_retry_delay_above_the_cap_is_capped_from_the_first_retry() -> None:
    assert backoff_delay(rule(retry_delay=60.0, max_retry_delay=5.0), 1) == 5.0


def test_multiplier_one_keeps_the_delay_flat() -> None:
    flat = rule(retry_delay=3.0, backoff_multiplier=1.0, max_retry_delay=300.0)

    assert [backoff_delay(flat, n) for n in (1, 2, 5, 50)] == [3.0, 3.0, 3.0, 3.0]


def test_very_late_retry_stays_at_the_cap_without_overflow() -> None:
    assert backoff_delay(rule(backoff_multiplier=10.0, max_retry_delay=300.0), 10_000) == 300.0


@pytest.mark.parametrize("retry_number", [0, -1])
def test_retry_numbers_start_at_one(retry_number: int) -> None:
    with pytest.raises(ValueError, match="start at 1"):
        backoff_delay(rule(), retry_number)


@pytest.mark.parametrize(
    "failure",
    [
        Failure(exit_code=1, reason="Error"),
        Failure(exit_code=137, reason="OOMKilled"),
        Failure(exit_code=None, reason="DeadlineExceeded"),
        Failure(exit_code=None, reason="Evicted"),
    ],
)
def test_empty_retry_on_retries_any_failure(failure: Failure) -> None:
    assert is_retryable(rule(), failure)


def test_retry_on_exit_code_retries_listed_codes_only() -> None:
    by_code = rule(exit_codes=frozenset({1, 137}))

    assert is_retryable(by_code, Failure(exit_code=137, reason="OOMKilled"))
    assert is_retryable(by_code, Failure(exit_code=1, reason="Error"))
    assert not is_retryable(by_code, Failure(exit_code=2, reason="Error"))
    assert not is_retryable(by_code, Failure(exit_code=None, reason="DeadlineExceeded"))


def test_retry_on_reason_retries_listed_reasons_only() -> None:
    by_reason = rule(reasons=frozenset({"OOMKilled", "DeadlineExceeded"}))

    assert is_retryable(by_reason, Failure(exit_code=None, reason="DeadlineExceeded"))
    assert is_retryable(by_reason, Failure(exit_code=137, reason="OOMKilled"))
    assert not is_retryable(by_reason, Failure(exit_code=1, reason="Error"))


def test_retry_on_matches_either_exit_code_or_reason() -> None:
    both = rule(exit_codes=frozenset({3}), reasons=frozenset({"Evicted"}))

    assert is_retryable(both, Failure(exit_code=3, reason="Error"))
    assert is_retryable(both, Failure(exit_code=None, reason="Evicted"))
    assert not is_retryable(both, Failure(exit_code=4, reason="Error"))


def test_next_retry_is_failure_time_plus_backoff() -> None:
    doubling = rule(max_retries=5, retry_delay=2.0, backoff_multiplier=2.0)
    failure = Failure(exit_code=1, reason="Error")

    assert next_retry_at(doubling, failure, failed_attempts=1, failed_at=1000.0) == 1002.0
    assert next_retry_at(doubling, failure, failed_attempts=3, failed_at=1000.0) == 1008.0


def test_gives_up_after_max_retries_failures() -> None:
    three = rule(max_retries=3)
    failure = Failure(exit_code=1, reason="Error")

    retries = [next_retry_at(three, failure, n, 0.0) for n in (1, 2, 3)]

    assert all(moment is not None for moment in retries)
    assert next_retry_at(three, failure, 4, 0.0) is None


def test_no_retries_gives_up_after_the_first_failure() -> None:
    assert next_retry_at(rule(max_retries=0), Failure(1, "Error"), 1, 0.0) is None


def test_failure_outside_retry_on_is_not_retried_even_with_retries_left() -> None:
    by_code = rule(max_retries=10, exit_codes=frozenset({137}))

    assert next_retry_at(by_code, Failure(exit_code=1, reason="Error"), 1, 0.0) is None


@given(
    retry_delay=st.floats(min_value=0.0, max_value=3600.0),
    backoff_multiplier=st.floats(min_value=1.0, max_value=10.0),
    max_retry_delay=st.floats(min_value=0.0, max_value=86_400.0),
    retries=st.integers(min_value=1, max_value=60),
)
def test_delays_are_non_decreasing_and_never_exceed_the_cap(
    retry_delay: float, backoff_multiplier: float, max_retry_delay: float, retries: int
) -> None:
    policy = rule(
        retry_delay=retry_delay,
        backoff_multiplier=backoff_multiplier,
        max_retry_delay=max_retry_delay,
    )

    delays = [backoff_delay(policy, n) for n in range(1, retries + 1)]

    assert all(delay <= max_retry_delay for delay in delays)
    assert all(earlier <= later for earlier, later in itertools.pairwise(delays))
