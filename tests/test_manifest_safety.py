"""Manifests nobody can knock the bot over with: every file is answered FILE:LINE:COL, in bounded time and memory.

Hang guards are subprocess timeouts and thread joins, never speed checks.
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import yaml

from bot import config
from bot.catalog import Catalog
from bot.errors import Problems
from bot.schema import read_yaml
from bot.skill import load_all
from tests.conftest import say

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "manifest_corpus"
EXPECTED: dict[str, str] = read_yaml(CORPUS / "expected.yaml").data
GUARD = 300  # seconds: a hang guard, not a speed check
SECRET = "root:$y$j9T$SECRETSALT$SECRETHASHSECRETHASH:19000:0:99999:7:::"

GOOD = """\
name: hello
description: Say hello.
parameters:
  type: object
  properties:
    who: {type: string, pattern: "^[a-z]+$", default: world}
run:
  image: localhost/podbot-base:latest
  command: ["printf", "--", "%s\\\\n", "hello {who}"]
roles: [user]
"""


MEMORY = 2 * 1024**3  # what a subprocess reading manifests may map: a regression fails a test, not the machine


def bounded(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python argv…` in a subprocess with a hang guard and a memory cap, on this checkout's config only."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PODBOT_")} | (env or {})
    environ["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, *argv],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=environ,
        timeout=GUARD,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY)),
    )


def podbot(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return bounded(["-m", "bot.cli", *args], env)


def first_problems(stdout: str) -> dict[str, str]:
    """FILE -> 'LINE:COL: message' of the first problem printed for it."""
    found: dict[str, str] = {}
    for line in stdout.splitlines():
        file, _, rest = line.partition(".yaml:")
        found.setdefault(Path(file + ".yaml").name, rest)
    return found


def test_the_corpus_has_an_expectation_for_each_file() -> None:
    files = sorted(p.name for p in (CORPUS / "broken").iterdir())
    assert files == sorted(EXPECTED) and len(files) >= 50


# Each file on its own, in a subprocess: an alias bomb that got through would eat the memory of the test run.
LOAD_EACH = """
import json, sys
from pathlib import Path
from bot.skill import load_all
found = {}
for file in sorted(Path(sys.argv[1]).iterdir()):
    skills, problems = load_all([file], mount_names={"logs"})
    found[file.name] = [len(skills)] + [str(p) for p in problems]
print(json.dumps(found))
"""


def test_corpus_through_the_loader() -> None:
    result = bounded(["-c", LOAD_EACH, str(CORPUS / "broken")])
    assert result.returncode == 0, result.stderr
    wrong = []
    for name, (loaded, *problems) in json.loads(result.stdout).items():
        file = CORPUS / "broken" / name
        if loaded or not problems or not problems[0].startswith(f"{file}:{EXPECTED[name]}"):
            wrong.append((name, loaded, problems[:1]))
        wrong += [(name, "not one short line", p) for p in problems if "\n" in p or len(p) > len(str(file)) + 320]
    assert wrong == []


def test_corpus_through_the_cli() -> None:
    result = podbot("manifests", "validate", str(CORPUS / "broken"))
    assert result.returncode == 1, result.stderr
    assert "0 skills valid" in result.stderr, result.stderr
    found = first_problems(result.stdout)
    assert set(found) == set(EXPECTED)
    for name, expected in EXPECTED.items():
        assert found[name].startswith(expected), (name, found[name])


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A file like /etc/shadow: its lines would each read as a key, and only root may read it."""
    path = tmp_path / "shadow"
    path.write_text(f"{SECRET}\ndaemon:*:19000:0:99999:7:::\n")
    path.chmod(0o600)
    return path


def special_files(where: Path, secret: Path) -> dict[str, str]:
    """Files in `where` that are no manifest at all, and the problem each must give."""
    where.mkdir(exist_ok=True)
    os.mkfifo(where / "fifo.yaml")
    (where / "dir.yaml").mkdir()
    (where / "shadow.yaml").symlink_to(secret)
    (where / "dangling.yaml").symlink_to(where / "nowhere")
    (where / "loop.yaml").symlink_to(where / "loop.yaml")
    (where / "huge.yaml").write_text("# padding\n" * 30_000)
    (where / "binary.yaml").write_bytes(bytes(range(256)) * 8)
    return {
        "binary.yaml": "2:118: not UTF-8: byte 0x80 (invalid start byte)",
        "dangling.yaml": "1:1: no such file or directory",
        "dir.yaml": "1:1: a directory, not a regular file",
        "fifo.yaml": "1:1: a FIFO, not a regular file",
        "huge.yaml": "1:1: larger than 256 KiB",
        "loop.yaml": "1:1: cannot read: Too many levels of symbolic links",
        "shadow.yaml": "1:1: a link to a file not everyone may read (mode 0600)",
    }


def test_special_files_through_the_cli(tmp_path: Path, secret: Path) -> None:
    expected = special_files(tmp_path / "manifests", secret)
    result = podbot("manifests", "validate", str(tmp_path / "manifests"))
    assert result.returncode == 1, result.stderr
    found = first_problems(result.stdout)
    assert set(found) == set(expected)
    for name, start in expected.items():
        assert found[name].startswith(start), (name, found[name])
    assert "SECRET" not in result.stdout


def catalog_for(tmp_path: Path) -> Catalog:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "hello.yaml").write_text(GOOD)
    path = tmp_path / "podbot.yaml"
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"), "manifest_dirs": [str(manifests)]}))
    return Catalog(config.load(str(path), environ={}))


def in_thread(step) -> list:
    """Run `step` in a thread; fail (rather than hang) if it never returns."""
    out: list = []
    thread = threading.Thread(target=lambda: out.append(step()), daemon=True)
    thread.start()
    thread.join(GUARD)
    assert not thread.is_alive(), "it hangs"
    return out


def test_hot_reload_answers_special_files_and_keeps_the_last_good_set(tmp_path: Path, secret: Path) -> None:
    catalog = catalog_for(tmp_path)
    expected = special_files(tmp_path / "manifests", secret)
    in_thread(catalog.reload_if_changed)  # the watcher loop's step
    assert set(catalog.skills) == {"hello"}
    [problems] = in_thread(catalog.reload)  # what /reload runs
    assert {Path(p.file).name for p in problems} == set(expected)
    for problem in problems:
        assert str(problem).startswith(f"{problem.file}:{expected[Path(problem.file).name]}")
    assert not any("SECRET" in str(p) for p in problems)
    assert set(catalog.skills) == {"hello"}


def test_reload_in_chat_does_not_show_a_root_only_file(running, tmp_path: Path, secret: Path) -> None:
    bot, _ = running
    link = tmp_path / "extra-manifests" / "zz.yaml"
    link.symlink_to(secret)
    [reply] = say(bot, "ada", "/reload")
    assert reply.code == f"{link}:1:1: a link to a file not everyone may read (mode 0600); its lines would be shown"
    assert "SECRET" not in reply.text + reply.code


def test_a_private_manifest_loads_and_so_does_a_link_to_a_readable_one(tmp_path: Path) -> None:
    (tmp_path / "own.yaml").write_text(GOOD)
    (tmp_path / "own.yaml").chmod(0o600)  # umask 077: the operator's own file
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "hi.yaml").write_text(GOOD.replace("name: hello", "name: hi"))
    (tmp_path / "hi.yaml").symlink_to(tmp_path / "elsewhere" / "hi.yaml")
    skills, problems = load_all([tmp_path])
    assert problems == [] and set(skills) == {"hello", "hi"}


def test_a_world_readable_file_is_quoted_only_in_short_cuts(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(f"{SECRET}\n{'x' * 500}: 1\ndescription: {'y' * 500}\n")
    _, problems = load_all([tmp_path / "m.yaml"])
    assert problems
    for problem in problems:
        assert not re.search(r"[xy]{41}", problem.message) and "SECRETHASHSECRETHASH" not in problem.message


def test_a_config_file_that_is_no_regular_file_is_one_problem(tmp_path: Path) -> None:
    (tmp_path / "podbot.yaml").mkdir()
    with pytest.raises(Problems) as exc:
        config.load(str(tmp_path / "podbot.yaml"), environ={})
    assert str(exc.value) == f"{tmp_path}/podbot.yaml:1:1: a directory, not a regular file"


# --- timeouts


def manifest(tmp_path: Path, extra: str, command: str = '["printf", "--", "%s\\\\n", "hello {who}"]') -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(GOOD.replace('["printf", "--", "%s\\\\n", "hello {who}"]', command) + textwrap.dedent(extra))
    return path


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("cache: 0s\n", "11:1: cache: '0s' is no time; give more than 0, or leave it out for the default"),
        ("retries: 1\nretry_delay: 0ms\n", "12:1: retry_delay: '0ms' is no time"),
        ("cache: 99999999999m\n", "11:1: cache: '99999999999m' is longer than limits.max_timeout (3600s)"),
        ("retries: 1\nretry_delay: 61m\n", "12:1: retry_delay: '61m' is longer than limits.max_timeout (3600s)"),
    ],
)
def test_durations_must_be_above_zero_and_within_the_maximum(tmp_path: Path, extra: str, expected: str) -> None:
    path = manifest(tmp_path, extra)
    _, problems = load_all([path])
    assert str(problems[0]).startswith(f"{path}:{expected}")


def test_an_hour_is_the_default_maximum_and_config_can_raise_it(tmp_path: Path) -> None:
    path = manifest(tmp_path, "cache: 1h\n")
    assert load_all([path])[1] == []
    path = manifest(tmp_path, "cache: 2h\n")
    assert load_all([path])[1] != []
    assert load_all([path], max_timeout=7200)[0]["hello"].cache == 7200
    assert config.load(environ={"PODBOT_LIMITS__MAX_TIMEOUT": "2h"}).limits.max_timeout == 7200
    assert config.load(environ={}).limits.max_timeout == 3600
    assert podbot("manifests", "validate", str(path)).returncode == 1
    assert podbot("manifests", "validate", str(path), env={"PODBOT_LIMITS__MAX_TIMEOUT": "2h"}).returncode == 0


def test_config_max_timeout_is_a_duration_above_zero() -> None:
    with pytest.raises(Problems) as exc:
        config.load(environ={"PODBOT_LIMITS__MAX_TIMEOUT": "0s"})
    assert str(exc.value).startswith("PODBOT_* environment:1:1: limits.max_timeout: '0s' does not match")


# --- patterns run on RE2

PATHOLOGICAL = """\
name: slow
description: A pattern that backtracks for ever in Python's re.
patterns: ["^(?P<p>(a+)+)$"]
parameters:
  type: object
  properties:
    p: {type: string, pattern: "^(a+)+$"}
run: {image: localhost/podbot-base:latest, command: ["printf", "--", "%s\\\\n", "{p}"]}
roles: [user]
"""


def test_a_pathological_pattern_returns_on_a_long_message(tmp_path: Path) -> None:
    (tmp_path / "slow.yaml").write_text(PATHOLOGICAL)
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from bot.chat.routing import route
        from bot.errors import ArgumentError
        from bot.skill import complete, load_all
        skills, problems = load_all([Path({str(tmp_path / "slow.yaml")!r})])
        assert problems == [], problems
        text = "a" * 5000 + "b"
        print(route(text, skills))
        print(route("a" * 5000, skills).args["p"] == "a" * 5000)
        try:
            complete(skills["slow"], {{"p": text}})
        except ArgumentError as exc:
            print(str(exc)[:40])
        """
    )
    result = bounded(["-c", script])
    assert result.stdout.splitlines() == ["None", "True", "argument 'p' of slow is not valid: 'aaaa"], result.stderr


@pytest.mark.parametrize(
    ("pattern", "where"),
    [
        ('patterns: ["^hi (?P<who>[a-z]+)(?!x)$"]', "3:12"),
        ('patterns: ["^(?P<who>[a-z])\\\\1$"]', "3:12"),
        ('patterns: ["^(?>a+)(?P<who>b)$"]', "3:12"),
    ],
)
def test_patterns_re2_cannot_run_are_refused_with_why(tmp_path: Path, pattern: str, where: str) -> None:
    path = manifest(tmp_path, "")
    path.write_text(path.read_text().replace("description: Say hello.\n", f"description: Say hello.\n{pattern}\n"))
    [problem] = load_all([path])[1]
    assert str(problem).startswith(f"{path}:{where}: regular expression RE2 cannot run (")
    assert problem.message.endswith(
        "patterns must match in linear time, so backreferences, lookarounds and atomic groups are not supported"
    )


# --- values that a program would read as options


def test_the_validator_warns_where_a_value_could_be_an_option(tmp_path: Path) -> None:
    free = GOOD.replace('{type: string, pattern: "^[a-z]+$", default: world}', "{type: string, default: world}")
    cases = {
        "bare.yaml": free.replace('"hello {who}"', '"{who}"').replace('"--", ', ""),  # the one to warn about
        "after_dashes.yaml": free.replace('"hello {who}"', '"{who}"'),
        "inside.yaml": free.replace('["printf", "--", ', '["printf", '),
        "pattern.yaml": GOOD.replace('"hello {who}"', '"{who}"').replace('"--", ', ""),
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text.replace("name: hello", f"name: {name.split('.')[0]}"))
    result = podbot("manifests", "validate", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr.strip() == "4 skills valid, 0 errors, 1 warnings"
    assert result.stdout.splitlines() == [
        f"{tmp_path}/bare.yaml:9:32: warning: a value of 'who' such as '-n' or '--help' would begin this argument and read as "
        "an option: put \"--\" before it, or give 'who' a pattern that refuses a leading '-'"
    ]


def test_the_shipped_manifests_have_no_warnings() -> None:
    skills, problems = load_all([REPO / "manifests"], mount_names={"logs", "host_root"})
    assert problems == [] and [w for s in skills.values() for w in s.warnings] == []
