"""The web side over HTTP: one-time login links, the session cookie, CSRF, the pages and their headers."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
from click.testing import CliRunner

from bot.cli import main
from bot.gateway import protocol, tokens
from bot.gateway.protocol import Close
from tests.conftest import write_config
from tests.gateway_helpers import Served, closed_with, serving


def link(served: Served, identity: str = "web:alice", **times: float) -> str:
    return tokens.login_code(served.bot.db, identity, served.bot.cfg.gateway.login_ttl, **times)


async def logged_in(served: Served, code: str) -> tuple[aiohttp.ClientSession, aiohttp.ClientResponse]:
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # unsafe: cookies for an IP address
    answer = await session.post(served.url + "/login", json={"code": code})
    await answer.read()
    return session, answer


def test_a_login_link_works_once_and_gives_an_httponly_samesite_cookie(tmp_path, log_dir):
    with serving(tmp_path, log_dir) as served:
        code = link(served)
        stale = link(served, now=time.time() - 3600)

        async def scenario() -> dict[str, Any]:
            session, first = await logged_in(served, code)
            async with session:
                me = await (await session.get(served.url + "/session")).json()
            again = await logged_in(served, code)
            await again[0].close()
            old = await logged_in(served, stale)
            await old[0].close()
            nothing = await logged_in(served, "")
            await nothing[0].close()
            return {"first": first, "me": me, "again": again[1].status, "old": old[1].status, "empty": nothing[1].status}

        seen = asyncio.run(scenario())
    cookie = seen["first"].headers["Set-Cookie"]
    assert seen["first"].status == 200 and "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert seen["me"]["identity"] == "web:alice" and len(seen["me"]["csrf"]) == 64
    assert (seen["again"], seen["old"], seen["empty"]) == (401, 401, 401)


def test_cookie_posts_need_the_csrf_token_and_logout_ends_the_session(tmp_path, log_dir):
    with serving(tmp_path, log_dir) as served:
        code = link(served)

        async def scenario() -> list[int]:
            session, _ = await logged_in(served, code)
            async with session:
                csrf = (await (await session.get(served.url + "/session")).json())["csrf"]
                statuses = []
                for headers in ({}, {"X-CSRF-Token": "0" * 64}, {"X-CSRF-Token": csrf}):
                    answer = await session.post(served.url + "/api/v1/messages", json={"text": "/whoami"}, headers=headers)
                    statuses.append(answer.status)
                statuses.append((await session.get(served.url + "/api/v1/jobs")).status)  # a GET needs no CSRF token
                statuses.append((await session.post(served.url + "/logout", headers={"X-CSRF-Token": csrf})).status)
                statuses.append((await session.get(served.url + "/api/v1/jobs")).status)
                return statuses

        assert asyncio.run(scenario()) == [401, 401, 200, 200, 200, 401]


def test_pages_need_a_session_and_carry_a_strict_csp(tmp_path, log_dir):
    with serving(tmp_path, log_dir) as served:
        code = link(served)

        async def scenario() -> dict[str, Any]:
            async with aiohttp.ClientSession() as anonymous:
                chat = await anonymous.get(served.url + "/chat")
                login = await anonymous.get(served.url + "/login")
                script = await anonymous.get(served.url + "/static/chat.js")
                escape = await anonymous.get(served.url + "/static/..%2fweb.py")
                home = await anonymous.get(served.url + "/", allow_redirects=False)
                seen = {
                    "chat": (chat.status, await chat.text()),
                    "login": (login.status, login.headers["Content-Security-Policy"]),
                    "script": (script.status, script.headers["Content-Type"]),
                    "escape": escape.status,
                    "home": (home.status, home.headers["Location"]),
                }
            session, _ = await logged_in(served, code)
            async with session:
                for page in ("chat", "dashboard"):
                    answer = await session.get(f"{served.url}/{page}")
                    seen[page + " logged in"] = (answer.status, "<script src=" in await answer.text())
            return seen

        seen = asyncio.run(scenario())
    assert seen["chat"] == (401, "unauthorized\n")
    assert seen["login"][0] == 200 and "script-src 'self'" in seen["login"][1] and "default-src 'none'" in seen["login"][1]
    assert seen["script"] == (200, "text/javascript; charset=utf-8")
    assert seen["escape"] == 404 and seen["home"] == (302, "/chat")
    assert seen["chat logged in"] == (200, True) and seen["dashboard logged in"] == (200, True)


def test_a_page_authenticates_its_websocket_with_the_session_cookie_and_csrf(tmp_path, log_dir):
    with serving(tmp_path, log_dir) as served:
        code = link(served)

        async def scenario() -> list[Any]:
            session, _ = await logged_in(served, code)
            async with session:
                csrf = (await (await session.get(served.url + "/session")).json())["csrf"]
                seen = []
                for sent in (csrf, "f" * 64):
                    ws = await session.ws_connect(served.ws_url)
                    await ws.send_str(json.dumps({"type": "auth", "csrf": sent}))
                    first = await ws.receive()
                    seen.append(json.loads(first.data)["identity"] if first.type == aiohttp.WSMsgType.TEXT else first.data)
                    await ws.close()
            async with aiohttp.ClientSession() as stranger:  # no cookie: a CSRF token alone is nothing
                ws = await stranger.ws_connect(served.ws_url)
                await ws.send_str(json.dumps({"type": "auth", "csrf": csrf}))
                seen.append((await closed_with(ws))[0])
            return seen

        assert asyncio.run(scenario()) == ["web:alice", Close.UNAUTHORIZED, Close.UNAUTHORIZED]
        assert protocol.parse(json.dumps({"type": "auth", "csrf": "x"})).csrf == "x"


def test_web_login_on_the_command_line_prints_a_link_with_the_code_in_the_fragment(tmp_path, log_dir):
    path = write_config(tmp_path, log_dir, gateway={"listen": "127.0.0.1:8080", "public_url": "https://podbot.example.org"})
    made = CliRunner().invoke(main, ["--config", str(path), "web", "login", "--user", "alice"])
    assert made.exit_code == 0, made.output
    assert made.stdout.startswith("https://podbot.example.org/login#") and len(made.stdout.strip().split("#")[1]) >= 32
    off = write_config(tmp_path, log_dir)
    refused = CliRunner().invoke(main, ["--config", str(off), "web", "login", "--user", "alice"])
    assert refused.exit_code == 1 and "gateway.listen" in refused.stderr
