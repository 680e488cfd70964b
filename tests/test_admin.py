"""Admin commands: allowed for admins, refused for others, audited.

Runs on the FakeRunner (tests.fake_runner) except the /jobs test, whose failing job runs in a real container.
"""

from __future__ import annotations

import time
from pathlib import Path

from bot.store import audit
from tests.conftest import add_manifest, probe_like, run_skill, say
from tests.fake_runner import Scripted

ADMIN_ONLY = [
    "/audit",
    "/grant console:uma operator",
    "/revoke console:uma operator",
    "/reload",
    "/schedules",
    "/schedules run x",
    "/roles",
    "/grants",
]


def test_non_admins_get_a_one_line_refusal(fake_running) -> None:
    bot, _ = fake_running
    for command in ADMIN_ONLY:
        [reply] = say(bot, "olga", command)
        assert reply.text == f"{command.split()[0]} is for admins (admin); you have operator, user.", command
        assert "\n" not in reply.text
    assert [e.event for e in audit.latest(bot.db, 100) if e.event in ("grant", "revoke", "reload", "cancelled")] == []


def test_grant_and_revoke_are_persisted_and_audited(fake_running) -> None:
    bot, recorder = fake_running
    bot.runner.script(["sh", "-c", "echo granted"], Scripted(output="granted\n"))
    assert say(bot, "uma", "/http_check url=http://127.0.0.1:9/")[0].text.startswith("Denied")
    assert say(bot, "ada", "/grant console:uma operator")[0].text == "console:uma now has the role operator."
    assert "operator" in say(bot, "uma", "/whoami")[0].text
    assert run_skill(bot, recorder, "uma", "/probe script='echo granted'").code == "granted\n"
    assert say(bot, "ada", "/revoke console:uma operator")[0].text == "console:uma no longer has the granted role operator."
    assert say(bot, "uma", "/probe script=x")[0].text.startswith("Denied")
    assert [run.argv for run in bot.runner.runs] == [["sh", "-c", "echo granted"]]
    events = [(e.actor, e.event, e.detail) for e in audit.latest(bot.db, 100)]
    assert ("console:ada", "grant", "console:uma +operator") in events and ("console:ada", "revoke", "console:uma -operator") in events


def test_reload_keeps_the_last_good_set_and_names_the_error(fake_running, tmp_path: Path) -> None:
    bot, _ = fake_running
    add_manifest(tmp_path, probe_like("fresh", "echo new"))
    assert "fresh" in say(bot, "ada", "/reload")[0].text
    bad = tmp_path / "extra-manifests" / "zbad.yaml"
    bad.write_text("name: zbad\ndescription: d\nrun: {image: x, command: [x]}\nroles: [user]\nretries: many\n")
    [reply] = say(bot, "ada", "/reload")
    assert reply.text == f"Manifests have 1 errors; keeping the last good set ({len(bot.catalog.skills)} skills)."
    assert reply.code == f"{bad}:5:1: retries: 'many' is not of type 'integer'"
    assert "fresh" in bot.catalog.skills and "zbad" not in bot.catalog.skills
    assert any(e.event == "reload" for e in audit.latest(bot.db, 20))


def test_manifest_change_reloads_by_itself(fake_factory, tmp_path: Path) -> None:
    bot, _ = fake_factory(0, schedules=False)
    add_manifest(tmp_path, probe_like("hot", "echo hot"))
    deadline = time.monotonic() + 60
    while "hot" not in bot.catalog.skills and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "hot" in bot.catalog.skills


def test_jobs_job_and_audit_for_admins(running) -> None:
    bot, recorder = running
    failed = run_skill(bot, recorder, "olga", "/probe script='exit 4'")
    [listing] = say(bot, "ada", "/jobs failed")
    assert f"job {failed.job_id} failed exit 4 — probe" in listing.code
    [detail] = say(bot, "ada", f"/job {failed.job_id}")
    assert detail.text.startswith(f"job {failed.job_id} failed exit 4 — probe script=exit 4")
    [log] = say(bot, "ada", "/audit 5")
    assert log.text == "Latest 5 audit entries:" and len(log.code.splitlines()) == 5


def test_jobs_of_everyone_are_refused_to_non_admins(bot_factory) -> None:
    bot, _ = bot_factory(0, schedules=False, watch=False)
    say(bot, "ada", "/say from ada")
    for words in ("all", "failed", "all failed"):
        [reply] = say(bot, "uma", f"/jobs {words}")
        assert reply.text == f"/jobs {words} is for admins (admin); you have user.", words
    assert "from ada" in say(bot, "ada", "/jobs all")[0].code
    assert say(bot, "uma", "/jobs")[0].text == "No jobs yet."
    assert say(bot, "uma", "/jobs mine")[0].text == "usage: /jobs [all|failed]"


def test_grant_takes_only_known_roles_and_well_formed_identities(bot_factory, tmp_path: Path) -> None:
    add_manifest(tmp_path, probe_like("backup", "echo", roles=["dba"]))  # a role only a skill names
    bot, _ = bot_factory(0, schedules=False, watch=False)
    [reply] = say(bot, "ada", "/grant console:uma operater")
    assert reply.text == "There is no role operater; known roles: admin, dba, operator, user."
    assert say(bot, "ada", "/grant console:uma dba")[0].text == "console:uma now has the role dba."
    shapes = "identities look like telegram:<digits>, slack:<team>:<user>, discord:<digits>, console:<name> or web:<name>."
    for identity in ("telegram:@alice", "slack:U123", "discord:abc", "console:", "console:*", "matrix:@a:b", "uma"):
        [reply] = say(bot, "ada", f"/grant {identity} operator")
        assert reply.text == f"{identity} is not an identity; {shapes}", identity
    for identity in ("telegram:12345", "slack:T1:U123", "discord:98765", "console:bob"):
        assert say(bot, "ada", f"/grant {identity} operator")[0].text == f"{identity} now has the role operator."
    assert {g["identity"] for g in bot.db.execute("SELECT identity FROM grants")} == {
        "console:uma",
        "telegram:12345",
        "slack:T1:U123",
        "discord:98765",
        "console:bob",
    }
