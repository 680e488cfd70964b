"""The web chat and the dashboard: a one-time login link, a session cookie, and plain pages served from `static/`.

`podbot web login --user alice` prints `<public_url>/login#CODE`. The code is in
the fragment, which browsers never send to a server, so it lands in no access
log or Referer; the login page POSTs it to `/login`, which uses it up (once, within
gateway.login_ttl) and answers with the session cookie: a token of the identity
(revocable like any), HttpOnly so no script can read it, SameSite=Strict, Secure
over HTTPS. Every cookie-authenticated POST, and the page's WebSocket `auth`,
must carry the session's CSRF token, which the page gets from `/session`. The
pages are static files with no inline script or style, so the gateway's
Content-Security-Policy can forbid everything else; the data comes from the
REST API and the WebSocket, like any other client's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.config import GatewayConfig
from bot.gateway import tokens
from bot.gateway.guard import Doorman
from bot.store import tokens as issued

COOKIE = "podbot_session"
STATIC = Path(__file__).resolve().parent / "static"
TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}

GrantOf = Callable[[web.Request, str], Awaitable[tokens.Grant]]
OffLoop = Callable[..., Awaitable[Any]]


def login_link(settings: GatewayConfig, code: str) -> str:
    scheme = "https" if settings.tls_cert else "http"
    base = settings.public_url or f"{scheme}://{settings.listen}"
    return f"{base}/login#{code}"


class Pages:
    def __init__(self, doorman: Doorman, settings: GatewayConfig, grant_of: GrantOf, off_loop: OffLoop):
        self.doorman = doorman
        self.settings = settings
        self.grant_of = grant_of
        self.off_loop = off_loop
        self.files = {path.name: (path.read_bytes(), TYPES[path.suffix]) for path in STATIC.iterdir() if path.suffix in TYPES}

    def add_to(self, app: web.Application) -> None:
        app.router.add_get("/", self.home)
        app.router.add_get("/login", self.login_page)
        app.router.add_post("/login", self.login)
        app.router.add_post("/logout", self.logout)
        app.router.add_get("/session", self.session)
        app.router.add_get("/chat", self.page("chat.html"))
        app.router.add_get("/dashboard", self.page("dashboard.html"))
        app.router.add_get("/static/{name}", self.static)

    def _file(self, name: str) -> web.Response:
        if name not in self.files:
            raise web.HTTPNotFound(text="not found\n")
        body, kind = self.files[name]
        return web.Response(body=body, headers={"Content-Type": kind})

    async def home(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/chat")

    async def login_page(self, request: web.Request) -> web.StreamResponse:
        return self._file("login.html")

    async def static(self, request: web.Request) -> web.StreamResponse:
        return self._file(request.match_info["name"])

    def page(self, name: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def serve(request: web.Request) -> web.StreamResponse:
            await self.grant_of(request, "read")  # only a logged-in browser gets the page
            return self._file(name)

        return serve

    async def login(self, request: web.Request) -> web.StreamResponse:
        """Exchange a one-time code for the session cookie."""
        try:
            code = (await request.json())["code"]
        except (ValueError, KeyError, TypeError):
            code = None
        identity = await self.off_loop(tokens.use_login, self.doorman.db, code) if isinstance(code, str) else None
        if identity is None:
            await self.off_loop(self.doorman.refusals.record, request.remote or "unknown", "/login", "unknown, used or expired login code")
            raise web.HTTPUnauthorized(text="unauthorized\n")
        grant = await self.off_loop(tokens.create, self.doorman.db, self.doorman.key, identity, self.settings.session_ttl)
        response = web.json_response({"identity": identity})
        response.set_cookie(
            COOKIE,
            tokens.encode(self.doorman.key, grant),
            max_age=int(self.settings.session_ttl),
            path="/",
            httponly=True,
            samesite="Strict",
            secure=request.secure or self.settings.reverse_proxy,  # the proxy speaks HTTPS to the browser
        )
        return response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        grant = await self.grant_of(request, "chat")
        await self.off_loop(issued.revoke, self.doorman.db, grant.token_id)
        response = web.json_response({"identity": grant.identity})
        response.del_cookie(COOKIE, path="/")
        return response

    async def session(self, request: web.Request) -> web.StreamResponse:
        """Who the page's person is, and the CSRF token its POSTs and WebSocket `auth` carry."""
        grant = await self.grant_of(request, "read")
        return web.json_response({"identity": grant.identity, "csrf": tokens.csrf(self.doorman.key, grant), "expires": grant.expires})
