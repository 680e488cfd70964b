"""The part every fake platform server shares: an aiohttp app on 127.0.0.1 in its own thread, and a record of what it was sent.

Importing this module clears the proxy variables: httpx (python-telegram-bot)
and slack_sdk honour them, and a fake on 127.0.0.1 must be reached directly.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

for _name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
    os.environ.pop(_name, None)

WAIT = 60.0  # seconds before a wait gives up: a guard against hangs, not a speed check


class FakeServer:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self.records: list[tuple[str, dict[str, Any]]] = []  # (what, details), in arrival order
        self._changed = threading.Condition()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, name=type(self).__name__, daemon=True)
        self.refuse_until = 0.0  # monotonic time until which sends are refused
        self.refuse_status = 429

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> web.Application:
        raise NotImplementedError

    def start(self) -> FakeServer:
        self._thread.start()
        self.call(self._serve())
        return self

    async def _serve(self) -> None:
        self._runner = web.AppRunner(self.app())
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        if self._runner is not None:
            self.call(self._runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def call(self, work: Any) -> Any:
        """Run a coroutine (or a plain function) on the server's loop and return its result."""
        if asyncio.iscoroutine(work):
            return asyncio.run_coroutine_threadsafe(work, self.loop).result(WAIT)

        async def run() -> Any:
            return work()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(WAIT)

    # --- what the fake was sent ---

    def record(self, what: str, details: dict[str, Any]) -> None:
        details = {**details, "at": time.perf_counter()}  # when it arrived, for the benchmark
        with self._changed:
            self.records.append((what, details))
            self._changed.notify_all()

    def recorded(self, what: str, predicate: Callable[[dict], bool] = lambda d: True) -> list[dict]:
        with self._changed:
            return [d for w, d in self.records if w == what and predicate(d)]

    def wait_for(self, what: str, predicate: Callable[[dict], bool] = lambda d: True, count: int = 1) -> list[dict]:
        """Wait until at least `count` records of kind `what` match; return all that match."""
        deadline = time.monotonic() + WAIT
        with self._changed:
            while True:
                found = [d for w, d in self.records if w == what and predicate(d)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(w, d) for w, d in self.records if w == what]
                    raise AssertionError(f"waited for {count} {what} records, matched {len(found)}; {what} records: {seen}")
                self._changed.wait(left)

    # --- refusing for a while ---

    def refuse(self, seconds: float, status: int = 429) -> None:
        self.refuse_status = status
        self.refuse_until = time.monotonic() + seconds

    def refusing(self) -> bool:
        return time.monotonic() < self.refuse_until


async def params(request: web.Request) -> dict[str, Any]:
    """Query, form (urlencoded or multipart) or JSON body, as one dict; JSON-looking form values are decoded."""
    data: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            data.update(await request.json())
        else:
            for key, value in (await request.post()).items():
                if isinstance(value, str) and value[:1] in "[{":
                    try:
                        value = json.loads(value)
                    except ValueError:
                        pass
                data[key] = value
    return data


def assert_sent_once_in_order(texts: list[str], words: list[str]) -> None:
    """Every `say WORD` got its ack and its result exactly once, acks in message order, each before its result."""
    assert len(texts) == len(set(texts)) == 2 * len(words), texts
    acks = [t for t in texts if " queued: " in t]
    assert [a.split(": ", 1)[1] for a in acks] == [f"say text={w}" for w in words]
    for ack in acks:
        job = ack.split()[1]
        done = next(t for t in texts if t.startswith(f"job {job} say done"))
        assert texts.index(ack) < texts.index(done)
