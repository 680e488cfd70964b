"""What the network adapters share: an asyncio loop in their own thread, connecting with retries, send() from other threads.

A subclass implements `serve()` (connect, call `self.ready()`, run until
`self.stopping` is set), `post()` (send one rendered message) and, if the
platform has one, a running indicator (`job_running` / `job_ended`). It only
translates: every decision is the pipeline's, reached through `deliver()`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import threading
from collections.abc import Awaitable
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from adapters import credentials, format
from adapters.contract import BotPort
from bot.errors import incident
from bot.flow import Message, Reply

S = TypeVar("S")


def settings_from(cls: type[S], data: dict[str, Any], **converted: Any) -> S:
    """An adapter's settings dataclass from its `platforms.<name>` section (unknown keys ignored)."""
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]  # S is always a settings dataclass
    return cls(**{key: value for key, value in data.items() if key in known}, **converted)


log = logging.getLogger(__name__)

RETRY_FIRST = 2.0  # seconds before the first reconnect; doubles up to RETRY_MAX
RETRY_MAX = 300.0
SEND_TIMEOUT = 120.0  # an SDK may sleep through a rate limit inside one call (discord.py waits up to 30 s per try)


class AuthError(Exception):
    """The platform rejected the credentials: retrying cannot help, so the adapter gives up and says why."""


@dataclass(frozen=True)
class Status:
    """Where an adapter stands, for the operator (`podbot run`'s status line, `podbot status`)."""

    state: str  # connecting, connected, failed (gave up), stopped
    detail: str = ""  # who it is connected as, why it gave up, or why the last attempt to connect failed


class NetworkAdapter:
    platform: str
    style: format.Style
    TICK = 4.0  # seconds between refreshes of the running indicator

    def __init__(self) -> None:
        self.bot: BotPort | None = None
        self.connected = threading.Event()
        self.finished = threading.Event()  # the adapter's thread has ended (stopped, or gave up)
        self.error: str | None = None  # why it gave up, when it did
        self.problem: str | None = None  # why the last attempt to connect failed (it retries)
        self.who = ""  # who the platform accepted us as
        self.stopping = asyncio.Event()
        self._inbox: asyncio.Queue[Message | Awaitable[Message | None]] = asyncio.Queue()
        self._drainer: asyncio.Task | None = None  # hands the inbox to the pipeline, one message at a time
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._sent_parts: dict[Reply, int] = {}  # replies cut short by a failure: how many messages already went out
        self._running: dict[int, Reply] = {}  # job id -> the reply that announced it, while it runs
        self._ticker: asyncio.Task | None = None

    # --- lifecycle (called from podbot's main thread) ---

    def start(self, bot: BotPort) -> None:
        self.bot = bot
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name=f"adapter-{self.platform}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        if self._loop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self.stopping.set)
            except RuntimeError:  # the loop closed in between: the adapter has ended anyway
                pass
        if self._thread is not None:
            self._thread.join(timeout)

    def _main(self) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._supervise())
        finally:
            self.connected.clear()
            # End what the SDK left running (e.g. tasks of a client that never connected) before the loop goes.
            left = asyncio.all_tasks(self._loop)
            for task in left:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
            self._loop.close()
            self.finished.set()

    async def _supervise(self) -> None:
        self._drainer = asyncio.create_task(self._drain_inbox())
        delay = RETRY_FIRST
        while not self.stopping.is_set():
            try:
                await self.serve()
                return
            except AuthError as exc:
                self.error = str(exc)
                log.error("%s: %s; this adapter is off until podbot restarts", self.platform, exc)
                return
            except Exception as exc:
                was_connected = self.connected.is_set()
                self.connected.clear()
                # Shown outside the log (status file), so without the log's redaction: an SDK may put a token in an error.
                self.problem = credentials.scrub(f"{type(exc).__name__}: {exc}")
                if was_connected:
                    delay = RETRY_FIRST
                log.warning(
                    "%s: cannot connect (%s: %s); retrying in %.0f s",
                    *(self.platform, type(exc).__name__, exc, delay),
                    exc_info=log.isEnabledFor(logging.DEBUG),
                )
            try:
                await asyncio.wait_for(self.stopping.wait(), delay)
            except TimeoutError:
                delay = min(delay * 2, RETRY_MAX)

    def ready(self, who: str) -> None:
        """Called by serve() once the platform accepted us and events flow."""
        self.who = who
        self.connected.set()
        log.info("%s: connected as %s", self.platform, who)

    async def serve(self) -> None:
        raise NotImplementedError

    def status(self) -> Status:
        # `error` is final once `finished` is set: the thread wrote it before it ended.
        if self.finished.is_set():
            return Status("failed", self.error) if self.error else Status("stopped")
        if self.connected.is_set():
            return Status("connected", self.who)
        return Status("connecting", self.problem or "")

    # --- inbound: platform event -> pipeline ---

    def deliver(self, msg: Message | Awaitable[Message | None]) -> None:
        """Queue a message (or a coroutine that completes one) for the pipeline, in the order events arrived.

        SDKs run their handlers as concurrent tasks (discord.py, Bolt), so two
        messages sent a moment apart could otherwise reach the pipeline swapped.
        """
        self._inbox.put_nowait(msg)

    async def _drain_inbox(self) -> None:
        assert self.bot is not None
        loop = asyncio.get_running_loop()
        while True:
            item = await self._inbox.get()
            try:
                msg = await item if inspect.isawaitable(item) else item
                if msg is not None:
                    # bot.receive is synchronous (SQLite); off this loop, so the SDK keeps its heartbeats.
                    await loop.run_in_executor(None, self.bot.receive, msg)
            except Exception:
                incident(f"{self.platform}: an incoming message could not be handed to the pipeline")

    # --- outbound: outbox thread -> platform ---

    def send(self, reply: Reply) -> None:
        """Deliver one reply (called from the outbox sender thread); raise, or RetryLater, if the platform did not take it."""
        if self._loop is None or not self.connected.is_set():
            raise ConnectionError(f"{self.platform} is not connected" + (f": {self.error}" if self.error else ""))
        future = asyncio.run_coroutine_threadsafe(self._send(reply), self._loop)
        try:
            future.result(SEND_TIMEOUT)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"{self.platform} did not answer within {SEND_TIMEOUT:.0f} s") from None

    async def _send(self, reply: Reply) -> None:
        messages = format.render(reply, self.style)
        # A retry of a reply that failed half-way resumes after the messages that already went out.
        done = self._sent_parts.pop(reply, 0)
        for index in range(done, len(messages)):
            try:
                await self.post(reply, messages[index], index)
            except BaseException:
                if index:
                    self._sent_parts[reply] = index
                raise
        await self._track(reply)

    async def post(self, reply: Reply, text: str, index: int) -> None:
        """Send message `index` of `reply`; raise RetryLater on the platform's rate limit."""
        raise NotImplementedError

    # --- native commands ---

    def skills_changed(self) -> None:
        """The skills were reloaded: register the native commands again (called from the reloading thread)."""
        if self._loop is not None and self.connected.is_set():
            asyncio.run_coroutine_threadsafe(self._quietly(self.register_commands()), self._loop)

    async def register_commands(self) -> None:
        """Register the built-in commands and the skills as the platform's native commands, where it has them."""

    # --- running indicator ---

    async def job_running(self, reply: Reply) -> None:
        """Show (again) that the job `reply` announced is running; repeated every TICK seconds."""

    async def job_ended(self, reply: Reply) -> None:
        """Take the running indicator of `reply`'s job away."""

    async def _track(self, reply: Reply) -> None:
        if reply.job_id is None or self.bot is None:
            return
        if await self._job_active(reply.job_id):
            if reply.job_id not in self._running:
                self._running[reply.job_id] = reply
                await self._quietly(self.job_running(reply))
                if self._ticker is None or self._ticker.done():
                    self._ticker = asyncio.create_task(self._tick())
        elif reply.job_id in self._running:
            await self._quietly(self.job_ended(self._running.pop(reply.job_id)))

    async def _tick(self) -> None:
        while self._running and not self.stopping.is_set():
            await asyncio.sleep(self.TICK)
            for job_id, reply in list(self._running.items()):
                if await self._job_active(job_id):
                    await self._quietly(self.job_running(reply))
                elif self._running.pop(job_id, None) is not None:
                    await self._quietly(self.job_ended(reply))

    async def _job_active(self, job_id: int) -> bool:
        assert self.bot is not None
        return await asyncio.get_running_loop().run_in_executor(None, self.bot.job_active, job_id)

    async def _quietly(self, indicator: Awaitable[None]) -> None:
        # The indicator is decoration: a failure must never hold up a reply.
        try:
            await indicator
        except Exception as exc:
            log.debug("%s: running indicator failed: %s", self.platform, exc)
