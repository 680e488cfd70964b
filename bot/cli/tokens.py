"""`podbot token create | list | revoke` and `podbot web login`: the ways into the gateway."""

from __future__ import annotations

import dataclasses
import json
import time

import click
from rich.table import Table

from bot.cli import common
from bot.cli.common import Invocation, fail, out, pass_invocation
from bot.gateway import tokens
from bot.gateway.web import login_link
from bot.schema import parse_duration
from bot.store import tokens as issued


@click.group()
def token() -> None:
    """Tokens for the gateway (WebSocket and REST API): one identity each, an expiry, revocable."""


@token.command()
@click.option("--identity", required=True, help="Whom the token speaks for: web:NAME (roles as podbot.yaml gives them).")
@click.option("--ttl", help="How long it lives: 30m, 12h … (default: gateway.token_ttl).")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice(tokens.SCOPES),
    help="What it may be used for; repeat for several (default: all). Roles still decide what the identity may do.",
)
@pass_invocation
def create(inv: Invocation, identity: str, ttl: str | None, scopes: tuple[str, ...]) -> None:
    """Print a new signed token (its id, for `podbot token revoke`, goes to stderr)."""
    cfg = inv.config()
    try:
        seconds = parse_duration(ttl) if ttl else cfg.gateway.token_ttl
    except ValueError:
        fail(f"--ttl is a duration such as 30m or 12h, not {ttl!r}")
    key = tokens.signing_key(cfg.data_dir)
    grant = tokens.create(common.database(cfg), key, identity, seconds, scopes or tokens.SCOPES)
    click.echo(f"token {grant.token_id} for {grant.identity} ({' '.join(grant.scopes)}), valid {seconds:.0f} s", err=True)
    click.echo(tokens.encode(key, grant))


@token.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for scripts.")
@pass_invocation
def list_tokens(inv: Invocation, as_json: bool) -> None:
    """Tokens and browser sessions that have not expired, newest first, revoked ones marked."""
    cfg = inv.config()
    found = issued.listing(common.database(cfg), time.time())
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(t) for t in found], indent=2))
        return
    table = Table()
    for column in ("id", "identity", "scopes", "created", "expires", "revoked"):
        table.add_column(column, no_wrap=column in ("id", "identity"))
    for t in found:
        when = [time.strftime("%m-%d %H:%M", time.localtime(x)) if x else "" for x in (t.created, t.expires, t.revoked)]
        table.add_row(t.id, t.identity, " ".join(t.scopes), *when)
    out.print(table)


@token.command()
@click.argument("token_id")
@pass_invocation
def revoke(inv: Invocation, token_id: str) -> None:
    """Revoke a token by its id: refused from now on; its open connections close within gateway.heartbeat."""
    cfg = inv.config()
    if not issued.revoke(common.database(cfg), token_id):
        fail(f"there is no unrevoked token {token_id}")
    click.echo(f"token {token_id} revoked")


@click.group()
def web() -> None:
    """The web chat and dashboard served by the gateway."""


@web.command()
@click.option("--user", required=True, help="The person: they log in as web:USER.")
@pass_invocation
def login(inv: Invocation, user: str) -> None:
    """Print a one-time login link for USER (it works once, within gateway.login_ttl)."""
    cfg = inv.config()
    if not cfg.gateway.listen:
        fail("the gateway is off: set gateway.listen in podbot.yaml (e.g. 127.0.0.1:8080)")
    code = tokens.login_code(common.database(cfg), f"web:{user}", cfg.gateway.login_ttl)
    click.echo(f"one-time link for web:{user}, valid {cfg.gateway.login_ttl:.0f} s:", err=True)
    click.echo(login_link(cfg.gateway, code))
