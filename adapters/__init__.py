"""Platform adapters: each module translates one platform's SDK events to `Message` and `Reply` to SDK calls.

What an adapter gets and gives is `adapters.contract`; `configured` builds the
adapters whose platform has credentials.
"""

from __future__ import annotations

import logging

from adapters import credentials
from adapters.base import NetworkAdapter, settings_from
from bot.config import Config

log = logging.getLogger(__name__)


def configured(cfg: Config, environ: dict[str, str] | None = None) -> list[NetworkAdapter]:
    """The platform adapters that have credentials (environment or secrets file) and are not disabled, ready to start."""
    secrets = credentials.read(cfg, environ)
    settings = {name: cfg.platforms.get(name) or {} for name in ("telegram", "slack", "discord")}
    enabled = {name: data.get("enabled", True) for name, data in settings.items()}
    found: list[NetworkAdapter] = []
    # The SDKs are imported only for the platforms in use: the console starts without them.
    if enabled["telegram"] and "TELEGRAM_BOT_TOKEN" in secrets:
        from adapters.telegram import TelegramAdapter, TelegramSettings

        found.append(
            TelegramAdapter(
                settings_from(TelegramSettings, settings["telegram"]), secrets["TELEGRAM_BOT_TOKEN"], secrets.get("TELEGRAM_WEBHOOK_SECRET")
            )
        )
    if enabled["slack"] and "SLACK_BOT_TOKEN" in secrets:
        from adapters.slack import SlackAdapter, SlackSettings

        slack = SlackSettings.from_config(settings["slack"])
        needs = "SLACK_APP_TOKEN" if slack.mode == "socket" else "SLACK_SIGNING_SECRET"
        if needs in secrets:
            found.append(
                SlackAdapter(slack, secrets["SLACK_BOT_TOKEN"], secrets.get("SLACK_APP_TOKEN"), secrets.get("SLACK_SIGNING_SECRET"))
            )
        else:
            log.error("slack: SLACK_BOT_TOKEN is set but %s is not (%s mode needs it); Slack stays off", needs, slack.mode)
    if enabled["discord"] and "DISCORD_BOT_TOKEN" in secrets:
        from adapters.discord import DiscordAdapter, DiscordSettings

        found.append(DiscordAdapter(DiscordSettings.from_config(settings["discord"]), secrets["DISCORD_BOT_TOKEN"]))
    return found
