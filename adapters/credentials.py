"""Platform credentials: from the environment, else from `platforms.secrets_file`; never from podbot.yaml, never logged.

The names are the platforms' usual ones (TELEGRAM_BOT_TOKEN, SLACK_BOT_TOKEN…),
not PODBOT_*: every PODBOT_* variable is a config override, checked against the
config schema, and a token must not become part of the config.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from bot.config import Config

log = logging.getLogger(__name__)

NAMES = (
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_WEBHOOK_SECRET",
    "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "SLACK_SIGNING_SECRET",
    "DISCORD_BOT_TOKEN",
)


def read(cfg: Config, environ: dict[str, str] | None = None, names: Sequence[str] = NAMES) -> dict[str, str]:
    """The credentials `names` that are set: the environment wins over the secrets file (KEY=value lines, # comments)."""
    env: Mapping[str, str] = os.environ if environ is None else environ
    values: dict[str, str] = {}
    if cfg.platforms.get("secrets_file"):
        path = Path(os.path.expanduser(str(cfg.platforms["secrets_file"])))
        if not path.is_absolute() and cfg.source != "defaults":
            path = Path(cfg.source).resolve().parent / path
        try:
            values.update(_parse(path.read_text()))
        except OSError as exc:
            log.error("platforms.secrets_file %s cannot be read (%s); using the environment only", path, exc.strerror)
    values.update({name: env[name] for name in names if env.get(name)})
    return {name: value for name, value in values.items() if name in names and value}


def _parse(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.removeprefix("export ").partition("=")
        values[name.strip()] = value.strip().strip("'\"")
    return values


class _Redactor(logging.Filter):
    """Replaces secrets in every record a handler writes, tracebacks included (SDKs put tokens in URLs and errors)."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        try:
            record.msg, record.args = self.scrub(record.getMessage()), None
        except Exception:  # a malformed record: let logging report it as usual
            return True
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        return True


_redactor = _Redactor()


def protect(*secrets: str | None) -> None:
    """Keep these values out of every log line from now on (adapters call this with their credentials)."""
    _redactor.secrets.update(s for s in secrets if s and len(s) >= 8)
    for handler in logging.getLogger().handlers:
        if _redactor not in handler.filters:
            handler.addFilter(_redactor)
    # httpx logs every request URL at INFO, and Telegram's URLs contain the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def scrub(text: str) -> str:
    """`text` with every protected secret replaced, for anything written outside the log (e.g. status.json)."""
    return _redactor.scrub(text)
