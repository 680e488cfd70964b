"""A fake Discord: enough REST and gateway for discord.py to log in, sync commands, get messages and interactions, and answer.

Facts discord.py depends on: JSON responses must say `Content-Type:
application/json` exactly; a 429 without a `Via` header counts as a Cloudflare
ban; gateway frames are text (only binary frames are decompressed); on_ready
comes `guild_ready_timeout` (2 s) after the last GUILD_CREATE.
Recorded: ("message", {channel_id, content, reference, buttons}) (buttons: [label, custom_id] pairs), ("callback", {id, type}),
("followup", {token, content, buttons}), ("typing", {channel_id}), ("commands", {list}).
`slash(..., expired=True)` sends an interaction whose callback answers 404 Unknown interaction (10062),
as Discord does when the 3 s to acknowledge it have passed.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import time
from typing import Any

from aiohttp import WSMsgType, web

from tests.fake_http import FakeServer

DISCORD_EPOCH_MS = 1420070400000
APP = 5000
BOT = {"id": "5000", "username": "podbot", "discriminator": "0", "global_name": None, "avatar": None, "bot": True}
GUILD, CHANNEL = 6000, 6001
OPTION_TYPES = {str: 3, int: 4, bool: 5, float: 10}


def user(user_id: int) -> dict:
    return {"id": str(user_id), "username": f"user{user_id}", "discriminator": "0", "global_name": f"User {user_id}", "avatar": None}


def _json(data: Any, status: int = 200, headers: dict | None = None) -> web.Response:
    # Not web.json_response: it adds "; charset=utf-8", and discord.py then reads the body as plain text.
    return web.Response(body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json", **(headers or {})})


class FakeDiscord(FakeServer):
    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        self.gateways: list[web.WebSocketResponse] = []
        self._counter = itertools.count()
        self._seq = itertools.count(1)
        self._expired: set[str] = set()  # interaction ids whose callback comes too late

    def _snowflake(self) -> int:
        # Real snowflakes carry their creation time; discord.py takes an interaction's 15-minute lifetime from it.
        return (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22 | next(self._counter) % 4096

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/gateway", self.gateway)
        api = web.RouteTableDef()

        @api.get("/api/v10/users/@me")
        async def me(request: web.Request) -> web.Response:
            return self._authorized(request) or _json(BOT)

        @api.get("/api/v10/oauth2/applications/@me")
        async def application(request: web.Request) -> web.Response:
            info = {"id": str(APP), "name": "Podbot", "icon": None, "description": "", "bot_public": True}
            info |= {"bot_require_code_grant": False, "owner": user(1), "verify_key": "0" * 64, "flags": 0, "summary": ""}
            return self._authorized(request) or _json(info)

        @api.put("/api/v10/applications/{app}/commands")
        @api.put("/api/v10/applications/{app}/guilds/{guild}/commands")
        async def commands(request: web.Request) -> web.Response:
            body = await request.json()
            self.record("commands", {"guild": request.match_info.get("guild"), "commands": body})
            synced = [
                {**c, "id": str(self._snowflake()), "application_id": str(APP), "version": "1", "type": c.get("type", 1)} for c in body
            ]
            return _json(synced)

        @api.post("/api/v10/channels/{channel}/messages")
        async def message(request: web.Request) -> web.Response:
            if refused := self._refusal():
                return refused
            body = await request.json()
            channel = int(request.match_info["channel"])
            reference = (body.get("message_reference") or {}).get("message_id")
            buttons = [[c["label"], c["custom_id"]] for row in body.get("components") or [] for c in row["components"]]
            sent = {"channel_id": channel, "content": body["content"], "reference": reference, "mentions": body.get("allowed_mentions")}
            self.record("message", {**sent, "buttons": buttons})
            return _json(self._message(channel, BOT, body["content"]))

        @api.post("/api/v10/channels/{channel}/typing")
        async def typing(request: web.Request) -> web.Response:
            self.record("typing", {"channel_id": int(request.match_info["channel"])})
            return web.Response(status=204)

        @api.post("/api/v10/interactions/{id}/{token}/callback")
        async def callback(request: web.Request) -> web.Response:
            body = await request.json()
            self.record("callback", {"id": request.match_info["id"], "type": body["type"]})
            if request.match_info["id"] in self._expired:
                return _json({"message": "Unknown interaction", "code": 10062}, status=404)
            interaction = {"id": request.match_info["id"], "type": 2, "response_message_loading": body["type"] == 5}
            return _json({"interaction": interaction, "resource": {"type": body["type"]}})

        @api.post("/api/v10/webhooks/{app}/{token}")
        async def followup(request: web.Request) -> web.Response:
            if refused := self._refusal():
                return refused
            body = await request.json()
            buttons = [[c["label"], c["custom_id"]] for row in body.get("components") or [] for c in row["components"]]
            sent = {"token": request.match_info["token"], "content": body["content"], "mentions": body.get("allowed_mentions")}
            self.record("followup", {**sent, "buttons": buttons})
            return _json(self._message(CHANNEL, BOT, body["content"]))

        app.add_routes(api)
        return app

    def _authorized(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bot {self.token}":
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        return None

    def _refusal(self) -> web.Response | None:
        if not self.refusing():
            return None
        if self.refuse_status == 429:
            body = {"message": "You are being rate limited.", "retry_after": 0.2, "global": False}
            return _json(body, status=429, headers={"Via": "1.1 google", "Retry-After": "1"})
        return _json({"message": "500: Internal Server Error", "code": 0}, status=self.refuse_status)

    # --- gateway ---

    async def gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}}))
        async for frame in ws:
            if frame.type != WSMsgType.TEXT:
                continue
            payload = json.loads(frame.data)
            if payload["op"] == 1:
                await ws.send_str(json.dumps({"op": 11}))
            elif payload["op"] == 2:
                ready = {"v": 10, "user": BOT, "guilds": [{"id": str(GUILD), "unavailable": True}], "session_id": "fake-session"}
                ready |= {"resume_gateway_url": self.gateway_url, "application": {"id": str(APP), "flags": 0}, "private_channels": []}
                await ws.send_str(json.dumps({"op": 0, "t": "READY", "s": next(self._seq), "d": ready}))
                await ws.send_str(json.dumps({"op": 0, "t": "GUILD_CREATE", "s": next(self._seq), "d": _guild()}))
                self.gateways.append(ws)
                self.record("identify", {"intents": payload["d"]["intents"]})
        if ws in self.gateways:
            self.gateways.remove(ws)
        return ws

    def dispatch(self, event: str, data: dict) -> None:
        self.wait_for("identify")

        async def send() -> None:
            await self.gateways[-1].send_str(json.dumps({"op": 0, "t": event, "s": next(self._seq), "d": data}))

        self.call(send())

    # --- what a test says ---

    def _message(self, channel: int, author: dict, content: str, guild: bool = True, **extra: Any) -> dict:
        message = {"id": str(self._snowflake()), "channel_id": str(channel), "author": author, "content": content}
        message |= {"timestamp": dt.datetime.now(dt.UTC).isoformat(), "edited_timestamp": None, "tts": False, "mention_everyone": False}
        message |= {"mentions": [], "mention_roles": [], "attachments": [], "embeds": [], "pinned": False, "type": 0, "flags": 0}
        if guild and channel == CHANNEL:
            message["guild_id"] = str(GUILD)
        return message | extra

    def message(self, channel: int, user_id: int, content: str, mention: bool = False, reply_to_bot: bool = False) -> int:
        """`user_id` writes `content` in `channel` (CHANNEL is in the guild, any other id is a DM); returns the message id."""
        author = user(user_id)
        extra: dict[str, Any] = {}
        if mention:
            content = f"<@{BOT['id']}> {content}"
            extra["mentions"] = [BOT]
        if reply_to_bot:
            earlier = self._message(channel, BOT, "an earlier answer")
            extra |= {
                "type": 19,
                "message_reference": {"message_id": earlier["id"], "channel_id": str(channel)},
                "referenced_message": earlier,
            }
        message = self._message(channel, author, content, **extra)
        if "guild_id" in message:
            message["member"] = {"roles": [], "joined_at": message["timestamp"], "deaf": False, "mute": False, "nick": None, "flags": 0}
        self.dispatch("MESSAGE_CREATE", message)
        return int(message["id"])

    def press(self, channel: int, user_id: int, custom_id: object) -> str:
        """`user_id` presses a button carrying `custom_id` under a bot message in the guild channel; returns the interaction id."""
        interaction_id = str(self._snowflake())
        pressed = self._message(channel, BOT, "…", components=[])
        interaction: dict[str, Any] = {"id": interaction_id, "application_id": str(APP), "type": 3, "token": f"itoken-{interaction_id}"}
        interaction |= {"data": {"custom_id": custom_id, "component_type": 2}, "message": pressed, "version": 1}
        interaction |= {"channel_id": str(channel), "app_permissions": "0", "locale": "en-US", "entitlements": []}
        interaction |= {"guild_id": str(GUILD), "guild_locale": "en-US", "channel": {"id": str(channel), "type": 0, "guild_id": str(GUILD)}}
        interaction |= {"attachment_size_limit": 8 << 20}
        interaction["member"] = {"user": user(user_id), "roles": [], "joined_at": "2024-01-01T00:00:00+00:00", "deaf": False}
        interaction["member"] |= {"mute": False, "permissions": "0", "flags": 0}
        self.dispatch("INTERACTION_CREATE", interaction)
        return interaction_id

    def slash(self, channel: int, user_id: int, name: str, expired: bool = False, **options: Any) -> str:
        """`user_id` runs `/name` with `options`; returns the interaction token (follow-ups carry it)."""
        interaction_id = str(self._snowflake())
        if expired:
            self._expired.add(interaction_id)
        token = f"itoken-{interaction_id}"
        data = {"id": str(self._snowflake()), "name": name, "type": 1}
        data["options"] = [{"name": k, "type": OPTION_TYPES[type(v)], "value": v} for k, v in options.items()]
        interaction: dict[str, Any] = {"id": interaction_id, "application_id": str(APP), "type": 2, "data": data, "token": token}
        interaction |= {"version": 1, "channel_id": str(channel), "app_permissions": "0", "locale": "en-US", "entitlements": []}
        interaction |= {"attachment_size_limit": 8 << 20}
        if channel == CHANNEL:
            interaction |= {
                "guild_id": str(GUILD),
                "guild_locale": "en-US",
                "channel": {"id": str(channel), "type": 0, "guild_id": str(GUILD)},
            }
            interaction["member"] = {"user": user(user_id), "roles": [], "joined_at": "2024-01-01T00:00:00+00:00", "deaf": False}
            interaction["member"] |= {"mute": False, "permissions": "0", "flags": 0}
        else:
            interaction |= {"user": user(user_id), "channel": {"id": str(channel), "type": 1}}
        self.dispatch("INTERACTION_CREATE", interaction)
        return token


def _guild() -> dict:
    everyone = {"id": str(GUILD), "name": "@everyone", "permissions": "0", "position": 0, "color": 0, "hoist": False}
    everyone |= {"managed": False, "mentionable": False}
    channel = {"id": str(CHANNEL), "type": 0, "guild_id": str(GUILD), "name": "ops", "position": 0, "permission_overwrites": []}
    guild = {"id": str(GUILD), "name": "Acme", "icon": None, "owner_id": "1", "roles": [everyone], "emojis": [], "features": []}
    guild |= {"member_count": 3, "members": [], "channels": [channel], "threads": [], "presences": [], "voice_states": []}
    guild |= {"stickers": [], "unavailable": False, "large": False, "joined_at": "2024-01-01T00:00:00+00:00", "verification_level": 0}
    guild |= {"default_message_notifications": 0, "explicit_content_filter": 0, "mfa_level": 0, "afk_timeout": 300}
    return guild | {"system_channel_flags": 0, "premium_tier": 0, "preferred_locale": "en-US", "nsfw_level": 0}
