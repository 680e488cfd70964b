"""The one schema validator: YAML with source positions, checked by JSON Schema.

Every YAML file podbot reads (manifests, podbot.yaml) goes through `load_yaml`
so that any problem can be reported as `FILE:LINE:COL: message`, pointing at
the offending key rather than at the start of the document.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

Path_ = tuple[str | int, ...]


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
        return Problem(self.file, line, col, message)


def _construct(loader: yaml.SafeLoader, node: yaml.Node, path: Path_, positions: dict, file: str) -> Any:
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(loader.construct_object(key_node))
            mark = key_node.start_mark
            if key in out:
                raise YamlError(Problem(file, mark.line + 1, mark.column + 1, f"duplicate key '{key}'"))
            positions[path + (key,)] = (mark.line + 1, mark.column + 1)
            out[key] = _construct(loader, value_node, path + (key,), positions, file)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, child in enumerate(node.value):
            positions[path + (i,)] = (child.start_mark.line + 1, child.start_mark.column + 1)
            items.append(_construct(loader, child, path + (i,), positions, file))
        return items
    return loader.construct_object(node, deep=True)


def load_yaml(text: str, file: str) -> Document:
    """Parse YAML text; raise YamlError with a position on syntax errors."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        positions: dict[Path_, tuple[int, int]] = {(): (1, 1)}
        data = None if node is None else _construct(loader, node, (), positions, file)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise YamlError(Problem(file, line, col, f"YAML syntax: {exc.problem}")) from None
    finally:
        loader.dispose()
    return Document(file, data, positions)


def read_yaml(path: Path) -> Document:
    return load_yaml(path.read_text(encoding="utf-8"), str(path))


@cache
def bundled_schema(name: str) -> dict:
    """A JSON Schema shipped in bot/schemas (e.g. 'manifest', 'config')."""
    return json.loads((Path(__file__).parent / "schemas" / f"{name}.schema.json").read_text())


def _describe(error: jsonschema.ValidationError) -> str:
    where = ".".join(str(p) for p in error.absolute_path) or "document"
    if error.validator == "required":
        return f"{where}: {error.message}"
    if error.validator == "enum":
        return f"{where}: must be one of {', '.join(map(str, error.validator_value))}"
    if error.validator == "pattern":
        hint = error.schema.get("description")
        return f"{where}: {error.instance!r} does not match {error.validator_value!r}" + (f" ({hint})" if hint else "")
    return f"{where}: {error.message}"


def validate(doc: Document, schema: dict, data: Any | None = None, prefix: Path_ = ()) -> list[Problem]:
    """Check `data` (default: the whole document) against a JSON Schema.

    `prefix` is where `data` sits inside the document, so positions stay right
    when a sub-tree (e.g. a manifest's `parameters`) is checked on its own.
    """
    instance = doc.data if data is None else data
    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))):
        path = prefix + tuple(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = set(error.schema.get("properties", {}))
            for key in error.instance:
                if key not in allowed:
                    problems.append(doc.at(path + (key,), f"unknown key '{key}'" + _known(allowed)))
            continue
        problems.append(doc.at(path, _describe(error)))
    return problems


def _known(allowed: set[str]) -> str:
    return f" (known: {', '.join(sorted(allowed))})" if allowed else ""
