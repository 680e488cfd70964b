"""Telegram, through python-telegram-bot: long polling (or a webhook), /commands registered with setMyCommands.

Private chats: every message goes to the pipeline. Groups: commands, and
messages that mention the bot or reply to it. Identities are
`telegram:<user id>`, conversations `telegram:<chat id>`. A reply quotes the
message that asked and, in a forum topic, every part of it goes to that topic:
`Reply.thread` is the message id, or `<message id>@<topic id>` in a topic.
A reply's actions (approval notices) are an inline keyboard; a press
(callback_query) is the command it carries, said by whoever pressed it.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from dataclasses import dataclass

from telegram import (
    BotCommand,
    Chat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    MessageEntity,
    ReplyParameters,
    Update,
    User,
)
from telegram import Message as TelegramMessage
from telegram.constants import ChatAction, ChatType, ParseMode
from telegram.error import BadRequest, Forbidden, InvalidToken, RetryAfter
from telegram.ext import Application, ApplicationBuilder, CallbackQueryHandler, CommandHandler, ContextTypes, MessageHandler, filters

from adapters import credentials, format
from adapters.base import AuthError, NetworkAdapter
from bot.flow import Message, Reply, action_command
from bot.store.outbox import RetryLater, Undeliverable

log = logging.getLogger(__name__)

# Opt in to PTB's coming default (time periods as timedelta); otherwise PTB warns on every flood-control answer.
os.environ.setdefault("PTB_TIMEDELTA", "true")

_COMMAND_NAME = re.compile(r"^[a-z0-9_]{1,32}$")  # what setMyCommands accepts
MAX_COMMANDS = 100


@dataclass(frozen=True)
class TelegramSettings:
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"
    mode: str = "polling"  # or "webhook"
    poll_timeout: float = 10.0  # seconds one getUpdates long poll may wait
    webhook_url: str = ""  # the public https URL Telegram posts updates to (webhook mode)
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = 8443
    webhook_path: str = "telegram"


class TelegramAdapter(NetworkAdapter):
    platform = "telegram"
    style = format.TELEGRAM
    TICK = 4.0  # "typing" shows for 5 s

    def __init__(self, settings: TelegramSettings, token: str, webhook_secret: str | None = None) -> None:
        super().__init__()
        credentials.protect(token, webhook_secret)
        self.settings = settings
        self._token = token
        self._webhook_secret = webhook_secret
        self._app: Application | None = None
        self._commands: CommandHandler | None = None

    async def serve(self) -> None:
        s = self.settings
        app = ApplicationBuilder().token(self._token).base_url(s.base_url).base_file_url(s.base_file_url).build()
        self._commands = CommandHandler(self._command_names(), self._on_command, filters=filters.UpdateType.MESSAGE)
        app.add_handler(self._commands)
        app.add_handler(MessageHandler(filters.TEXT & filters.UpdateType.MESSAGE, self._on_text))
        app.add_handler(CallbackQueryHandler(self._on_button))
        try:
            await app.initialize()  # getMe: the token check
        except InvalidToken:
            # PTB's own message repeats the token; this one must not.
            raise AuthError("Telegram rejected the bot token (TELEGRAM_BOT_TOKEN); ask @BotFather for a valid one") from None
        updater = app.updater
        assert updater is not None  # ApplicationBuilder makes one unless told not to
        try:
            await app.bot.set_my_commands(self._bot_commands())
            await app.start()
            if s.mode == "webhook":
                await updater.start_webhook(
                    listen=s.webhook_listen,
                    port=s.webhook_port,
                    url_path=s.webhook_path,
                    webhook_url=s.webhook_url,
                    secret_token=self._webhook_secret,
                )
            else:
                await updater.start_polling(timeout=dt.timedelta(seconds=s.poll_timeout))
            self._app = app
            self.ready(f"@{app.bot.username} ({s.mode})")
            await self.stopping.wait()
        finally:
            self.connected.clear()
            if updater.running:
                await updater.stop()
            if app.running:
                await app.stop()
            await app.shutdown()

    def _command_names(self) -> list[str]:
        assert self.bot is not None
        names = [c.name for c in self.bot.commands()] + [s.name for s in self.bot.skills()]
        return [name for name in names if _COMMAND_NAME.match(name)][:MAX_COMMANDS]

    def _bot_commands(self) -> list[BotCommand]:
        assert self.bot is not None
        help_of = {s.name: s.description for s in self.bot.skills()} | {c.name: c.help for c in self.bot.commands()}
        return [BotCommand(name, (help_of.get(name) or name)[:256]) for name in self._command_names()]

    async def register_commands(self) -> None:
        if self._app is not None and self._commands is not None:
            self._commands.commands = frozenset(self._command_names())
            await self._app.bot.set_my_commands(self._bot_commands())

    # --- inbound ---

    async def _on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        # CommandHandler already left out commands addressed to other bots (/help@otherbot).
        message = update.effective_message
        if message is not None and message.text:
            self._deliver(update, message.text)

    async def _on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None or not message.text:
            return
        if chat.type == ChatType.PRIVATE:
            self._deliver(update, message.text)
            return
        me = context.bot
        mention = f"@{me.username}"
        mentioned = any(
            (entity.type == MessageEntity.MENTION and message.parse_entity(entity).lower() == mention.lower())
            or (entity.type == MessageEntity.TEXT_MENTION and entity.user is not None and entity.user.id == me.id)
            for entity in message.entities
        )
        to = message.reply_to_message.from_user if message.reply_to_message is not None else None
        replied = to is not None and to.id == me.id
        if mentioned or replied:
            text = re.sub(re.escape(mention), " ", message.text, flags=re.IGNORECASE)
            self._deliver(update, " ".join(text.split()))

    async def _on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """An inline keyboard button (callback_query): its data is the command it says, as whoever pressed it."""
        query = update.callback_query
        if query is None:
            return
        command = action_command(query.data)
        if command is None or query.message is None:
            log.warning("telegram: ignored a button press with an unknown payload %r", str(query.data)[:80])
        await query.answer()  # whatever it carried: the client stops its spinner
        if command is None or query.message is None:
            return
        self.deliver(_message(query.message.chat, query.from_user, command, str(query.message.message_id), f"button:{query.id}"))

    def _deliver(self, update: Update, text: str) -> None:
        message, chat, user = update.effective_message, update.effective_chat, update.effective_user
        if message is None or chat is None or user is None:
            return
        # Message ids count per chat; the outbox wants them unique per platform.
        self.deliver(_message(chat, user, text, _thread(message), f"{chat.id}:{message.message_id}"))

    # --- outbound ---

    async def post(self, reply: Reply, text: str, index: int) -> None:
        assert self._app is not None
        asked, topic = _asked_and_topic(reply.thread)
        # Only the first part quotes the question; the topic holds every part, or the rest would land in General.
        quote = ReplyParameters(asked, allow_sending_without_reply=True) if index == 0 and asked is not None else None
        buttons = [InlineKeyboardButton(a.label, callback_data=a.command) for a in reply.actions] if index == 0 else []
        try:
            await self._app.bot.send_message(
                _chat_id(reply),
                text,
                message_thread_id=topic,
                parse_mode=ParseMode.HTML,
                reply_parameters=quote,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
                reply_markup=InlineKeyboardMarkup([buttons]) if buttons else None,
            )
        except RetryAfter as exc:
            raise RetryLater(_seconds(exc), "Telegram flood control") from exc
        except Forbidden as exc:  # blocked by the user, or removed from the group
            raise Undeliverable(f"Telegram: {exc.message}") from exc
        except BadRequest as exc:
            if "chat not found" in exc.message.lower():
                raise Undeliverable(f"Telegram: {exc.message}") from exc
            raise

    async def job_running(self, reply: Reply) -> None:
        assert self._app is not None
        await self._app.bot.send_chat_action(_chat_id(reply), ChatAction.TYPING, message_thread_id=_asked_and_topic(reply.thread)[1])


def _message(chat: Chat, user: User, text: str, thread: str, message_id: str) -> Message:
    """What `user` said (or pressed) in `chat`, as podbot's Message."""
    return Message(
        platform="telegram",
        conversation=f"telegram:{chat.id}",
        user=f"telegram:{user.id}",
        text=text,
        user_name=user.full_name or user.username or "",
        thread=thread,
        is_direct=chat.type == ChatType.PRIVATE,
        message_id=message_id,
    )


def _thread(message: TelegramMessage) -> str:
    # A plain message id stays what it always was, so threads stored before topics were known still quote.
    if message.is_topic_message and message.message_thread_id is not None:
        return f"{message.message_id}@{message.message_thread_id}"
    return str(message.message_id)


def _asked_and_topic(thread: str | None) -> tuple[int | None, int | None]:
    """The message to quote and the forum topic to answer in, from `Reply.thread` (`<id>` or `<id>@<topic>`)."""
    asked, _, topic = (thread or "").partition("@")
    return (int(asked) if asked.isdigit() else None, int(topic) if topic.isdigit() else None)


def _chat_id(reply: Reply) -> int:
    return int(reply.conversation.split(":", 1)[1])


def _seconds(exc: RetryAfter) -> float:
    after = exc.retry_after  # a timedelta with PTB_TIMEDELTA, seconds if someone turned it off
    return after.total_seconds() if isinstance(after, dt.timedelta) else float(after)
