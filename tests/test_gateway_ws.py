"""The gateway's WebSocket endpoint, end to end: a real server on 127.0.0.1, the shipped client and raw WebSockets.

Skills run on a FakeRunner: the subject here is the front door, the protocol and delivery.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import time

import aiohttp
import jwt
import pytest
from click.testing import CliRunner, Result

from bot import config
from bot.app import Bot
from bot.cli import main
from bot.errors import Unavailable
from bot.flow import Message, Reply
from bot.gateway import client, guard, protocol, tokens
from bot.gateway.protocol import Close
from bot.gateway.server import Gateway
from bot.store import audit, ledger
from bot.store import tokens as issued
from bot.store.database import SqliteDatabase
from tests.conftest import WAIT, add_manifest, make_bot, probe_like, write_config
from tests.fake_runner import FakeRunner, Scripted
from tests.gateway_helpers import Served, closed_with, next_reply, serving


def refusals(served: Served) -> list[str]:
    return [e.detail for e in audit.latest(served.bot.db, 100) if e.event == "unauthorized"]


async def raw(served: Served, **options: object) -> tuple[aiohttp.ClientSession, aiohttp.ClientWebSocketResponse]:
    session = aiohttp.ClientSession()
    return session, await session.ws_connect(served.ws_url, **options)  # type: ignore[arg-type]


def test_a_person_sends_and_gets_the_ack_and_the_result_pushed(tmp_path, log_dir):
    with serving(tmp_path, log_dir) as served:

        async def talk() -> list[Reply]:
            replies: asyncio.Queue[Reply] = asyncio.Queue()
            async with await client.connect(served.ws_url, served.token(), on_reply=replies.put_nowait) as alice:
                assert (alice.identity, alice.conversation) == ("web:alice", "web:alice")
                await alice.send("say hello")
                return [await next_reply(replies, "queued"), await next_reply(replies, "result")]

        queued, done = asyncio.run(talk())
    assert queued.text.startswith("job ") and "queued: say text=hello" in queued.text
    assert done.job_id == queued.job_id and done.code == "hello\n"
    assert ledger.get(served.bot.db, queued.job_id).requester == "web:alice"


def test_roles_are_the_chats(tmp_path, log_dir):
    """web:alice has the default role: the gateway grants nothing chat would refuse."""
    with serving(tmp_path, log_dir) as served:

        async def talk(identity: str, text: str) -> str:
            replies: asyncio.Queue[Reply] = asyncio.Queue()
            async with await client.connect(served.ws_url, served.token(identity), on_reply=replies.put_nowait) as person:
                await person.send(text)
                return (await next_reply(replies, text)).text

        refused = asyncio.run(talk("web:alice", "/tail_log file=syslog"))
        allowed = asyncio.run(talk("web:olga", "/tail_log file=syslog"))
        admin_only = asyncio.run(talk("web:alice", "/audit"))
    assert "queued" not in refused and "tail_log" in refused
    assert "queued" in allowed
    assert "admins" in admin_only


def test_replies_for_an_offline_client_wait_in_the_outbox_and_arrive_in_order_after_a_restart(tmp_path, log_dir):
    path = write_config(tmp_path, log_dir, gateway={"listen": "127.0.0.1:0"})
    first = make_bot(config.load(str(path), environ={}), FakeRunner())
    gateway = Gateway(first)
    first.start(2, schedules=False)
    gateway.start()
    job_ids = []
    for n, word in enumerate(["one", "two", "three"]):
        replies = first.receive(Message("web", "web:alice", "web:alice", f"say {word}", "alice", message_id=f"offline-{n}"))
        job_ids.append(replies[0].job_id)
    deadline = time.monotonic() + WAIT
    while ledger.unfinished(first.db, job_ids):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    owed = [r["text"] for r in first.db.execute("SELECT text FROM outbox WHERE conversation = 'web:alice' ORDER BY id")]
    gateway.stop()
    first.stop()
    assert len(owed) == 6

    with serving(tmp_path, log_dir) as served:  # the same data dir: a restarted bot

        async def reconnect() -> list[str]:
            replies: asyncio.Queue[Reply] = asyncio.Queue()
            async with await client.connect(served.ws_url, served.token(), on_reply=replies.put_nowait):
                return [(await next_reply(replies, "owed")).text for _ in owed]

        got = asyncio.run(reconnect())
    assert got == owed


def test_a_reply_waits_while_its_client_is_away_and_comes_when_it_reconnects(tmp_path, log_dir):
    runner = FakeRunner()
    runner.script(lambda spec: spec.argv[-1] == "late", Scripted(delay=WAIT))  # runs until the test ends it
    with serving(tmp_path, log_dir, runner) as served:
        token = served.token()

        async def leave_then_return() -> tuple[Reply, Reply]:
            replies: asyncio.Queue[Reply] = asyncio.Queue()
            alice = await client.connect(served.ws_url, token, on_reply=replies.put_nowait)
            await alice.send("say late")
            queued = await next_reply(replies, "queued")
            await alice.close()
            while not runner.containers():
                await asyncio.sleep(0.02)
            runner.remove(runner.containers()[0].name)  # the job ends while alice is away
            while not ledger.get(served.bot.db, queued.job_id).state.terminal:
                await asyncio.sleep(0.02)
            async with await client.connect(served.ws_url, token, on_reply=replies.put_nowait):
                return queued, await next_reply(replies, "the result that waited")

        queued, result = asyncio.run(leave_then_return())
    assert result.job_id == queued.job_id and " queued" not in result.text


def _tokens(served: Served) -> dict[str, str]:
    key = tokens.signing_key(served.bot.cfg.data_dir)
    good = tokens.create(served.bot.db, key, "web:alice", 3600)
    revoked = tokens.create(served.bot.db, key, "web:alice", 3600)
    issued.revoke(served.bot.db, revoked.token_id)
    valid = tokens.encode(key, good)
    header, payload, signature = valid.split(".")
    claims = json.loads(jwt.utils.base64url_decode(payload))
    forged = jwt.utils.base64url_encode(json.dumps({**claims, "sub": "web:ada"}).encode()).decode()
    unsigned = jwt.encode(claims, None, algorithm="none")
    now = time.time()
    return {
        "alg none": unsigned,
        "alg none, signature kept": unsigned + signature,
        "HS512": jwt.encode(claims, key, algorithm="HS512"),
        "wrong key": jwt.encode(claims, b"k" * 64, algorithm="HS256"),
        "expired": tokens.encode(key, tokens.create(served.bot.db, key, "web:alice", 60, now=now - 7200), now=now - 7200),
        "not valid yet": tokens.encode(key, tokens.create(served.bot.db, key, "web:alice", 7200, now=now + 3600), now=now + 3600),
        "revoked": tokens.encode(key, revoked),
        "tampered": f"{header}.{forged}.{signature}",
        "not a token": "hello",
        "empty": "",
    }


def test_every_bad_token_is_closed_4401_with_one_word_and_audited(tmp_path, log_dir):
    with serving(tmp_path, log_dir, audit_failures=1000) as served:
        bad = _tokens(served)

        async def attempt(token: str) -> tuple[int | None, str]:
            session, ws = await raw(served)
            async with session:
                await ws.send_str(protocol.auth(token))
                return await closed_with(ws)

        outcomes = {name: asyncio.run(attempt(token)) for name, token in bad.items()}
        reasons = refusals(served)
    assert outcomes == {name: (Close.UNAUTHORIZED, "unauthorized") for name in bad}
    assert len(reasons) == len(bad)
    for expected in ("algorithm not allowed", "bad signature", "expired", "not valid yet", "revoked token"):
        assert any(expected in r for r in reasons), (expected, reasons)


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        (["{not json"], Close.BAD_FRAME),
        (["[1, 2]"], Close.BAD_FRAME),
        ([json.dumps({"type": "auth"})], Close.BAD_FRAME),
        ([json.dumps({"type": "launch"})], Close.UNKNOWN_TYPE),
        ([protocol.message("1", "say hi")], Close.UNAUTHORIZED),
        ([json.dumps({"type": "auth", "token": "x", "v": 2})], Close.BAD_VERSION),
        ([b"\x00binary"], Close.BINARY),
        (["x" * 5000], Close.TOO_BIG),
        (["AUTH", json.dumps({"type": "launch"})], Close.UNKNOWN_TYPE),
        (["AUTH", "{not json"], Close.BAD_FRAME),
        (["AUTH", "AUTH AGAIN"], Close.BAD_FRAME),
        (["AUTH", json.dumps({"type": "message", "id": "x" * 65, "text": "hi"})], Close.BAD_FRAME),
        (["AUTH", "y" * 5000], Close.TOO_BIG),
    ],
    ids=[
        "not-json",
        "not-an-object",
        "auth-without-token",
        "unknown-type",
        "message-before-auth",
        "unknown-version",
        "binary",
        "too-big-before-auth",
        "unknown-type-after-auth",
        "not-json-after-auth",
        "auth-twice",
        "id-too-long",
        "too-big-after-auth",
    ],
)
def test_a_bad_frame_closes_with_its_code_and_the_gateway_serves_on(tmp_path, log_dir, frames, code):
    with serving(tmp_path, log_dir, max_frame=4096) as served:
        token = served.token()

        async def misbehave_then_behave() -> tuple[int | None, Reply]:
            session, ws = await raw(served)
            async with session:
                for frame in frames:
                    if frame == "AUTH":
                        await ws.send_str(protocol.auth(token))
                        assert json.loads((await ws.receive()).data)["type"] == "welcome"
                    elif frame == "AUTH AGAIN":
                        await ws.send_str(protocol.auth(token))
                    elif isinstance(frame, bytes):
                        await ws.send_bytes(frame)
                    else:
                        await ws.send_str(frame)
                closed, _ = await closed_with(ws)
            replies: asyncio.Queue[Reply] = asyncio.Queue()
            async with await client.connect(served.ws_url, token, on_reply=replies.put_nowait) as alice:
                await alice.send("/whoami")
                return closed, await next_reply(replies, "whoami")

        closed, answer = asyncio.run(misbehave_then_behave())
    assert closed == code
    assert "web:alice" in answer.text


def test_no_auth_frame_in_time_closes_4408(tmp_path, log_dir):
    with serving(tmp_path, log_dir, auth_timeout=0.2) as served:

        async def silent() -> tuple[int | None, str]:
            session, ws = await raw(served)
            async with session:
                return await closed_with(ws)

        assert asyncio.run(silent())[0] == Close.AUTH_TIMEOUT
        assert any("no auth frame" in r for r in refusals(served))


def test_unauthenticated_connections_per_address_are_capped(tmp_path, log_dir):
    with serving(tmp_path, log_dir, max_unauthenticated=3) as served:
        token = served.token()

        async def flood() -> tuple[int | None, str]:
            alice = await client.connect(served.ws_url, token)
            sessions = []
            waiting = []
            for _ in range(3):
                session, ws = await raw(served)
                sessions.append(session)
                waiting.append(ws)
            session, extra = await raw(served)
            sessions.append(session)
            refused = await closed_with(extra)
            await alice.send("/whoami")  # a connected client is not held up
            # A waiting connection that authenticates frees its place.
            await waiting[0].send_str(protocol.auth(token))
            assert json.loads((await waiting[0].receive()).data)["type"] == "welcome"
            session, again = await raw(served)
            sessions.append(session)
            await again.send_str(protocol.auth(token))
            assert json.loads((await again.receive()).data)["type"] == "welcome"
            for session in sessions:
                await session.close()
            await alice.close()
            return refused

        assert asyncio.run(flood()) == (Close.TOO_MANY, "too many unauthenticated connections from your address")


def test_heartbeats_close_a_client_that_never_answers_pings(tmp_path, log_dir):
    with serving(tmp_path, log_dir, heartbeat=0.2) as served:
        token = served.token()

        async def mute() -> aiohttp.WSMsgType:
            session, ws = await raw(served, autoping=False)
            async with session:
                await ws.send_str(protocol.auth(token))
                while (msg := await ws.receive()).type in (aiohttp.WSMsgType.PING, aiohttp.WSMsgType.TEXT):
                    pass  # pings never answered; the welcome may come before the close
                return msg.type

        assert asyncio.run(mute()) in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)


def test_an_application_ping_gets_a_pong(tmp_path, log_dir):
    with serving(tmp_path, log_dir) as served:
        token = served.token()

        async def ping() -> list[str]:
            session, ws = await raw(served)
            async with session:
                await ws.send_str(protocol.auth(token))
                await ws.send_str(protocol.ping())
                return [json.loads((await ws.receive()).data)["type"] for _ in range(2)]

        assert asyncio.run(ping()) == ["welcome", "pong"]


def test_a_page_of_another_origin_is_refused(tmp_path, log_dir):
    with serving(tmp_path, log_dir) as served:

        async def cross_site() -> int:
            async with aiohttp.ClientSession() as session:
                try:
                    await session.ws_connect(served.ws_url, origin="http://evil.example")
                except aiohttp.WSServerHandshakeError as exc:
                    return exc.status
            raise AssertionError("the upgrade was accepted")

        assert asyncio.run(cross_site()) == 403
        assert any("another origin" in r for r in refusals(served))


def test_a_token_without_chat_scope_and_a_token_revoked_while_connected(tmp_path, log_dir):
    with serving(tmp_path, log_dir, heartbeat=3600) as served:  # the revocation is seen at the next message
        reader = served.token(scopes=("read",))
        key = tokens.signing_key(served.bot.cfg.data_dir)
        grant = tokens.create(served.bot.db, key, "web:alice", 3600)

        async def scenario() -> tuple[int | None, int | None]:
            with pytest.raises(client.Closed) as refused:
                await client.connect(served.ws_url, reader)
            alice = await client.connect(served.ws_url, tokens.encode(key, grant))
            await alice.send("/whoami")
            issued.revoke(served.bot.db, grant.token_id)
            with pytest.raises(client.Closed) as cut:
                await alice.send("/whoami")
            await alice.close()
            return refused.value.code, cut.value.code

        assert asyncio.run(scenario()) == (Close.FORBIDDEN, Close.UNAUTHORIZED)


def test_a_connection_whose_token_is_revoked_is_closed_without_a_message(tmp_path, log_dir):
    # The check runs once every heartbeat; 1 s leaves the client half of it to answer each ping, even on a busy machine.
    with serving(tmp_path, log_dir, heartbeat=1.0) as served:
        key = tokens.signing_key(served.bot.cfg.data_dir)
        grant = tokens.create(served.bot.db, key, "web:alice", 3600)

        async def idle_then_revoked() -> int | None:
            session, ws = await raw(served)
            async with session:
                await ws.send_str(protocol.auth(tokens.encode(key, grant)))
                assert json.loads((await ws.receive()).data)["type"] == "welcome"
                issued.revoke(served.bot.db, grant.token_id)
                return (await closed_with(ws))[0]

        assert asyncio.run(idle_then_revoked()) == Close.UNAUTHORIZED


def test_refusals_are_audited_at_most_n_a_minute_and_the_rest_counted(tmp_path):
    db = SqliteDatabase(tmp_path / "podbot.db")
    clock = [1000.0]
    refused = guard.Refusals(db, 2, clock=lambda: clock[0])
    for n in range(5):
        refused.record("10.0.0.1", "/ws", f"attempt {n}")
    clock[0] += guard.WINDOW
    refused.record("10.0.0.1", "/ws", "attempt 5")
    details = [e.detail for e in audit.latest(db, 10)]
    assert details == ["/ws: attempt 0", "/ws: attempt 1", "/ws: attempt 5 (3 more refused requests not audited)"]


def test_the_signing_key_is_made_once_mode_0600_and_refused_when_others_may_read_it(tmp_path):
    key = tokens.signing_key(tmp_path)
    path = tmp_path / tokens.KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert tokens.signing_key(tmp_path) == key and len(key) == tokens.KEY_BYTES
    os.chmod(path, 0o644)
    with pytest.raises(Unavailable, match="chmod 600"):
        tokens.signing_key(tmp_path)


def test_token_create_and_revoke_on_the_command_line(tmp_path, log_dir):
    path = write_config(tmp_path, log_dir)

    def podbot(*args: str) -> Result:
        return CliRunner().invoke(main, ["--config", str(path), *args])

    made = podbot("token", "create", "--identity", "web:alice", "--ttl", "1h", "--scope", "chat")
    assert made.exit_code == 0, made.output
    token_id = made.stderr.split()[1]
    cfg = config.load(str(path), environ={})
    bot = Bot(cfg, runner=FakeRunner())
    grant = tokens.verify(bot.db, tokens.signing_key(cfg.data_dir), made.stdout.strip())
    assert (grant.identity, grant.scopes, grant.token_id) == ("web:alice", ("chat",), token_id)
    assert 3590 < grant.expires - time.time() <= 3600
    [listed] = json.loads(podbot("token", "list", "--json").stdout)
    assert (listed["id"], listed["identity"], listed["scopes"], listed["revoked"]) == (token_id, "web:alice", ["chat"], None)
    assert podbot("token", "revoke", token_id).exit_code == 0
    assert json.loads(podbot("token", "list", "--json").stdout)[0]["revoked"] is not None
    assert token_id in podbot("token", "list").stdout
    with pytest.raises(tokens.TokenError, match="revoked"):
        tokens.verify(bot.db, tokens.signing_key(cfg.data_dir), made.stdout.strip())
    again = podbot("token", "revoke", token_id)
    assert again.exit_code == 1 and again.stderr.count("\n") == 1
    posing = podbot("token", "create", "--identity", "slack:T1:U1")
    assert posing.exit_code == 1 and "web:NAME" in posing.stderr


def test_a_scheduled_run_replies_to_a_connected_web_conversation(tmp_path, log_dir):
    entry = {"name": "nightly", "cron": "* * * * *", "as": "web:olga", "reply_to": "web:alice", "catch_up": "once"}
    add_manifest(tmp_path, probe_like("nightly", "echo nightly", schedule=[entry]))
    with serving(tmp_path, log_dir) as served:

        async def listen() -> Reply:
            replies: asyncio.Queue[Reply] = asyncio.Queue()
            async with await client.connect(served.ws_url, served.token(), on_reply=replies.put_nowait):
                now = time.time()
                served.bot.scheduler.tick(now)  # the entry is seen for the first time: nothing is due
                [fired] = served.bot.scheduler.tick(now + 60)
                assert fired.job_id is not None
                return await next_reply(replies, "the scheduled run's result")

        result = asyncio.run(listen())
    assert result.conversation == "web:alice" and "nightly" in result.text


def test_a_failing_reply_handler_holds_up_neither_later_replies_nor_acks(tmp_path, log_dir):
    with serving(tmp_path, log_dir) as served:

        async def talk() -> list[str]:
            seen: list[str] = []
            got = asyncio.Event()

            def handler(reply: Reply) -> None:
                seen.append(reply.text)
                if len(seen) == 1:
                    raise RuntimeError("a bug in the program using the client")
                got.set()

            async with await client.connect(served.ws_url, served.token(), on_reply=handler) as alice:
                await alice.send("/whoami")
                await alice.send("/whoami")
                await asyncio.wait_for(got.wait(), WAIT)
            return seen

        seen = asyncio.run(talk())
    assert len(seen) == 2 and all("web:alice" in text for text in seen)
