"""The one schema validator: YAML with source positions, checked by JSON Schema.

Every YAML file podbot reads (manifests, podbot.yaml) goes through `read_yaml`
so that any problem can be reported as `FILE:LINE:COL: message`, pointing at
the offending key rather than at the start of the document. Whatever a file
holds, reading it ends in a Document or in one such problem, in bounded time
and memory: only regular files, at most MAX_BYTES of UTF-8, nested at most
MAX_DEPTH deep, at most MAX_VALUES values however its aliases expand. Messages
quote what a file says only in short cuts, as they may be sent to a chat.

Regular expressions from files (manifest patterns, JSON Schema `pattern`s) run
on RE2, which matches in time linear in the text: no pattern can hang the bot.
"""

from __future__ import annotations

import codecs
import json
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import jsonschema
import re2
import yaml

Path_ = tuple[str | int, ...]

MAX_BYTES = 256 * 1024
MAX_DEPTH = 64
MAX_VALUES = 10_000
ECHO = 40  # characters of a file's key or value that a message may quote
MAX_MESSAGE = 300

_DURATION = re.compile(r"^([0-9]+)(ms|s|m|h|d)$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),  # before UTF-16 LE, whose BOM it starts with
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a device",
    stat.S_IFBLK: "a device",
}
_YAML_TAG = "tag:yaml.org,2002:"
_PLAIN_TAGS = (yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG)
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a bad pattern is reported as a Problem, not logged by RE2 on stderr


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class YamlError(Exception):
    def __init__(self, problem: Problem):
        super().__init__(str(problem))
        self.problem = problem


def cut(text: str, limit: int = ECHO) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def echo(value: Any) -> str:
    """`value` as repr shows it, cut short: a message never repeats much of a file."""
    return repr(cut(value)) if isinstance(value, str) else cut(repr(value))


@dataclass
class Document:
    """Parsed YAML data plus the (line, col) of every key and list item."""

    file: str
    data: Any
    positions: dict[Path_, tuple[int, int]]

    def at(self, path: Path_, message: str) -> Problem:
        """A problem located at `path`, or at its nearest located ancestor."""
        path = tuple(path)
        while path and path not in self.positions:
            path = path[:-1]
        line, col = self.positions.get(path, (1, 1))
        return Problem(self.file, line, col, cut(message, MAX_MESSAGE))


def _at_mark(file: str, mark: Any, message: str) -> YamlError:
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    return YamlError(Problem(file, line, col, cut(message, MAX_MESSAGE)))


def _at_index(file: str, text: str, index: int, message: str) -> YamlError:
    start = text.rfind("\n", 0, index) + 1
    return YamlError(Problem(file, text.count("\n", 0, index) + 1, index - start + 1, message))


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing to nest deeper than MAX_DEPTH: its composer recurses once per level."""

    def __init__(self, text: str, file: str):
        super().__init__(text)
        self.file = file
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _at_mark(self.file, self.peek_event().start_mark, f"nested deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


@dataclass
class _Builder:
    """Python data from composed nodes, noting each key's and item's position.

    An alias is the node it names: built again at each use, so the values built
    are counted (a kilobyte of nested aliases would otherwise expand to
    gigabytes), and the depth too (an alias may name a collection it is in).
    """

    loader: _Loader
    file: str
    positions: dict[Path_, tuple[int, int]]
    values: int = 0

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.values += 1
        if self.values > MAX_VALUES:
            raise self._error(node, f"more than {MAX_VALUES} values (aliases count once per use)")
        if len(path) > MAX_DEPTH:
            raise self._error(node, f"nested deeper than {MAX_DEPTH} levels (an alias inside what it names?)")
        if isinstance(node, yaml.CollectionNode) and node.tag not in _PLAIN_TAGS:
            # PyYAML's safe constructor would refuse it; this builder makes collections itself, so it must too.
            raise self._error(node, f"the tag {echo(node.tag.replace(_YAML_TAG, '!!'))} is not allowed here")
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise self._error(key_node, "a key must be a plain value, not a list or mapping")
                key = str(self._scalar(key_node))
                if key in out:
                    raise self._error(key_node, f"duplicate key {echo(key)}")
                self.positions[path + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                out[key] = self.build(value_node, path + (key,))
            return out
        if isinstance(node, yaml.SequenceNode):
            items = []
            for i, child in enumerate(node.value):
                self.positions[path + (i,)] = (child.start_mark.line + 1, child.start_mark.column + 1)
                items.append(self.build(child, path + (i,)))
            return items
        return self._scalar(node)

    def _scalar(self, node: yaml.Node) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except (ValueError, KeyError, TypeError, OverflowError):
            # Tagged or implicit values PyYAML cannot convert: 2024-02-30, !!bool maybe, an int of 5,000 digits.
            kind = str(node.tag).rsplit(":", 1)[-1]
            raise self._error(node, f"cannot read {echo(node.value)} as {kind}") from None

    def _error(self, node: yaml.Node, message: str) -> YamlError:
        return _at_mark(self.file, node.start_mark, message)


def load_yaml(text: str, file: str) -> Document:
    """Parse YAML text; raise YamlError with a position on any problem."""
    try:
        loader = _Loader(text, file)
    except yaml.reader.ReaderError as exc:
        hint = " (a binary or UTF-16 file?)" if exc.character == 0 else ""
        raise _at_index(file, text, exc.position, f"character U+{exc.character:04X} is not allowed in YAML{hint}") from None
    try:
        node = loader.get_single_node()
        positions: dict[Path_, tuple[int, int]] = {(): (1, 1)}
        data = None if node is None else _Builder(loader, file, positions).build(node, ())
    except yaml.MarkedYAMLError as exc:
        raise _at_mark(file, exc.problem_mark, f"YAML syntax: {exc.problem}") from None
    finally:
        loader.dispose()
    return Document(file, data, positions)


def read_yaml(path: Path, shown: bool = False) -> Document:
    """Read and parse one YAML file. FileNotFoundError passes; every other problem is a YamlError.

    A `shown` file (a manifest) has its problems, and so bits of its lines, shown
    to people, in chat too. Whoever can write in a manifest dir may not be able
    to read a file it links to: such a link must point to a file everyone may read.
    """
    return load_yaml(_read_text(path, shown), str(path))


def _read_text(path: Path, shown: bool) -> str:
    file = str(path)
    try:
        private_refused = shown and os.path.islink(path)
        # stat before open: opening a FIFO blocks (the watcher thread, for ever); a device may never end.
        _check_file(file, os.stat(path), private_refused)
        # Not a link when checked: it must not become one before it is opened.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | (0 if private_refused else os.O_NOFOLLOW))
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise YamlError(Problem(file, 1, 1, f"cannot read: {exc.strerror}")) from None
    with os.fdopen(fd, "rb") as handle:
        _check_file(file, os.fstat(handle.fileno()), private_refused)  # the file opened, not the one stat'ed
        data = handle.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise YamlError(Problem(file, 1, 1, f"larger than {MAX_BYTES // 1024} KiB"))
    return _decode(data, file)


def _check_file(file: str, info: os.stat_result, private_refused: bool) -> None:
    if not stat.S_ISREG(info.st_mode):
        kind = _KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
        raise YamlError(Problem(file, 1, 1, f"{kind}, not a regular file"))
    if info.st_size > MAX_BYTES:
        raise YamlError(Problem(file, 1, 1, f"larger than {MAX_BYTES // 1024} KiB ({info.st_size} bytes)"))
    if private_refused and not info.st_mode & stat.S_IROTH:
        mode = stat.S_IMODE(info.st_mode)
        raise YamlError(Problem(file, 1, 1, f"a link to a file not everyone may read (mode {mode:04o}); its lines would be shown"))


def _decode(data: bytes, file: str) -> str:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            raise YamlError(Problem(file, 1, 1, f"the file is {encoding}; save it as UTF-8"))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = data.rfind(b"\n", 0, exc.start) + 1
        line, col = data.count(b"\n", 0, exc.start) + 1, len(data[start : exc.start].decode("utf-8")) + 1
        raise YamlError(Problem(file, line, col, f"not UTF-8: byte 0x{data[exc.start]:02x} ({exc.reason})")) from None


def parse_duration(text: str) -> float:
    """'500ms', '20s', '2m', '1h', '90d' in seconds (a float, so that no count of digits overflows)."""
    found = _DURATION.match(text)
    if found is None:  # the schemas' patterns admit only what matches
        raise ValueError(f"not a duration: {echo(text)}")
    number, unit = found.groups()
    return float(number) * _UNITS[unit]


class Regex(Protocol):
    """A compiled RE2 pattern (re2 ships no type information)."""

    @property
    def groupindex(self) -> Mapping[str, int]: ...

    def search(self, text: str) -> Any: ...


def compile_pattern(pattern: str) -> Regex:
    """`pattern` compiled by RE2; re2.error if RE2 cannot run it (see `pattern_problem`)."""
    return re2.compile(pattern, _RE2_OPTIONS)


def pattern_problem(pattern: str) -> str | None:
    """Why RE2 cannot run `pattern`, or None when it can."""
    try:
        compile_pattern(pattern)
        return None
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
    try:
        re.compile(pattern)
    except re.error:
        return f"bad regular expression: {cut(reason, 80)}"
    return (
        f"regular expression RE2 cannot run ({cut(reason, 80)}): patterns must match in linear time, "
        "so backreferences, lookarounds and atomic groups are not supported"
    )


def _re2_pattern(validator: Any, pattern: str, instance: Any, schema: dict) -> Any:
    if validator.is_type(instance, "string") and not compile_pattern(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


# Draft 2020-12, but `pattern` runs on RE2: a manifest's parameter patterns run on what people type.
Validator: Any = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": _re2_pattern})


@cache
def bundled_schema(name: str) -> dict:
    """A JSON Schema shipped in bot/schemas (e.g. 'manifest', 'config')."""
    return json.loads((Path(__file__).parent / "schemas" / f"{name}.schema.json").read_text())


def _describe(error: jsonschema.ValidationError) -> str:
    where = ".".join(cut(str(p)) for p in error.absolute_path) or "document"
    if error.validator == "required":
        return f"{where}: {error.message}"
    if error.validator == "enum":
        return f"{where}: must be one of {', '.join(map(str, error.validator_value))}"
    if error.validator == "pattern":
        hint = error.schema.get("description")
        return f"{where}: {echo(error.instance)} does not match {error.validator_value!r}" + (f" ({hint})" if hint else "")
    return f"{where}: {error.message.replace(repr(error.instance), echo(error.instance))}"


def validate(doc: Document, schema: dict, data: Any | None = None, prefix: Path_ = ()) -> list[Problem]:
    """Check `data` (default: the whole document) against a JSON Schema.

    `prefix` is where `data` sits inside the document, so positions stay right
    when a sub-tree (e.g. a manifest's `parameters`) is checked on its own.
    """
    instance = doc.data if data is None else data
    problems = []
    for error in sorted(Validator(schema).iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))):
        path = prefix + tuple(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = set(error.schema.get("properties", {}))
            for key in error.instance:
                if key not in allowed:
                    problems.append(doc.at(path + (key,), f"unknown key {echo(key)}" + _known(allowed)))
            continue
        problems.append(doc.at(path, _describe(error)))
    return problems


def _known(allowed: set[str]) -> str:
    return f" (known: {', '.join(sorted(allowed))})" if allowed else ""
