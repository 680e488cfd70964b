"""Slack, through slack-bolt: Socket Mode (app token) by default, the HTTP Events API (signing secret) as an option.

Channels: messages that mention the bot (`app_mention`). Direct messages:
every message. Replies go to the thread of the message that asked
(`Reply.thread` is its thread_ts), and an hourglass reaction sits on that
message while its job runs. The slash command `/podbot <command or skill> …`
is acknowledged at once; its answers go to the command's response_url (which
works in any channel) and, once that is spent, to the channel. A reply's
actions (approval notices) are Block Kit buttons; a press (block_actions) is
the command it carries, said by whoever pressed it, in that message's thread.
Identities are `slack:<team id>:<user id>`, conversations `slack:<channel id>`.
"""

from __future__ import annotations

import html
import logging
import re
import time
from dataclasses import dataclass, replace

from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from adapters import credentials, format
from adapters.base import AuthError, NetworkAdapter, settings_from
from bot.flow import Action, Message, Reply, action_command
from bot.store.outbox import RetryLater, Undeliverable

log = logging.getLogger(__name__)

# Errors after which a retry can never succeed: the reply is given up, not retried forever.
GONE = {"channel_not_found", "not_in_channel", "is_archived", "account_inactive", "invalid_auth"}
_AUTH_ERRORS = {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "not_allowed_token_type"}
_LINK = re.compile(r"<([^<>|]+)(?:\|[^<>]*)?>")
RUNNING_REACTION = "hourglass_flowing_sand"
# A response_url takes 5 messages within 30 minutes; keep a margin on the clock.
HOOK_USES, HOOK_SECONDS = 5, 25 * 60
# A users.info that failed (missing scope, rate limit, a deleted user) is not asked again for a while, for this many people.
NAME_RETRY, NAME_MISSES = 10 * 60.0, 1000


@dataclass(frozen=True)
class SlackSettings:
    api_base_url: str = "https://slack.com/api/"
    mode: str = "socket"  # or "http"
    command: str = "/podbot"
    http_listen: str = "0.0.0.0"
    http_port: int = 3000
    http_path: str = "/slack/events"

    @classmethod
    def from_config(cls, data: dict) -> SlackSettings:
        base = data.get("api_base_url", cls.api_base_url)
        # slack_sdk joins base_url + method name, so the base must end with a slash.
        return settings_from(cls, {k: v for k, v in data.items() if k != "api_base_url"}, api_base_url=base.rstrip("/") + "/")


@dataclass
class _ResponseUrl:
    url: str
    created: float
    uses: int = 0

    def usable(self) -> bool:
        return self.uses < HOOK_USES and time.monotonic() - self.created < HOOK_SECONDS


class _Misses:
    """Keys that failed lately: each is left alone for `seconds`; the oldest go first beyond `size`."""

    def __init__(self, seconds: float, size: int) -> None:
        self.seconds, self.size = seconds, size
        self._failed: dict[str, float] = {}  # key -> monotonic time of its failure, oldest first

    def recent(self, key: str) -> bool:
        failed = self._failed.get(key)
        return failed is not None and time.monotonic() - failed < self.seconds

    def add(self, key: str) -> None:
        self._failed.pop(key, None)
        self._failed[key] = time.monotonic()
        while len(self._failed) > self.size:
            del self._failed[next(iter(self._failed))]


class SlackAdapter(NetworkAdapter):
    platform = "slack"
    style = format.SLACK
    TICK = 30.0  # a reaction stays put; the tick only notices jobs whose result went elsewhere

    def __init__(self, settings: SlackSettings, bot_token: str, app_token: str | None, signing_secret: str | None) -> None:
        super().__init__()
        credentials.protect(bot_token, app_token, signing_secret)
        self.settings = settings
        self._bot_token = bot_token
        self._app_token = app_token
        self._signing_secret = signing_secret
        self._client: AsyncWebClient | None = None
        self._me = ""  # the bot's user id, to strip "<@U…>" from mentions
        self._names: dict[str, str] = {}
        self._unnamed = _Misses(NAME_RETRY, NAME_MISSES)  # users whose name lookup failed lately
        self._hooks: dict[str, _ResponseUrl] = {}  # "cmd:<trigger id>" -> the slash command's response_url
        self._reacted: set[int | None] = set()  # jobs whose asking message wears the running reaction

    async def serve(self) -> None:
        s = self.settings
        app = AsyncApp(token=self._bot_token, signing_secret=self._signing_secret or "")
        app.client.base_url = s.api_base_url
        try:
            auth = await app.client.auth_test()
        except SlackApiError as exc:
            raise _auth_error(exc, "bot token (SLACK_BOT_TOKEN)") from None
        self._client, self._me = app.client, auth["user_id"]
        app.event("app_mention")(self._on_mention)
        app.event("message")(self._on_message)
        app.command(s.command)(self._on_command)
        app.action(re.compile(".*"))(self._on_button)  # every block_actions press, so a strange one is logged, not left unanswered
        if s.mode == "http":
            await self._serve_http(app, f"{auth['user']} in {auth['team']} (http on {s.http_listen}:{s.http_port}{s.http_path})")
        else:
            await self._serve_socket(app, f"{auth['user']} in {auth['team']} (socket mode)")

    async def _serve_socket(self, app: AsyncApp, who: str) -> None:
        # The SDK retries a refused apps.connections.open forever; ask once ourselves so a bad app token is a clear error.
        assert self._app_token is not None  # socket mode is chosen only with an app token (adapters.configured)
        try:
            opened = await app.client.apps_connections_open(app_token=self._app_token)
        except SlackApiError as exc:
            raise _auth_error(exc, "app-level token (SLACK_APP_TOKEN, scope connections:write)") from None
        handler = AsyncSocketModeHandler(app, self._app_token)  # starts tasks at once: only create it to use it
        handler.client.wss_uri = opened["url"]
        try:
            await handler.connect_async()
            self.ready(who)
            await self.stopping.wait()
        finally:
            self.connected.clear()
            await handler.close_async()

    async def _serve_http(self, app: AsyncApp, who: str) -> None:
        s = self.settings
        # Bolt verifies each request's signature with the signing secret before any listener sees it.
        runner = web.AppRunner(app.web_app(path=s.http_path, port=s.http_port))
        await runner.setup()
        try:
            await web.TCPSite(runner, s.http_listen, s.http_port).start()
            self.ready(who)
            await self.stopping.wait()
        finally:
            self.connected.clear()
            await runner.cleanup()

    # --- inbound ---

    async def _on_mention(self, event: dict, body: dict) -> None:
        self._deliver(event, body, direct=False)

    async def _on_message(self, event: dict, body: dict) -> None:
        # Channel messages arrive as app_mention; here only people's own new direct messages count.
        if event.get("channel_type") == "im" and not event.get("subtype") and not event.get("bot_id"):
            self._deliver(event, body, direct=True)

    def _deliver(self, event: dict, body: dict, direct: bool) -> None:
        if "user" not in event:
            return
        team = event.get("team") or body.get("team_id", "")
        channel, ts = event["channel"], event["ts"]
        message = Message(
            platform=self.platform,
            conversation=f"slack:{channel}",
            user=f"slack:{team}:{event['user']}",
            text=self._plain(event.get("text", "")),
            thread=event.get("thread_ts") or ts,
            is_direct=direct,
            message_id=f"{channel}:{ts}",
        )
        self.deliver(self._named(message, event["user"]))

    async def _on_command(self, ack: AsyncAck, command: dict) -> None:
        await ack()  # within Slack's 3 s; the answers follow through the outbox
        thread = f"cmd:{command['trigger_id']}"
        if command.get("response_url"):
            self._hooks = {key: hook for key, hook in self._hooks.items() if hook.usable()}
            self._hooks[thread] = _ResponseUrl(command["response_url"], time.monotonic())
        channel = command["channel_id"]
        message = Message(
            platform=self.platform,
            conversation=f"slack:{channel}",
            user=f"slack:{command['team_id']}:{command['user_id']}",
            text=self._command_text(command.get("text", "")),
            user_name=command.get("user_name", ""),
            thread=thread,
            is_direct=channel.startswith("D"),
            message_id=command["trigger_id"],
        )
        self.deliver(self._named(message, command["user_id"]))

    async def _on_button(self, ack: AsyncAck, body: dict, action: dict) -> None:
        """A Block Kit button (block_actions): its value is the command it says, as whoever pressed it."""
        command = action_command(action.get("value"))
        user, channel = body.get("user") or {}, body.get("channel") or {}
        team = user.get("team_id") or (body.get("team") or {}).get("id")
        known = all(isinstance(v, str) for v in (user.get("id"), channel.get("id"), team))
        if command is None or not known:
            log.warning("slack: ignored a button press with an unknown payload %r", str(action.get("value"))[:80])
        await ack()  # whatever it carried: Slack wants an answer within 3 s
        if command is None or not known:
            return
        posted = body.get("message") or {}
        message = Message(
            platform=self.platform,
            conversation=f"slack:{channel['id']}",
            user=f"slack:{team}:{user['id']}",
            text=command,
            thread=thread if isinstance(thread := posted.get("thread_ts") or posted.get("ts"), str) else None,
            is_direct=channel["id"].startswith("D"),
            message_id=f"button:{body.get('trigger_id') or action.get('action_ts')}",
        )
        self.deliver(self._named(message, user["id"]))

    def _command_text(self, text: str) -> str:
        """`/podbot jobs all` -> `/jobs all`, `/podbot say hi` -> `/say hi`, `/podbot df /` -> `df /`, `/podbot` -> `/help`."""
        assert self.bot is not None
        text = self._plain(text)
        first = text.split(" ", 1)[0].lower()
        if not text:
            return "/help"
        if first in {c.name for c in self.bot.commands()} | {s.name for s in self.bot.skills()}:
            return "/" + text
        return text

    def _plain(self, text: str) -> str:
        """Slack's markup back to what the person typed: no mention of the bot, links as their URL, &amp; as &."""
        text = text.replace(f"<@{self._me}>", " ")
        text = _LINK.sub(lambda m: m.group(0) if m.group(1)[0] in "@#!" else m.group(1), text)
        return " ".join(html.unescape(text).split())

    async def _named(self, message: Message, user: str) -> Message:
        """The message with the person's display name (Slack events carry only ids); looked up in the inbox's turn, so order holds."""
        if user not in self._names and not self._unnamed.recent(user) and self._client is not None:
            try:
                info = (await self._client.users_info(user=user))["user"]
                self._names[user] = info.get("profile", {}).get("display_name") or info.get("real_name") or info.get("name", "")
            except Exception as exc:  # a name is nice to have; the message still counts
                self._unnamed.add(user)
                log.info("slack: no display name for %s (%s); not asking again for %.0f min", user, exc, self._unnamed.seconds / 60)
        return replace(message, user_name=self._names.get(user) or message.user_name)

    # --- outbound ---

    async def post(self, reply: Reply, text: str, index: int) -> None:
        assert self._client is not None
        hook = self._hooks.get(reply.thread or "")
        blocks = _blocks(text, reply.actions) if index == 0 and reply.actions else None
        if hook is not None and hook.usable():
            hook.uses += 1
            response = await AsyncWebhookClient(hook.url).send(text=text, blocks=blocks, response_type="in_channel")
            if response.status_code == 429:
                raise RetryLater(_retry_after(response.headers), "Slack rate limit")
            if response.status_code != 200:
                raise ConnectionError(f"Slack response_url answered {response.status_code}: {response.body[:200]}")
            return
        thread = reply.thread if reply.thread and not reply.thread.startswith("cmd:") else None
        try:
            await self._client.chat_postMessage(
                channel=_channel(reply), text=text, blocks=blocks, thread_ts=thread, mrkdwn=True, unfurl_links=False, unfurl_media=False
            )
        except SlackApiError as exc:
            if exc.response.status_code == 429:
                raise RetryLater(_retry_after(exc.response.headers), "Slack rate limit") from exc
            if exc.response.get("error") in GONE:
                raise Undeliverable(f"Slack: {exc.response.get('error')}") from exc
            raise

    async def job_running(self, reply: Reply) -> None:
        if self._client is not None and reply.thread and not reply.thread.startswith("cmd:") and reply.job_id not in self._reacted:
            self._reacted.add(reply.job_id)
            await self._client.reactions_add(channel=_channel(reply), timestamp=reply.thread, name=RUNNING_REACTION)

    async def job_ended(self, reply: Reply) -> None:
        if self._client is not None and reply.job_id in self._reacted:
            self._reacted.discard(reply.job_id)
            await self._client.reactions_remove(channel=_channel(reply), timestamp=reply.thread, name=RUNNING_REACTION)


def _blocks(text: str, actions: tuple[Action, ...]) -> list[dict]:
    """The text as a section, and the reply's actions as buttons under it (`text` stays the notification's fallback)."""
    buttons = [
        {"type": "button", "text": {"type": "plain_text", "text": a.label}, "action_id": f"podbot_{i}", "value": a.command}
        for i, a in enumerate(actions)
    ]
    return [{"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}, {"type": "actions", "elements": buttons}]


def _channel(reply: Reply) -> str:
    return reply.conversation.split(":", 1)[1]


def _retry_after(headers: dict) -> float:
    for name, value in headers.items():
        if name.lower() == "retry-after":
            return float(value[0] if isinstance(value, list) else value)
    return 1.0


def _auth_error(exc: SlackApiError, what: str) -> Exception:
    error = exc.response.get("error", "")
    if error in _AUTH_ERRORS:
        return AuthError(f"Slack rejected the {what}: {error}")
    return exc
