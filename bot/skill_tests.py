"""`podbot manifests test`: run the manifests' `tests:` cases through a real bot on a scratch data dir.

Every case is a message sent through `Bot.receive`: the real router, the
understanding stages, the pipeline, the Huey queue and rootless Podman
containers. The bot's decision is read from the audit log (one entry per
message), the job from the ledger, and the result is awaited as the reply
its adapter is given, so a case passes only when the whole path works.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from adapters.contract import SimpleAdapter
from bot.app import Bot
from bot.config import Config
from bot.flow import Job, JobState, Message, Reply, platform_of
from bot.jobs.worker import tail
from bot.skill import NO_SKILL, Skill, SkillTest, manifest_files
from bot.store import audit, grants, ledger

# Decisions after which a job runs (confirm_requested: once confirmed). Workers audit
# a job too (started, finished…), but only after one of these queued it.
WILL_RUN = ("enqueued", "cached", "confirm_requested", "awaiting_approval")
APPROVER = "console:test-approver"  # approves runs of skills with `approval:`, holding the first approving role
RESULT_MARGIN = 60.0  # seconds beyond a skill's own time limits for queueing and container start-up
GRANTOR = "podbot:test"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Result:
    file: str
    say: str
    expected: str  # the skill the case expects, or NO_SKILL
    passed: bool
    why: str = ""  # what differed; empty when the case passed


class _Inbox:
    """Every reply the bot delivers, whichever platform it is addressed to."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self._cond = threading.Condition()

    def put(self, reply: Reply) -> None:
        with self._cond:
            self.replies.append(reply)
            self._cond.notify_all()

    def wait_for(self, found: Callable[[Reply], bool], seconds: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: any(found(r) for r in self.replies), seconds)


class _Recorder(SimpleAdapter):
    """An adapter that hands every reply of its platform to the inbox."""

    def __init__(self, platform: str, inbox: _Inbox) -> None:
        self.platform = platform
        self.inbox = inbox

    def send(self, reply: Reply) -> None:
        self.inbox.put(reply)


def run(cfg: Config, paths: list[Path], progress: Progress = lambda _: None) -> list[Result]:
    """Run the cases of the manifests under `paths` (default: every configured one), loaded with the configured ones."""
    with tempfile.TemporaryDirectory(prefix="podbot-test-") as scratch:
        bot = Bot(_scratch_config(cfg, Path(scratch), paths))
        progress("checking Podman and the base image…")
        bot.check_host()
        inbox = _Inbox()
        for platform in _platforms(bot):
            bot.add_adapter(_Recorder(platform, inbox))
        bot.start(max(cfg.workers, 1), schedules=False, watch=False)
        try:
            return _run_cases(bot, inbox, _tested(bot, paths), progress)
        finally:
            bot.stop()


def _scratch_config(cfg: Config, data_dir: Path, paths: list[Path]) -> Config:
    known = {f.resolve() for f in manifest_files(list(cfg.manifest_dirs))}
    extra = [f for f in manifest_files(paths) if f.resolve() not in known]
    # The rate limit is for people; a manifest's cases may start many jobs as one sender within a minute.
    unlimited = dataclasses.replace(cfg.rate_limit, jobs=sys.maxsize)
    # A scratch database too: a shared PostgreSQL one holds real jobs and replies, which the tests' recorders must not take.
    return dataclasses.replace(cfg, data_dir=data_dir, database=None, manifest_dirs=(*cfg.manifest_dirs, *extra), rate_limit=unlimited)


def _platforms(bot: Bot) -> set[str]:
    """Every platform a result may be addressed to: the tests' own console, alerts, and skills' reply_to."""
    targets = [bot.cfg.alert_conversation] + [s.reply_to for s in bot.catalog if s.reply_to and s.reply_to != "alerts"]
    return {"console"} | {platform_of(t) for t in targets}


def _tested(bot: Bot, paths: list[Path]) -> list[Skill]:
    chosen = {f.resolve() for f in manifest_files(paths)}
    skills = [s for s in bot.catalog if not paths or Path(s.file).resolve() in chosen]
    return sorted(skills, key=lambda s: s.file)


def _run_cases(bot: Bot, inbox: _Inbox, skills: list[Skill], progress: Progress) -> list[Result]:
    results: list[Result] = []
    for skill in skills:
        for case in skill.tests:
            progress(f"{Path(skill.file).name}: {case.say}")
            why = _run_case(bot, inbox, case, f"console:test-case-{len(results) + 1}")
            results.append(Result(skill.file, case.say, case.skill, not why, why))
    return results


def _run_case(bot: Bot, inbox: _Inbox, case: SkillTest, conversation: str) -> str:
    """Why the case failed; empty when it passed."""
    if case.grant:
        grants.grant(bot.db, case.identity, case.grant, GRANTOR)
    decision, replies = _send(bot, case, conversation, case.say)
    if decision.event == "confirm_requested" and case.skill != NO_SKILL:
        decision, replies = _send(bot, case, conversation, "yes")
    routed = decision.skill if decision.event in WILL_RUN and decision.skill else NO_SKILL
    if routed != case.skill:
        answer = " / ".join(r.text for r in replies)
        return f"expected {case.skill}, got {routed} ({decision.event}: {answer})"
    if routed == NO_SKILL:
        return ""
    skill = bot.catalog.get(routed)
    job = ledger.get(bot.db, decision.job_id or 0)
    assert skill is not None and job is not None  # the decision just named both
    if case.args is not None:
        expected = {name: prop["default"] for name, prop in skill.properties.items() if "default" in prop} | case.args
        if job.args != expected:
            return f"arguments {json.dumps(job.args)}, expected {json.dumps(expected)}"
    if decision.event == "awaiting_approval" and skill.approval is not None:
        grants.grant(bot.db, APPROVER, min(skill.approval.roles), GRANTOR)
        replies += bot.receive(Message(platform="console", conversation=conversation, user=APPROVER, text=f"/approve {job.id}"))
    limit = (skill.timeout + skill.retry_delay) * (skill.retries + 1) + RESULT_MARGIN
    acks = {r.text for r in replies}
    if not inbox.wait_for(lambda r: r.job_id == job.id and r.text not in acks, limit):
        return f"no result from job {job.id} within {limit:g} s"
    final = ledger.get(bot.db, job.id)
    assert final is not None  # the ledger keeps every job
    return _output_problem(case, final)


def _send(bot: Bot, case: SkillTest, conversation: str, text: str) -> tuple[audit.Entry, list[Reply]]:
    """Say `text` as the case's sender; the bot's decision (its audit entry) and immediate replies."""
    latest = audit.latest(bot.db, 1)
    mark = latest[0].id if latest else 0
    replies = bot.receive(Message(platform="console", conversation=conversation, user=case.identity, text=text))
    mine = [e for e in audit.latest(bot.db, 50) if e.id > mark and e.actor == case.identity and e.conversation == conversation]
    return next((e for e in mine if e.event in WILL_RUN), mine[-1]), replies


def _output_problem(case: SkillTest, job: Job) -> str:
    end = job.state.value + (f" with exit code {job.exit_code}" if job.exit_code not in (None, 0) else "")
    last = tail(job.output, 3) or "(no output)"
    if case.output is not None:
        return "" if case.output.search(job.output) else f"output does not match {case.output.pattern!r}; job {end}: {last}"
    return "" if job.state == JobState.SUCCEEDED else f"job {end}: {last}"
