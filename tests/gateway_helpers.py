"""A started bot with its gateway on 127.0.0.1 and a free port, skills on a FakeRunner, and tokens for it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bot import config
from bot.app import Bot
from bot.flow import Reply
from bot.gateway import tokens
from bot.gateway.server import Gateway
from tests.conftest import WAIT, make_bot, write_config
from tests.fake_runner import FakeRunner


@dataclass
class Served:
    bot: Bot
    gateway: Gateway
    runner: FakeRunner

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.gateway.port}/ws"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.gateway.port}"

    def token(self, identity: str = "web:alice", ttl: float = 3600, scopes: tuple[str, ...] = tokens.SCOPES, **times: float) -> str:
        key = tokens.signing_key(self.bot.cfg.data_dir)
        return tokens.encode(key, tokens.create(self.bot.db, key, identity, ttl, scopes, **times), **times)


@contextmanager
def serving(
    tmp_path: Path,
    log_dir: Path,
    runner: FakeRunner | None = None,
    environ: dict[str, str] | None = None,
    platforms: Sequence[Any] = (),
    **settings: Any,
) -> Iterator[Served]:
    """A bot (2 workers, no schedules) and its gateway, both stopped afterwards; `settings` go under `gateway:`,
    `platforms` are the adapters whose state it reports, `environ` holds the hooks' secrets."""
    path = write_config(
        tmp_path, log_dir, gateway={"listen": "127.0.0.1:0", **settings}, roles={"admin": ["web:ada"], "operator": ["web:olga"]}
    )
    runner = runner or FakeRunner()
    bot = make_bot(config.load(str(path), environ={}), runner)
    gateway = Gateway(bot, platforms, environ=environ or {})
    bot.start(2, schedules=False)
    gateway.start()
    try:
        yield Served(bot, gateway, runner)
    finally:
        gateway.stop()
        bot.stop()


async def next_reply(replies: asyncio.Queue[Reply], what: str = "") -> Reply:
    """The next reply a client got (a guard against a hang, not a speed check)."""
    try:
        return await asyncio.wait_for(replies.get(), WAIT)
    except TimeoutError:
        raise AssertionError(f"no reply {what}") from None


async def closed_with(ws: aiohttp.ClientWebSocketResponse) -> tuple[int | None, str]:
    """Read until the server closes; the close code and reason."""
    while True:
        msg = await asyncio.wait_for(ws.receive(), WAIT)
        if msg.type == aiohttp.WSMsgType.CLOSE:
            return msg.data, msg.extra or ""
        if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
            return ws.close_code, ""
