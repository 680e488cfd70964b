"""The pipeline end to end: built-ins, routing, roles, the ledger and the audit log.

Runs on the FakeRunner (tests.fake_runner) except the df test, which goes through a real container.
"""

from __future__ import annotations

from bot.flow import JobState
from bot.store import audit, ledger
from tests.conftest import BOTH_ENGINES, run_skill, say

pytestmark = BOTH_ENGINES


def events(bot) -> list[tuple[str, str, str | None]]:
    return [(e.actor, e.event, e.skill) for e in audit.latest(bot.db, 200)]


def test_help_skills_whoami(fake_running) -> None:
    bot, _ = fake_running
    [help_reply] = say(bot, "uma", "/help")
    assert help_reply.text == "Ask me to run a skill:"  # one line; the rest is a block
    assert "/SKILL key=value" in help_reply.code and "/jobs" in help_reply.code
    [skills] = say(bot, "uma", "/skills")
    assert skills.text == "Skills you may run (3):"
    assert [line.split()[0] for line in skills.code.splitlines()] == ["/disk_usage", "/say", "/uptime"]
    [skills] = say(bot, "olga", "/skills")
    assert "/http_check url=…" in skills.code and "/probe script=…" in skills.code
    [me] = say(bot, "ada", "/whoami")
    assert me.text == "You are console:ada (ada); roles: admin, user. You are an admin."


def test_df_runs_in_a_container_and_answers(running) -> None:
    bot, recorder = running
    result = run_skill(bot, recorder, "uma", "df /")
    assert result.text.startswith("job ") and " disk_usage done in " in result.text
    assert "Filesystem" in result.code and "Use%" in result.code
    job = ledger.get(bot.db, result.job_id)
    assert (job.state, job.exit_code, job.args, job.requester) == (JobState.SUCCEEDED, 0, {"path": "/"}, "console:uma")
    assert [e for e in events(bot) if e[2] == "disk_usage"] == [
        ("console:uma", "enqueued", "disk_usage"),
        ("console:uma", "started", "disk_usage"),
        ("console:uma", "finished", "disk_usage"),
    ]
    [jobs] = say(bot, "uma", "/jobs")
    assert f"job {job.id} succeeded exit 0 — disk_usage path=/" in jobs.code
    [detail] = say(bot, "uma", f"/job {job.id}")
    assert "Filesystem" in detail.code
    [other] = say(bot, "olga", f"/job {job.id}")
    assert other.text == f"There is no job {job.id} of yours."


def test_denied_role_answers_audits_and_never_queues(fake_running) -> None:
    bot, _ = fake_running
    before = bot.queue.pending()
    [reply] = say(bot, "uma", "/http_check url=http://127.0.0.1:9/")
    assert reply.text == "Denied: http_check needs the role admin, operator; you have user."
    job = ledger.get(bot.db, reply.job_id)
    assert job.state == JobState.DENIED and job.started is None
    assert bot.queue.pending() == before
    assert ("console:uma", "denied", "http_check") in events(bot)
    assert not [e for e in events(bot) if e[1] == "started" and e[2] == "http_check"]
    assert bot.runner.runs == []


def test_invalid_arguments_and_unknown_text(fake_running) -> None:
    bot, _ = fake_running
    [reply] = say(bot, "uma", "/disk_usage path=relative")
    assert reply.text == "argument 'path' of disk_usage is not valid: 'relative': an absolute path such as / or /var"
    [reply] = say(bot, "uma", "make me a sandwich")
    assert reply.text == "I don't know how to do that. You can run: disk_usage, say, uptime. /skills shows how, /help explains."
    [reply] = say(bot, "uma", "/sandwich")
    assert reply.text.startswith("I don't know /sandwich. You can run:")
    assert reply.job_id is None
    kinds = [e[1] for e in events(bot)]
    assert kinds.count("invalid_arguments") == 1 and kinds.count("unknown") == 2
    assert bot.runner.runs == []


def test_network_skill_refused_when_config_forbids(tmp_path, log_dir) -> None:
    from bot import config
    from tests.conftest import make_bot, write_config
    from tests.fake_runner import FakeRunner

    bot = make_bot(config.load(str(write_config(tmp_path, log_dir, allow_network=False)), {}), FakeRunner())
    [reply] = say(bot, "olga", "check http://127.0.0.1:9/")
    assert reply.text == "http_check needs network access, which this bot's config does not allow (allow_network)."
    assert reply.job_id is None and bot.queue.pending() == 0


def test_too_long_message(fake_running) -> None:
    bot, _ = fake_running
    [reply] = say(bot, "uma", "say " + "x" * 5000)
    assert reply.text.startswith("That message is too long (5004 characters")


def test_missing_argument_becomes_a_question_answered_in_the_conversation(fake_running) -> None:
    bot, recorder = fake_running
    [question] = say(bot, "olga", "/http_check")
    assert question.text == "Which url for http_check? (an http:// or https:// URL)"
    [refused] = say(bot, "olga", "not a url")
    assert refused.text.startswith("argument 'url' of http_check is not valid: 'not a url'")
    say(bot, "olga", "/dns_lookup")
    [ack] = say(bot, "olga", "localhost")
    assert ack.text.startswith("job ") and "dns_lookup host=localhost" in ack.text
    assert recorder.result(ack.job_id).code == "nslookup localhost\n"
    [run] = bot.runner.runs_of("dns_lookup")
    assert (run.argv, run.network, run.job_id) == (["nslookup", "localhost"], True, ack.job_id)
    [denied] = say(bot, "uma", "/http_check")
    assert denied.text.startswith("Denied: http_check needs the role")


def test_confirmation_only_by_the_same_person(fake_running) -> None:
    bot, _ = fake_running
    [question] = say(bot, "ada", "/send_alert disk almost full")
    assert question.text.startswith("Run send_alert message=disk almost full? Reply yes")
    [other] = say(bot, "olga", "yes")
    assert "I don't know how to do that." in other.text
    [cancelled] = say(bot, "ada", "no")
    assert cancelled.text == "Cancelled send_alert message=disk almost full."
    [again] = say(bot, "ada", "yes")
    assert "I don't know how to do that." in again.text
    kinds = [e.event for e in audit.latest(bot.db, 50)]
    assert "confirm_requested" in kinds and "cancelled" in kinds and "enqueued" not in kinds
    assert bot.runner.runs == []
