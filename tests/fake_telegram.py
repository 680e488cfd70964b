"""A fake Telegram Bot API: enough for python-telegram-bot to log in, long-poll updates, register commands and send messages.

Tests push updates with `message()` and `button()` (an inline keyboard press); what the bot sends is recorded as
("send", {chat_id, text, reply_to, parse_mode, topic, buttons}), ("action", {chat_id, action, topic}) and
("answer", {id}) (answerCallbackQuery), `topic` being the forum topic (message_thread_id) it went to, or None,
`buttons` the inline keyboard's [text, callback_data] pairs.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import web

from tests.fake_http import FakeServer, params

BOT = {"id": 7000, "is_bot": True, "first_name": "Podbot", "username": "podbot_test_bot", "can_join_groups": True}


class FakeTelegram(FakeServer):
    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        self.updates: list[dict] = []
        self._new_update: asyncio.Condition | None = None
        self._message_ids = iter(range(1, 10**9))

    @property
    def base_url(self) -> str:
        return f"{self.url}/bot"

    def app(self) -> web.Application:
        self._new_update = asyncio.Condition()
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _envelope_error(401, "Unauthorized")
        method = request.match_info["method"].lower()
        data = await params(request)
        handler = getattr(self, f"api_{method}", None)
        if handler is None:
            return _envelope_error(404, f"Not Found: method {method}")
        return await handler(data)

    # --- API methods ---

    async def api_getme(self, data: dict) -> web.Response:
        return _ok(BOT)

    async def api_deletewebhook(self, data: dict) -> web.Response:
        return _ok(True)

    async def api_setwebhook(self, data: dict) -> web.Response:
        self.record("webhook", data)
        return _ok(True)

    async def api_setmycommands(self, data: dict) -> web.Response:
        self.record("commands", data)
        return _ok(True)

    async def api_getupdates(self, data: dict) -> web.Response:
        assert self._new_update is not None
        offset = int(data.get("offset") or 0)
        timeout = float(data.get("timeout") or 0)

        def pending() -> list[dict]:
            return [u for u in self.updates if u["update_id"] >= offset]

        async with self._new_update:
            try:
                await asyncio.wait_for(self._new_update.wait_for(lambda: bool(pending())), timeout)
            except TimeoutError:
                pass
        return _ok(pending())

    async def api_sendchataction(self, data: dict) -> web.Response:
        self.record("action", {"chat_id": int(data["chat_id"]), "action": data["action"], "topic": _topic(data)})
        return _ok(True)

    async def api_sendmessage(self, data: dict) -> web.Response:
        if self.refusing():
            if self.refuse_status == 429:
                return _envelope_error(429, "Too Many Requests: retry after 1", {"retry_after": 1})
            return _envelope_error(self.refuse_status, "Internal Server Error")
        chat_id = int(data["chat_id"])
        reply_to = (data.get("reply_parameters") or {}).get("message_id")
        markup = data.get("reply_markup")
        keyboard = (json.loads(markup) if isinstance(markup, str) else markup or {}).get("inline_keyboard", [])
        buttons = [[b["text"], b["callback_data"]] for row in keyboard for b in row]
        sent = {"chat_id": chat_id, "text": data["text"], "reply_to": reply_to, "parse_mode": data.get("parse_mode"), "topic": _topic(data)}
        self.record("send", {**sent, "buttons": buttons})
        sent = {"message_id": next(self._message_ids), "date": int(time.time()), "chat": _chat(chat_id), "from": BOT, "text": data["text"]}
        return _ok(sent)

    async def api_answercallbackquery(self, data: dict) -> web.Response:
        self.record("answer", {"id": data["callback_query_id"]})
        return _ok(True)

    # --- what a test says ---

    def button(self, chat_id: int, user_id: int, data: str, message_id: int = 1) -> str:
        """`user_id` presses a button carrying `data` under the bot's message `message_id`; returns the query id."""
        query_id = f"q{next(self._message_ids)}"
        message = {"message_id": message_id, "date": int(time.time()), "chat": _chat(chat_id), "from": BOT, "text": "…"}
        query = {"id": query_id, "from": {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"}, "chat_instance": "1"}
        self._push({**query, "message": message, "data": data}, "callback_query")
        return query_id

    def message(
        self, chat_id: int, user_id: int, text: str, chat_type: str = "private", reply_to_bot: bool = False, topic: int | None = None
    ) -> int:
        """Someone writes `text` (in forum topic `topic` of a forum supergroup, if given); returns the new message's id."""
        message_id = next(self._message_ids)
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": _chat(chat_id, chat_type),
            "from": {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"},
            "text": text,
            "entities": _entities(text),
        }
        if topic is not None:
            message |= {"message_thread_id": topic, "is_topic_message": True}
            message["chat"]["is_forum"] = True
        if reply_to_bot:
            message["reply_to_message"] = {
                "message_id": 1,
                "date": int(time.time()),
                "chat": _chat(chat_id, chat_type),
                "from": BOT,
                "text": "…",
            }

        self._push(message, "message")
        return message_id

    def _push(self, item: dict, kind: str) -> None:
        async def push() -> None:
            assert self._new_update is not None
            async with self._new_update:
                self.updates.append({"update_id": len(self.updates) + 1, kind: item})
                self._new_update.notify_all()

        self.call(push())

    def sent(self, chat_id: int) -> list[dict]:
        return self.recorded("send", lambda d: d["chat_id"] == chat_id)


def _topic(data: dict) -> int | None:
    topic = data.get("message_thread_id")
    return None if topic is None else int(topic)


def _entities(text: str) -> list[dict]:
    entities = []
    if text.startswith("/"):
        entities.append({"type": "bot_command", "offset": 0, "length": len(text.split()[0])})
    at = text.find("@" + BOT["username"])
    if at >= 0 and not text.startswith("/"):
        entities.append({"type": "mention", "offset": at, "length": len(BOT["username"]) + 1})
    return entities


def _chat(chat_id: int, chat_type: str = "private") -> dict:
    if chat_type == "private":
        return {"id": chat_id, "type": "private", "first_name": f"User{chat_id}"}
    return {"id": chat_id, "type": chat_type, "title": f"Group {chat_id}"}


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _envelope_error(status: int, description: str, parameters: dict | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)
