"""The front door's checks, shared by every route: where it may listen, tokens, origins, and a bounded audit trail of
what was refused.

A refused request is answered with one line ("unauthorized") and nothing else; its
reason goes to the audit log. A flood of refusals cannot fill the disk: at most
`gateway.audit_failures` entries a minute are written, and the next entry written
says how many were left out.
"""

from __future__ import annotations

import hmac
import ipaddress
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from urllib.parse import urlsplit

from bot.config import GatewayConfig
from bot.errors import Unavailable
from bot.gateway import tokens
from bot.store import audit
from bot.store import tokens as issued
from bot.store.database import Database

WINDOW = 60.0  # seconds over which `audit_failures` entries may be written


class Refusals:
    """Audits refused requests, at most `per_minute` entries a minute (thread-safe: written from executor threads)."""

    def __init__(self, db: Database, per_minute: int, clock: Callable[[], float] = time.monotonic):
        self.db = db
        self.per_minute = per_minute
        self.clock = clock
        self._lock = threading.Lock()
        self._window_start = 0.0
        self._written = 0
        self._left_out = 0

    def record(self, remote: str, what: str, reason: str) -> None:
        now = self.clock()
        with self._lock:
            if now - self._window_start >= WINDOW:
                self._window_start, self._written = now, 0
            if self._written >= self.per_minute:
                self._left_out += 1
                return
            self._written += 1
            left_out, self._left_out = self._left_out, 0
        more = f" ({left_out} more refused requests not audited)" if left_out else ""
        audit.record(self.db, f"gateway:{remote}", "gateway", "unauthorized", detail=f"{what}: {reason}{more}")


class Doorman:
    """Tokens checked against this data dir's key and the tokens table; refusals audited."""

    def __init__(self, db: Database, key: bytes, refusals: Refusals):
        self.db = db
        self.key = key
        self.refusals = refusals

    def admit(self, token: str, remote: str, what: str) -> tokens.Grant | None:
        """The token's grant, or None after auditing why it was refused."""
        try:
            return tokens.verify(self.db, self.key, token)
        except tokens.TokenError as exc:
            self.refusals.record(remote, what, str(exc))
            return None

    def admit_session(self, cookie: str, csrf: str | None, remote: str, what: str) -> tokens.Grant | None:
        """The grant of a browser session cookie, when `csrf` is its CSRF token (None: a request that needs none)."""
        grant = self.admit(cookie, remote, what)
        if grant is not None and csrf is not None and not hmac.compare_digest(csrf, tokens.csrf(self.key, grant)):
            self.refusals.record(remote, what, f"session {grant.token_id} without its CSRF token")
            return None
        return grant

    def still_valid(self, grant: tokens.Grant) -> bool:
        """A grant admitted earlier (a long-lived connection) whose token has since expired or been revoked is not."""
        row = issued.get(self.db, grant.token_id)
        return row is not None and row.revoked is None and row.expires > time.time()


class Waiting:
    """Connections per remote address that have not authenticated yet (used from the event loop only)."""

    def __init__(self, cap: int):
        self.cap = cap
        self._count: Counter[str] = Counter()

    def enter(self, remote: str) -> bool:
        if self._count[remote] >= self.cap:
            return False
        self._count[remote] += 1
        return True

    def leave(self, remote: str) -> None:
        self._count[remote] -= 1
        if self._count[remote] <= 0:
            del self._count[remote]


def same_origin(origin: str | None, host: str) -> bool:
    """A request a browser sent from a page of another origin is refused; programs send no Origin at all."""
    return origin is None or urlsplit(origin).netloc == host


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
