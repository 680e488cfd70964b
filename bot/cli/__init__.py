"""The `podbot` command: one module per command group, and one error boundary for all of them."""

from __future__ import annotations

from typing import Any

import click

from bot.cli import db, evaluate, host, manifests, models, records, scaffold, serve, service, skills, status, tokens
from bot.cli import version as cli_version
from bot.cli.common import Invocation, fail
from bot.errors import PodbotError, Problems


class _Podbot(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Problems as exc:
            hint = " (`podbot manifests validate` checks them)" if exc.subject == "manifests" else ""
            fail(f"{len(exc.problems)} errors in the {exc.subject}; fix them{hint}:\n{exc}")
        except PodbotError as exc:
            fail(str(exc))


@click.group(cls=_Podbot, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, help="Show the version, Python, Podman and whether the model files are there.")
@click.option(
    "--config",
    "config_path",
    envvar="PODBOT_CONFIG",
    type=click.Path(dir_okay=False),
    help="podbot.yaml to use (default: $PODBOT_CONFIG, else ./podbot.yaml, else built-in defaults).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail to stderr.")
@click.pass_context
def main(ctx: click.Context, version: bool, config_path: str | None, verbose: bool) -> None:
    """Podbot: chat-first bot whose skills are YAML manifests run in rootless Podman containers.

    \b
    Start here:
      podbot setup                  prepare rootless Podman and the base image
      podbot run                    start the bot (console chat when no platform is configured)
      podbot chat --user alice      talk to the bot as console:alice
      printf 'df /\\n' | podbot chat  script it: one message per line
    Every podbot.yaml value can be set as PODBOT_<KEY> (nested: PODBOT_LIMITS__MEMORY=512m).
    """
    ctx.obj = Invocation(config_path, verbose)
    if version:
        cli_version.show(ctx.obj)
        ctx.exit()
    elif ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


for command in (
    host.setup,
    host.images,
    serve.run,
    serve.chat,
    serve.worker,
    status.status,
    manifests.manifests,
    records.jobs,
    records.outbox,
    records.audit,
    skills.skills,
    skills.schedules,
    models.models,
    evaluate.eval_group,
    scaffold.init,
    service.service,
    tokens.token,
    tokens.web,
    db.db,
):
    main.add_command(command)
