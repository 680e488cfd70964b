"""Skills: a manifest, loaded and checked, is a `Skill`; its arguments are checked here too.

`podbot manifests validate` and the bot's start-up use the same `load_dir`, so
whatever the validator accepts is exactly what the bot will run.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jsonschema

from bot import cron
from bot.config import DEFAULTS
from bot.errors import ArgumentError
from bot.schema import (
    Document,
    Problem,
    Regex,
    Validator,
    YamlError,
    bundled_schema,
    compile_pattern,
    cut,
    echo,
    parse_duration,
    pattern_problem,
    read_yaml,
    validate,
)

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
DEFAULT_TIMEOUT = 30.0
MAX_TIMEOUT = parse_duration(DEFAULTS["limits"]["max_timeout"])  # when no config says otherwise
MAX_PROBLEMS = 20  # per file: a broken file is answered, not replayed line by line
NO_SKILL = "none"  # a test case's `skill` when its message must run nothing
DURATIONS: tuple[tuple[str, ...], ...] = (("run", "timeout"), ("retry_delay",), ("cache",))
MAX_APPROVAL_WAIT = 168 * 3600.0  # a run waits at most a week for a decision: longer, and nobody remembers asking
# Values a person could send that a program would take for options: a string parameter that
# accepts any of them, standing at the start of an argument, is an option waiting to happen.
OPTION_LIKE = ("-", "--", "-n", "-e", "-x", "-v", "-1", "-0", "--help", "-debug", "--x=1", "-/", "-a.b", "-A")


@dataclass(frozen=True)
class Mount:
    source: str  # a name from config `mounts`
    target: str


@dataclass(frozen=True)
class SecretUse:
    """A configured secret a skill's container gets: as the variable `env`, or as the file `file`."""

    name: str
    env: str | None = None
    file: str | None = None


@dataclass(frozen=True)
class Schedule:
    name: str
    cron: str
    reply_to: str
    identity: str
    args: dict[str, Any] = field(default_factory=dict)
    timezone: str | None = None
    catch_up: str = "once"


@dataclass(frozen=True)
class ApprovalRule:
    """`approval:`: another person with one of `roles` must approve each run before it is queued."""

    roles: frozenset[str]
    timeout: float | None = None  # seconds; None: config approval_timeout
    self_approve: bool = False
    notify: str | None = None  # None: the requesting conversation and the alert conversation


@dataclass(frozen=True)
class SkillTest:
    """One `tests:` case: a message, and what the bot must do with it (`podbot manifests test`)."""

    say: str
    skill: str  # the skill that must run, or NO_SKILL
    identity: str  # the sender (`as`)
    grant: str | None = None  # the role the test run grants `identity`: only the default identity gets one
    args: dict[str, Any] | None = None  # None: arguments are not compared
    output: re.Pattern | None = None  # None: the job must succeed, whatever it prints


@dataclass(frozen=True)
class Skill:
    name: str
    description: str
    run_image: str
    run_command: tuple[str, ...]
    roles: frozenset[str]
    file: str
    examples: tuple[str, ...] = ()  # the texts of all examples
    not_examples: tuple[str, ...] = ()  # requests that sound close but are not this skill's
    # Examples whose arguments are known (stated, or found by a pattern): the model's demonstrations.
    shots: tuple[tuple[str, dict[str, Any]], ...] = ()
    patterns: tuple[Regex, ...] = ()  # RE2: linear in the text, whatever the pattern
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT
    network: bool = False
    mounts: tuple[Mount, ...] = ()
    secrets: tuple[SecretUse, ...] = ()
    build: Path | None = None  # the directory of this skill's Containerfile (`run.build`), built as run_image
    pull: bool = False  # `run.pull: missing`: pull run_image when it is not here
    host_pid: bool = False  # `run.pid: host`: the host's processes, seen read-only
    image_at: tuple[int, int] = (1, 1)  # where `run.image` is in the manifest (line, column), for image problems
    reply_to: str | None = None
    confirm: bool = False
    approval: ApprovalRule | None = None
    explicit: bool = False  # `invocation: explicit`: only `/name args` runs it, never free text
    retries: int = 0
    retry_delay: float = 0.0
    fallback: str | None = None
    concurrency: int | None = None
    cache: float = 0.0
    schedules: tuple[Schedule, ...] = ()
    tests: tuple[SkillTest, ...] = ()
    warnings: tuple[Problem, ...] = ()  # printed by `podbot manifests validate`; the skill loads all the same

    @property
    def properties(self) -> dict[str, dict]:
        return self.parameters.get("properties", {})

    @property
    def secret_params(self) -> frozenset[str]:
        return frozenset(name for name, prop in self.properties.items() if prop.get("secret"))

    @property
    def required(self) -> list[str]:
        return self.parameters.get("required", [])

    def missing(self, args: dict[str, Any]) -> list[str]:
        """Required parameters that neither the arguments nor a default provide."""
        return [name for name in self.required if name not in args and "default" not in self.properties.get(name, {})]

    def usage(self) -> str:
        parts = [f"/{self.name}"]
        for name in self.properties:
            parts.append(f"{name}=…" if name in self.required else f"[{name}=…]")
        return " ".join(parts)


def _check(doc: Document, mount_names: set[str] | None, max_timeout: float, secret_names: set[str] | None = None) -> list[Problem]:
    """Checks JSON Schema cannot express: regexes, defaults, template names, durations."""
    data = doc.data
    params = data.get("parameters", {"type": "object", "properties": {}})
    try:
        Validator.check_schema(params)
    except jsonschema.SchemaError as exc:
        return [doc.at(("parameters",) + tuple(exc.absolute_path), f"parameters: invalid JSON Schema: {_message(exc)}")]
    # Parameter patterns run inside every check of an argument below: first make sure RE2 can run them.
    problems = []
    for where, pattern in _schema_patterns(params, ()):
        why = pattern_problem(pattern)
        if why:
            problems.append(doc.at(("parameters",) + where, why))
    if problems:
        return problems
    declared = params.get("properties", {})
    for name in params.get("required", []):
        if name not in declared:
            problems.append(doc.at(("parameters", "required"), f"required parameter {echo(name)} is not declared under properties"))
    for name, prop in declared.items():
        if "default" in prop:
            errors = list(Validator(prop).iter_errors(prop["default"]))
            if errors:
                where = ("parameters", "properties", name, "default")
                problems.append(doc.at(where, f"default of {echo(name)} fails its own schema: {_message(errors[0])}"))
    for i, example in enumerate(data.get("examples", [])):
        if isinstance(example, dict):
            problems.extend(doc.at(("examples", i, "args") + where, message) for where, message in _example_problems(example, declared))
    problems += _pattern_problems(doc, declared)
    for i, item in enumerate(data["run"]["command"]):
        for name in PLACEHOLDER.findall(item):
            if name not in declared:
                problems.append(doc.at(("run", "command", i), f"command uses {{{cut(name)}}}, which is not a declared parameter"))
    problems += _duration_problems(doc, max_timeout)
    wait = data.get("approval", {}).get("timeout")
    if wait is not None and not 0 < parse_duration(wait) <= MAX_APPROVAL_WAIT:
        problems.append(doc.at(("approval", "timeout"), f"approval.timeout: {echo(wait)} must be above 0 and at most 168h"))
    for i, entry in enumerate(data.get("schedule", [])):
        try:
            cron.parse(entry["cron"])
            cron.zone(entry.get("timezone"))
        except ValueError as exc:
            problems.append(doc.at(("schedule", i, "cron"), f"schedule: {cut(str(exc), 80)}"))
        args = {k: v["default"] for k, v in declared.items() if "default" in v} | entry.get("args", {})
        errors = list(Validator({**params, "additionalProperties": False}).iter_errors(args))
        if errors:
            problems.append(doc.at(("schedule", i, "args"), f"schedule args: {_message(errors[0])}"))
    for i, case in enumerate(data.get("tests", [])):
        if "output" in case:
            try:
                re.compile(case["output"])
            except re.error as exc:
                problems.append(doc.at(("tests", i, "output"), f"test output: bad regular expression: {exc}"))
        if "args" in case and case["skill"] == NO_SKILL:
            problems.append(doc.at(("tests", i, "args"), f"a test with skill: {NO_SKILL} runs nothing, so it has no args"))
    if secret_names is not None:
        for i, use in enumerate(data.get("secrets", [])):
            if use["name"] not in secret_names:
                known = ", ".join(sorted(secret_names)) or "none configured"
                problems.append(doc.at(("secrets", i, "name"), f"secret {echo(use['name'])} is not in podbot.yaml secrets ({known})"))
    if "build" in data["run"] and not (Path(doc.file).parent / data["run"]["build"] / "Containerfile").is_file():
        problems.append(
            doc.at(("run", "build"), f"run.build: no Containerfile in {echo(data['run']['build'])} (relative to this manifest)")
        )
    if mount_names is not None:
        for i, mount in enumerate(data["run"].get("mounts", [])):
            if mount["source"] not in mount_names:
                known = ", ".join(sorted(mount_names)) or "none configured"
                problems.append(
                    doc.at(("run", "mounts", i, "source"), f"mount {echo(mount['source'])} is not in podbot.yaml mounts ({known})")
                )
    return problems


def _message(error: jsonschema.ValidationError | jsonschema.SchemaError) -> str:
    """jsonschema's message, with the value it quotes cut short."""
    return error.message.replace(repr(error.instance), echo(error.instance))


def _schema_patterns(schema: Any, where: tuple) -> list[tuple[tuple, str]]:
    """Every `pattern` in a JSON Schema, at any depth, with where it is (values such as `default` skipped)."""
    if isinstance(schema, list):
        return [found for i, item in enumerate(schema) for found in _schema_patterns(item, where + (i,))]
    if not isinstance(schema, dict):
        return []
    found = []
    for key, value in schema.items():
        if key == "pattern" and isinstance(value, str):
            found.append((where + (key,), value))
        elif key not in ("default", "const", "enum", "examples"):
            found += _schema_patterns(value, where + (key,))
    return found


def _pattern_problems(doc: Document, declared: dict) -> list[Problem]:
    patterns = doc.data.get("patterns", [])
    if doc.data.get("invocation") == "explicit" and patterns:
        return [doc.at(("patterns",), "patterns route free text, which `invocation: explicit` forbids; remove one of them")]
    problems = []
    for i, pattern in enumerate(patterns):
        why = pattern_problem(pattern)
        if why:
            problems.append(doc.at(("patterns", i), why))
            continue
        for group in compile_pattern(pattern).groupindex:
            if group not in declared:
                problems.append(doc.at(("patterns", i), f"pattern group {echo(group)} is not a declared parameter"))
    return problems


def _duration_problems(doc: Document, max_timeout: float) -> list[Problem]:
    """Durations above 0 (0 would mean none at all) and within limits.max_timeout (a run must end in time)."""
    problems = []
    for where in DURATIONS:
        parent = doc.data if len(where) == 1 else doc.data.get(where[0], {})
        if where[-1] not in parent:
            continue
        text = parent[where[-1]]
        seconds = parse_duration(text)
        if seconds <= 0:
            problems.append(doc.at(where, f"{'.'.join(where)}: {echo(text)} is no time; give more than 0, or leave it out for the default"))
        elif seconds > max_timeout:
            problems.append(doc.at(where, f"{'.'.join(where)}: {echo(text)} is longer than limits.max_timeout ({max_timeout:g}s)"))
    return problems


def _option_warnings(doc: Document) -> list[Problem]:
    """Arguments a person's value may begin, that the program could read as an option (`-n`, `--help`)."""
    declared = doc.data.get("parameters", {}).get("properties", {})
    command = doc.data["run"]["command"]
    warnings = []
    for i, item in enumerate(command):
        lead = PLACEHOLDER.match(item)
        if lead is None or "--" in command[:i]:
            continue
        name = lead.group(1)
        validator = Validator(declared[name])
        if any(validator.is_valid(value) for value in OPTION_LIKE):
            warnings.append(
                doc.at(
                    ("run", "command", i),
                    f"warning: a value of '{name}' such as '-n' or '--help' would begin this argument and read as an option: "
                    f"put \"--\" before it, or give '{name}' a pattern that refuses a leading '-'",
                )
            )
    return warnings


def _approval_warnings(doc: Document, role_holders: set[str] | None) -> list[Problem]:
    """Approving roles that nobody has (config roles, grants): such a run could only ever time out."""
    if role_holders is None:
        return []
    roles = doc.data.get("approval", {}).get("roles", [])
    return [
        doc.at(("approval", "roles", i), f"warning: nobody has the role {echo(role)} (podbot.yaml roles, grants): nobody can approve")
        for i, role in enumerate(roles)
        if role not in role_holders
    ]


def _example_problems(example: dict, declared: dict) -> list[tuple[tuple, str]]:
    """An example's args must be valid values, and text values copied from its text: that is what it teaches."""
    found = []
    for name, value in example["args"].items():
        if name not in declared:
            found.append(((name,), f"example args: {echo(name)} is not a declared parameter"))
            continue
        errors = list(Validator(declared[name]).iter_errors(value))
        if errors:
            found.append(((name,), f"example args: {name}: {_message(errors[0])}"))
        elif isinstance(value, str) and value.lower() not in example["text"].lower():
            found.append(((name,), f"example args: {name} {echo(value)} does not appear in the example's text"))
    return found


def _build(doc: Document, max_timeout: float, role_holders: set[str] | None) -> Skill:
    data, run = doc.data, doc.data["run"]
    approval = data.get("approval")
    params = data.get("parameters", {"type": "object", "properties": {}})
    # Arguments nobody declared must never reach a container.
    params = {**params, "additionalProperties": False}
    return Skill(
        name=data["name"],
        description=data["description"].strip(),
        run_image=run["image"],
        run_command=tuple(run["command"]),
        roles=frozenset(data["roles"]),
        file=doc.file,
        examples=tuple(e if isinstance(e, str) else e["text"] for e in data.get("examples", [])),
        not_examples=tuple(data.get("not_examples", [])),
        shots=tuple(_shots(data)),
        patterns=tuple(compile_pattern(p) for p in data.get("patterns", [])),
        parameters=params,
        env=dict(run.get("env", {})),
        timeout=parse_duration(run["timeout"]) if "timeout" in run else min(DEFAULT_TIMEOUT, max_timeout),
        network=run.get("network", "none") != "none",
        mounts=tuple(Mount(m["source"], m["target"]) for m in run.get("mounts", [])),
        secrets=tuple(SecretUse(u["name"], u.get("env"), u.get("file")) for u in data.get("secrets", [])),
        build=(Path(doc.file).parent / run["build"]).resolve() if "build" in run else None,
        pull=run.get("pull") == "missing",
        host_pid=run.get("pid") == "host",
        image_at=doc.positions.get(("run", "image"), (1, 1)),
        reply_to=data.get("reply_to"),
        confirm=bool(data.get("confirm", False)),
        approval=_approval(approval) if approval else None,
        explicit=data.get("invocation") == "explicit",
        retries=int(data.get("retries", 0)),
        retry_delay=parse_duration(data["retry_delay"]) if "retry_delay" in data else 0.0,
        fallback=data.get("fallback"),
        concurrency=data.get("concurrency"),
        cache=parse_duration(data["cache"]) if "cache" in data else 0.0,
        schedules=tuple(_schedules(data)),
        tests=tuple(_tests(data)),
        warnings=tuple(_option_warnings(doc) + _approval_warnings(doc, role_holders)),
    )


def _approval(data: dict) -> ApprovalRule:
    timeout = data.get("timeout")
    return ApprovalRule(
        roles=frozenset(data["roles"]),
        timeout=parse_duration(timeout) if timeout else None,
        self_approve=bool(data.get("self_approve", False)),
        notify=data.get("notify"),
    )


def _schedules(data: dict) -> list[Schedule]:
    entries = data.get("schedule", [])
    return [
        Schedule(
            name=e.get("name") or (data["name"] if len(entries) == 1 else f"{data['name']}-{i + 1}"),
            cron=e["cron"],
            reply_to=e["reply_to"],
            identity=e["as"],
            args=dict(e.get("args", {})),
            timezone=e.get("timezone"),
            catch_up=e.get("catch_up", "once"),
        )
        for i, e in enumerate(entries)
    ]


def _tests(data: dict) -> list[SkillTest]:
    role = data["roles"][0]
    return [
        SkillTest(
            say=case["say"],
            skill=case["skill"],
            identity=case.get("as", f"console:test-{role}"),
            grant=None if "as" in case else role,
            args=dict(case["args"]) if "args" in case else None,
            output=re.compile(case["output"]) if "output" in case else None,
        )
        for case in data.get("tests", [])
    ]


def _shots(data: dict) -> list[tuple[str, dict[str, Any]]]:
    patterns = [compile_pattern(p) for p in data.get("patterns", [])]
    shots = []
    for example in data.get("examples", []):
        if isinstance(example, dict):
            shots.append((example["text"], dict(example["args"])))
            continue
        found = next((m for m in (p.search(example) for p in patterns) if m), None)
        if found:
            shots.append((example, {k: v for k, v in found.groupdict().items() if v is not None}))
    return shots


def load_file(
    path: Path, mount_names: set[str] | None = None, max_timeout: float = MAX_TIMEOUT, secret_names: set[str] | None = None
) -> tuple[Skill | None, list[Problem]]:
    _, manifest, problems = _load(path, mount_names, max_timeout, secret_names)
    return manifest, problems


def _load(
    path: Path,
    mount_names: set[str] | None,
    max_timeout: float,
    secret_names: set[str] | None = None,
    role_holders: set[str] | None = None,
) -> tuple[Document | None, Skill | None, list[Problem]]:
    try:
        doc = read_yaml(path, shown=True)
    except YamlError as exc:
        return None, None, [exc.problem]
    except FileNotFoundError:
        return None, None, [Problem(str(path), 1, 1, "no such file or directory")]
    if not isinstance(doc.data, dict):
        return doc, None, [doc.at((), "a manifest must be a YAML mapping (name:, description:, run:, roles: …)")]
    problems = validate(doc, bundled_schema("manifest")) or _check(doc, mount_names, max_timeout, secret_names)
    if problems:
        return doc, None, _capped(problems)
    return doc, _build(doc, max_timeout, role_holders), []


def _capped(problems: list[Problem]) -> list[Problem]:
    if len(problems) <= MAX_PROBLEMS:
        return problems
    first_left_out = problems[MAX_PROBLEMS]
    rest = Problem(first_left_out.file, first_left_out.line, first_left_out.col, f"and {len(problems) - MAX_PROBLEMS} more problems")
    return problems[:MAX_PROBLEMS] + [rest]


def _listing(paths: list[Path]) -> tuple[list[Path], list[Problem]]:
    """The manifest files under `paths` (a directory's *.yaml and *.yml, a file as it is), and directories not listed."""
    files: list[Path] = []
    problems: list[Problem] = []
    for path in paths:
        try:
            is_dir = stat.S_ISDIR(os.stat(path).st_mode)
        except OSError:
            is_dir = False  # reading it as a file reports what is wrong
        if not is_dir:
            files.append(path)
            continue
        try:
            files.extend(sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")))
        except OSError as exc:
            problems.append(Problem(str(path), 1, 1, f"cannot list the directory: {exc.strerror}"))
    return files, problems


def manifest_files(paths: list[Path]) -> list[Path]:
    return _listing(paths)[0]


def load_all(
    paths: list[Path],
    mount_names: set[str] | None = None,
    max_timeout: float = MAX_TIMEOUT,
    *,
    secret_names: set[str] | None = None,
    role_holders: set[str] | None = None,
    may_run: Callable[[str, Skill], bool] | None = None,
    platforms: Collection[str] | None = None,
) -> tuple[dict[str, Skill], list[Problem]]:
    """Load every manifest under `paths`; skills with errors are left out and reported.

    `mount_names` and `secret_names` (config `mounts` and `secrets`; None: not checked) and `max_timeout`
    (config `limits.max_timeout`) are what manifests are checked against. With `role_holders` (the roles
    someone has), approvals that name a role nobody has get warnings. With `may_run` (may this identity run
    this skill?) and `platforms` (those replies can reach), schedules that would be denied or whose replies
    could not be delivered get warnings: they load, but fail when they fire.
    """
    files, problems = _listing(paths)
    skills: dict[str, Skill] = {}
    docs: dict[str, Document] = {}  # each file is read once: it may change while it is checked
    for file in files:
        doc, manifest, found = _load(file, mount_names, max_timeout, secret_names, role_holders)
        problems.extend(found)
        if doc is None or manifest is None:
            continue
        if manifest.name in skills:
            problems.append(doc.at(("name",), f"duplicate skill name '{manifest.name}' (also in {skills[manifest.name].file})"))
            continue
        skills[manifest.name] = manifest
        docs[manifest.name] = doc
    for manifest in list(skills.values()):
        if manifest.fallback and manifest.fallback not in skills:
            problems.append(docs[manifest.name].at(("fallback",), f"fallback {echo(manifest.fallback)} is not a loaded skill"))
            del skills[manifest.name]
    for manifest in list(skills.values()):
        wrong = _test_problems(manifest, skills)
        if wrong:
            problems.extend(docs[manifest.name].at(where, message) for where, message in wrong)
            del skills[manifest.name]
    for name, manifest in skills.items():
        warned = _schedule_warnings(manifest, may_run, platforms)
        if warned:
            skills[name] = replace(manifest, warnings=manifest.warnings + tuple(docs[name].at(w, m) for w, m in warned))
    names = [s.name for m in skills.values() for s in m.schedules]
    for manifest in list(skills.values()):
        for entry in manifest.schedules:
            if names.count(entry.name) > 1:
                problems.append(
                    docs[manifest.name].at(("schedule",), f"schedule name '{entry.name}' is used twice; give each a distinct name")
                )
    return skills, problems


def _schedule_warnings(
    manifest: Skill, may_run: Callable[[str, Skill], bool] | None, platforms: Collection[str] | None
) -> list[tuple[tuple, str]]:
    found: list[tuple[tuple, str]] = []
    for i, entry in enumerate(manifest.schedules):
        if may_run is not None and not may_run(entry.identity, manifest):
            needed = ", ".join(sorted(manifest.roles))
            found.append(
                (
                    ("schedule", i, "as"),
                    f"warning: schedule {entry.name} runs as {entry.identity}, who lacks the role {needed}: it will be denied",
                )
            )
        platform = entry.reply_to.split(":")[0]
        if platforms is not None and platform not in platforms:
            found.append(
                (
                    ("schedule", i, "reply_to"),
                    f"warning: schedule {entry.name} replies to {cut(entry.reply_to)}, but {cut(platform)} is not a configured platform "
                    f"({', '.join(sorted(platforms))}): its results would wait undelivered",
                )
            )
    return found


def _test_problems(manifest: Skill, skills: dict[str, Skill]) -> list[tuple[tuple, str]]:
    """A test case must expect a loaded skill, with arguments that skill declares and accepts."""
    found: list[tuple[tuple, str]] = []
    for i, case in enumerate(manifest.tests):
        if case.skill == NO_SKILL:
            continue
        expected = skills.get(case.skill)
        if expected is None:
            found.append((("tests", i, "skill"), f"test expects skill '{case.skill}', which is not a loaded skill"))
            continue
        for name, value in (case.args or {}).items():
            if name not in expected.properties:
                found.append((("tests", i, "args", name), f"test args: {echo(name)} is not a parameter of {expected.name}"))
                continue
            errors = list(Validator(expected.properties[name]).iter_errors(value))
            if errors:
                found.append((("tests", i, "args", name), f"test args: {name}: {_message(errors[0])}"))
    return found


def render_argv(manifest: Skill, args: dict[str, Any]) -> list[str]:
    """The container's argv: each template item becomes exactly one argument, never a shell string.

    An item that names a parameter with no value (optional, no default) is left out.
    """
    argv = []
    for item in manifest.run_command:
        names = PLACEHOLDER.findall(item)
        if any(args.get(name) is None for name in names):
            continue
        argv.append(PLACEHOLDER.sub(lambda m: _text(args[m.group(1)]), item))
    return argv


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def coerce(value: str, prop: dict) -> Any:
    kind = prop.get("type")
    try:
        if kind == "integer" and re.fullmatch(r"-?[0-9]+", value):
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError:
        return value
    if kind == "boolean" and value.lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
        return value.lower() in ("true", "yes", "on", "1")
    return value


def complete(skill: Skill, args: dict[str, Any]) -> dict[str, Any]:
    """Apply defaults and check the arguments against the manifest's JSON Schema."""
    full = {name: prop["default"] for name, prop in skill.properties.items() if "default" in prop}
    full.update(args)
    errors = sorted(Validator(skill.parameters).iter_errors(full), key=lambda e: e.path)
    if errors:
        raise ArgumentError(_explain(skill, errors[0]))
    return full


def _explain(skill: Skill, error: jsonschema.ValidationError) -> str:
    name = error.path[0] if error.path else None
    if error.validator == "required":
        missing = error.message.split("'")[1]
        return f"{skill.name} needs '{missing}'; usage: {skill.usage()}"
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(skill.properties))
        takes = ", ".join(skill.properties) or "no arguments"
        return f"{skill.name} has no argument '{extra[0]}' (it takes: {takes})"
    prop = skill.properties.get(name, {}) if name else {}
    rule = prop.get("description") or error.message
    if error.validator == "pattern":
        rule = prop.get("description") or f"it must match {error.validator_value}"
    value = "***" if prop.get("secret") else repr(error.instance)  # a secret is never echoed
    return f"argument '{name}' of {skill.name} is not valid: {value}: {rule}"
