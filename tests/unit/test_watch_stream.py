"""The list-then-watch stream (execflow.kube.watch) against a scripted API server.

Pages are followed, every listing ends with the LISTED mark, the watch starts from the listing's
version and resumes from the last version it saw (bookmarks included) when the server ends it,
and a 410 (as an HTTP status or as an ERROR event) makes it list again.
"""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from execflow.kube.client import PODS
from execflow.kube.errors import ForbiddenError, from_reply
from execflow.kube.http import Request
from execflow.kube.watch import LISTED, Watch, stream


def pod(name: str, version: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": version}}


class Server:
    """Answers listings from `pages` and watches from `watches`, in order; records requests."""

    def __init__(self, pages: list[dict[str, Any]], watches: list[Any]) -> None:
        self.pages = pages
        self.watches = watches
        self.requests: list[dict[str, str]] = []

    async def __call__(self, request: Request) -> Any:
        self.requests.append(dict(request.query))
        return self.pages.pop(0)

    async def events(self, request: Request, *, exact: bool = True) -> AsyncIterator[Any]:
        self.requests.append(dict(request.query))
        script = self.watches.pop(0)
        if isinstance(script, Exception):
            raise script
        for event in script:
            await asyncio.sleep(0)
            yield event


def collect(server: Server, count: int) -> list[Any]:
    async def main() -> list[Any]:
        seen: list[Any] = []
        watch = Watch(PODS, label_selector="execflow.dev/task")
        async for event in stream(server, watch, "ns"):  # type: ignore[arg-type]
            seen.append(event)
            if len(seen) == count:
                break
        return seen

    return asyncio.run(main())


def test_pages_then_watch_resumed_from_the_last_version_seen() -> None:
    server = Server(
        pages=[
            {"items": [pod("a", "1")], "metadata": {"continue": "next", "resourceVersion": "5"}},
            {"items": [pod("b", "2")], "metadata": {"resourceVersion": "5"}},
        ],
        watches=[
            [
                {"type": "ADDED", "object": pod("c", "6")},
                {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}},
            ],
            [{"type": "MODIFIED", "object": pod("c", "10")}],
        ],
    )

    seen = collect(server, 5)

    assert seen[0] == (None, pod("a", "1"))
    assert seen[1] == (None, pod("b", "2"))
    assert seen[2] is LISTED
    assert seen[3] == ("ADDED", pod("c", "6"))
    assert seen[4] == ("MODIFIED", pod("c", "10"))
    first_page, second_page, first_watch, second_watch = server.requests
    assert first_page["labelSelector"] == "execflow.dev/task"
    assert second_page["continue"] == "next"
    assert first_watch["resourceVersion"] == "5"
    assert first_watch["allowWatchBookmarks"] == "true"
    assert second_watch["resourceVersion"] == "9"


@pytest.mark.parametrize(
    "gone",
    [
        [{"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old"}}],
        from_reply(410, "Gone", b'{"reason": "Expired"}', None),
    ],
)
def test_a_410_lists_again(gone: Any) -> None:
    server = Server(
        pages=[
            {"items": [pod("a", "1")], "metadata": {"resourceVersion": "5"}},
            {"items": [pod("b", "7")], "metadata": {"resourceVersion": "8"}},
        ],
        watches=[gone, [{"type": "ADDED", "object": pod("c", "9")}]],
    )

    seen = collect(server, 5)

    assert seen == [(None, pod("a", "1")), LISTED, (None, pod("b", "7")), LISTED, seen[4]]
    assert seen[4] == ("ADDED", pod("c", "9"))
    assert server.requests[-1]["resourceVersion"] == "8"


def test_other_errors_are_raised_for_the_informer_to_retry() -> None:
    server = Server(
        pages=[{"items": [], "metadata": {"resourceVersion": "5"}}],
        watches=[[{"type": "ERROR", "object": {"code": 403, "reason": "Forbidden"}}]],
    )

    with pytest.raises(ForbiddenError):
        collect(server, 10)
