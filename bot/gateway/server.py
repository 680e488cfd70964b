"""The gateway: one aiohttp app on `gateway.listen`, served from its own thread and event loop in the bot process.

This module is the app and its front door: the routes (`/ws` in sockets.py, the
REST API in api.py, the pages in web.py, health, metrics, hooks), the checks every
request passes (origin, token or session, scope), the headers every answer
carries, and the server's start and stop. It only translates, like every
adapter: what people ask goes through `Bot.receive`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web

from adapters import credentials
from adapters.base import NetworkAdapter
from bot.app import Bot
from bot.errors import Unavailable
from bot.gateway import api, guard, health, hooks, metrics, sockets, tokens
from bot.gateway import web as web_pages
from bot.gateway.sockets import off_loop

log = logging.getLogger(__name__)

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


class Gateway:
    """The server; `start()` returns once it listens (`port` is the bound port), `stop()` closes every connection."""

    def __init__(self, bot: Bot, platforms: Sequence[NetworkAdapter] = (), environ: dict[str, str] | None = None):
        """`platforms`: the other adapters, whose state /readyz and /metrics report; `environ` holds the hooks' secrets."""
        if (why := guard.unsafe_binding(bot.cfg.gateway)) is not None:
            raise Unavailable(why)
        self.bot = bot
        self.platforms = platforms
        self.api = api.Api(bot)
        self.settings = bot.cfg.gateway
        self.tls = guard.tls_context(self.settings)
        self.doorman = guard.Doorman(bot.db, tokens.signing_key(bot.cfg.data_dir), guard.Refusals(bot.db, self.settings.audit_failures))
        self.sockets = sockets.Sockets(bot, self.doorman, self.settings)
        self.hooks = hooks.configured(
            self.settings.hooks, bot.cfg.alert_conversation, lambda names: credentials.read(bot.cfg, environ, names)
        )
        self.replays = hooks.Replays()
        self.figures = metrics.registry(bot, platforms, self.sockets.count)
        self.port: int | None = None
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._listening = threading.Event()
        self._failure: BaseException | None = None
        bot.add_adapter(self.sockets.connections, self.sockets.connections.online)

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
            self.sockets.connections.loop = None
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
            self.sockets.connections.loop = asyncio.get_running_loop()
            self._listening.set()
            expiry = asyncio.create_task(self.sockets.close_expired())
            await self._stopping.wait()
            expiry.cancel()
            self.sockets.connections.loop = None
            await self.sockets.close_all()
        finally:
            await runner.cleanup()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._front_door], client_max_size=self.settings.max_frame)
        app.router.add_get("/ws", self.sockets.handle)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/api/v1/openapi.json", self.openapi)
        app.router.add_post("/api/v1/hooks/{name}", self.hook)
        web_pages.Pages(self.doorman, self.settings, self._grant, off_loop).add_to(app)
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
            await off_loop(self.doorman.refusals.record, request.remote or "unknown", request.path, "another origin")
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
            grant = await off_loop(self.doorman.admit, token.strip(), remote, request.path)
        elif cookie:
            csrf = None if request.method in ("GET", "HEAD") else request.headers.get("X-CSRF-Token", "")
            grant = await off_loop(self.doorman.admit_session, cookie, csrf, remote, request.path)
        else:
            await off_loop(self.doorman.refusals.record, remote, request.path, "no token")
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
                answer = await off_loop(route.handler, self.api, grant, call)
            except api.BadRequest as exc:
                answer = api.error(400, str(exc))
            return web.json_response(answer.body, status=answer.status)

        return handle

    async def healthz(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text="ok\n")

    async def readyz(self, request: web.Request) -> web.StreamResponse:
        await self._grant(request, "read")
        checks = await off_loop(health.readiness, self.bot, self.platforms)
        ready = all(check.ok for check in checks)
        body = {"ready": ready, "checks": [dataclasses.asdict(check) for check in checks]}
        return web.json_response(body, status=200 if ready else 503)

    async def metrics(self, request: web.Request) -> web.StreamResponse:
        await self._grant(request, "read")
        body = await off_loop(metrics.text, self.figures)
        return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE})

    async def hook(self, request: web.Request) -> web.StreamResponse:
        hook = self.hooks.get(request.match_info["name"])
        body = await request.read()
        headers = request.headers
        signature = headers.get("X-Podbot-Signature", "")
        why = hooks.unsigned(hook, headers.get("X-Podbot-Timestamp", ""), signature, body)
        if why is None and not self.replays.first_time(f"{request.match_info['name']} {signature}"):
            why = "a replay of a request already accepted"
        if why is not None or hook is None:
            await off_loop(self.doorman.refusals.record, request.remote or "unknown", request.path, why or "no such hook")
            raise web.HTTPUnauthorized(text="unauthorized\n")
        outcome = await off_loop(hooks.run, self.bot, hook, body)
        self.bot.loops.wake()
        return web.json_response(outcome.body, status=outcome.status)

    async def openapi(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(api.openapi())
