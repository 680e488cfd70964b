"""What handling one message decided: one outcome, the replies, and what the audit log keeps of it."""

from __future__ import annotations

from dataclasses import dataclass

from bot.flow import Message, Reply, answer


@dataclass(frozen=True)
class Decision:
    outcome: str  # the audit event: enqueued, denied, asked, unknown, command, ...
    replies: tuple[Reply, ...] = ()
    skill: str | None = None
    job_id: int | None = None
    detail: str = ""
    # Ledger jobs to hand to the queue, only once what the decision wrote is committed (bot.app.Bot.receive).
    enqueue: tuple[int, ...] = ()


def say(
    msg: Message,
    outcome: str,
    text: str,
    code: str | None = None,
    *,
    skill: str | None = None,
    job_id: int | None = None,
    detail: str = "",
    enqueue: tuple[int, ...] = (),
) -> Decision:
    """A decision answered with one reply in the message's conversation."""
    return Decision(outcome, (answer(msg, text, code, job_id),), skill, job_id, detail, enqueue)
