"""A fake Slack: enough Web API and Socket Mode for slack-bolt to connect, get events and slash commands, and post.

Tests push events with `event()` / `slash_command()` / `press()` (a Block Kit button; over the Socket Mode
websocket) or `post_signed()` (HTTP mode, signed like Slack signs). Recorded:
("post", {channel, text, thread_ts, buttons}) (buttons: [text, value] pairs of its actions blocks),
("respond", {trigger, text}), ("reaction", {op, channel, ts, name}), ("ack", envelope),
("users.info", {user}). users.info fails (user_not_found) for the users in `nameless`.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any

from aiohttp import WSMsgType, web

from tests.fake_http import FakeServer, params

TEAM, BOT_USER, BOT_ID = "T0ACME", "U0PODBOT", "B0PODBOT"


class FakeSlack(FakeServer):
    def __init__(self, bot_token: str, app_token: str) -> None:
        super().__init__()
        self.bot_token, self.app_token = bot_token, app_token
        self.sockets: list[web.WebSocketResponse] = []
        self.nameless: set[str] = set()
        self._ts = itertools.count(1)

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self.handle)
        app.router.add_get("/link", self.socket)
        app.router.add_post("/respond/{trigger}", self.respond)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        data = await params(request)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ") or data.get("token", "")
        wanted = self.app_token if method == "apps.connections.open" else self.bot_token
        if token != wanted:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        if method in ("chat.postMessage",) and self.refusing():
            if self.refuse_status == 429:
                return web.json_response({"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "1"})
            return web.json_response({"ok": False, "error": "fatal_error"}, status=self.refuse_status)
        handler = getattr(self, "api_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"}, status=404)
        return web.json_response({"ok": True, **handler(data)})

    # --- Web API methods ---

    def api_auth_test(self, data: dict) -> dict:
        return {
            "url": "https://acme.slack.invalid/",
            "team": "Acme",
            "user": "podbot",
            "team_id": TEAM,
            "user_id": BOT_USER,
            "bot_id": BOT_ID,
        }

    def api_apps_connections_open(self, data: dict) -> dict:
        return {"url": f"ws://127.0.0.1:{self.port}/link?ticket={uuid.uuid4()}"}

    def api_users_info(self, data: dict) -> dict:
        user = data["user"]
        self.record("users.info", {"user": user})
        if user in self.nameless:
            return {"ok": False, "error": "user_not_found"}
        return {"user": {"id": user, "name": user.lower(), "real_name": f"Real {user}", "profile": {"display_name": f"disp-{user}"}}}

    def api_chat_postMessage(self, data: dict) -> dict:
        ts = f"{int(time.time())}.{next(self._ts):06d}"
        blocks = data.get("blocks") or []
        blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
        buttons = [[e["text"]["text"], e["value"]] for b in blocks if b["type"] == "actions" for e in b["elements"]]
        self.record("post", {"channel": data["channel"], "text": data["text"], "thread_ts": data.get("thread_ts"), "buttons": buttons})
        return {"channel": data["channel"], "ts": ts, "message": {"text": data["text"], "user": BOT_USER, "ts": ts}}

    def api_reactions_add(self, data: dict) -> dict:
        self.record("reaction", {"op": "add", "channel": data["channel"], "ts": data["timestamp"], "name": data["name"]})
        return {}

    def api_reactions_remove(self, data: dict) -> dict:
        self.record("reaction", {"op": "remove", "channel": data["channel"], "ts": data["timestamp"], "name": data["name"]})
        return {}

    async def respond(self, request: web.Request) -> web.Response:
        if self.refusing():
            return web.Response(status=self.refuse_status, text="rate_limited", headers={"Retry-After": "1"})
        data = await request.json()
        self.record("respond", {"trigger": request.match_info["trigger"], "text": data["text"], "response_type": data.get("response_type")})
        return web.Response(text="ok")

    # --- Socket Mode ---

    async def socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.append(ws)
        await ws.send_str(json.dumps({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0PODBOT"}}))
        self.record("connected", {})
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                self.record("ack", json.loads(message.data))
        self.sockets.remove(ws)
        return ws

    def _envelope(self, kind: str, payload: dict) -> str:
        self.wait_for("connected")  # the client may see the handshake done before this side has noted the socket
        envelope_id = str(uuid.uuid4())
        data = json.dumps({"envelope_id": envelope_id, "type": kind, "payload": payload, "accepts_response_payload": kind != "events_api"})
        self.call(self.sockets[-1].send_str(data))
        return envelope_id

    # --- what a test says ---

    def event_body(self, event: dict) -> dict:
        return {
            "token": "unused",
            "team_id": TEAM,
            "api_app_id": "A0PODBOT",
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev{uuid.uuid4().hex[:10]}",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
        }

    def message(self, channel: str, user: str, text: str, thread_ts: str | None = None) -> dict:
        """The event of `user` writing `text`: an app_mention in a channel (C…), a message in a DM (D…)."""
        event: dict[str, Any] = {
            "user": user,
            "text": text,
            "ts": f"{int(time.time())}.{next(self._ts):06d}",
            "channel": channel,
            "team": TEAM,
        }
        if channel.startswith("D"):
            event |= {"type": "message", "channel_type": "im"}
        elif f"<@{BOT_USER}>" in text:
            event |= {"type": "app_mention"}
        else:
            event |= {"type": "message", "channel_type": "channel"}
        if thread_ts:
            event["thread_ts"] = thread_ts
        return event

    def send_event(self, event: dict) -> dict:
        self._envelope("events_api", self.event_body(event))
        return event

    def command_body(self, channel: str, user: str, text: str) -> dict:
        trigger = uuid.uuid4().hex
        return {
            "token": "unused",
            "team_id": TEAM,
            "team_domain": "acme",
            "channel_id": channel,
            "channel_name": "directmessage" if channel.startswith("D") else "ops",
            "user_id": user,
            "user_name": user.lower(),
            "command": "/podbot",
            "text": text,
            "api_app_id": "A0PODBOT",
            "response_url": f"{self.url}/respond/{trigger}",
            "trigger_id": trigger,
        }

    def press(self, channel: str, user: str, value: object, message_ts: str = "1.000001", action_id: str = "podbot_0") -> str:
        """`user` presses a button carrying `value` under the bot's message `message_ts`; returns the envelope id once acked."""
        payload = {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "team_id": TEAM},
            "api_app_id": "A0PODBOT",
            "token": "unused",
            "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": False},
            "trigger_id": uuid.uuid4().hex,
            "team": {"id": TEAM, "domain": "acme"},
            "channel": {"id": channel, "name": "ops"},
            "message": {"type": "message", "user": BOT_USER, "ts": message_ts, "text": "…"},
            "actions": [{"action_id": action_id, "block_id": "b1", "type": "button", "value": value, "action_ts": str(time.time())}],
        }
        envelope_id = self._envelope("interactive", payload)
        self.wait_for("ack", lambda d: d.get("envelope_id") == envelope_id)
        return envelope_id

    def slash_command(self, channel: str, user: str, text: str) -> str:
        """`user` types `/podbot text`; returns the command's trigger id."""
        body = self.command_body(channel, user, text)
        envelope_id = self._envelope("slash_commands", body)
        self.wait_for("ack", lambda d: d.get("envelope_id") == envelope_id)
        return body["trigger_id"]


def post_signed(url: str, secret: str, body: bytes, content_type: str, timestamp: int | None = None) -> int:
    """POST as Slack's HTTP Events API does: X-Slack-Signature = v0=HMAC-SHA256(secret, "v0:{ts}:{body}"). Returns the status."""
    ts = str(timestamp or int(time.time()))
    signature = "v0=" + hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def form(body: dict) -> bytes:
    return urllib.parse.urlencode(body).encode()
