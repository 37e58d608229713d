"""Retry decisions: whether a failed attempt is retried, and when.

The delay before retry n (n = 1 for the first retry) is retryDelay x backoffMultiplier^(n-1),
capped by maxRetryDelay. `retryOn` narrows which failures are retried: an empty rule retries any
failure; otherwise a failure is retried when its exit code or its reason is listed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RetryRule:
    max_retries: int
    retry_delay: float
    backoff_multiplier: float
    max_retry_delay: float
    exit_codes: frozenset[int] = frozenset()
    reasons: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Failure:
    """How one attempt ended: the container's exit code (if it ran) and a one-word reason."""

    exit_code: int | None
    reason: str


def backoff_delay(rule: RetryRule, retry_number: int) -> float:
    """Seconds to wait before retry `retry_number` (1-based)."""
    if retry_number < 1:
        raise ValueError("retry numbers start at 1")
    # Multiply step by step: the cap is reached long before the float could overflow.
    delay = rule.retry_delay
    for _ in range(retry_number - 1):
        delay *= rule.backoff_multiplier
        if delay >= rule.max_retry_delay:
            return rule.max_retry_delay
    return min(delay, rule.max_retry_delay)


def is_retryable(rule: RetryRule, failure: Failure) -> bool:
    if not rule.exit_codes and not rule.reasons:
        return True
    if failure.exit_code is not None and failure.exit_code in rule.exit_codes:
        return True
    return failure.reason in rule.reasons


def next_retry_at(
    rule: RetryRule, failure: Failure, failed_attempts: int, failed_at: float
) -> float | None:
    """When to start the next attempt after `failed_attempts` failures, or None to give up."""
    if failed_attempts > rule.max_retries or not is_retryable(rule, failure):
        return None
    return failed_at + backoff_delay(rule, failed_attempts)
