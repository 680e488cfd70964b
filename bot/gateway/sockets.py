"""The WebSocket endpoint `/ws`, and the `web` platform its connections make (docs/gateway-protocol.md).

A connection authenticates in its first frame; then each `message` frame becomes a
`Message` handed to `Bot.receive` (so roles, audit and the queue are the chat's)
and is acked once handled. A conversation is its token's identity (`web:alice`):
the outbox sender pushes its replies to every connection of that identity, and
while none is open they wait in the outbox, untried, and go out in order when one
authenticates again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import TypeVar

from aiohttp import WSMsgType, web

from adapters.contract import SimpleAdapter
from bot.app import Bot
from bot.config import GatewayConfig
from bot.errors import RetryLater
from bot.flow import Message, Reply
from bot.gateway import guard, protocol, tokens
from bot.gateway.protocol import Close, FrameError
from bot.gateway.web import COOKIE
from bot.store import outbox

T = TypeVar("T")

OFFLINE_WAIT = 3600.0  # a reply for a conversation nobody is connected to waits this long, or until one of its clients connects
SEND_TIMEOUT = 10.0  # a client that does not take a frame within this is treated as gone for this reply


async def off_loop(work: Callable[..., T], *args: object) -> T:
    """Run blocking work (the pipeline, SQLite, token checks) on the loop's threads, so the gateway keeps serving meanwhile.

    Several threads, not one: part of handling a message runs outside its write transaction (the queue's own
    SQLite file, waking the senders), and bench/bench_gateway.py measured twice the messages a second so."""
    return await asyncio.get_running_loop().run_in_executor(None, work, *args)


class Connections(SimpleAdapter):
    """The `web` platform: the open, authenticated sockets by conversation. The outbox sender delivers through `send`
    the replies of the conversations `online()` names; the others wait in the outbox, untried, until a client connects."""

    platform = "web"

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self._open: dict[str, set[web.WebSocketResponse]] = defaultdict(set)  # touched on the gateway's loop only
        self._online: tuple[str, ...] = ()  # a snapshot for the outbox sender's thread, replaced whole

    def add(self, conversation: str, ws: web.WebSocketResponse) -> None:
        self._open[conversation].add(ws)
        self._online = tuple(self._open)

    def discard(self, conversation: str, ws: web.WebSocketResponse) -> None:
        self._open[conversation].discard(ws)
        if not self._open[conversation]:
            del self._open[conversation]
        self._online = tuple(self._open)

    def online(self) -> tuple[str, ...]:
        return self._online

    def sockets(self) -> list[web.WebSocketResponse]:
        return [ws for group in self._open.values() for ws in group]

    def send(self, reply: Reply) -> None:
        if self.loop is None:
            raise RetryLater(OFFLINE_WAIT, "the gateway is not running")
        future = asyncio.run_coroutine_threadsafe(self._push(reply), self.loop)
        try:
            delivered = future.result(SEND_TIMEOUT)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"no client of {reply.conversation} took the reply within {SEND_TIMEOUT:.0f} s") from None
        if not delivered:  # its last client left since the sender looked: connecting again makes it due at once
            raise RetryLater(OFFLINE_WAIT, "no client of this conversation is connected")

    async def _push(self, reply: Reply) -> bool:
        frame = protocol.reply(reply)
        delivered = False
        for ws in list(self._open.get(reply.conversation, ())):
            try:
                await ws.send_str(frame)
                delivered = True
            except (ConnectionError, RuntimeError):  # closing under us: its handler discards it
                pass
        return delivered


class Sockets:
    """The open connections: waiting to authenticate (capped per address), and admitted (with their grants)."""

    def __init__(self, bot: Bot, doorman: guard.Doorman, settings: GatewayConfig):
        self.bot = bot
        self.doorman = doorman
        self.settings = settings
        self.connections = Connections()
        self._waiting = guard.Waiting(settings.max_unauthenticated)
        self._unauthenticated: set[web.WebSocketResponse] = set()
        self._admitted: dict[web.WebSocketResponse, tokens.Grant] = {}

    def count(self) -> int:
        """Authenticated connections (read from other threads: a len() is atomic)."""
        return len(self._admitted)

    async def close_all(self) -> None:
        for ws in self.connections.sockets() + list(self._unauthenticated):
            await ws.close(code=Close.GOING_AWAY, message=b"the gateway stops")

    async def close_expired(self) -> None:
        """Close connections whose token expired or was revoked since they authenticated, once every heartbeat."""
        while True:
            await asyncio.sleep(self.settings.heartbeat)
            grants = {grant.token_id: grant for grant in self._admitted.values()}
            gone = {token_id for token_id, grant in grants.items() if not await off_loop(self.doorman.still_valid, grant)}
            for ws, grant in list(self._admitted.items()):
                if grant.token_id in gone:
                    await ws.close(code=Close.UNAUTHORIZED, message=b"unauthorized")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        remote = request.remote or "unknown"
        ws = web.WebSocketResponse(heartbeat=self.settings.heartbeat, max_msg_size=self.settings.max_frame)
        await ws.prepare(request)
        if not self._waiting.enter(remote):
            await off_loop(self.doorman.refusals.record, remote, "/ws", "too many unauthenticated connections")
            await ws.close(code=Close.TOO_MANY, message=b"too many unauthenticated connections from your address")
            return ws
        self._unauthenticated.add(ws)
        try:
            grant = await self._authenticate(ws, remote, request.cookies.get(COOKIE))
        finally:
            self._waiting.leave(remote)
            self._unauthenticated.discard(ws)
        if grant is not None:
            await self._converse(ws, grant)
        return ws

    async def _authenticate(self, ws: web.WebSocketResponse, remote: str, session: str | None) -> tokens.Grant | None:
        """The grant of the connection's first frame (a token, or the CSRF token of the `session` cookie that came with
        the upgrade), or None once the connection is closed with the reason."""

        async def refuse(code: Close, reason: str, told: str | None = None) -> None:
            await off_loop(self.doorman.refusals.record, remote, "/ws", reason)
            await ws.close(code=code, message=(told or reason).encode()[:120])

        try:
            msg = await ws.receive(timeout=self.settings.auth_timeout)
        except TimeoutError:
            await refuse(Close.AUTH_TIMEOUT, "no auth frame in time")
            return None
        if msg.type == WSMsgType.BINARY:
            await refuse(Close.BINARY, "a binary frame")
            return None
        if msg.type != WSMsgType.TEXT:  # closed, or a frame too big (aiohttp closed it with 1009)
            await off_loop(self.doorman.refusals.record, remote, "/ws", f"closed before auth ({ws.close_code})")
            return None
        try:
            frame = protocol.parse(msg.data)
        except FrameError as exc:
            await refuse(exc.code, str(exc))
            return None
        if not isinstance(frame, protocol.Auth):
            await refuse(Close.UNAUTHORIZED, "the first frame was not auth", "unauthorized")
            return None
        if frame.version != protocol.VERSION:
            await refuse(Close.BAD_VERSION, f"protocol version {frame.version}; this server speaks {protocol.VERSION}")
            return None
        if frame.token is not None:
            grant = await off_loop(self.doorman.admit, frame.token, remote, "/ws")
        elif session is not None:
            grant = await off_loop(self.doorman.admit_session, session, frame.csrf, remote, "/ws")
        else:
            grant = None
            await off_loop(self.doorman.refusals.record, remote, "/ws", "a CSRF token without a session cookie")
        if grant is None:
            await ws.close(code=Close.UNAUTHORIZED, message=b"unauthorized")
            return None
        if "chat" not in grant.scopes:
            await refuse(Close.FORBIDDEN, f"token {grant.token_id} has no chat scope")
            return None
        return grant

    async def _converse(self, ws: web.WebSocketResponse, grant: tokens.Grant) -> None:
        conversation = grant.identity
        self.connections.add(conversation, ws)
        self._admitted[ws] = grant
        try:
            await ws.send_str(protocol.welcome(grant.identity, conversation, self.settings.heartbeat))
            # What waited for this conversation while nobody was connected goes out now, oldest first.
            await off_loop(outbox.retry_now, self.bot.db, conversation)
            self.bot.loops.wake()
            while True:
                msg = await ws.receive()
                if msg.type == WSMsgType.BINARY:
                    await ws.close(code=Close.BINARY, message=b"text frames only")
                if msg.type != WSMsgType.TEXT:
                    return
                try:
                    frame = protocol.parse(msg.data)
                    if isinstance(frame, protocol.Auth):
                        raise FrameError(Close.BAD_FRAME, "already authenticated")
                except FrameError as exc:
                    await ws.close(code=exc.code, message=str(exc).encode()[:120])
                    return
                if isinstance(frame, protocol.Ping):
                    await ws.send_str(protocol.pong())
                elif not await off_loop(self._hand_over, grant, frame.text):
                    await ws.close(code=Close.UNAUTHORIZED, message=b"unauthorized")
                    return
                else:
                    await ws.send_str(protocol.ack(frame.id))
        finally:
            self.connections.discard(conversation, ws)
            del self._admitted[ws]

    def _hand_over(self, grant: tokens.Grant, text: str) -> bool:
        """Hand a person's message to the pipeline, unless their token expired or was revoked since they connected."""
        if not self.doorman.still_valid(grant):
            self.doorman.refusals.record(grant.identity, "/ws", f"token {grant.token_id} expired or revoked while connected")
            return False
        name = grant.identity.split(":", 1)[1]
        self.bot.receive(Message("web", grant.identity, grant.identity, text, name, message_id=uuid.uuid4().hex))
        return True
