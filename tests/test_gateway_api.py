"""The gateway's HTTP side: the REST API with the chat's roles, health, readiness and metrics; a real server and aiohttp."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from adapters.base import Status
from bot.errors import Unavailable
from bot.gateway import api
from bot.store import audit, ledger
from tests.conftest import WAIT
from tests.fake_runner import FakeRunner, Scripted
from tests.gateway_helpers import Served, serving


async def call(served: Served, method: str, path: str, token: str | None = None, **options: Any) -> tuple[int, Any, dict[str, str]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    headers.update(options.pop("headers", {}))
    async with aiohttp.ClientSession() as session:
        async with session.request(method, served.url + path, headers=headers, **options) as resp:
            body = await resp.json() if resp.content_type == "application/json" else await resp.text()
            return resp.status, body, dict(resp.headers)


def run(served: Served, method: str, path: str, token: str | None = None, **options: Any) -> tuple[int, Any]:
    status, body, _ = asyncio.run(call(served, method, path, token, **options))
    return status, body


PROTECTED = [
    ("POST", "/api/v1/messages"),
    *((r.method, "/api/v1" + r.path.replace("{id}", "1")) for r in api.ROUTES),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
]


def test_every_request_without_a_valid_token_gets_401_with_one_line_and_an_audit_entry(tmp_path, log_dir):
    with serving(tmp_path, log_dir, audit_failures=1000) as served:
        expired = served.token(ttl=60, now=0)
        for method, path in PROTECTED:
            for token in (None, "nonsense", expired):
                status, body, headers = asyncio.run(call(served, method, path, token, json={"text": "say hi"}))
                assert (status, body) == (401, "unauthorized\n"), (method, path, token)
                assert headers["Server"] == "podbot" and headers["X-Content-Type-Options"] == "nosniff"
        refused = [e for e in audit.latest(served.bot.db, 100) if e.event == "unauthorized"]
    assert len(refused) == 3 * len(PROTECTED)
    assert {e.detail.split(": ", 1)[1].split(":")[0] for e in refused} >= {"no token", "invalid", "expired"}


def test_a_message_by_rest_is_a_chat_message_and_its_job_can_be_read(tmp_path, log_dir):
    with serving(tmp_path, log_dir) as served:
        alice = served.token()
        status, body = run(served, "POST", "/api/v1/messages", alice, json={"text": "say hello"})
        assert status == 200
        [queued] = body["replies"]
        job_id = queued["job_id"]
        assert queued["text"] == f"job {job_id} queued: say text=hello"
        while ledger.unfinished(served.bot.db, [job_id]):
            asyncio.run(asyncio.sleep(0.02))
        status, job = run(served, "GET", f"/api/v1/jobs/{job_id}", alice)
        assert (status, job["state"], job["output"], job["requester"]) == (200, "succeeded", "hello\n", "web:alice")
        status, mine = run(served, "GET", "/api/v1/jobs", alice)
        assert [j["id"] for j in mine["jobs"]] == [job_id]
        assert run(served, "POST", "/api/v1/messages", alice, json={"txt": 1})[0] == 400
        assert run(served, "POST", "/api/v1/messages", alice, data="{", headers={"Content-Type": "application/json"})[0] == 400
        assert run(served, "GET", "/api/v1/jobs/0", alice)[0] == 400
        assert run(served, "GET", "/api/v1/jobs?limit=1000", alice)[0] == 400


def test_the_api_grants_nothing_chat_would_refuse(tmp_path, log_dir):
    runner = FakeRunner()
    runner.script(lambda spec: spec.argv[-1] == "slow", Scripted(delay=WAIT))
    with serving(tmp_path, log_dir, runner) as served:
        alice, ada = served.token("web:alice"), served.token("web:ada")
        [queued] = run(served, "POST", "/api/v1/messages", alice, json={"text": "say slow"})[1]["replies"]
        job_id = queued["job_id"]
        assert run(served, "GET", f"/api/v1/jobs/{job_id}", ada)[0] == 200  # admins see every job
        assert run(served, "GET", f"/api/v1/jobs/{job_id}", served.token("web:bob")) == (
            404,
            {"error": f"There is no job {job_id} of yours."},
        )
        for path in ("/api/v1/jobs?which=all", "/api/v1/jobs?which=failed", "/api/v1/schedules", "/api/v1/audit"):
            status, body = run(served, "GET", path, alice)
            assert status == 403 and "is for admins (admin); you have user." in body["error"], path
            assert run(served, "GET", path, ada)[0] == 200, path
        # As in chat: your own job you may cancel, someone else's is not there for you, admins cancel any.
        assert run(served, "POST", f"/api/v1/jobs/{job_id}/cancel", served.token("web:bob"))[0] == 404
        assert ledger.get(served.bot.db, job_id).state.value in ("queued", "running")
        status, cancelled = run(served, "POST", f"/api/v1/jobs/{job_id}/cancel", ada)
        assert (status, cancelled["state"]) == (200, "cancelled")
        assert run(served, "POST", f"/api/v1/jobs/{job_id}/cancel", ada)[0] == 409
        assert run(served, "POST", "/api/v1/jobs/999/cancel", ada)[0] == 404
        [mine] = run(served, "POST", "/api/v1/messages", alice, json={"text": "say slow"})[1]["replies"]
        status, cancelled = run(served, "POST", f"/api/v1/jobs/{mine['job_id']}/cancel", alice)
        assert (status, cancelled["state"]) == (200, "cancelled")
        denied = [e.detail for e in audit.latest(served.bot.db, 100) if e.event == "denied"]
        assert "API audit" in denied
        skills = {s["name"] for s in run(served, "GET", "/api/v1/skills", alice)[1]["skills"]}
        assert "say" in skills and "tail_log" not in skills
        assert "tail_log" in {s["name"] for s in run(served, "GET", "/api/v1/skills", ada)[1]["skills"]}


def test_scopes_only_take_away(tmp_path, log_dir):
    with serving(tmp_path, log_dir) as served:
        reader = served.token("web:ada", scopes=("read",))
        assert run(served, "GET", "/api/v1/audit", reader)[0] == 200
        assert run(served, "POST", "/api/v1/messages", reader, json={"text": "say hi"}) == (403, "this token has no chat scope\n")
        assert run(served, "POST", "/api/v1/jobs/1/cancel", reader)[0] == 403
        assert run(served, "GET", "/api/v1/jobs", served.token(scopes=("chat",)))[0] == 403


def test_a_browser_request_from_another_origin_is_refused(tmp_path, log_dir):
    with serving(tmp_path, log_dir) as served:
        token = served.token()
        evil = {"Origin": "https://evil.example"}
        assert run(served, "POST", "/api/v1/messages", token, json={"text": "say hi"}, headers=evil)[0] == 403
        same = {"Origin": served.url}
        assert run(served, "POST", "/api/v1/messages", token, json={"text": "say hi"}, headers=same)[0] == 200


def test_openapi_health_readiness_and_metrics(tmp_path, log_dir):
    with serving(tmp_path, log_dir) as served:
        status, doc = run(served, "GET", "/api/v1/openapi.json")
        assert status == 200 and doc["openapi"].startswith("3.")
        documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
        assert documented == {(r.method, "/api/v1" + r.path) for r in api.ROUTES} | {("POST", "/api/v1/hooks/{name}")}
        assert run(served, "GET", "/healthz") == (200, "ok\n")
        token = served.token(scopes=("read",))
        status, ready = run(served, "GET", "/readyz", token)
        assert status == 200 and ready["ready"] and {c["name"] for c in ready["checks"]} == {"database", "queue", "podman"}
        run(served, "POST", "/api/v1/messages", served.token(), json={"text": "say hi"})
        while ledger.unfinished(served.bot.db, [1]):
            asyncio.run(asyncio.sleep(0.02))
        status, text = run(served, "GET", "/metrics", token)
    assert status == 200
    for line in (
        'podbot_jobs{skill="say",state="succeeded"} 1.0',
        'podbot_job_duration_seconds_count{skill="say"} 1.0',
        "podbot_queue_depth ",
        'podbot_outbox_pending{platform="web"}',
        'podbot_outbox_oldest_seconds{platform="web"}',
        'podbot_adapter_connected{platform="web"} 1.0',
        "podbot_gateway_connections 0.0",
        'podbot_routing_seconds_count{stage="decide"} 1.0',
        'podbot_routing_seconds_bucket{le="+Inf",stage="enqueue"} 1.0',
    ):
        assert line in text, line


class Stalled:
    """A platform adapter that cannot connect (what /readyz and /metrics read of an adapter: its platform and status)."""

    platform = "telegram"

    def status(self) -> Status:
        return Status("connecting", "ConnectError: network unreachable")


class PodmanGone(FakeRunner):
    """Podman goes away once the bot is up (at start, recovery lists the containers)."""

    gone = False

    def containers(self):
        if self.gone:
            raise Unavailable("the Podman API at unix:///run/podman.sock does not answer")
        return super().containers()


def test_readyz_says_what_is_not_ready_and_why(tmp_path, log_dir):
    runner = PodmanGone()
    with serving(tmp_path, log_dir, runner, platforms=[Stalled()]) as served:
        runner.gone = True
        token = served.token(scopes=("read",))
        status, ready = run(served, "GET", "/readyz", token)
        text = run(served, "GET", "/metrics", token)[1]
    checks = {c["name"]: (c["ok"], c["detail"]) for c in ready["checks"]}
    assert status == 503 and ready["ready"] is False
    assert checks["podman"] == (False, "Unavailable: the Podman API at unix:///run/podman.sock does not answer")
    assert checks["telegram"] == (False, "connecting: ConnectError: network unreachable")
    assert checks["database"][0] and checks["queue"][0]
    assert 'podbot_adapter_connected{platform="telegram"} 0.0' in text


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
