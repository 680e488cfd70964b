"""The adapter contract: what a platform adapter gets from the bot, and what it gives.

An adapter only translates: platform events become `Message`s handed to
`BotPort.receive`, and `Reply`s become platform calls in `send`. It never
touches the database or the bot's internals; all it needs is here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from bot.chat.commands import Command
from bot.errors import RetryLater, Undeliverable
from bot.flow import Message, Reply
from bot.skill import Skill

__all__ = ["Adapter", "BotPort", "Message", "Reply", "RetryLater", "SimpleAdapter", "Undeliverable"]


class BotPort(Protocol):
    """What an adapter gets."""

    def receive(self, msg: Message) -> list[Reply]:
        """Hand one message to the pipeline; its immediate replies also go out through `send`."""
        ...

    def commands(self) -> Sequence[Command]:
        """The built-in commands, to register as native slash commands."""
        ...

    def skills(self, user: str | None = None) -> Sequence[Skill]:
        """The skills `user` may run, or every loaded skill (for registering native commands)."""
        ...

    def job_active(self, job_id: int) -> bool:
        """Whether the job is still queued or running (for a "typing…" or ⏳ indicator)."""
        ...

    def idle(self, job_ids: list[int]) -> bool:
        """Whether these jobs ended and every reply owed to this process's adapters went out (a piped console's exit)."""
        ...


class Adapter(Protocol):
    """What an adapter gives."""

    platform: str  # the conversation prefix: console, telegram, slack, discord

    def start(self, bot: BotPort) -> None:
        """Connect in the background and hand incoming messages to `bot`."""
        ...

    def stop(self) -> None: ...

    def send(self, reply: Reply) -> None:
        """Deliver one reply. Raise RetryLater when the platform says when to try again, Undeliverable
        when it never will take it, anything else for "not now"; the outbox keeps it and retries."""
        ...

    def skills_changed(self) -> None:
        """The loaded skills changed (a reload): re-register native commands where the platform has them."""
        ...


class SimpleAdapter:
    """An adapter with nothing to connect to and no native commands: a subclass sets `platform` and writes `send`."""

    platform: str

    def start(self, bot: BotPort) -> None:
        """Nothing to connect."""

    def stop(self) -> None:
        """Nothing to disconnect."""

    def skills_changed(self) -> None:
        """No native commands to register."""

    def send(self, reply: Reply) -> None:
        raise NotImplementedError
