"""A small Python client of the gateway's WebSocket protocol (asyncio and aiohttp; docs/gateway-protocol.md).

    client = await connect("ws://127.0.0.1:8080/ws", token, on_reply=lambda reply: print(reply.text))
    await client.send("say hello")      # returns once the gateway has taken the message
    ...
    await client.close()

Replies arrive whenever the bot has them (acks of jobs, results, scheduled and
fallback replies, and what waited while this identity was offline); each is
handed to `on_reply`, in order. The client answers WebSocket pings by itself.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from bot.flow import Action, Reply
from bot.gateway import protocol

log = logging.getLogger(__name__)

Handler = Callable[[Reply], Awaitable[object] | object]


class Closed(Exception):
    """The gateway closed the connection; `code` is one of protocol.Close (or another WebSocket close code)."""

    def __init__(self, code: int | None, reason: str):
        super().__init__(f"closed ({code}): {reason}" if reason else f"closed ({code})")
        self.code = code
        self.reason = reason


class Client:
    """One authenticated connection; made by `connect`."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse, welcome: dict[str, Any]):
        self.identity: str = welcome["identity"]
        self.conversation: str = welcome["conversation"]
        self._session = session
        self._ws = ws
        self._ids = itertools.count(1)
        self._acks: dict[str, asyncio.Future[None]] = {}
        self._handler: Handler | None = None
        self._early: list[Reply] = []  # replies that came before a handler was set
        self._catching_up: asyncio.Task[None] | None = None  # handing those to the handler, in order
        self.closed: Closed | None = None
        self._reader = asyncio.create_task(self._read())

    def on_reply(self, handler: Handler) -> None:
        """Call `handler(reply)` (a function or a coroutine function) for every reply, starting with any that already came."""
        self._handler = handler
        early, self._early = self._early, []
        if early:
            self._catching_up = asyncio.get_running_loop().create_task(self._dispatch(*early))

    async def send(self, text: str) -> None:
        """Send a message as the token's identity; returns once the gateway acknowledged it (it is stored and handled)."""
        if self.closed is not None:
            raise self.closed
        message_id = str(next(self._ids))
        acked = asyncio.get_running_loop().create_future()
        self._acks[message_id] = acked
        await self._ws.send_str(protocol.message(message_id, text))
        await acked

    async def ping(self) -> None:
        await self._ws.send_str(protocol.ping())

    async def close(self) -> None:
        await self._ws.close()
        await self._reader
        await self._session.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _read(self) -> None:
        reason = ""
        while True:
            msg = await self._ws.receive()
            if msg.type != aiohttp.WSMsgType.TEXT:
                if msg.type == aiohttp.WSMsgType.CLOSE and isinstance(msg.extra, str):
                    reason = msg.extra
                break
            frame = json.loads(msg.data)
            if frame["type"] == "ack":
                future = self._acks.pop(frame["id"], None)
                if future is not None and not future.done():
                    future.set_result(None)
            elif frame["type"] == "reply":
                buttons = tuple(Action(a["label"], a["command"]) for a in frame.get("actions", ()))  # absent from older servers
                reply = Reply(frame["conversation"], frame["text"], frame["code"], frame["thread"], frame["job_id"], buttons)
                if self._handler is None:
                    self._early.append(reply)
                else:
                    await self._dispatch(reply)
        self.closed = Closed(self._ws.close_code, reason)
        for future in self._acks.values():
            if not future.done():
                future.set_exception(self.closed)
        self._acks.clear()

    async def _dispatch(self, *replies: Reply) -> None:
        assert self._handler is not None
        if self._catching_up is not None and self._catching_up is not asyncio.current_task():
            await self._catching_up  # the replies that came before the handler go first
        for reply in replies:
            try:
                result = self._handler(reply)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # the handler's own bug must not stop the replies after it, nor the acks
                log.exception("the on_reply handler failed on %r", reply.text[:80])


async def connect(
    url: str, token: str, on_reply: Handler | None = None, heartbeat: float | None = None, tls: ssl.SSLContext | None = None
) -> Client:
    """Connect to the gateway's /ws (wss:// with TLS; `tls` to trust a private CA) and authenticate with `token` in the
    first frame; Closed if the gateway refuses."""
    session = aiohttp.ClientSession()
    try:
        ws = await session.ws_connect(url, heartbeat=heartbeat, max_msg_size=0, ssl=tls if tls is not None else True)
        await ws.send_str(protocol.auth(token))
        first = await ws.receive()
        if first.type != aiohttp.WSMsgType.TEXT:
            reason = first.extra if isinstance(first.extra, str) else ""
            raise Closed(ws.close_code, reason)
        client = Client(session, ws, json.loads(first.data))
    except BaseException:
        await session.close()
        raise
    if on_reply is not None:
        client.on_reply(on_reply)
    return client
