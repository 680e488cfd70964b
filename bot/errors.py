"""The one family of podbot's exceptions, and the error boundary every message, job and loop goes through.

Three kinds of trouble, three classes:
- `Refusal`: podbot decided not to do what was asked. Its text is the one-line
  answer for the person; `outcome` names the decision in the audit log.
- `Problems`: files that do not validate (config, manifests); every problem
  carries FILE:LINE:COL.
- `Unavailable`: the machine cannot do it now (Podman, an image, a model file);
  the text says what to do about it.
Anything else is a bug: `incident()` logs its traceback under a short id the
person is given, so an admin can find it.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.schema import Problem

log = logging.getLogger(__name__)


class PodbotError(Exception):
    """A trouble podbot expected; its text is meant for a person."""


class Refusal(PodbotError):
    """An intended refusal of a request; the text is the answer."""

    outcome = "refused"

    def __init__(self, text: str, outcome: str | None = None):
        super().__init__(text)
        if outcome is not None:
            self.outcome = outcome


class ArgumentError(Refusal):
    """Arguments that cannot be used."""

    outcome = "invalid_arguments"


class Problems(PodbotError):
    """A config file or manifests that do not validate; `subject` says which, for the one-line summary."""

    def __init__(self, problems: Sequence[Problem], subject: str = "config"):
        super().__init__("\n".join(map(str, problems)))
        self.problems = list(problems)
        self.subject = subject


class Unavailable(PodbotError):
    """Something about the machine stops podbot (Podman, an image, a model file); the text says how to fix it."""


class RetryLater(PodbotError):
    """A platform refused a send and said when to try again (e.g. HTTP 429 retry_after)."""

    def __init__(self, seconds: float, reason: str = "rate limited"):
        super().__init__(f"{reason}; retry in {seconds:.1f} s")
        self.seconds = seconds


class Undeliverable(PodbotError):
    """A platform will never take this reply (the chat is gone, the bot was removed): retrying cannot help."""


def incident(what: str) -> str:
    """Log the exception being handled with a short id, and return the id (call from an `except` block)."""
    ident = secrets.token_hex(3)
    log.exception("incident %s: %s", ident, what)
    return ident


def apology(ident: str) -> str:
    return f"Sorry, that failed on my side (incident {ident}); an admin can find it in podbot's log."
