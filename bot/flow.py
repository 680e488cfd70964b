"""The things that flow through podbot, the same for every platform: `Message`, `Reply`, `Job`."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field, fields
from typing import Any

from bot.vault import shown

# C0 controls but \t and \n, DEL and C1 controls: terminal escapes, NUL (which SQLite and C code cut at) and the like.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# What is left after that that would start a new line (or a tab stop) in a name, an id or a one-line answer.
_LINE_BREAKS = re.compile(r"[\t\n\u2028\u2029]")


def clean(text: str, one_line: bool = False) -> str:
    """Text as every stage may take it: lone UTF-16 surrogates become U+FFFD (a pair becomes its character),
    control characters but newline and tab are dropped (`one_line`: those too)."""
    text = _CONTROL.sub("", text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace"))
    return _LINE_BREAKS.sub("", text) if one_line else text


@dataclass(frozen=True)
class Message:
    """One thing a person said, normalized by an adapter, then cleaned here once for every platform."""

    platform: str  # console, telegram, slack, discord
    conversation: str  # platform-prefixed, e.g. "console:alice", "slack:C024BE91L"
    user: str  # identity, e.g. "console:alice", "slack:T1:U123"
    text: str
    user_name: str = ""
    thread: str | None = None
    is_direct: bool = True
    message_id: str = ""

    def __post_init__(self) -> None:
        # Platforms hand over whatever their clients sent: no field reaches the pipeline, SQLite or a log unclean,
        # and only the text may have more than one line.
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, str):
                object.__setattr__(self, f.name, clean(value, one_line=f.name != "text"))


# What a button may say when pressed: the same command a person could type. A platform hands back whatever a
# client sent as a button's payload, so anything else is dropped where it arrives (`action_command`).
_ACTION = re.compile(r"/(approve|deny) [0-9]{1,19}")


@dataclass(frozen=True)
class Action:
    """A native button under a reply (where the platform has them); pressing it says `command` as the presser."""

    label: str
    command: str  # e.g. "/approve 42"


def action_command(payload: object) -> str | None:
    """A button's payload as a platform delivered it, if it is one podbot makes; else None (log and ignore it)."""
    return payload if isinstance(payload, str) and _ACTION.fullmatch(payload) else None


@dataclass(frozen=True)
class Reply:
    """Something podbot says. `code` is preformatted output the adapter renders as a block."""

    conversation: str
    text: str
    code: str | None = None
    thread: str | None = None
    job_id: int | None = None
    actions: tuple[Action, ...] = ()

    @property
    def platform(self) -> str:
        return platform_of(self.conversation)


def platform_of(conversation: str) -> str:
    return conversation.split(":", 1)[0]


class JobState(enum.StrEnum):
    AWAITING_APPROVAL = "awaiting_approval"  # in the ledger only: it reaches the queue once approved
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    DENIED = "denied"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self not in (JobState.AWAITING_APPROVAL, JobState.QUEUED, JobState.RUNNING)


@dataclass
class Job:
    """A row of the job ledger: the truth about one run of a skill."""

    id: int
    skill: str
    args: dict[str, Any]
    requester: str
    conversation: str
    thread: str | None = None
    reply_to: str | None = None
    state: JobState = JobState.QUEUED
    created: float = 0.0
    started: float | None = None
    finished: float | None = None
    exit_code: int | None = None
    output: str = ""
    attempts: int = 0
    worker: str | None = None
    parent: int | None = None  # for a fallback job: the job whose failure started it
    env: dict[str, str] = field(default_factory=dict)  # extra container env (a fallback's PODBOT_FAILED_*)


def answer(msg: Message, text: str, code: str | None = None, job_id: int | None = None) -> Reply:
    """A reply in the conversation (and thread) the message came from."""
    return Reply(msg.conversation, text, code, msg.thread, job_id)


def request(skill: str, args: dict[str, Any]) -> str:
    """How a skill call reads in replies and the audit: `disk_usage path=/`, or just `uptime`; always one line (a sealed secret is ***)."""
    return " ".join([skill, *(f"{k}={_inline(v)}" for k, v in args.items())])


def _inline(value: Any) -> str:
    text = str(shown(value))
    # A value of several lines is quoted, "\n" and all. (splitlines knows every line break; the "." counts a last one.)
    return repr(text) if len(f"{text}.".splitlines()) > 1 else text
