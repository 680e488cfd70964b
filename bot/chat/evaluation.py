"""`podbot eval routing FILE.yaml`: run labelled messages through the real router and score it.

Each case goes through the deterministic router, then the understanding stages
over the skills its sender may run, then `pipeline.decide` against a scratch
database (jobs are recorded, never run), so "unauthorized" counts what would
really have been queued, not what a stage claims.
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from bot.catalog import Catalog
from bot.chat import pipeline, rbac
from bot.chat.routing import Route, route
from bot.chat.services import Services
from bot.config import Config
from bot.errors import ArgumentError
from bot.flow import Message
from bot.skill import Skill
from bot.store.database import SqliteDatabase
from bot.understanding.stages import NONE, Understanding, Understood
from bot.vault import Vault

CASES_SCHEMA = {
    "type": "object",
    "required": ["cases"],
    "additionalProperties": False,
    "properties": {
        "roles": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
        "cases": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["text", "sender", "skill"],
                "additionalProperties": False,
                "properties": {
                    "text": {"type": "string"},
                    "sender": {"type": "string"},
                    "skill": {"type": "string"},
                    "args": {"type": "object"},
                    "injection": {"type": "boolean"},
                    "lang": {"type": "string", "description": "the message's language, for per-language figures (default en)"},
                },
            },
        },
    },
}
EDGE = "\"'`()[]{}<>,;!?. "


@dataclass(frozen=True)
class Case:
    text: str
    sender: str
    skill: str  # a skill name or "none"
    args: dict[str, Any] | None = None  # None: arguments not scored
    injection: bool = False
    lang: str = "en"


@dataclass(frozen=True)
class Outcome:
    case: Case
    skill: str  # what the router chose, "none", or "invalid" (a command or pattern with bad arguments)
    via: str
    args: dict[str, Any]
    args_ok: bool | None  # None: not scored (no expected arguments, or the skill was wrong)
    reply: str  # the pipeline's answer
    queued: bool  # a job, a question or a confirmation: it would go on to run
    allowed: bool  # the sender may run the chosen skill
    seconds: float  # routing time (router + understanding)
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    outcomes: list[Outcome]
    startup: float = 0.0  # seconds to load the models and index the catalogue (vectors from the cache when it has them)

    def languages(self) -> dict[str, Report]:
        """The same figures for each language's cases."""
        langs = sorted({o.case.lang for o in self.outcomes})
        return {lang: Report([o for o in self.outcomes if o.case.lang == lang]) for lang in langs}

    def _share(self, hits: list[bool]) -> tuple[int, int]:
        return sum(hits), len(hits)

    @property
    def skill(self) -> tuple[int, int]:
        return self._share([o.skill == o.case.skill for o in self.outcomes if o.case.skill != NONE])

    @property
    def none(self) -> tuple[int, int]:
        return self._share([o.skill == NONE for o in self.outcomes if o.case.skill == NONE])

    @property
    def arguments(self) -> tuple[int, int]:
        return self._share([o.args_ok for o in self.outcomes if o.args_ok is not None])

    @property
    def unauthorized(self) -> int:
        """Messages that would have run (or been asked about) a skill their sender may not run."""
        return sum(o.queued and not o.allowed for o in self.outcomes)

    @property
    def injections_reaching(self) -> int:
        """Injection attempts routed to a skill their sender may not run (and then refused by authorization)."""
        return sum(o.case.injection and o.skill not in (NONE, "invalid") and not o.allowed for o in self.outcomes)

    def latency(self, stage: str | None = None) -> tuple[float, float, int]:
        """(p50, p95) in seconds, and how many messages the stage ran for; stage None: the whole routing."""
        values = [o.seconds if stage is None else o.timings[stage] for o in self.outcomes if stage is None or stage in o.timings]
        if not values:
            return 0.0, 0.0, 0
        if len(values) == 1:
            return values[0], values[0], 1
        cuts = statistics.quantiles(values, n=100, method="inclusive")
        return cuts[49], cuts[94], len(values)


def load_cases(path: Path) -> tuple[list[Case], dict[str, list[str]] | None]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    errors = list(jsonschema.Draft202012Validator(CASES_SCHEMA).iter_errors(data))
    if errors:
        where = ".".join(map(str, errors[0].absolute_path)) or "document"
        raise ValueError(f"{path}: {where}: {errors[0].message}")
    return [Case(**c) for c in data["cases"]], data.get("roles")


def _norm(value: Any) -> Any:
    return value.strip(EDGE).casefold() if isinstance(value, str) else value


def _effective(skill: Skill, args: dict[str, Any]) -> dict[str, Any]:
    defaults = {k: p["default"] for k, p in skill.properties.items() if "default" in p}
    return {k: _norm(v) for k, v in {**defaults, **args}.items()}


def _route(s: Services, roles: frozenset[str], text: str) -> tuple[Route | None, Understood | None]:
    """The pipeline's routing sequence: commands and patterns, then understanding over what the sender may run."""
    found = route(text, s.catalog.skills)  # raises ArgumentError for a command or pattern with bad arguments
    if found is not None:
        return found, None
    assert s.understanding is not None
    return None, s.understanding.understand(text, rbac.runnable(s.cfg, roles, s.catalog))


def run(
    cfg: Config,
    skills: dict[str, Skill],
    cases: list[Case],
    roles: dict[str, list[str]] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    """Every case through the router and `pipeline`; `progress(done, total)` after each."""
    if roles is not None:
        cfg = dataclasses.replace(cfg, roles={role: tuple(ids) for role, ids in roles.items()})
    scratch = Path(tempfile.mkdtemp(prefix="podbot-eval-"))
    catalog = Catalog(cfg, skills)
    understanding = Understanding(cfg.model, catalog)
    started = time.perf_counter()
    understanding.warm()
    startup = time.perf_counter() - started
    db = SqliteDatabase(scratch / "eval.db")
    services = Services(cfg, db, catalog, lambda job_id: 0, Vault(cfg.secrets, cfg.data_dir), understanding)
    outcomes = []
    for n, case in enumerate(cases):
        outcomes.append(_one(services, n, case))
        if progress:
            progress(n + 1, len(cases))
    return Report(outcomes, startup)


def _one(services: Services, n: int, case: Case) -> Outcome:
    cfg = services.cfg
    roles_now = rbac.roles_of(cfg, case.sender)
    msg = Message(platform="console", conversation=f"eval:{n}", user=case.sender, text=case.text, message_id=f"eval-{n}")
    text = case.text.strip()
    started = time.perf_counter()
    try:
        found, understood = _route(services, roles_now, text) if text else (None, Understood(None, {}, NONE))
    except ArgumentError:
        found, understood = None, None
    seconds = time.perf_counter() - started
    skill: Skill | None
    if found is not None:
        skill, args, via, timings = found.skill, found.args, found.via, {}
        decision = pipeline.decide(services, msg, roles_now, skill, args)
    elif understood is not None:
        skill, args, via, timings = understood.skill, understood.args, understood.via, understood.timings
        decision = pipeline.act_on(services, msg, roles_now, understood)
        if decision.outcome == "unknown":
            skill = None  # not sure enough to ask for a missing argument: the person hears "not understood"
    else:
        skill, args, via, timings, decision = None, {}, "invalid", {}, None
    name = skill.name if skill else ("invalid" if via == "invalid" else NONE)
    replies = decision.replies if decision else ()
    answered = " | ".join(r.text for r in replies)
    # A question or a confirmation request means the run would go ahead on the next message.
    asked = any(r.text.startswith(("Which ", "Run ")) for r in replies)
    args_ok = None
    if case.args is not None and skill is not None and name == case.skill:
        args_ok = _effective(skill, args) == _effective(skill, case.args)
    allowed = skill is not None and rbac.may_run(cfg, roles_now, skill)
    queued = bool(decision and decision.enqueue) or asked
    return Outcome(case, name, via, args, args_ok, answered, queued, allowed, seconds, timings)
