"""The gateway: one aiohttp app on `gateway.listen`, served from its own thread and event loop in the bot process.

It only translates, like every adapter: a person's message from a WebSocket
becomes a `Message` handed to `Bot.receive` (so roles, audit and the queue are
the chat's), and the replies the outbox owes to the `web` platform are pushed to
the sockets of their conversation. A conversation is its token's identity
(`web:alice`); a reply for it while nobody of it is connected stays in the
outbox, and goes out, in order, when one of its clients authenticates again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import ipaddress
import logging
import ssl
import threading
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from aiohttp import WSMsgType, web

from adapters import credentials
from adapters.base import NetworkAdapter
from adapters.contract import SimpleAdapter
from bot.app import Bot
from bot.config import GatewayConfig
from bot.errors import RetryLater, Unavailable
from bot.flow import Message, Reply
from bot.gateway import api, guard, health, hooks, metrics, protocol, tokens
from bot.gateway import web as web_pages
from bot.gateway.protocol import Close, FrameError
from bot.store import outbox

log = logging.getLogger(__name__)

T = TypeVar("T")

OFFLINE_WAIT = 3600.0  # a reply for a conversation nobody is connected to waits this long, or until one of its clients connects
SEND_TIMEOUT = 10.0  # a client that does not take a frame within this is treated as gone for this reply
START_TIMEOUT = 30.0
# Sent with every HTTP answer: nothing the gateway serves may be framed, sniffed into another type, or leak a referrer.
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    # The pages run only the gateway's own files: no inline script or style, nothing from elsewhere, never framed.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self';"
        " base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
}


class Connections(SimpleAdapter):
    """The `web` platform: the open, authenticated sockets by conversation. The outbox sender delivers through `send`
    the replies of the conversations `online()` names; the others wait in the outbox, untried, until a client connects."""

    platform = "web"

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self._open: dict[str, set[web.WebSocketResponse]] = defaultdict(set)  # touched on the gateway's loop only
        self._online: tuple[str, ...] = ()  # a snapshot for the outbox sender's thread, replaced whole

    def add(self, conversation: str, ws: web.WebSocketResponse) -> None:
        self._open[conversation].add(ws)
        self._online = tuple(self._open)

    def discard(self, conversation: str, ws: web.WebSocketResponse) -> None:
        self._open[conversation].discard(ws)
        if not self._open[conversation]:
            del self._open[conversation]
        self._online = tuple(self._open)

    def online(self) -> tuple[str, ...]:
        return self._online

    def sockets(self) -> list[web.WebSocketResponse]:
        return [ws for group in self._open.values() for ws in group]

    def send(self, reply: Reply) -> None:
        if self.loop is None:
            raise RetryLater(OFFLINE_WAIT, "the gateway is not running")
        future = asyncio.run_coroutine_threadsafe(self._push(reply), self.loop)
        try:
            delivered = future.result(SEND_TIMEOUT)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"no client of {reply.conversation} took the reply within {SEND_TIMEOUT:.0f} s") from None
        if not delivered:  # its last client left since the sender looked: connecting again makes it due at once
            raise RetryLater(OFFLINE_WAIT, "no client of this conversation is connected")

    async def _push(self, reply: Reply) -> bool:
        frame = protocol.reply(reply)
        delivered = False
        for ws in list(self._open.get(reply.conversation, ())):
            try:
                await ws.send_str(frame)
                delivered = True
            except (ConnectionError, RuntimeError):  # closing under us: its handler discards it
                pass
        return delivered


def unsafe_binding(settings: GatewayConfig) -> str | None:
    """Why the gateway must not start on `listen`: off loopback, tokens and cookies would cross the network in clear."""
    host = settings.address[0]
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may well be reachable from elsewhere
        loopback = False
    if loopback or (settings.tls_cert and settings.tls_key) or settings.reverse_proxy:
        return None
    return (
        f"the gateway would listen on {settings.listen} without TLS: set gateway.tls_cert and gateway.tls_key, or serve it"
        " behind the reverse proxy of the README (Web, API and monitoring) and set gateway.reverse_proxy: true"
    )


def tls_context(settings: GatewayConfig) -> ssl.SSLContext | None:
    if not (settings.tls_cert and settings.tls_key):
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise Unavailable(f"gateway.tls_cert / tls_key cannot be used: {exc}") from None
    return context


class Gateway:
    """The server; `start()` returns once it listens (`port` is the bound port), `stop()` closes every connection."""

    def __init__(self, bot: Bot, platforms: Sequence[NetworkAdapter] = (), environ: dict[str, str] | None = None):
        """`platforms`: the other adapters, whose state /readyz and /metrics report; `environ` holds the hooks' secrets."""
        if (why := unsafe_binding(bot.cfg.gateway)) is not None:
            raise Unavailable(why)
        self.bot = bot
        self.platforms = platforms
        self.api = api.Api(bot)
        self.settings = bot.cfg.gateway
        self.tls = tls_context(self.settings)
        self.doorman = guard.Doorman(bot.db, tokens.signing_key(bot.cfg.data_dir), guard.Refusals(bot.db, self.settings.audit_failures))
        self.connections = Connections()
        self.hooks = hooks.configured(
            self.settings.hooks, bot.cfg.alert_conversation, lambda names: credentials.read(bot.cfg, environ, names)
        )
        self.figures = metrics.registry(bot, platforms, lambda: len(self._admitted))
        self.port: int | None = None
        self._waiting = guard.Waiting(self.settings.max_unauthenticated)
        self._unauthenticated: set[web.WebSocketResponse] = set()
        self._admitted: dict[web.WebSocketResponse, tokens.Grant] = {}
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._listening = threading.Event()
        self._failure: BaseException | None = None
        bot.add_adapter(self.connections, self.connections.online)

    # --- lifecycle (from the main thread) ---

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="gateway", daemon=True)
        self._thread.start()
        self._listening.wait(START_TIMEOUT)
        if self._failure is not None:
            raise Unavailable(f"the gateway cannot listen on {self.settings.listen}: {self._failure}")
        log.info("gateway: listening on %s (port %s)", self.settings.listen, self.port)

    def stop(self, timeout: float = 15.0) -> None:
        if self._stopping is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._stopping.set)
            except RuntimeError:  # the loop closed in between
                pass
        if self._thread is not None:
            self._thread.join(timeout)

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:
            self._failure = exc
        finally:
            self.connections.loop = None
            self._listening.set()
            self._loop.close()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        host, port = self.settings.address
        try:
            await web.TCPSite(runner, host, port, ssl_context=self.tls).start()
            self.port = runner.addresses[0][1]
            self.connections.loop = asyncio.get_running_loop()
            self._listening.set()
            expiry = asyncio.create_task(self._close_expired())
            await self._stopping.wait()
            expiry.cancel()
            self.connections.loop = None
            for ws in self.connections.sockets() + list(self._unauthenticated):
                await ws.close(code=Close.GOING_AWAY, message=b"the gateway stops")
        finally:
            await runner.cleanup()

    async def _close_expired(self) -> None:
        """Close connections whose token expired or was revoked since they authenticated, once every heartbeat."""
        while True:
            await asyncio.sleep(self.settings.heartbeat)
            grants = {grant.token_id: grant for grant in self._admitted.values()}
            gone = {token_id for token_id, grant in grants.items() if not await self._off_loop(self.doorman.still_valid, grant)}
            for ws, grant in list(self._admitted.items()):
                if grant.token_id in gone:
                    await ws.close(code=Close.UNAUTHORIZED, message=b"unauthorized")

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._front_door], client_max_size=self.settings.max_frame)
        app.router.add_get("/ws", self.websocket)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/api/v1/openapi.json", self.openapi)
        app.router.add_post("/api/v1/hooks/{name}", self.hook)
        web_pages.Pages(self.doorman, self.settings, self._grant, self._off_loop).add_to(app)
        for route in api.ROUTES:
            app.router.add_route(route.method, f"/api/v1{route.path}", self._api_route(route))
        return app

    @web.middleware
    async def _front_door(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """What every request passes: pages of another origin are refused; every answer carries HEADERS.

        Behind the declared reverse proxy every request comes from the proxy's address; the client's is the one the
        proxy puts in X-Forwarded-For (README's Nginx site), which then counts for the per-address limits and the audit.
        """
        forwarded = request.headers.get("X-Forwarded-For", "").split(",")[-1].strip()
        if self.settings.reverse_proxy and forwarded:
            request = request.clone(remote=forwarded)
        if not guard.same_origin(request.headers.get("Origin"), request.host):
            await self._off_loop(self.doorman.refusals.record, request.remote or "unknown", request.path, "another origin")
            return web.Response(status=403, text="forbidden: another origin\n")
        try:
            response = await handler(request)
        except web.HTTPException as refused:  # 401, 403, 404 …: the same headers, and the one line as it is
            response = web.Response(status=refused.status, text=refused.text, headers=refused.headers)
        if not isinstance(response, web.WebSocketResponse):
            response.headers.extend((k, v) for k, v in HEADERS.items() if k not in response.headers)
            response.headers["Server"] = "podbot"  # not which aiohttp and Python versions answer
        return response

    async def _grant(self, request: web.Request, scope: str) -> tokens.Grant:
        """The request's grant: `Authorization: Bearer TOKEN`, or a browser's session cookie (whose POSTs must carry
        X-CSRF-Token). 401 with one line if there is none; 403 without `scope`."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        cookie = request.cookies.get(web_pages.COOKIE)
        remote = request.remote or "unknown"
        grant = None
        if scheme.lower() == "bearer" and token.strip():
            grant = await self._off_loop(self.doorman.admit, token.strip(), remote, request.path)
        elif cookie:
            csrf = None if request.method in ("GET", "HEAD") else request.headers.get("X-CSRF-Token", "")
            grant = await self._off_loop(self.doorman.admit_session, cookie, csrf, remote, request.path)
        else:
            await self._off_loop(self.doorman.refusals.record, remote, request.path, "no token")
        if grant is None:
            raise web.HTTPUnauthorized(text="unauthorized\n", headers={"WWW-Authenticate": "Bearer"})
        if scope not in grant.scopes:
            raise web.HTTPForbidden(text=f"this token has no {scope} scope\n")
        return grant

    def _api_route(self, route: api.Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            grant = await self._grant(request, route.scope)
            body = None
            if request.body_exists:
                try:
                    body = await request.json()
                except ValueError:
                    return web.json_response({"error": "the body is not JSON"}, status=400)
            call = api.Request(dict(request.match_info), dict(request.query), body)
            try:
                answer = await self._off_loop(route.handler, self.api, grant, call)
            except api.BadRequest as exc:
                answer = api.error(400, str(exc))
            return web.json_response(answer.body, status=answer.status)

        return handle

    async def healthz(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text="ok\n")

    async def readyz(self, request: web.Request) -> web.StreamResponse:
        await self._grant(request, "read")
        checks = await self._off_loop(health.readiness, self.bot, self.platforms)
        ready = all(check.ok for check in checks)
        body = {"ready": ready, "checks": [dataclasses.asdict(check) for check in checks]}
        return web.json_response(body, status=200 if ready else 503)

    async def metrics(self, request: web.Request) -> web.StreamResponse:
        await self._grant(request, "read")
        body = await self._off_loop(metrics.text, self.figures)
        return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE})

    async def hook(self, request: web.Request) -> web.StreamResponse:
        hook = self.hooks.get(request.match_info["name"])
        body = await request.read()
        headers = request.headers
        why = hooks.unsigned(hook, headers.get("X-Podbot-Timestamp", ""), headers.get("X-Podbot-Signature", ""), body)
        if why is not None or hook is None:
            await self._off_loop(self.doorman.refusals.record, request.remote or "unknown", request.path, why or "no such hook")
            raise web.HTTPUnauthorized(text="unauthorized\n")
        outcome = await self._off_loop(hooks.run, self.bot, hook, body)
        self.bot.loops.wake()
        return web.json_response(outcome.body, status=outcome.status)

    async def openapi(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(api.openapi())

    async def _off_loop(self, work: Callable[..., T], *args: object) -> T:
        """Run blocking work (the pipeline, SQLite, token checks) on the loop's threads, so the gateway keeps serving meanwhile.

        Several threads, not one: part of handling a message runs outside its write transaction (the queue's own
        SQLite file, waking the senders), and bench/bench_gateway.py measured twice the messages a second so."""
        return await asyncio.get_running_loop().run_in_executor(None, work, *args)

    # --- the WebSocket endpoint ---

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        remote = request.remote or "unknown"
        ws = web.WebSocketResponse(heartbeat=self.settings.heartbeat, max_msg_size=self.settings.max_frame)
        await ws.prepare(request)
        if not self._waiting.enter(remote):
            await self._off_loop(self.doorman.refusals.record, remote, "/ws", "too many unauthenticated connections")
            await ws.close(code=Close.TOO_MANY, message=b"too many unauthenticated connections from your address")
            return ws
        self._unauthenticated.add(ws)
        try:
            grant = await self._authenticate(ws, remote, request.cookies.get(web_pages.COOKIE))
        finally:
            self._waiting.leave(remote)
            self._unauthenticated.discard(ws)
        if grant is not None:
            await self._converse(ws, grant)
        return ws

    async def _authenticate(self, ws: web.WebSocketResponse, remote: str, session: str | None) -> tokens.Grant | None:
        """The grant of the connection's first frame (a token, or the CSRF token of the `session` cookie that came with
        the upgrade), or None once the connection is closed with the reason."""

        async def refuse(code: Close, reason: str, told: str | None = None) -> None:
            await self._off_loop(self.doorman.refusals.record, remote, "/ws", reason)
            await ws.close(code=code, message=(told or reason).encode()[:120])

        try:
            msg = await ws.receive(timeout=self.settings.auth_timeout)
        except TimeoutError:
            await refuse(Close.AUTH_TIMEOUT, "no auth frame in time")
            return None
        if msg.type == WSMsgType.BINARY:
            await refuse(Close.BINARY, "a binary frame")
            return None
        if msg.type != WSMsgType.TEXT:  # closed, or a frame too big (aiohttp closed it with 1009)
            await self._off_loop(self.doorman.refusals.record, remote, "/ws", f"closed before auth ({ws.close_code})")
            return None
        try:
            frame = protocol.parse(msg.data)
        except FrameError as exc:
            await refuse(exc.code, str(exc))
            return None
        if not isinstance(frame, protocol.Auth):
            await refuse(Close.UNAUTHORIZED, "the first frame was not auth", "unauthorized")
            return None
        if frame.version != protocol.VERSION:
            await refuse(Close.BAD_VERSION, f"protocol version {frame.version}; this server speaks {protocol.VERSION}")
            return None
        if frame.token is not None:
            grant = await self._off_loop(self.doorman.admit, frame.token, remote, "/ws")
        elif session is not None:
            grant = await self._off_loop(self.doorman.admit_session, session, frame.csrf, remote, "/ws")
        else:
            grant = None
            await self._off_loop(self.doorman.refusals.record, remote, "/ws", "a CSRF token without a session cookie")
        if grant is None:
            await ws.close(code=Close.UNAUTHORIZED, message=b"unauthorized")
            return None
        if "chat" not in grant.scopes:
            await refuse(Close.FORBIDDEN, f"token {grant.token_id} has no chat scope")
            return None
        return grant

    async def _converse(self, ws: web.WebSocketResponse, grant: tokens.Grant) -> None:
        conversation = grant.identity
        self.connections.add(conversation, ws)
        self._admitted[ws] = grant
        try:
            await ws.send_str(protocol.welcome(grant.identity, conversation, self.settings.heartbeat))
            # What waited for this conversation while nobody was connected goes out now, oldest first.
            await self._off_loop(outbox.retry_now, self.bot.db, conversation)
            self.bot.loops.wake()
            while True:
                msg = await ws.receive()
                if msg.type == WSMsgType.BINARY:
                    await ws.close(code=Close.BINARY, message=b"text frames only")
                if msg.type != WSMsgType.TEXT:
                    return
                try:
                    frame = protocol.parse(msg.data)
                    if isinstance(frame, protocol.Auth):
                        raise FrameError(Close.BAD_FRAME, "already authenticated")
                except FrameError as exc:
                    await ws.close(code=exc.code, message=str(exc).encode()[:120])
                    return
                if isinstance(frame, protocol.Ping):
                    await ws.send_str(protocol.pong())
                elif not await self._off_loop(self._hand_over, grant, frame.text):
                    await ws.close(code=Close.UNAUTHORIZED, message=b"unauthorized")
                    return
                else:
                    await ws.send_str(protocol.ack(frame.id))
        finally:
            self.connections.discard(conversation, ws)
            del self._admitted[ws]

    def _hand_over(self, grant: tokens.Grant, text: str) -> bool:
        """Hand a person's message to the pipeline, unless their token expired or was revoked since they connected."""
        if not self.doorman.still_valid(grant):
            self.doorman.refusals.record(grant.identity, "/ws", f"token {grant.token_id} expired or revoked while connected")
            return False
        name = grant.identity.split(":", 1)[1]
        self.bot.receive(Message("web", grant.identity, grant.identity, text, name, message_id=uuid.uuid4().hex))
        return True
