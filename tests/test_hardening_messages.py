"""Messages that used to knock the bot over, and what handling one message may leave behind.

Pipeline-only: the bot is built but never started (no workers, no Podman); `Bot.receive` is the
same call every adapter makes.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from adapters import format as fmt
from adapters.console import ConsoleAdapter
from bot import config
from bot.app import Bot
from bot.errors import Undeliverable
from bot.flow import Message, Reply
from bot.store import audit, ledger, outbox, pending
from bot.store.database import SqliteDatabase
from tests.conftest import say


class NoUnderstanding:
    """Free text is understood as nothing: these tests are about the pipeline around the model."""

    def understand(self, text: str, allowed: object) -> None:
        return None


@pytest.fixture
def bot(config_path: Path) -> Bot:
    return Bot(config.load(str(config_path), environ={}), understanding=NoUnderstanding())  # type: ignore[arg-type]


def count(bot: Bot, table: str) -> int:
    return bot.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


JOB_USAGE = "expected a number from 1 to 9223372036854775807; usage: /job ID (the number from 'job 42 queued')"


@pytest.mark.parametrize(
    ("user", "text", "answer"),
    [
        ("uma", "/job 99999999999999999999", JOB_USAGE),
        ("uma", "/job 9223372036854775808", JOB_USAGE),
        ("uma", "/job ²", JOB_USAGE),
        ("uma", "/job 0", JOB_USAGE),
        ("uma", "/job 9223372036854775807", "There is no job 9223372036854775807 of yours."),
        ("ada", "/cancel 99999999999999999999", "expected a number from 1 to 9223372036854775807; usage: /cancel ID"),
        ("ada", "/cancel ٣", "expected a number from 1 to 9223372036854775807; usage: /cancel ID"),
        ("ada", "/audit ²", "expected a number from 1 to 100; usage: /audit [N]"),
        ("ada", "/audit 101", "expected a number from 1 to 100; usage: /audit [N]"),
        ("uma", "hello \ud800", "I don't know how to do that. You can run: disk_usage, say, uptime. /skills shows how, /help explains."),
        ("uma", "/say \ud800", "job 1 queued: say text=\ufffd"),
        ("uma", "say \ud800 there", "job 1 queued: say text=\ufffd there"),
        ("ada", "/grant console:uma \ud800", "There is no role \ufffd; known roles: admin, operator, user."),
        ("ada", "/schedules pause \ud800", "There is no schedule \ufffd; /schedules lists them."),
    ],
)
def test_what_used_to_crash_gets_a_one_line_answer(bot: Bot, user: str, text: str, answer: str) -> None:
    [reply] = say(bot, user, text)
    assert reply.text == answer
    [stored] = outbox.all_pending(bot.db)
    assert stored.reply.text == answer  # the answer is stored, so it really goes out
    assert not [e for e in audit.latest(bot.db) if e.event == "error"]


def test_a_message_is_cleaned_once_where_it_is_made() -> None:
    msg = Message("console", "console:uma\x00", "console:uma", "a\ud800b\x00c\x1b[31m\r\n\td\x7f\x9b\ud83d\ude00", "u\x07ma", "t\ud800")
    assert msg.text == "a\ufffdbc[31m\n\td\U0001f600"  # a surrogate pair is its character, a lone one U+FFFD
    assert (msg.conversation, msg.user_name, msg.thread) == ("console:uma", "uma", "t\ufffd")
    assert msg.text.encode("utf-8")


def test_the_ack_of_a_job_from_a_lone_surrogate_is_stored(bot: Bot) -> None:
    [ack] = say(bot, "uma", "say \ud800")
    job = ledger.get(bot.db, ack.job_id)
    assert job is not None and job.args == {"text": "\ufffd"}
    assert [o.reply.text for o in outbox.all_pending(bot.db)] == [ack.text]
    assert bot.queue.job_ids() == {job.id}


def test_a_failure_after_the_job_row_leaves_no_job_and_no_queue_message(bot: Bot) -> None:
    # The failure is the database's own (a trigger), so nothing in podbot is patched: the ack cannot be stored.
    bot.db.execute(
        "CREATE TRIGGER no_acks BEFORE INSERT ON outbox WHEN NEW.text LIKE 'job % queued%'"
        " BEGIN SELECT RAISE(ABORT, 'injected: the outbox refuses acks'); END"
    )
    say(bot, "olga", "/http_check")  # a question: pending for olga
    [reply] = say(bot, "olga", "http://127.0.0.1:9/")  # the answer takes the question and creates the job
    assert reply.text.startswith("Sorry, that failed on my side (incident ")
    assert count(bot, "jobs") == 0
    assert bot.queue.pending() == 0 and bot.queue.job_ids() == set()
    assert [e.event for e in audit.latest(bot.db)] == ["asked", "error"]  # no "enqueued" for a job that is not there
    # The question was taken inside the same transaction: it is still waiting for olga.
    assert pending.take(bot.db, "console", "console:olga") is not None


def test_jobs_reach_the_queue_once_committed(bot: Bot) -> None:
    [ack] = say(bot, "uma", "/say one")
    assert bot.queue.job_ids() == {ack.job_id}
    job = ledger.get(bot.db, ack.job_id)
    assert job is not None and job.state.value == "queued"


def test_a_transaction_is_all_or_nothing(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "t.db")
    with pytest.raises(RuntimeError), db.transaction():
        outbox.put(db, "a", Reply("console", "kept?"))
        with db.transaction():  # an inner one joins the outer
            outbox.put(db, "b", Reply("console", "kept?"))
        raise RuntimeError("boom")
    assert outbox.all_pending(db) == []
    with db.transaction():
        outbox.put(db, "c", Reply("console", "kept"))
    assert [o.reply.text for o in outbox.all_pending(db)] == ["kept"]
    assert not db.connect().in_transaction


def test_answers_are_one_line_whatever_was_typed(bot: Bot) -> None:
    [ack] = say(bot, "uma", '/say "two\nlines"')
    assert ack.text == "job 1 queued: say text='two\\nlines'"
    assert say(bot, "uma", "/nope\nmore")[0].text.startswith("I don't know /nope. You can run:")
    [help_reply] = say(bot, "uma", "/help")
    assert help_reply.text == "Ask me to run a skill:" and "/jobs" in (help_reply.code or "")
    msg = Message("console", "console:uma", "console:uma", "/whoami", "Uma\nYou are an admin.", message_id="m1")
    assert [r.text for r in bot.receive(msg)] == ["You are console:uma (UmaYou are an admin.); roles: user."]


def test_denial_comes_before_arguments(bot: Bot) -> None:
    denied = "Denied: send_alert needs the role admin, operator; you have user."
    assert [r.text for r in say(bot, "uma", "/send_alert message=hi all")] == [denied]
    assert [r.text for r in say(bot, "uma", "/send_alert 'unclosed")] == [denied]
    assert [r.text for r in say(bot, "uma", "/http_check a b c")] == ["Denied: http_check needs the role admin, operator; you have user."]
    # Whoever may run it still hears what is wrong with the arguments.
    [reply] = say(bot, "uma", "/uptime now")
    assert reply.text == "too many arguments for uptime; usage: /uptime"
    [entry] = [e for e in audit.latest(bot.db) if e.actor == "console:uma" and e.skill == "http_check"]
    assert entry.event == "denied" and entry.detail.startswith("via command: a b c; needs one of")


@pytest.mark.parametrize("style", [fmt.TELEGRAM, fmt.SLACK, fmt.DISCORD], ids=["telegram", "slack", "discord"])
def test_control_characters_are_shown_never_sent(style: fmt.Style) -> None:
    [message] = fmt.render(Reply("x:1", "title\x1b]0;pwned\x07", "out\x00put\x1b[2J\r\n\tindented\ud800"), style)
    assert not any(c in message for c in "\x00\x07\x1b\r\ud800")
    assert "x1b" in message and "x07" in message and "x00put" in message and "\tindented" in message


def test_the_console_shows_escapes_instead_of_running_them() -> None:
    out = io.StringIO()
    console = ConsoleAdapter("uma", out)
    console.send(Reply("console:uma", "title\x1b[31m\x00", "a\x1b[2Jb\n\tc\x9b\n"))
    assert out.getvalue() == "title\\x1b[31m\\x00\na\\x1b[2Jb\n\tc\\x9b\n"


class ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_console_output_ends_the_chat_and_gives_up_its_own_replies() -> None:
    console = ConsoleAdapter("uma", ClosedPipe())
    with pytest.raises(Undeliverable):
        console.send(Reply("console:uma", "for uma"))
    assert console.closed.is_set()
    with pytest.raises(ConnectionError):  # the shared console's replies wait for another console
        console.send(Reply("console", "an alert"))
    assert console.conversations == ("console:uma", "console")
