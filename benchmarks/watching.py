"""A raw watch in a thread, for benchmarks that time what they see on the API server.

Raw JSON rather than client models: deserialising thousands of Jobs into models would cost the
benchmark more CPU than the operator it measures. A watch that expires (410) is an error, not
something to paper over, because lost events would falsify the counts.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from kubernetes.watch.watch import iter_resp_lines


class RawWatch(threading.Thread):
    """A watch from a known resourceVersion that hands each event (as JSON) to a callback.

    Raw JSON rather than client models: deserialising thousands of Jobs into models would cost the
    benchmark more CPU than the operator it measures. A watch that expires (410) is an error, not
    something to paper over, because lost events would falsify the counts.
    """

    def __init__(
        self,
        name: str,
        list_call: Callable[..., Any],
        resource_version: str,
        on_event: Callable[[str, dict[str, Any], float], None],
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.list_call = list_call
        self.resource_version = resource_version
        self.on_event = on_event
        self.error: BaseException | None = None
        self._stopping = threading.Event()
        self._response: Any = None

    def run(self) -> None:
        try:
            while not self._stopping.is_set():
                response = self.list_call(
                    watch=True,
                    resource_version=self.resource_version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=30,
                    _preload_content=False,
                )
                self._response = response
                try:
                    for line in iter_resp_lines(response):
                        if not line:
                            continue
                        event = json.loads(line)
                        kind, body = event["type"], event["object"]
                        if kind == "ERROR":
                            raise RuntimeError(f"watch {self.name} ended: {body.get('message')}")
                        self.resource_version = body["metadata"]["resourceVersion"]
                        if kind != "BOOKMARK":
                            self.on_event(kind, body, time.monotonic())
                finally:
                    # Closed, not returned to the pool: it may have stopped mid-stream.
                    response.close()
                    response.release_conn()
        except Exception as error:  # reported by check(); a stopped watch is no error
            if not self._stopping.is_set():
                self.error = error

    def check(self) -> None:
        if self.error is not None:
            raise RuntimeError(f"watch {self.name} failed: {self.error}") from self.error

    def stop(self) -> None:
        self._stopping.set()
        response = self._response
        if response is not None:
            with contextlib.suppress(Exception):
                response.shutdown()
