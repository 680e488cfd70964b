"""Discord, through discord.py: the gateway for DMs and mentions, application (slash) commands synced at start.

Every built-in command and every skill is a slash command; a skill's options
are typed from its manifest's JSON Schema. A slash command is deferred at once
("thinking…") and answered by follow-ups as its replies arrive, the result
when the job ends (`Reply.thread` is `interaction:<id>`); if deferring fails
(Discord's 3 s went by on a loaded host) the command still counts and its
answers go to the channel. A message gets its answers in the channel or
thread it came from, replying to it (`Reply.thread` is its message id).
Identities are `discord:<user id>`, conversations `discord:<channel id>` (a
thread is a channel). A reply's actions (approval notices) are buttons
(message components); a press is the command it carries, said by whoever
pressed it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket

from adapters import credentials, format
from adapters.base import AuthError, NetworkAdapter, settings_from
from bot.flow import Action, Message, Reply, action_command
from bot.skill import Skill
from bot.store.outbox import RetryLater, Undeliverable

log = logging.getLogger(__name__)

NO_PINGS = discord.AllowedMentions.none()
_NAME = re.compile(r"^[-_a-z0-9]{1,32}$")  # what Discord accepts as a command or option name (ASCII subset)
_TYPES: dict[str, type] = {"integer": int, "number": float, "boolean": bool}
MAX_CHOICES = 25


@dataclass(frozen=True)
class DiscordSettings:
    api_base_url: str = "https://discord.com/api/v10"
    gateway_url: str = "wss://gateway.discord.gg/"
    message_content_intent: bool = False
    command_guilds: tuple[int, ...] = ()  # sync commands to these guilds (instant) instead of globally

    @classmethod
    def from_config(cls, data: dict) -> DiscordSettings:
        rest = {k: v for k, v in data.items() if k != "command_guilds"}
        return settings_from(cls, rest, command_guilds=tuple(data.get("command_guilds", ())))


@dataclass(frozen=True)
class Option:
    """One slash-command option and how its value goes back into the text the pipeline reads."""

    name: str
    annotation: Any
    required: bool
    description: str
    choices: list = field(default_factory=list)
    keyword: bool = True  # skills take key=value; built-ins take their arguments as typed


class DiscordAdapter(NetworkAdapter):
    platform = "discord"
    style = format.DISCORD
    TICK = 8.0  # "typing…" shows for 10 s

    def __init__(self, settings: DiscordSettings, token: str) -> None:
        super().__init__()
        credentials.protect(token)
        self.settings = settings
        self._token = token
        self._client: discord.Client | None = None
        self._tree: app_commands.CommandTree | None = None
        self._interactions: dict[str, discord.Interaction] = {}  # id -> a deferred slash command awaiting follow-ups

    async def serve(self) -> None:
        s = self.settings
        # discord.py has no endpoint option; these class attributes are process-wide, and there is one Discord adapter.
        discord.http.Route.BASE = s.api_base_url.rstrip("/")
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(s.gateway_url)
        # Podbot never joins voice: skip discord.py's warnings about the voice libraries it would need.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        intents = discord.Intents.default()
        intents.message_content = s.message_content_intent
        # Rate limits up to 30 s (the least discord.py allows) are slept through by the SDK; longer ones go back to the outbox.
        client = discord.Client(intents=intents, max_ratelimit_timeout=30.0)
        tree = self._tree = app_commands.CommandTree(client)
        for command in self._commands():
            tree.add_command(command)
        client.event(self.on_message)
        client.event(self.on_interaction)

        @client.event
        async def on_ready() -> None:
            self.ready(f"{client.user} (message content intent {'on' if s.message_content_intent else 'off'})")

        try:
            await client.login(self._token)
        except discord.LoginFailure:
            await client.close()
            raise AuthError(
                "Discord rejected the bot token (DISCORD_BOT_TOKEN); copy it again from the developer portal's Bot page"
            ) from None
        self._client = client
        connection = asyncio.create_task(client.connect(reconnect=True))
        try:
            await self._sync(tree)
            stop = asyncio.create_task(self.stopping.wait())
            await asyncio.wait({connection, stop}, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            if connection.done():
                connection.result()  # raises why the gateway gave up
        except discord.PrivilegedIntentsRequired:
            raise AuthError(
                "Discord refused the message content intent: enable it on the developer portal's Bot page,"
                " or set platforms.discord.message_content_intent: false"
            ) from None
        finally:
            self.connected.clear()
            await client.close()
            connection.cancel()
            await asyncio.gather(connection, return_exceptions=True)

    async def register_commands(self) -> None:
        if self._tree is None:
            return
        self._tree.clear_commands(guild=None)
        for command in self._commands():
            self._tree.add_command(command)
        await self._sync(self._tree)

    async def _sync(self, tree: app_commands.CommandTree) -> None:
        try:
            if self.settings.command_guilds:
                for guild_id in self.settings.command_guilds:
                    guild = discord.Object(guild_id)
                    tree.copy_global_to(guild=guild)
                    await tree.sync(guild=guild)
            else:
                await tree.sync()
        except discord.HTTPException as exc:
            # Messages still work without slash commands (e.g. the bot was invited without applications.commands).
            log.error("discord: registering the slash commands failed: %s", exc)

    # --- slash commands ---

    def _commands(self) -> list[app_commands.Command]:
        assert self.bot is not None
        found = []
        builtin = {c.name for c in self.bot.commands()}
        for command in self.bot.commands():
            options = []
            if command.args:
                options = [Option("args", str, not command.args.startswith("["), command.args, keyword=False)]
            found.append(self._command(command.name, command.help, options))
        for manifest in self.bot.skills():
            if manifest.name in builtin or not _NAME.match(manifest.name):
                log.warning("discord: skill %s cannot be a slash command (name); it still answers in messages", manifest.name)
                continue
            found.append(self._command(manifest.name, manifest.description, skill_options(manifest)))
        return found

    def _command(self, name: str, description: str, options: list[Option]) -> app_commands.Command:
        async def callback(interaction: discord.Interaction, **values: Any) -> None:
            await self._on_command(interaction, command_text(name, options, values))

        # discord.py reads a command's options from its callback's signature: give it one built from the options.
        params = [inspect.Parameter("interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=discord.Interaction)]
        for option in sorted(options, key=lambda o: not o.required):  # Discord wants required options first
            default = inspect.Parameter.empty if option.required else None
            params.append(inspect.Parameter(option.name, inspect.Parameter.KEYWORD_ONLY, annotation=option.annotation, default=default))
        callback.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        callback = app_commands.describe(**{o.name: o.description[:100] for o in options})(callback)
        choices = {o.name: [app_commands.Choice(name=str(c)[:100], value=c) for c in o.choices] for o in options if o.choices}
        if choices:
            callback = app_commands.choices(**choices)(callback)
        return app_commands.Command(name=name, description=(description or name)[:100], callback=callback)

    async def _on_command(self, interaction: discord.Interaction, text: str) -> None:
        self._interactions = {key: i for key, i in self._interactions.items() if not i.is_expired()}
        thread: str | None = f"interaction:{interaction.id}"
        try:
            await interaction.response.defer(thinking=True)  # within Discord's 3 s; the answers are follow-ups
            self._interactions[str(interaction.id)] = interaction
        except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
            # The interaction is lost (too late: 10062 Unknown interaction), the command is not: answer in the channel.
            thread = None
            log.warning(
                "discord: %s from %s in channel %s could not be acknowledged (%s); its answers go to the channel",
                *(text.split(" ", 1)[0], interaction.user.id, interaction.channel_id, f"{type(exc).__name__}: {exc}"),
            )
        self.deliver(_pressed(interaction, text, thread, str(interaction.id)))

    # --- messages ---

    async def on_message(self, message: discord.Message) -> None:
        me = self._client.user if self._client else None
        if me is None or message.author.bot:
            return
        direct = message.guild is None
        mentioned = any(user.id == me.id for user in message.mentions)
        resolved = message.reference.resolved if message.reference else None
        replied = isinstance(resolved, discord.Message) and resolved.author.id == me.id
        if not (direct or mentioned or replied):
            return
        text = re.sub(rf"<@!?{me.id}>", " ", message.content)
        self.deliver(
            Message(
                platform=self.platform,
                conversation=f"discord:{message.channel.id}",
                user=f"discord:{message.author.id}",
                text=" ".join(text.split()),
                user_name=message.author.display_name,
                thread=str(message.id),
                is_direct=direct,
                message_id=str(message.id),
            )
        )

    # --- buttons ---

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """A button (component interaction): its custom_id is the command it says, as whoever pressed it."""
        if interaction.type != discord.InteractionType.component:
            return  # slash commands are the command tree's
        data: dict[str, Any] = dict(interaction.data or {})  # a union of typed dicts; only a component's has custom_id
        custom_id = data.get("custom_id")
        command = action_command(custom_id)
        if command is None:
            log.warning("discord: ignored a button press with an unknown payload %r", str(custom_id)[:80])
        try:
            await interaction.response.defer()  # whatever it carried: the client stops waiting
        except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
            log.warning("discord: a button press could not be acknowledged (%s: %s); it still counts", type(exc).__name__, exc)
        if command is None or interaction.channel_id is None:
            return
        thread = str(interaction.message.id) if interaction.message else None
        self.deliver(_pressed(interaction, command, thread, f"button:{interaction.id}"))

    # --- outbound ---

    async def post(self, reply: Reply, text: str, index: int) -> None:
        assert self._client is not None
        thread = reply.thread or ""
        interaction = self._interactions.get(thread.removeprefix("interaction:")) if thread.startswith("interaction:") else None
        buttons = _buttons(reply.actions) if index == 0 and reply.actions else discord.utils.MISSING
        try:
            if interaction is not None and not interaction.is_expired():
                await interaction.followup.send(text, allowed_mentions=NO_PINGS, view=buttons)
                if buttons:
                    buttons.stop()
                return
            channel = self._client.get_partial_messageable(_channel_id(reply))
            if index == 0 and thread.isdigit():
                reference = discord.MessageReference(message_id=int(thread), channel_id=_channel_id(reply), fail_if_not_exists=False)
                await channel.send(text, allowed_mentions=NO_PINGS, reference=reference, view=buttons)
            else:
                await channel.send(text, allowed_mentions=NO_PINGS, view=buttons)
            if buttons:
                buttons.stop()  # presses come to on_interaction, never to this view: discord.py need not keep it
        except discord.RateLimited as exc:
            raise RetryLater(exc.retry_after, "Discord rate limit") from exc
        except (discord.Forbidden, discord.NotFound) as exc:  # no access to the channel, or it is gone
            raise Undeliverable(f"Discord: {exc.status} {exc.text}") from exc
        except discord.HTTPException as exc:
            if exc.status == 429:  # discord.py gave up after its own retries
                raise RetryLater(1.0, "Discord rate limit") from exc
            raise

    async def job_running(self, reply: Reply) -> None:
        assert self._client is not None
        await self._client.get_partial_messageable(_channel_id(reply)).typing()


def _buttons(actions: tuple[Action, ...]) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for action in actions:
        style = discord.ButtonStyle.danger if action.command.startswith("/deny") else discord.ButtonStyle.success
        view.add_item(discord.ui.Button(label=action.label, custom_id=action.command, style=style))
    return view


def _channel_id(reply: Reply) -> int:
    return int(reply.conversation.split(":", 1)[1])


def skill_options(manifest: Skill) -> list[Option]:
    """Typed options from the manifest's JSON Schema parameters."""
    options = []
    for name, prop in manifest.properties.items():
        if not _NAME.match(name):
            continue
        kind = prop.get("type")
        annotation: Any = _TYPES.get(str(kind), str)
        low, high = (
            (prop.get("minimum"), prop.get("maximum")) if kind in ("integer", "number") else (prop.get("minLength"), prop.get("maxLength"))
        )
        if low is not None or high is not None:
            cast = float if kind == "number" else int
            annotation = app_commands.Range[annotation, None if low is None else cast(low), None if high is None else cast(high)]
        choices = [c for c in prop.get("enum", []) if isinstance(c, str | int | float)][:MAX_CHOICES]
        options.append(Option(name, annotation, name in manifest.required, prop.get("description") or name, choices))
    return options


def command_text(name: str, options: list[Option], values: dict[str, Any]) -> str:
    """What the person would have typed: `/disk_usage path=/var`, `/jobs all`."""
    parts = [f"/{name}"]
    for option in options:
        value = values.get(option.name)
        if value is None:
            continue
        value = str(value).lower() if isinstance(value, bool) else str(value)
        parts.append(f"{option.name}={shlex.quote(value)}" if option.keyword else value)
    return " ".join(parts)


def _pressed(interaction: discord.Interaction, text: str, thread: str | None, message_id: str) -> Message:
    """What a slash command or a button press says, as whoever used it, as podbot's Message."""
    return Message(
        platform="discord",
        conversation=f"discord:{interaction.channel_id}",
        user=f"discord:{interaction.user.id}",
        text=text,
        user_name=interaction.user.display_name,
        thread=thread,
        is_direct=interaction.guild_id is None,
        message_id=message_id,
    )
