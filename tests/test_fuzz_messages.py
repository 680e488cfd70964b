"""Thousands of generated messages through the real pipeline: nothing may knock the bot over.

Every message goes through `Bot.receive` (the call every adapter makes) on a real SQLite
database, from senders with different roles on different platforms, in sequences (so
questions and confirmations get answered, or not). No worker runs: a queued job stays queued.
For each message: no exception escapes, no reply is an incident apology, every reply's text is
one line (code goes in `Reply.code`), and no job is created for a skill its sender may not
run. At the end the database passes `PRAGMA integrity_check`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import config
from bot.app import Bot
from bot.chat import rbac
from bot.chat.commands import COMMANDS
from bot.flow import JobState, Message
from bot.skill import Skill
from bot.understanding.stages import Understood
from tests.conftest import REPO, write_config

EXAMPLES = 1000
PER_EXAMPLE = 10  # messages in a row, from mixed senders: EXAMPLES * PER_EXAMPLE messages in all

SENDERS = [  # (platform, conversation, identity): an admin, an operator, plain users, two people in one group
    ("console", "console:ada", "console:ada"),
    ("console", "console:olga", "console:olga"),
    ("console", "console:uma", "console:uma"),
    ("telegram", "telegram:-100", "telegram:42"),
    ("telegram", "telegram:-100", "telegram:43"),
    ("slack", "slack:C1", "slack:T1:U1"),
]
SKILLS = sorted(p.stem for p in (REPO / "manifests").glob("*.yaml")) + ["probe"]
NAMES = sorted(COMMANDS) + SKILLS + ["", "nope", "HELP", "say@podbot", "jobs@other_bot", "ｓａｙ"]

ODD = [
    "\ud800",
    "\udfff",
    "\ud83d\ude00",
    "\x00",
    "\x1b[2J",
    "\x1b]0;title\x07",
    "\r\n",
    "\t",
    "\x7f",
    "\x9b",
    "\u2028",
    "\u202e",
    "\ufeff",
]
NUMBERS = ["0", "1", "-1", "42", "²", "٣", "１", "9223372036854775807", "9223372036854775808", "99999999999999999999", "1e3", "0x10"]
SHAPES = [
    "telegram:12345",
    "telegram:@alice",
    "slack:T1:U123",
    "slack:U123",
    "discord:98765",
    "console:bob",
    "console:*",
    "operator",
    "operater",
    "admin",
]
STRUCTURED = [
    '{"path": "/", "x": [1, 2, {"y": null}]}',
    "- a\n- b: {c: d}\n",
    "path: /\nlines: 5\n",
    "**bold** _it_ `code` ```block```\n> quote\n# heading",
    "<b>html</b> &amp; <!channel> @everyone <@U123>",
    "$(id) `whoami` ; rm -rf / && echo",
    "yes",
    "no",
    "/yes",
]
QUOTED = ['"unclosed', "'unclosed", "a\\", 'k="v w"', "k='v\"w'", "=v", "k=", "path=/", "path=relative", "lines=5", "lines=-3", "text=x"]
PHRASES = ["df /", "df", "say hello", "echo hi", "check http://127.0.0.1:9/", "tail syslog 50", "resolve acme.io", "alert: disk full"]

junk = st.one_of(
    st.text(max_size=30),
    st.text(st.characters(exclude_categories=()), max_size=30),  # surrogates and control characters too
    st.sampled_from(ODD + NUMBERS + SHAPES + STRUCTURED + QUOTED),
)
words = st.lists(junk, max_size=6).map(" ".join)
command = st.builds(lambda name, rest: f"/{name} {rest}".rstrip(" "), st.sampled_from(NAMES), words)
long_text = st.builds(
    lambda head, c, n: head + c * n,
    st.sampled_from(["say ", "/say ", "", "/jobs "]),
    st.sampled_from("a\ud800\x00 é"),
    st.integers(3990, 4100),
)
text = st.one_of(
    command,
    command.map(lambda t: t + "\n" + t),
    st.builds(lambda phrase, extra: phrase + extra, st.sampled_from(PHRASES), words),
    st.text(st.characters(exclude_categories=()), max_size=80),
    st.sampled_from(STRUCTURED + ODD),
    long_text,
)
conversation = st.lists(st.tuples(st.integers(0, len(SENDERS) - 1), text), min_size=PER_EXAMPLE, max_size=PER_EXAMPLE)


class NoContainers:
    """No job runs here (no workers): /cancel finds no container to stop."""

    def containers(self) -> list:
        return []


class Guess:
    """Stands in for the model: free text picks one of the skills offered (those the sender may run), its first argument the text."""

    def understand(self, text: str, allowed: list[Skill], fill: bool = True) -> Understood:
        skills = sorted(allowed, key=lambda s: s.name)
        if not skills or len(text) % 3 == 0:
            return Understood(None, {}, "none", note="no guess")
        skill = skills[len(text) % len(skills)]
        args: dict[str, Any] = {name: text[:60] for name in list(skill.properties)[:1]}
        return Understood(skill, args if fill else {}, "shortlist", note="a guess", confident=True)


@dataclass
class Tally:
    messages: int = 0
    replies: int = 0
    jobs: int = 0


def test_generated_messages_never_knock_the_bot_over(tmp_path: Path, log_dir: Path) -> None:
    path = write_config(tmp_path, log_dir, rate_limit={"jobs": 1000000, "per": 60})
    bot = Bot(config.load(str(path), environ={}), runner=NoContainers(), understanding=Guess())  # type: ignore[arg-type]
    tally = Tally()
    ids = iter(range(1, 10**9))

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )
    @given(conversation)
    def run(said: list[tuple[int, str]]) -> None:
        for sender, words in said:
            platform, where, who = SENDERS[sender]
            msg = Message(platform, where, who, words, message_id=f"fuzz-{next(ids)}")
            roles = rbac.roles_of(bot.cfg, msg.user, bot.db)  # before: a /grant in this very message cannot help it
            last = bot.db.execute("SELECT COALESCE(MAX(id), 0) FROM jobs").fetchone()[0]
            replies = bot.receive(msg)
            tally.messages += 1
            tally.replies += len(replies)
            for reply in replies:
                assert not reply.text.startswith("Sorry, that failed on my side"), (msg, reply)
                assert len(reply.text.splitlines()) <= 1, (msg, reply)
            for row in bot.db.execute("SELECT skill, requester, state FROM jobs WHERE id > ?", (last,)).fetchall():
                tally.jobs += 1
                assert row["requester"] == msg.user, (msg, dict(row))
                skill = bot.catalog.get(row["skill"])
                may = skill is not None and rbac.may_run(bot.cfg, roles, skill)
                assert may or row["state"] == JobState.DENIED.value, (msg, dict(row), roles)

    run()
    assert tally.messages >= 10_000 and tally.jobs > 0, tally
    assert not bot.db.execute("SELECT COUNT(*) FROM audit WHERE event = 'error'").fetchone()[0]
    assert bot.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert not bot.db.connect().in_transaction
