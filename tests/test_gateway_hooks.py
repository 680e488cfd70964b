"""Inbound webhooks: a signed request runs the hook's skill as its identity, with the chat's roles; anything unsigned is 401."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from bot.gateway import hooks
from bot.store import audit, ledger
from tests.gateway_helpers import Served, serving

SECRET = "s3cret-for-ci"
HOOKS = {
    "ci": {"skill": "say", "as": "web:ci", "body_arg": "text", "reply_to": "web:ops"},
    "fetch-logs": {"skill": "tail_log", "as": "web:ci", "args": {"file": "syslog"}},
    "broken": {"skill": "say", "as": "web:ci", "args": {"colour": "red"}},
}
ENVIRON = {hooks.secret_name(name): SECRET for name in HOOKS}


def post(
    served: Served, name: str, body: bytes, secret: str = SECRET, when: float | None = None, signature: str | None = None
) -> tuple[int, str]:
    stamp = str(int(time.time() if when is None else when))
    headers = {"X-Podbot-Timestamp": stamp, "X-Podbot-Signature": signature or hooks.signature(secret, stamp, body)}

    async def send() -> tuple[int, str]:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{served.url}/api/v1/hooks/{name}", data=body, headers=headers) as resp:
                return resp.status, await resp.text()

    return asyncio.run(send())


def test_a_signed_request_runs_the_skill_as_the_hooks_identity(tmp_path, log_dir):
    with serving(tmp_path, log_dir, environ=ENVIRON, hooks=HOOKS) as served:
        status, body = post(served, "ci", b"build 42 passed")
        assert status == 202, body
        job_id = int(body.split(":")[1].strip(" }"))
        while ledger.unfinished(served.bot.db, [job_id]):
            time.sleep(0.02)
        job = ledger.get(served.bot.db, job_id)
        entries = [(e.actor, e.event, e.skill) for e in audit.latest(served.bot.db, 10)]
        stamp = str(int(time.time()))
        once = post(served, "ci", b"deploy", when=float(stamp), signature=hooks.signature(SECRET, stamp, b"deploy"))
        replayed = post(served, "ci", b"deploy", when=float(stamp), signature=hooks.signature(SECRET, stamp, b"deploy"))
    assert (job.skill, job.requester, job.conversation, job.output) == ("say", "web:ci", "web:ops", "build 42 passed\n")
    assert ("web:ci", "hook", "say") in entries
    assert once[0] == 202 and replayed == (401, "unauthorized\n")


def test_the_hooks_identity_needs_the_role_and_valid_arguments(tmp_path, log_dir):
    with serving(tmp_path, log_dir, environ=ENVIRON, hooks=HOOKS) as served:
        denied = post(served, "fetch-logs", b"")
        invalid = post(served, "broken", b"")
        events = [e.event for e in audit.latest(served.bot.db, 10)]
    assert denied[0] == 403 and "web:ci may not run tail_log" in denied[1]
    assert invalid[0] == 400
    assert "denied" in events and "invalid_arguments" in events


def test_every_unsigned_stale_or_tampered_request_is_401_and_audited(tmp_path, log_dir):
    with serving(tmp_path, log_dir, environ=ENVIRON, hooks={**HOOKS, "nosecret": HOOKS["ci"]}) as served:
        body = b"deploy"
        good = hooks.signature(SECRET, str(int(time.time())), body)
        attempts = {
            "wrong secret": post(served, "ci", body, secret="guess"),
            "old timestamp": post(served, "ci", body, when=time.time() - 3600),
            "future timestamp": post(served, "ci", body, when=time.time() + 3600),
            "tampered body": post(served, "ci", body + b"!", signature=good),
            "no signature": post(served, "ci", body, signature="sha256="),
            "unknown hook": post(served, "nope", body),
            "hook without a secret": post(served, "nosecret", body),
        }
        reasons = [e.detail for e in audit.latest(served.bot.db, 20) if e.event == "unauthorized"]
        jobs = served.bot.db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
    assert attempts == {name: (401, "unauthorized\n") for name in attempts}
    assert len(reasons) == len(attempts) and jobs == 0
    for reason in ("bad signature", "more than 300 s away", "no such hook", "HOOK_NOSECRET_SECRET is not set"):
        assert any(reason in r for r in reasons), reason
