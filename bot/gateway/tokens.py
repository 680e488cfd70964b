"""Gateway tokens: JWTs signed with HS256 by a key only this data dir holds, each one recorded so it can be revoked.

Verification pins the algorithm (a token saying `alg: none`, or naming any other
algorithm, is refused before its signature is looked at) and requires every
claim podbot writes. A token that verifies must still be in the `tokens` table
and not revoked. The reason a token failed goes to the audit log, never to the
client: whoever holds a bad token learns only "unauthorized".
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import stat
import time
from dataclasses import dataclass
from pathlib import Path

import jwt

from bot.errors import PodbotError, Unavailable
from bot.store import tokens as issued
from bot.store.database import Database

ALGORITHM = "HS256"
ISSUER = "podbot"
KEY_FILE = "gateway.key"
KEY_BYTES = 64  # HS256 wants a key at least as long as its 32-byte hash; twice that costs nothing
# What a token may be used for; roles still decide what its identity may do, so a scope only ever takes away.
SCOPES = ("chat", "read", "cancel")
# Identities the gateway speaks for: its own platform only, so a token can never pose as a Slack or console user.
IDENTITY = re.compile(r"web:[A-Za-z0-9._@-]{1,64}")


class TokenError(PodbotError):
    """A token that must be refused; the text is the reason for the audit log."""


@dataclass(frozen=True)
class Grant:
    """What a valid token lets its bearer do."""

    token_id: str
    identity: str
    scopes: tuple[str, ...]
    expires: float


def signing_key(data_dir: Path) -> bytes:
    """The data dir's signing key, made (mode 0600) the first time it is needed; one readable by others is refused."""
    path = data_dir / KEY_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(KEY_BYTES))
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise Unavailable(f"{path} may be read by other users; chmod 600 it (or delete it to revoke every token)")
    key = path.read_bytes()
    if len(key) < KEY_BYTES:
        raise Unavailable(f"{path} is shorter than {KEY_BYTES} bytes; delete it and podbot makes a new one (every token is revoked)")
    return key


def create(db: Database, key: bytes, identity: str, ttl: float, scopes: tuple[str, ...] = SCOPES, now: float | None = None) -> Grant:
    """Record a new token for `identity` and return its grant; `encode` gives the signed text."""
    if not IDENTITY.fullmatch(identity):
        raise PodbotError(f"a gateway identity is web:NAME (letters, digits, . _ @ -; at most 64): not {identity!r}")
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise PodbotError(f"scopes are some of {', '.join(SCOPES)}; not {', '.join(unknown) or 'none'}")
    now = time.time() if now is None else now
    grant = Grant(secrets.token_hex(8), identity, tuple(s for s in SCOPES if s in scopes), now + ttl)
    issued.add(db, grant.token_id, grant.identity, grant.scopes, grant.expires)
    return grant


def encode(key: bytes, grant: Grant, now: float | None = None) -> str:
    now = time.time() if now is None else now
    claims = {
        "iss": ISSUER,
        "sub": grant.identity,
        "jti": grant.token_id,
        "scope": " ".join(grant.scopes),
        "iat": int(now),
        "nbf": int(now),
        "exp": int(grant.expires),
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def verify(db: Database, key: bytes, token: str) -> Grant:
    """The grant of a valid, unrevoked token; TokenError (with the reason) for anything else."""
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["iss", "sub", "jti", "iat", "nbf", "exp"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("expired") from None
    except jwt.ImmatureSignatureError:
        raise TokenError("not valid yet") from None
    except jwt.InvalidSignatureError:
        raise TokenError("bad signature") from None
    except jwt.InvalidAlgorithmError:
        raise TokenError("algorithm not allowed") from None
    except jwt.InvalidTokenError as exc:
        raise TokenError(f"invalid: {exc}"[:200]) from None
    row = issued.get(db, str(claims["jti"]))
    if row is None or row.identity != claims["sub"]:
        raise TokenError("unknown token id")
    if row.revoked is not None:
        raise TokenError(f"revoked token {row.id}")
    return Grant(row.id, row.identity, row.scopes, row.expires)


def csrf(key: bytes, grant: Grant) -> str:
    """The CSRF token of a browser session: the page sends it with every cookie-authenticated POST (and its WebSocket auth).

    Derived from the session's token id with the signing key, so it needs no storage and dies with the session.
    """
    return hmac.new(key, f"csrf:{grant.token_id}".encode(), hashlib.sha256).hexdigest()


def login_code(db: Database, identity: str, ttl: float, now: float | None = None) -> str:
    """A one-time login code for `identity` (`podbot web login`): it works once, within `ttl` seconds."""
    if not IDENTITY.fullmatch(identity):
        raise PodbotError(f"a web identity is web:NAME (letters, digits, . _ @ -; at most 64): not {identity!r}")
    code = secrets.token_urlsafe(24)
    issued.add_login(db, _digest(code), identity, (time.time() if now is None else now) + ttl)
    return code


def use_login(db: Database, code: str) -> str | None:
    """The identity whose one-time code this is, using it up; None if it is unknown, used or expired."""
    return issued.use_login(db, _digest(code), time.time())


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()
