"""Where the gateway may listen: loopback as it is; anywhere else only with TLS of its own or a declared reverse proxy."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
from pathlib import Path

import aiohttp
import pytest

from bot import config
from bot.errors import Unavailable
from bot.flow import Reply
from bot.gateway import client, protocol
from bot.gateway.guard import unsafe_binding
from bot.gateway.protocol import Close
from bot.gateway.server import Gateway
from bot.store import audit
from tests.conftest import make_bot, write_config
from tests.fake_runner import FakeRunner
from tests.gateway_helpers import next_reply, serving


def settings(tmp_path: Path, log_dir: Path, **gateway: object) -> config.GatewayConfig:
    return config.load(str(write_config(tmp_path, log_dir, gateway=gateway)), environ={}).gateway


@pytest.mark.parametrize("listen", ["127.0.0.1:8080", "127.9.9.9:0", "[::1]:8080", "localhost:8080"])
def test_loopback_needs_nothing(tmp_path, log_dir, listen):
    assert unsafe_binding(settings(tmp_path, log_dir, listen=listen)) is None


@pytest.mark.parametrize("listen", ["0.0.0.0:8080", "[::]:8080", "10.1.2.3:8080", "podbot.example.org:8080"])
def test_any_other_address_needs_tls_or_a_declared_proxy(tmp_path, log_dir, listen):
    why = unsafe_binding(settings(tmp_path, log_dir, listen=listen))
    assert why is not None and "gateway.tls_cert" in why and "reverse_proxy" in why
    assert unsafe_binding(settings(tmp_path, log_dir, listen=listen, reverse_proxy=True)) is None
    assert unsafe_binding(settings(tmp_path, log_dir, listen=listen, tls_cert="c.pem", tls_key="k.pem")) is None


def test_the_gateway_refuses_to_start_off_loopback_in_clear(tmp_path, log_dir):
    path = write_config(tmp_path, log_dir, gateway={"listen": "0.0.0.0:0"})
    bot = make_bot(config.load(str(path), environ={}), FakeRunner())
    with pytest.raises(Unavailable, match="without TLS"):
        Gateway(bot)


def test_with_tls_it_speaks_https_and_wss(tmp_path, log_dir):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"]
        + ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    trust = ssl.create_default_context(cafile=str(cert))
    with serving(tmp_path, log_dir, tls_cert=str(cert), tls_key=str(key)) as served:
        port = served.gateway.port

        async def talk() -> tuple[int, Reply]:
            async with aiohttp.ClientSession() as session:
                async with session.get(f"https://127.0.0.1:{port}/healthz", ssl=trust) as answer:
                    health = answer.status
            replies: asyncio.Queue[Reply] = asyncio.Queue()
            async with await client.connect(f"wss://127.0.0.1:{port}/ws", served.token(), replies.put_nowait, tls=trust) as alice:
                await alice.send("/whoami")
                return health, await next_reply(replies, "whoami over wss")

        health, answer = asyncio.run(talk())
    assert health == 200 and "web:alice" in answer.text


def test_behind_the_declared_proxy_the_forwarded_address_is_the_clients(tmp_path, log_dir):
    with serving(tmp_path, log_dir, reverse_proxy=True, max_unauthenticated=1) as served:
        token = served.token()

        async def first_frames(addresses: list[str]) -> list[str | int]:
            """Open one connection per forwarded address, all waiting at once, then authenticate each in turn:
            "welcome", or the code it was closed with."""
            seen: list[str | int] = []
            async with aiohttp.ClientSession() as session:
                sockets = [await session.ws_connect(served.ws_url, headers={"X-Forwarded-For": a}) for a in addresses]
                for ws in sockets:
                    await ws.send_str(protocol.auth(token))
                    msg = await ws.receive()
                    seen.append(json.loads(msg.data)["type"] if msg.type == aiohttp.WSMsgType.TEXT else msg.data)
            return seen

        assert asyncio.run(first_frames(["203.0.113.1", "203.0.113.2"])) == ["welcome", "welcome"]
        assert asyncio.run(first_frames(["203.0.113.1", "203.0.113.1"])) == ["welcome", Close.TOO_MANY]
        actors = {e.actor for e in audit.latest(served.bot.db, 10) if e.event == "unauthorized"}
    assert "gateway:203.0.113.1" in actors
