"""The language-independent parts of the shortlist: character n-grams, the vector cache, not_examples, generated skills."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot import config
from bot.catalog import Catalog
from bot.chat import synthetic_skills
from bot.errors import Unavailable
from bot.skill import Skill
from bot.understanding import embeddings, vector_cache
from bot.understanding.lexical import LexicalIndex, features
from bot.understanding.shortlist import BACKGROUND, Index, lead_in
from bot.understanding.stages import Understanding


def test_ngrams_of_spaced_and_unspaced_scripts() -> None:
    assert {" df ", "df "} <= set(features("DF"))  # short words count, edges included
    assert {"磁", "磁盘", "盘空"} <= set(features("磁盘空间"))


def test_lexical_scores_match_wording_in_any_language() -> None:
    texts = ["wie viel Platz ist noch auf der Festplatte?", "wie lange läuft der Server schon?", "磁盘空间还剩多少？", "服务器开机多久了？"]
    index = LexicalIndex(texts)
    assert int(np.argmax(index.scores("wie viel Speicherplatz ist auf / frei?"))) == 0
    assert int(np.argmax(index.scores("磁盘还剩多少空间"))) == 2
    assert int(np.argmax(index.scores("服务器运行多久了"))) == 3
    scores = index.scores("is /var full?")
    assert scores.max() < 0.2  # nothing in common
    assert np.allclose(index.scores(texts[1])[1], 1.0, atol=1e-5)


def _fake_encoder(calls: list[list[str]]):
    """Deterministic unit vectors from the text's hash; records what it was asked to encode."""

    def encode(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        rows = [np.random.default_rng(abs(hash(t)) % 2**32).standard_normal(8) for t in texts]
        out = np.array(rows, dtype=np.float32).reshape(len(texts), 8)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)

    return encode


def test_vector_cache_encodes_only_new_texts(tmp_path: Path) -> None:
    calls: list[list[str]] = []
    encode = _fake_encoder(calls)
    path = tmp_path / "vectors" / "enc.npz"
    first = vector_cache.encode(path, encode, ["a", "b", "a"])
    assert calls == [["a", "b"]] and first.shape == (3, 8) and np.array_equal(first[0], first[2])
    again = vector_cache.encode(path, encode, ["b", "a", "c"])
    assert calls[-1] == ["c"] and np.array_equal(again[1], first[0])
    vector_cache.encode(path, encode, ["c", "a"])
    assert len(calls) == 2  # nothing new: nothing encoded, nothing written
    path.write_bytes(b"not a zip")
    assert vector_cache.encode(path, encode, ["a"]).shape == (1, 8) and calls[-1] == ["a"]


def _skill(name: str, description: str, examples: tuple[str, ...], not_examples: tuple[str, ...] = ()) -> Skill:
    return Skill(name, description, "img", ("true",), frozenset({"user"}), "x.yaml", examples=examples, not_examples=not_examples)


def test_not_examples_take_a_skill_out() -> None:
    calls: list[list[str]] = []
    logs = _skill("tail_log", "Show the last lines of a log file.", ("last lines of nginx/error.log",), ("restart nginx",))
    index = Index([logs], _fake_encoder(calls), _fake_encoder(calls))
    assert index.rank("restart nginx", {"tail_log"}, 3).candidates == []
    assert [c.skill.name for c in index.rank("last lines of nginx/error.log", {"tail_log"}, 3).candidates] == ["tail_log"]
    assert index.rank("last lines of nginx/error.log", set(), 3).candidates == []  # only what the sender may run
    assert len(calls[0]) == 1 + 1 + 1 + len(BACKGROUND)  # description, example, not_example, background, in one pass


def test_generated_skills_are_plausible_distinct_and_stable() -> None:
    skills = synthetic_skills.generate(1000)
    assert len({s.name for s in skills}) == 1000 and len({s.description for s in skills}) == 1000
    assert {s.name for s in synthetic_skills.generate(300)} == {s.name for s in skills[:300]}
    kinds = {s.name.rsplit("_", 1)[0] for s in skills[:300]}
    assert len(kinds) >= 35  # spread over the kinds of task, not 300 variants of one
    assert all(len(s.examples) >= 2 and s.description.endswith(".") for s in skills)
    with pytest.raises(ValueError):
        synthetic_skills.generate(len(synthetic_skills.KINDS) * len(synthetic_skills.SERVICES) + 1)


def test_a_configured_embedding_model_must_be_complete(tmp_path: Path) -> None:
    (tmp_path / "multilingual").mkdir()
    (tmp_path / "multilingual" / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(Unavailable, match=r"missing tokenizer\.json, model\.safetensors.*BERT-shaped"):
        embeddings.load(tmp_path / "multilingual")
    cfg = config.load(environ={"PODBOT_DATA_DIR": str(tmp_path), "PODBOT_MODEL__EMBEDDINGS": str(tmp_path / "multilingual")})
    with pytest.raises(Unavailable, match="missing tokenizer.json"):  # at start, not at the first message
        Understanding(cfg.model, Catalog(cfg, {}))


def test_a_payload_after_a_colon_is_not_what_is_asked() -> None:
    assert lead_in("repeat after me: good morning team") == "repeat after me: something"
    assert lead_in("跟我说：午饭好了") == "跟我说: something"
    assert lead_in("répète : bonjour à tous") == "répète: something"
    for plain in ("is https://acme.io up?", "meeting at 10:30 ok?", "check http://10.0.0.5:8080/ now", "good morning"):
        assert lead_in(plain) is None, plain


def test_a_not_example_takes_a_skill_out_only_when_clearly_nearer() -> None:
    calls: list[list[str]] = []
    up = _skill("uptime", "How long the host has been up.", ("when was the host rebooted?",), ("reboot the host",))
    index = Index([up], _fake_encoder(calls), _fake_encoder(calls))
    assert [c.skill.name for c in index.rank("when was the host rebooted?", {"uptime"}, 3).candidates] == ["uptime"]
    assert index.rank("reboot the host", {"uptime"}, 3).candidates == []
    same = _skill("uptime", "How long the host has been up.", ("reboot the host",), ("reboot the host",))
    index = Index([same], _fake_encoder(calls), _fake_encoder(calls))  # as near the one as the other: the examples decide
    assert [c.skill.name for c in index.rank("reboot the host", {"uptime"}, 3).candidates] == ["uptime"]


def test_words_several_groups_share_weigh_less() -> None:
    texts = ["cuánto espacio queda", "cuánto tiempo lleva", "hola"]
    by_text = LexicalIndex(texts)
    by_group = LexicalIndex(texts, [0, 1, 2])
    assert by_group.idf == by_text.idf  # one text per group: the same
    grouped = LexicalIndex(texts, [0, 0, 1])  # both questions one skill's: "cuánto" is that skill's word
    assert grouped.idf[" cu"] > by_text.idf[" cu"]


def test_the_closest_skill_the_sender_may_not_run_is_reported_never_ranked() -> None:
    calls: list[list[str]] = []
    dns = _skill("dns_lookup", "Resolve a host name.", ("what is the IP address of cache.internal",))
    flush = _skill("cache_flush", "Flush the cache.", ("clear the cache",))
    index = Index([dns, flush], _fake_encoder(calls), _fake_encoder(calls))
    lacking = index.rank("what is the IP address of cache.internal", {"cache_flush"}, 3)
    assert [c.skill.name for c in lacking.candidates] == ["cache_flush"]
    assert lacking.withheld is not None and lacking.withheld.skill.name == "dns_lookup"
    assert lacking.withheld.score > lacking.candidates[0].score
    assert index.rank("what is the IP address of cache.internal", {"cache_flush", "dns_lookup"}, 3).withheld is None
    assert index.rank("clear the cache", {"cache_flush"}, 3).withheld is None  # the closest is theirs
