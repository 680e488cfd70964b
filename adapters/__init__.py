"""Platform adapters: each module translates one platform's SDK events to `Message` and `Reply` to SDK calls.

An adapter has `platform` (its conversation prefix), `send(reply)` (raise, or
`bot.outbox.RetryLater`, when the platform did not accept it), and, for
network platforms, `start(bot)` (connect in the background) and `stop()`.
"""

from __future__ import annotations

from bot.config import Config


def configured(cfg: Config) -> list:
    """The platform adapters that have credentials in config/env, ready to start."""
    return []
