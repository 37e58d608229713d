"""Parsing of the operator settings file (the `queues:` section) that configures the pure core.

Pure, no cluster: YAML text in, a validated OperatorSettings or a ValueError naming the bad key out.
"""

import pytest

from execflow.api.settings import (
    DEFAULT_QUEUE,
    OperatorSettings,
    QueueSettings,
    SchedulingStrategy,
    load_settings,
)


def test_empty_settings_give_a_default_queue_with_documented_defaults() -> None:
    settings = load_settings("")
    assert list(settings.queues) == [DEFAULT_QUEUE]
    queue = settings.queues[DEFAULT_QUEUE]
    assert queue.strategy is SchedulingStrategy.PRIORITY
    assert queue.max_concurrent_tasks == 100
    assert queue.max_queued_tasks == 10000
    assert queue.preemption is False
    assert queue.resource_aware is True
    weights = queue.adaptive_weights
    assert (weights.priority, weights.wait_time, weights.deadline, weights.shortness) == (
        1.0,
        1.0,
        1.0,
        1.0,
    )
    assert queue.aging_seconds == 600.0
    assert queue.effective_starvation_limit == queue.max_queued_tasks
    assert queue.backfill_limit == 20
    assert OperatorSettings() == settings


def test_the_api_example_parses_and_the_default_queue_is_added_beside_others() -> None:
    settings = load_settings(
        """
queues:
  default:
    strategy: Priority
    maxConcurrentTasks: 100
    maxQueuedTasks: 10000
    preemption: false
    resourceAware: true
    adaptiveWeights: {priority: 1.0, waitTime: 1.0, deadline: 1.0, shortness: 1.0}
  nightly:
    strategy: Adaptive
    adaptiveWeights: {waitTime: 2.5}
    agingSeconds: 60
    starvationLimit: 50
  quick:
"""
    )
    assert set(settings.queues) == {"default", "nightly", "quick"}
    nightly = settings.queues["nightly"]
    assert nightly.strategy is SchedulingStrategy.ADAPTIVE
    assert nightly.adaptive_weights.wait_time == 2.5
    assert nightly.adaptive_weights.shortness == 1.0
    assert nightly.effective_starvation_limit == 50
    assert settings.queues["quick"] == QueueSettings()
    assert list(load_settings("queues: {batch: {strategy: FIFO}}").queues) == ["default", "batch"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("queues: {default: {maxConcurrentTasks: 0}}", "queues.default.maxConcurrentTasks"),
        ("queues: {default: {maxQueuedTasks: -5}}", "queues.default.maxQueuedTasks"),
        ("queues: {default: {strategy: Lottery}}", "queues.default.strategy"),
        ("queues: {default: {maxConcurrentTask: 3}}", "maxConcurrentTask"),
        ("queues: {default: {adaptiveWeights: {priority: -1}}}", "adaptiveWeights.priority"),
        ("queues: {default: {agingSeconds: 0}}", "agingSeconds"),
        ("queues: {Fast_Lane: {}}", "Fast_Lane"),
        ("queue: {}", "queue"),
        ("queues: [default]", "queues"),
        ("- just a list", "mapping"),
        ("queues: {default: {strategy: [", "not valid YAML"),
    ],
)
def test_invalid_settings_raise_a_value_error_naming_the_problem(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match="operator settings") as raised:
        load_settings(text)
    assert fragment in str(raised.value)
