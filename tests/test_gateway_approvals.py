"""Approvals through the gateway: REST approve and deny with chat's rules, the waiting list, and buttons over the WebSocket.

Every decision goes through `Bot.receive` as `/approve` and `/deny` do, so these
tests check what the HTTP status and the frames add, and that the audit is chat's.
"""

from __future__ import annotations

import asyncio
import json
import time

from bot.flow import Action, JobState, Reply
from bot.gateway import client, protocol
from bot.store import audit, ledger
from tests.conftest import add_manifest, probe_like
from tests.gateway_helpers import next_reply, serving
from tests.test_gateway_api import run

RISKY = probe_like("risky", "echo risky ran", approval={"roles": ["admin"], "timeout": "30m"})


def ask(served, token: str) -> int:
    status, body = run(served, "POST", "/api/v1/messages", token, json={"text": "/risky"})
    assert status == 200
    return body["replies"][0]["job_id"]


def test_approve_and_deny_by_rest_follow_chat_and_every_refusal_has_its_status(tmp_path, log_dir):
    add_manifest(tmp_path, RISKY)
    with serving(tmp_path, log_dir) as served:
        olga, ada, alice = served.token("web:olga"), served.token("web:ada"), served.token("web:alice")
        job_id, other, own = ask(served, olga), ask(served, olga), ask(served, ada)

        status, waiting = run(served, "GET", "/api/v1/approvals", ada)
        assert status == 200
        [first, second] = waiting["approvals"]  # not her own job: she may not approve it
        assert (first["id"], first["skill"], first["request"], first["requester"], first["roles"]) == (
            job_id,
            "risky",
            "risky",
            "web:olga",
            ["admin"],
        )
        assert second["id"] == other and first["deadline"] > time.time()
        assert run(served, "GET", "/api/v1/approvals", olga) == (200, {"approvals": []})

        assert run(served, "POST", f"/api/v1/jobs/{job_id}/approve", alice) == (
            403,
            {"error": f"Deciding job {job_id} needs the role admin; you have user."},
        )
        assert run(served, "POST", f"/api/v1/jobs/{job_id}/approve", olga)[0] == 403
        assert run(served, "POST", f"/api/v1/jobs/{own}/approve", ada) == (
            403,
            {"error": f"You asked for job {own}; someone else with the role admin must decide."},
        )
        assert run(served, "POST", "/api/v1/jobs/99999/approve", ada) == (404, {"error": "There is no job 99999 awaiting approval."})
        [plain] = run(served, "POST", "/api/v1/messages", alice, json={"text": "say hi"})[1]["replies"]
        assert run(served, "POST", f"/api/v1/jobs/{plain['job_id']}/deny", ada)[0] == 404  # never needed approval
        assert run(served, "POST", f"/api/v1/jobs/{other}/deny", ada, json={"reason": 5})[0] == 400
        reader = served.token("web:ada", scopes=("read",))
        assert run(served, "POST", f"/api/v1/jobs/{job_id}/approve", reader) == (403, "this token has no chat scope\n")
        assert ledger.get(served.bot.db, job_id).state == JobState.AWAITING_APPROVAL

        status, approved = run(served, "POST", f"/api/v1/jobs/{job_id}/approve", ada)
        assert (status, approved["id"]) == (200, job_id) and approved["state"] in ("queued", "running", "succeeded")
        status, denied = run(served, "POST", f"/api/v1/jobs/{other}/deny", ada, json={"reason": "not  today"})
        assert (status, denied["state"]) == (200, "denied")
        again = run(served, "POST", f"/api/v1/jobs/{job_id}/deny", ada)
        assert again[0] == 409 and again[1]["error"].endswith("by web:ada; there is nothing left to decide.")
        assert run(served, "POST", f"/api/v1/jobs/{other}/approve", ada)[0] == 409
        assert run(served, "GET", "/api/v1/approvals", ada) == (200, {"approvals": []})
        while ledger.unfinished(served.bot.db, [job_id]):
            time.sleep(0.02)
        assert ledger.get(served.bot.db, job_id).state == JobState.SUCCEEDED
        assert ledger.get(served.bot.db, other).output == "not today"

        events = [(e.actor, e.event, e.job_id) for e in audit.latest(served.bot.db, 200) if e.event != "command"]
    decided = [e for e in events if e[1] in ("approval_refused", "approved", "approval_denied")]
    assert decided == [
        ("web:alice", "approval_refused", job_id),
        ("web:olga", "approval_refused", job_id),
        ("web:ada", "approval_refused", own),
        ("web:ada", "approval_refused", 99999),
        ("web:ada", "approval_refused", plain["job_id"]),
        ("web:ada", "approved", job_id),
        ("web:ada", "approval_denied", other),
        ("web:ada", "approval_refused", job_id),
        ("web:ada", "approval_refused", other),
    ]


def test_the_openapi_document_has_the_approval_routes(tmp_path, log_dir):
    with serving(tmp_path, log_dir) as served:
        paths = run(served, "GET", "/api/v1/openapi.json")[1]["paths"]
    deny = paths["/api/v1/jobs/{id}/deny"]["post"]
    assert set(deny["responses"]) >= {"200", "403", "404", "409"}
    assert deny["requestBody"]["content"]["application/json"]["schema"]["properties"]["reason"]["type"] == "string"
    assert "post" in paths["/api/v1/jobs/{id}/approve"] and "get" in paths["/api/v1/approvals"]


def test_a_program_gets_the_approval_notice_with_its_actions_and_approves_by_sending_the_command(tmp_path, log_dir):
    add_manifest(tmp_path, {**RISKY, "approval": {**RISKY["approval"], "notify": "web:ada"}})
    with serving(tmp_path, log_dir) as served:

        async def approve() -> tuple[Reply, Reply, Reply, Reply]:
            replies: asyncio.Queue[Reply] = asyncio.Queue()
            olga: asyncio.Queue[Reply] = asyncio.Queue()
            async with (
                await client.connect(served.ws_url, served.token("web:ada"), on_reply=replies.put_nowait) as ada,
                await client.connect(served.ws_url, served.token("web:olga"), on_reply=olga.put_nowait) as requester,
            ):
                await requester.send("/risky")
                asked = await next_reply(olga, "the requester's answer")
                notice = await next_reply(replies, "the approval notice")
                [approve, _] = notice.actions
                await ada.send(approve.command)
                approved = await next_reply(replies, "the approval's answer")
                done = await next_reply(olga, "approved")
                while " done in " not in done.text:
                    done = await next_reply(olga, "the run's result")
                return asked, notice, approved, done

        asked, notice, approved, done = asyncio.run(approve())
    job_id = asked.job_id
    assert asked.actions == ()  # the approvers are told elsewhere: the requester has nothing to press
    assert notice.conversation == "web:ada" and notice.text.startswith(f"web:olga asks to run job {job_id} risky;")
    assert [(a.label, a.command) for a in notice.actions] == [("Approve", f"/approve {job_id}"), ("Deny", f"/deny {job_id}")]
    assert approved.text == f"job {job_id} approved; queued: risky"
    assert done.text.startswith(f"job {job_id} risky done in ")


def test_a_reply_frame_carries_its_actions_and_an_empty_list_without_any():
    notice = Reply("web:ada", "approve?", job_id=7, actions=(Action("Approve", "/approve 7"), Action("Deny", "/deny 7")))
    frame = json.loads(protocol.reply(notice))
    assert frame["actions"] == [{"label": "Approve", "command": "/approve 7"}, {"label": "Deny", "command": "/deny 7"}]
    assert json.loads(protocol.reply(Reply("web:ada", "hi")))["actions"] == []
