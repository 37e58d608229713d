"""The reconcile loop of execflow.runtime.controller with scripted reconcilers (no cluster).

What the loop does with each outcome of a reconcile: requeue when asked, back off per key on
transient API errors and on bugs, report a bug on the object once per failure streak, keep other
keys going, and never run two reconciles of one key at once (also against exclusive sections).
"""

import asyncio
from collections.abc import Awaitable, Callable

from execflow.kube.errors import UnavailableError
from execflow.runtime.controller import Controller, Result
from execflow.runtime.workqueue import WorkQueue


class Script:
    """A reconciler whose outcomes per key are scripted; it records calls and reports."""

    def __init__(self, outcomes: dict[str, list[BaseException | Result]]) -> None:
        self.outcomes = outcomes
        self.calls: list[str] = []
        self.reports: list[tuple[str, str]] = []
        self.running: set[str] = set()
        self.overlaps = 0

    async def reconcile(self, key: str) -> Result:
        if key in self.running:
            self.overlaps += 1
        self.running.add(key)
        self.calls.append(key)
        try:
            await asyncio.sleep(0.001)
            outcome = self.outcomes[key].pop(0) if self.outcomes[key] else Result()
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome
        finally:
            self.running.discard(key)

    async def report_failure(self, key: str, error: Exception) -> None:
        self.reports.append((key, type(error).__name__))


def run(script: Script, body: Callable[[Controller[str]], Awaitable[None]]) -> None:
    async def main() -> None:
        fast: WorkQueue[str] = WorkQueue(base_delay=0.01)
        controller: Controller[str] = Controller("test", script, workers=4, queue=fast)
        controller.start()
        try:
            await asyncio.wait_for(body(controller), 10)
        finally:
            await controller.stop()

    asyncio.run(main())


async def until(check: Callable[[], bool]) -> None:
    while not check():
        await asyncio.sleep(0.005)


def test_a_bug_is_reported_once_retried_with_backoff_and_forgotten_on_success() -> None:
    script = Script({"bad": [RuntimeError("boom"), RuntimeError("boom"), Result()], "ok": []})

    async def body(controller: Controller[str]) -> None:
        controller.enqueue("bad")
        controller.enqueue("ok")
        await until(lambda: script.calls.count("bad") == 3)
        await until(lambda: controller.queue.failures("bad") == 0)

    run(script, body)
    assert script.reports == [("bad", "RuntimeError")], "reported on the first failure only"
    assert script.calls.count("ok") == 1, "the other key was not held up"


def test_transient_api_errors_are_retried_without_a_report() -> None:
    unavailable = UnavailableError(503, "ServiceUnavailable", "etcd is down")
    script = Script({"k": [unavailable, unavailable, Result()]})

    async def body(controller: Controller[str]) -> None:
        controller.enqueue("k")
        await until(lambda: script.calls.count("k") == 3)

    run(script, body)
    assert script.reports == []


def test_a_requested_requeue_happens() -> None:
    script = Script({"k": [Result(requeue_after=0.02), Result()]})

    async def body(controller: Controller[str]) -> None:
        controller.enqueue("k")
        await until(lambda: script.calls.count("k") == 2)

    run(script, body)


def test_a_key_is_never_reconciled_twice_at_once_nor_during_an_exclusive_section() -> None:
    script = Script({"k": []})
    inside: list[bool] = []

    async def body(controller: Controller[str]) -> None:
        for _ in range(20):
            controller.enqueue("k")
            await asyncio.sleep(0)
        async with controller.exclusive("k"):
            controller.enqueue("k")
            inside.append("k" in script.running)
            await asyncio.sleep(0.01)
            inside.append("k" in script.running)
        await until(lambda: not script.running and len(controller.queue) == 0)

    run(script, body)
    assert script.overlaps == 0
    assert inside == [False, False]
    assert script.calls, "the key enqueued during the exclusive section ran after it"


def test_initial_keys_are_caught_up_once_each_was_reconciled() -> None:
    script = Script({"a": [RuntimeError("x")], "b": []})

    async def main() -> None:
        controller: Controller[str] = Controller("test", script, workers=2)
        controller.start(["a", "b"])
        await asyncio.wait_for(controller.caught_up.wait(), 5)
        await controller.stop()

    asyncio.run(main())
    assert sorted(script.calls[:2]) == ["a", "b"]
