"""The gateway's WebSocket protocol, version 1: JSON text frames, one object each (docs/gateway-protocol.md).

Client to server: `auth` (the first frame, and only there), `message`, `ping`.
Server to client: `welcome`, `ack`, `reply`, `pong`. Anything wrong closes the
connection with one of the close codes below, so a client always learns why.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

from bot.flow import Reply

VERSION = 1
MAX_ID = 64  # characters of a client's message id: it only correlates an ack


class Close(enum.IntEnum):
    """Why the server closed a connection: the standard codes where one fits, else 4000 + the HTTP status it resembles."""

    GOING_AWAY = 1001  # the gateway stops
    BINARY = 1003  # only text frames are spoken
    TOO_BIG = 1009  # a frame over gateway.max_frame
    BAD_FRAME = 4400  # not JSON, not an object, a field missing or of the wrong type, `auth` twice
    UNAUTHORIZED = 4401  # the first frame was not `auth` with a valid token
    FORBIDDEN = 4403  # the token has no `chat` scope
    UNKNOWN_TYPE = 4404  # a frame type this version does not know
    AUTH_TIMEOUT = 4408  # no `auth` frame within gateway.auth_timeout
    BAD_VERSION = 4426  # `auth` asked for a protocol version this server does not speak
    TOO_MANY = 4429  # too many connections from this address still waiting to authenticate


class FrameError(Exception):
    """A frame the server will not take: the connection closes with `code`."""

    def __init__(self, code: Close, reason: str):
        super().__init__(reason)
        self.code = code


@dataclass(frozen=True)
class Auth:
    """A program sends its `token`; a web page, whose session cookie came with the upgrade, sends the session's `csrf`."""

    token: str | None
    csrf: str | None
    version: int


@dataclass(frozen=True)
class Send:
    """A message from the person the token speaks for; `id` is the client's, echoed in the ack."""

    id: str
    text: str


@dataclass(frozen=True)
class Ping:
    """An application-level ping, for clients (browsers) that cannot see WebSocket pings."""


Frame = Auth | Send | Ping


def _field(data: dict[str, Any], name: str, kind: type, limit: int | None = None) -> Any:
    value: Any = data.get(name)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise FrameError(Close.BAD_FRAME, f"`{name}` must be a {kind.__name__}")
    if limit is not None and isinstance(value, str) and len(value) > limit:
        raise FrameError(Close.BAD_FRAME, f"`{name}` is longer than {limit}")
    return value


def parse(text: str) -> Frame:
    """One client frame, or FrameError."""
    try:
        data = json.loads(text)
    except ValueError:
        raise FrameError(Close.BAD_FRAME, "a frame is one JSON object") from None
    if not isinstance(data, dict):
        raise FrameError(Close.BAD_FRAME, "a frame is one JSON object")
    kind = data.get("type")
    if kind == "auth":
        version = _field(data, "v", int) if "v" in data else VERSION
        if "csrf" in data and "token" not in data:
            return Auth(None, _field(data, "csrf", str), version)
        return Auth(_field(data, "token", str), None, version)
    if kind == "message":
        return Send(_field(data, "id", str, MAX_ID), _field(data, "text", str))
    if kind == "ping":
        return Ping()
    raise FrameError(Close.UNKNOWN_TYPE, f"unknown frame type {str(kind)[:40]!r}")


def _frame(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, **fields}, ensure_ascii=False)


def welcome(identity: str, conversation: str, heartbeat: float) -> str:
    return _frame("welcome", v=VERSION, identity=identity, conversation=conversation, heartbeat=heartbeat)


def ack(message_id: str) -> str:
    return _frame("ack", id=message_id)


def reply(r: Reply) -> str:
    actions = [{"label": a.label, "command": a.command} for a in r.actions]
    return _frame("reply", conversation=r.conversation, text=r.text, code=r.code, thread=r.thread, job_id=r.job_id, actions=actions)


def pong() -> str:
    return _frame("pong")


def auth(token: str) -> str:
    return _frame("auth", token=token, v=VERSION)


def message(message_id: str, text: str) -> str:
    return _frame("message", id=message_id, text=text)


def ping() -> str:
    return _frame("ping")
