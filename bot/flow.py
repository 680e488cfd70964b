"""The things that flow through podbot, the same for every platform: `Message`, `Reply`, `Job`."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Message:
    """One thing a person said, normalized by an adapter."""

    platform: str  # console, telegram, slack, discord
    conversation: str  # platform-prefixed, e.g. "console", "slack:C024BE91L"
    user: str  # identity, e.g. "console:alice", "slack:T1:U123"
    text: str
    user_name: str = ""
    thread: str | None = None
    is_direct: bool = True
    message_id: str = ""


@dataclass(frozen=True)
class Reply:
    """Something podbot says. `code` is preformatted output the adapter renders as a block."""

    conversation: str
    text: str
    code: str | None = None
    thread: str | None = None
    job_id: int | None = None

    @property
    def platform(self) -> str:
        return platform_of(self.conversation)


def platform_of(conversation: str) -> str:
    return conversation.split(":", 1)[0]


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    DENIED = "denied"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self not in (JobState.QUEUED, JobState.RUNNING)


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
    """How a skill call reads in replies and the audit: `disk_usage path=/`, or just `uptime`."""
    return " ".join([skill, *(f"{k}={v}" for k, v in args.items())])
