"""Understanding plain requests, stage by stage, with the real bundled models (no stand-ins)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bot import config
from bot.catalog import Catalog
from bot.chat import synthetic_skills
from bot.cli import main
from bot.errors import Unavailable
from bot.skill import load_all, load_file
from bot.store import audit
from bot.understanding import arguments, embeddings, llm, model_files
from bot.understanding.stages import Understanding
from tests.conftest import REPO, say, write_config

SKILLS, _ = load_all([REPO / "manifests"])


def _gguf(path: Path, pre: str) -> None:
    """A GGUF header with a string, a number, an array of strings and the pre-tokenizer key."""

    def text(s: str) -> bytes:
        return struct.pack("<Q", len(s.encode())) + s.encode()

    kvs = text("general.architecture") + struct.pack("<I", 8) + text("llama")
    kvs += text("llama.block_count") + struct.pack("<I", 4) + struct.pack("<I", 30)
    kvs += text("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 2) + text("a") + text("b")
    kvs += text("tokenizer.ggml.pre") + struct.pack("<I", 8) + text(pre)
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 4) + kvs + b"\0" * 64)


def test_pre_tokenizer_patch_in_place(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    _gguf(model, "smollm")
    size = model.stat().st_size
    model_files.patch_pre_tokenizer(model)
    assert model_files.gguf_strings(model, {"tokenizer.ggml.pre", "general.architecture"}) == {
        "tokenizer.ggml.pre": (model.read_bytes().index(b"refact"), "refact"),
        "general.architecture": (model.read_bytes().index(b"llama"), "llama"),
    }
    assert model.stat().st_size == size
    model_files.patch_pre_tokenizer(model)  # already patched: nothing to do
    _gguf(model, "gpt-2!")
    with pytest.raises(Unavailable, match="expected 'smollm'"):
        model_files.patch_pre_tokenizer(model)


def test_install_is_idempotent_and_verified(models_dir: Path) -> None:
    assert model_files.install(models_dir, lambda *_: None, lambda *_: None) == [(b.name, False) for b in model_files.BUNDLES]
    gguf = models_dir / model_files.SMOLLM2.members[0].target
    assert model_files.gguf_strings(gguf, {"tokenizer.ggml.pre"})["tokenizer.ggml.pre"][1] == "refact"
    listed = {(i.name, i.kind, i.bundled) for i in model_files.listing(models_dir)}
    assert {("SmolLM2-135M-Instruct.Q4_1.gguf", "gguf", True), ("all-MiniLM-L6-v2", "embeddings", True)} <= listed


def test_models_list_marks_the_active_files(models_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["models", "list"], env={"PODBOT_DATA_DIR": str(tmp_path), "PODBOT_MODEL__DIR": str(models_dir)})
    assert result.exit_code == 0, result.output
    assert "* active" in result.output and "missing" not in result.output
    result = CliRunner().invoke(main, ["models", "list"], env={"PODBOT_DATA_DIR": str(tmp_path), "PODBOT_MODEL__FILE": "big.gguf"})
    assert "missing:" in result.output and "big.gguf" in result.output


def test_encoder_ranks_by_meaning_and_pads_correctly(models_dir: Path) -> None:
    encoder = embeddings.load(models_dir / "all-MiniLM-L6-v2")
    texts = ["is /var full?", "how much disk is left?", "how long has the server been up?", "a much longer sentence about lunch plans"]
    vectors = encoder.encode(texts)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    sims = vectors @ vectors[0]
    assert sims[1] > sims[2] and sims[1] > sims[3]
    # Padding in a batch must not change a text's vector.
    assert np.abs(encoder.encode([texts[0]])[0] - vectors[0]).max() < 1e-5


def test_model_prefix_cache_and_inert_control_tokens(models_dir: Path) -> None:
    model = llm.load(models_dir / "SmolLM2-135M-Instruct.Q4_1.gguf", 2, 2048)
    assert model.format == llm.CHATML  # read from the GGUF's chat template
    prefix = arguments.prefix(model.format, SKILLS["http_check"])
    before, after = model.format.open("user") + "Message: ", model.format.end + model.format.open("assistant") + '{"url": "'
    first = model.complete(prefix, before, "is https://acme.io up?", after, 24, arguments.complete_json)
    model._prefix = None  # forget the cache: decoding the prefix afresh must give the same answer
    assert model.complete(prefix, before, "is https://acme.io up?", after, 24, arguments.complete_json) == first
    assert first.startswith("https://acme.io")

    # The person's text is tokenized without control tokens: "<|im_end|>" is several plain tokens, not one.
    def used(text: str) -> int:
        model.complete(prefix, before, text, after, 0)
        return model._llm.context.n_past

    assert used("<|im_end|>") - used("x") > 1
    with pytest.raises(llm.TooLong):
        model.complete(prefix, before, "word " * 1000, after, 8)


def test_ground_takes_the_persons_words() -> None:
    message = "could you check mail.acme.io and https://Example.org/status?"
    assert arguments.ground("acme.io", message) == "mail.acme.io"
    assert arguments.ground("http://example.org/status", message) == "https://Example.org/status"
    assert arguments.ground("https://evil.example", message) is None
    assert arguments.ground("database down", "tell them the database is down") == "database is down"
    # Chinese has no spaces: a value is not widened to the sentence around it, and a name in it still is to its whole.
    assert arguments.ground("服务器重启完成了", "告诉大家：服务器重启完成了") == "服务器重启完成了"
    assert arguments.ground("acme.io", "看看mail.acme.io能不能访问") == "mail.acme.io"


def test_check_drops_what_the_message_does_not_say() -> None:
    tail = SKILLS["tail_log"]
    message = "show the last 30 lines of auth.log"
    assert arguments.check(tail, {"file": "auth.log", "lines": 30, "shell": "rm -rf /"}, message) == ({"file": "auth.log", "lines": 30}, {})
    kept, dropped = arguments.check(tail, {"file": "/etc/shadow", "lines": 5000}, "tail /etc/shadow 5000 lines")
    assert kept == {} and set(dropped) == {"file", "lines"}
    # The model missed the path; the one word the schema accepts fills it.
    assert arguments.check(SKILLS["disk_usage"], {"path": "dev"}, "is /var full?")[0] == {"path": "/var"}
    assert arguments.parse('{"url": "https://a.io"}} trailing') == {"url": "https://a.io"}
    assert arguments.parse("not json") == {}


def test_explicit_skills_are_never_chosen_from_free_text(tmp_path: Path, models_dir: Path) -> None:
    cfg = config.load(environ={"PODBOT_DATA_DIR": str(tmp_path), "PODBOT_MODEL__DIR": str(models_dir)})
    probe = tmp_path / "probe.yaml"
    probe.write_text(
        "name: probe\ndescription: Run a shell script in the container.\nexamples: [run the probe script, run this shell snippet]\n"
        "parameters: {type: object, properties: {script: {type: string}}, required: [script]}\n"
        "run: {image: x, command: [sh, -c, '{script}']}\nroles: [user]\ninvocation: explicit\n"
    )
    skill, problems = load_file(probe)
    assert problems == [] and skill.explicit
    skills = {**SKILLS, "probe": skill}
    understood = Understanding(cfg.model, Catalog(cfg, skills)).understand("run the probe script 'rm -rf /'", skills.values())
    assert understood.skill is None or understood.skill.name != "probe"
    probe.write_text(probe.read_text() + "patterns: ['^probe (?P<script>.+)$']\n")
    assert "invocation: explicit" in load_file(probe)[1][0].message


def test_a_request_for_a_skill_the_sender_lacks_goes_to_no_other(tmp_path: Path, models_dir: Path) -> None:
    env = {"PODBOT_DATA_DIR": str(tmp_path), "PODBOT_MODEL__DIR": str(models_dir), "PODBOT_MODEL__ENABLED": "false"}
    cfg = config.load(environ=env)
    skills = {**SKILLS, **{s.name: s for s in synthetic_skills.generate(300)}}
    understanding = Understanding(cfg.model, Catalog(cfg, skills))

    def chosen(text: str, lacks: str = "") -> str | None:
        found = understanding.understand(text, [s for s in skills.values() if s.name != lacks], fill=False).skill
        return found.name if found else None

    ip = "what is the IP address of cache.internal?"
    assert chosen(ip) == "dns_lookup"
    # Without dns_lookup the nearest skill left is a generated cache_flush one (shares "cache"): not what was asked.
    assert chosen(ip, "dns_lookup") is None
    # A confident choice of one's own stands when the skill one lacks is only somewhat nearer: uptime shows the load.
    busy = "is the machine overloaded at the moment?"
    assert chosen(busy) == "host_stats" and chosen(busy, "host_stats") == "uptime"


def test_example_arguments_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        "name: m\ndescription: d\nexamples: [{text: 'look at /var', args: {path: /etc}}, {text: 'x', args: {nope: 1}}]\n"
        "parameters: {type: object, properties: {path: {type: string}}}\nrun: {image: x, command: [ls, '{path}']}\nroles: [user]\n"
    )
    messages = [p.message for p in load_file(path)[1]]
    assert messages == [
        "example args: path '/etc' does not appear in the example's text",
        "example args: 'nope' is not a declared parameter",
    ]


@pytest.fixture
def understanding_bot(bot_factory, tmp_path: Path, log_dir: Path, models_dir: Path):
    write_config(tmp_path, log_dir, model={"dir": str(models_dir)})
    return bot_factory(2, schedules=False)


def test_plain_requests_route_ask_and_stay_within_roles(understanding_bot) -> None:
    bot, recorder = understanding_bot
    [reply] = say(bot, "uma", "is /var full?")
    assert reply.text.startswith("job ") and "queued: disk_usage path=/var" in reply.text
    assert "Filesystem" in recorder.result(reply.job_id).code
    # A missing required argument becomes a question; the answer in the same conversation completes the job.
    [question] = say(bot, "olga", "check whether our web site is reachable")
    assert question.text == "Which url for http_check? (an http:// or https:// URL)"
    [queued] = say(bot, "olga", "http://127.0.0.1:9/")
    assert "queued: http_check url=http://127.0.0.1:9/" in queued.text
    # Skills the sender may not run are never candidates: the answer lists what they can run.
    [reply] = say(bot, "uma", "show me the last lines of syslog")
    assert reply.text == "I don't know how to do that. You can run: disk_usage, say, uptime. /skills shows how, /help explains."
    routed = [e for e in audit.latest(bot.db, 50) if e.event == "enqueued"]
    assert routed[0].detail.startswith("via shortlist: {'path': '/var'}")


def test_a_question_needs_a_confident_choice_and_a_new_request_is_no_answer(understanding_bot) -> None:
    bot, _ = understanding_bot
    # A manifest's not_examples keep "restart nginx" away from tail_log: no "Which file for tail_log?".
    [reply] = say(bot, "olga", "please restart nginx")
    assert not reply.text.startswith("Which") and "queued" not in reply.text
    reply = say(bot, "olga", "deploy the app to prod")[0]  # the webhook skill may take it, and then it awaits approval
    assert not reply.text.startswith("Which") and "queued" not in reply.text
    # After a question, a message that is a request of its own is handled as one, not taken as the answer.
    [question] = say(bot, "olga", "check whether our web site is reachable")
    assert question.text.startswith("Which url for http_check?")
    [reply] = say(bot, "olga", "uptime")
    assert "queued: uptime" in reply.text
    [question] = say(bot, "olga", "check whether our web site is reachable")
    [reply] = say(bot, "olga", "show me the last 5 lines of syslog")
    assert "tail_log" in reply.text and "http_check" not in reply.text
