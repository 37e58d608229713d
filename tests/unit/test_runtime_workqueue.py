"""De-duplication and delayed re-adds of execflow.handlers.workqueue (pure, no cluster).

Each test drives the queue inside its own event loop with asyncio.run; waits are bounded by
timeouts so a lost key fails the test instead of hanging it.
"""

import asyncio

import pytest

from execflow.runtime.workqueue import WorkQueue

SHORT = 0.05


async def next_key(queue: WorkQueue[str], timeout: float = 1.0) -> str:
    return await asyncio.wait_for(queue.get(), timeout)


async def nothing_ready(queue: WorkQueue[str], wait: float = SHORT) -> bool:
    try:
        await asyncio.wait_for(queue.get(), wait)
    except TimeoutError:
        return True
    return False


def test_added_key_is_handed_out() -> None:
    async def scenario() -> None:
        queue: WorkQueue[str] = WorkQueue()
        queue.add("ml/clean-data")

        assert len(queue) == 1
        assert await next_key(queue) == "ml/clean-data"
        assert len(queue) == 0

    asyncio.run(scenario())


def test_key_added_twice_while_waiting_is_processed_once() -> None:
    async def scenario() -> None:
        queue: WorkQueue[str] = WorkQueue()
        queue.add("a")
        queue.add("b")
        queue.add("a")

        assert len(queue) == 2
        assert [await next_key(queue), await next_key(queue)] == ["a", "b"]
        assert await nothing_ready(queue)

    asyncio.run(scenario())


def test_key_added_while_processing_is_processed_again_after_done() -> None:
    async def scenario() -> None:
        queue: WorkQueue[str] = WorkQueue()
        queue.add("a")
        key = await next_key(queue)

        queue.add("a")
        queue.add("a")
        assert await nothing_ready(queue)

        queue.done(key)
        assert await next_key(queue) == "a"
        queue.done("a")
        assert await nothing_ready(queue)

    asyncio.run(scenario())


def test_done_without_new_events_does_not_requeue() -> None:
    async def scenario() -> None:
        queue: WorkQueue[str] = WorkQueue()
        queue.add("a")
        queue.done(await next_key(queue))

        assert len(queue) == 0
        assert await nothing_ready(queue)

    asyncio.run(scenario())


def test_other_keys_are_handed_out_while_one_is_processed() -> None:
    async def scenario() -> None:
        queue: WorkQueue[str] = WorkQueue()
        queue.add("a")
        assert await next_key(queue) == "a"

        queue.add("a")
        queue.add("b")

        assert await next_key(queue) == "b"
        assert await nothing_ready(queue)

    asyncio.run(scenario())


def test_add_after_fires_later() -> None:
    async def scenario() -> None:
        queue: WorkQueue[str] = WorkQueue()
        loop = asyncio.get_running_loop()
        start = loop.time()

        queue.add_after("a", 0.2)

        assert await nothing_ready(queue, 0.1)
        assert await next_key(queue) == "a"
        assert loop.time() - start >= 0.19
        assert await nothing_ready(queue)

    asyncio.run(scenario())


@pytest.mark.parametrize("delays", [(0.1, 5.0), (5.0, 0.1)])
def test_add_after_earliest_request_wins(delays: tuple[float, float]) -> None:
    async def scenario() -> None:
        queue: WorkQueue[str] = WorkQueue()
        loop = asyncio.get_running_loop()
        start = loop.time()

        for delay in delays:
            queue.add_after("a", delay)

        assert await next_key(queue) == "a"
        assert loop.time() - start < 1.0
        assert await nothing_ready(queue, 0.2)

    asyncio.run(scenario())


def test_negative_delay_fires_right_away() -> None:
    async def scenario() -> None:
        queue: WorkQueue[str] = WorkQueue()

        queue.add_after("a", -3.0)

        assert await next_key(queue, timeout=0.5) == "a"

    asyncio.run(scenario())


def test_add_after_for_a_waiting_key_does_not_duplicate_it() -> None:
    async def scenario() -> None:
        queue: WorkQueue[str] = WorkQueue()
        queue.add("a")
        queue.add_after("a", 0.01)
        await asyncio.sleep(SHORT)

        assert len(queue) == 1
        assert await next_key(queue) == "a"
        assert await nothing_ready(queue)

    asyncio.run(scenario())


def test_add_after_for_a_key_being_processed_requeues_it_after_done() -> None:
    async def scenario() -> None:
        queue: WorkQueue[str] = WorkQueue()
        queue.add("a")
        key = await next_key(queue)

        queue.add_after("a", 0.01)
        await asyncio.sleep(SHORT)
        assert len(queue) == 0

        queue.done(key)
        assert await next_key(queue) == "a"

    asyncio.run(scenario())
