"""Skills: a manifest, loaded and checked, is a `Skill`; its arguments are checked here too.

`podbot manifests validate` and the bot's start-up use the same `load_dir`, so
whatever the validator accepts is exactly what the bot will run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from bot import cron
from bot.errors import ArgumentError
from bot.schema import Document, Problem, YamlError, bundled_schema, read_yaml, validate

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_DURATION = re.compile(r"^([0-9]+)(ms|s|m)$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0}
DEFAULT_TIMEOUT = 30.0
NO_SKILL = "none"  # a test case's `skill` when its message must run nothing


@dataclass(frozen=True)
class Mount:
    source: str  # a name from config `mounts`
    target: str


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
    # Examples whose arguments are known (stated, or found by a pattern): the model's demonstrations.
    shots: tuple[tuple[str, dict[str, Any]], ...] = ()
    patterns: tuple[re.Pattern, ...] = ()
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT
    network: bool = False
    mounts: tuple[Mount, ...] = ()
    reply_to: str | None = None
    confirm: bool = False
    explicit: bool = False  # `invocation: explicit`: only `/name args` runs it, never free text
    retries: int = 0
    retry_delay: float = 0.0
    fallback: str | None = None
    concurrency: int | None = None
    cache: float = 0.0
    schedules: tuple[Schedule, ...] = ()
    tests: tuple[SkillTest, ...] = ()

    @property
    def properties(self) -> dict[str, dict]:
        return self.parameters.get("properties", {})

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


def parse_duration(text: str) -> float:
    found = _DURATION.match(text)
    if found is None:  # the manifest schema's pattern admits only what matches
        raise ValueError(f"not a duration: {text!r}")
    number, unit = found.groups()
    return int(number) * _UNITS[unit]


def _check(doc: Document, mount_names: set[str] | None) -> list[Problem]:
    """Checks JSON Schema cannot express: regexes, defaults, template names."""
    data = doc.data
    problems: list[Problem] = []
    params = data.get("parameters", {"type": "object", "properties": {}})
    try:
        jsonschema.Draft202012Validator.check_schema(params)
    except jsonschema.SchemaError as exc:
        problems.append(doc.at(("parameters",) + tuple(exc.absolute_path), f"parameters: invalid JSON Schema: {exc.message}"))
        return problems
    declared = params.get("properties", {})
    for name in params.get("required", []):
        if name not in declared:
            problems.append(doc.at(("parameters", "required"), f"required parameter '{name}' is not declared under properties"))
    for name, prop in declared.items():
        if "default" in prop:
            errors = list(jsonschema.Draft202012Validator(prop).iter_errors(prop["default"]))
            if errors:
                problems.append(
                    doc.at(("parameters", "properties", name, "default"), f"default of '{name}' fails its own schema: {errors[0].message}")
                )
    for i, example in enumerate(data.get("examples", [])):
        if isinstance(example, dict):
            problems.extend(doc.at(("examples", i, "args") + where, message) for where, message in _example_problems(example, declared))
    if data.get("invocation") == "explicit" and data.get("patterns"):
        problems.append(doc.at(("patterns",), "patterns route free text, which `invocation: explicit` forbids; remove one of them"))
    for i, pattern in enumerate(data.get("patterns", [])):
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            problems.append(doc.at(("patterns", i), f"bad regular expression: {exc}"))
            continue
        for group in compiled.groupindex:
            if group not in declared:
                problems.append(doc.at(("patterns", i), f"pattern group '{group}' is not a declared parameter"))
    for i, item in enumerate(data["run"]["command"]):
        for name in PLACEHOLDER.findall(item):
            if name not in declared:
                problems.append(doc.at(("run", "command", i), f"command uses {{{name}}}, which is not a declared parameter"))
    for i, entry in enumerate(data.get("schedule", [])):
        try:
            cron.parse(entry["cron"])
            cron.zone(entry.get("timezone"))
        except ValueError as exc:
            problems.append(doc.at(("schedule", i, "cron"), f"schedule: {exc}"))
        args = {k: v["default"] for k, v in declared.items() if "default" in v} | entry.get("args", {})
        errors = list(jsonschema.Draft202012Validator({**params, "additionalProperties": False}).iter_errors(args))
        if errors:
            problems.append(doc.at(("schedule", i, "args"), f"schedule args: {errors[0].message}"))
    for i, case in enumerate(data.get("tests", [])):
        if "output" in case:
            try:
                re.compile(case["output"])
            except re.error as exc:
                problems.append(doc.at(("tests", i, "output"), f"test output: bad regular expression: {exc}"))
        if "args" in case and case["skill"] == NO_SKILL:
            problems.append(doc.at(("tests", i, "args"), f"a test with skill: {NO_SKILL} runs nothing, so it has no args"))
    if mount_names is not None:
        for i, mount in enumerate(data["run"].get("mounts", [])):
            if mount["source"] not in mount_names:
                known = ", ".join(sorted(mount_names)) or "none configured"
                problems.append(doc.at(("run", "mounts", i, "source"), f"mount '{mount['source']}' is not in podbot.yaml mounts ({known})"))
    return problems


def _example_problems(example: dict, declared: dict) -> list[tuple[tuple, str]]:
    """An example's args must be valid values, and text values copied from its text: that is what it teaches."""
    found = []
    for name, value in example["args"].items():
        if name not in declared:
            found.append(((name,), f"example args: '{name}' is not a declared parameter"))
            continue
        errors = list(jsonschema.Draft202012Validator(declared[name]).iter_errors(value))
        if errors:
            found.append(((name,), f"example args: {name}: {errors[0].message}"))
        elif isinstance(value, str) and value.lower() not in example["text"].lower():
            found.append(((name,), f"example args: {name} {value!r} does not appear in the example's text"))
    return found


def _build(doc: Document) -> Skill:
    data, run = doc.data, doc.data["run"]
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
        shots=tuple(_shots(data)),
        patterns=tuple(re.compile(p) for p in data.get("patterns", [])),
        parameters=params,
        env=dict(run.get("env", {})),
        timeout=parse_duration(run["timeout"]) if "timeout" in run else DEFAULT_TIMEOUT,
        network=run.get("network", "none") != "none",
        mounts=tuple(Mount(m["source"], m["target"]) for m in run.get("mounts", [])),
        reply_to=data.get("reply_to"),
        confirm=bool(data.get("confirm", False)),
        explicit=data.get("invocation") == "explicit",
        retries=int(data.get("retries", 0)),
        retry_delay=parse_duration(data["retry_delay"]) if "retry_delay" in data else 0.0,
        fallback=data.get("fallback"),
        concurrency=data.get("concurrency"),
        cache=parse_duration(data["cache"]) if "cache" in data else 0.0,
        schedules=tuple(_schedules(data)),
        tests=tuple(_tests(data)),
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
    patterns = [re.compile(p) for p in data.get("patterns", [])]
    shots = []
    for example in data.get("examples", []):
        if isinstance(example, dict):
            shots.append((example["text"], dict(example["args"])))
            continue
        found = next((m for m in (p.search(example) for p in patterns) if m), None)
        if found:
            shots.append((example, {k: v for k, v in found.groupdict().items() if v is not None}))
    return shots


def load_file(path: Path, mount_names: set[str] | None = None) -> tuple[Skill | None, list[Problem]]:
    try:
        doc = read_yaml(path)
    except YamlError as exc:
        return None, [exc.problem]
    if not isinstance(doc.data, dict):
        return None, [doc.at((), "a manifest must be a YAML mapping (name:, description:, run:, roles: …)")]
    problems = validate(doc, bundled_schema("manifest"))
    if problems:
        return None, problems
    problems = _check(doc, mount_names)
    if problems:
        return None, problems
    return _build(doc), []


def manifest_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")))
        else:
            files.append(path)
    return files


def load_all(paths: list[Path], mount_names: set[str] | None = None) -> tuple[dict[str, Skill], list[Problem]]:
    """Load every manifest under `paths`; skills with errors are left out and reported."""
    skills: dict[str, Skill] = {}
    problems: list[Problem] = []
    for file in manifest_files(paths):
        if not file.exists():
            problems.append(Problem(str(file), 1, 1, "no such file or directory"))
            continue
        manifest, found = load_file(file, mount_names)
        problems.extend(found)
        if manifest is None:
            continue
        if manifest.name in skills:
            doc = read_yaml(file)
            problems.append(doc.at(("name",), f"duplicate skill name '{manifest.name}' (also in {skills[manifest.name].file})"))
            continue
        skills[manifest.name] = manifest
    for manifest in list(skills.values()):
        if manifest.fallback and manifest.fallback not in skills:
            doc = read_yaml(Path(manifest.file))
            problems.append(doc.at(("fallback",), f"fallback '{manifest.fallback}' is not a loaded skill"))
            del skills[manifest.name]
    for manifest in list(skills.values()):
        wrong = _test_problems(manifest, skills)
        if wrong:
            doc = read_yaml(Path(manifest.file))
            problems.extend(doc.at(where, message) for where, message in wrong)
            del skills[manifest.name]
    names = [s.name for m in skills.values() for s in m.schedules]
    for manifest in list(skills.values()):
        for entry in manifest.schedules:
            if names.count(entry.name) > 1:
                doc = read_yaml(Path(manifest.file))
                problems.append(doc.at(("schedule",), f"schedule name '{entry.name}' is used twice; give each a distinct name"))
    return skills, problems


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
                found.append((("tests", i, "args", name), f"test args: '{name}' is not a parameter of {expected.name}"))
                continue
            errors = list(jsonschema.Draft202012Validator(expected.properties[name]).iter_errors(value))
            if errors:
                found.append((("tests", i, "args", name), f"test args: {name}: {errors[0].message}"))
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
    errors = sorted(jsonschema.Draft202012Validator(skill.parameters).iter_errors(full), key=lambda e: e.path)
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
    return f"argument '{name}' of {skill.name} is not valid: {error.instance!r}: {rule}"
