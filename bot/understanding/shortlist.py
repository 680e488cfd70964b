"""Shortlist: rank skills by how close a message is to their description and examples.

Two signals, added up per text:
- the cosine of sentence embeddings (meaning, for the languages the encoder knows);
- `LEXICAL_WEIGHT` × the TF-IDF cosine of character n-grams (bot.understanding.lexical):
  wording, in any language, so an example in Chinese or German is enough for
  requests phrased like it although the bundled encoder is English.
A skill's score is its best text: one example phrased like the message is the
strongest evidence there is. Quoted text is payload, not intent ("repeat 'the
build is green'"), so it is replaced by a neutral word on both sides. What follows
a short lead-in and a colon ("repeat after me: good morning team") is payload too,
for the comparison with background chatter (`lead_in`).

Four things keep "none" honest as the catalogue grows (stages.py decides with them):
- `not_examples`: a skill is left out when the message is nearer one of its
  not_examples than to any of its examples, by `NOT_MARGIN` at least;
- background phrases (chatter in five languages): what counts is how far the
  best skill *leads* the closest of them, not its raw score, since the English
  encoder finds any two Chinese sentences alike, chatter included;
- `gap`, calibrated on the catalogue when the index is built: the more skills,
  the more texts a stray message can brush against, so the gap is the lead that
  all but `1 - CALIBRATION` of the background phrases stay under against these
  skills (stages.py never goes below the configured `lead_below`);
- the closest skill of all when the sender may not run it (`Ranking.withheld`):
  a request for a skill someone lacks is not handed to the nearest skill they
  have, which in a large catalogue is often one that shares a word with it.

Costs: one encoder pass per message, a matrix-vector product over the texts,
and postings of the message's n-grams; per-skill maxima are vectorized, so a
message costs a few milliseconds with 1,000 skills.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass

import numpy as np

from bot.skill import Skill
from bot.understanding.lexical import LexicalIndex

Encode = Callable[[list[str]], np.ndarray]  # texts -> unit vectors, one row each

LEXICAL_WEIGHT = 0.5
# A not_example leaves its skill out only when clearly nearer than every example: "when did the server last
# reboot?" is about as near uptime's "reboot the server" (not) as its "when was the host rebooted?" (yes).
NOT_MARGIN = 0.1
CALIBRATION = 0.85  # share of background phrases whose lead stays under the calibrated gap

# Quotes that open and close at word boundaries, so the apostrophes in "what's" and "it's" are not quotes.
_QUOTED = re.compile(r"(?<!\w)(?:'[^']+'|\"[^\"]+\"|“[^”]+”|‘[^’]+’|「[^」]+」)(?!\w)")


# "lead-in: payload" ("repeat after me: good morning", "sag an: das Backup ist fertig", "跟我说：午饭好了"):
# a short lead-in, a colon (with a space after it, or a full-width one), then the words to pass on. The
# payload is what the skill is asked to say or send, not what is asked; chatter there ("good morning team")
# must not make the request look like chatter. URLs and times ("https://", "10:30") have no space after the colon.
_PAYLOAD = re.compile(r"^(?P<lead>[^:：\n]{1,60}?)\s*(?::\s|：\s*)(?P<payload>\S.*)$", re.DOTALL)


def intent(text: str) -> str:
    return _QUOTED.sub("something", text)


def lead_in(text: str) -> str | None:
    """`text` with the payload after a short lead-in and a colon made neutral, or None when it has none."""
    found = _PAYLOAD.match(text)
    if found and len(found["lead"].split()) <= 8:
        return f"{found['lead']}: something"
    return None


# Chatter, and requests no ops bot serves, in the languages teams write in. Not the eval sets' texts.
BACKGROUND = (
    "hi",
    "hello there",
    "thanks a lot",
    "how is it going?",
    "see you later",
    "who are you?",
    "tell me something funny",
    "what's new today?",
    "I'm bored",
    "nice weather",
    "ok cool",
    "what do you think about movies?",
    "can you help me with my homework?",
    "good morning everyone",
    "what time is it in Tokyo?",
    "recommend a good book",
    "where should we go for lunch?",
    "translate this sentence into English",
    "what is the capital of Australia?",
    "how do I bake bread?",
    "sing me a song",
    "are you a robot?",
    "happy birthday!",
    "order a taxi to the airport",
    "remind me to call mom",
    "hallo zusammen",
    "danke schön",
    "wie geht es dir?",
    "was machst du heute abend?",
    "schönes Wochenende!",
    "wo gehen wir mittagessen?",
    "erzähl mir einen Witz",
    "wie wird das Wetter am Wochenende?",
    "你好",
    "谢谢你",
    "你是谁？",
    "今天晚上吃什么",
    "周末愉快",
    "讲个笑话吧",
    "明天会下雨吗",
    "你喜欢看电影吗",
    "hola a todos",
    "muchas gracias",
    "¿cómo estás?",
    "¿qué hacemos este fin de semana?",
    "cuéntame un chiste",
    "¿dónde comemos hoy?",
    "buenos días a todos",
    "¿quién eres?",
    "¿qué hora es en Tokio?",
    "¿cuál es la capital de Australia?",
    "recomiéndame un buen libro",
    "¿cómo se hace el pan?",
    "me aburro",
    "¿cuánto cuesta un billete a Madrid?",
    "¿qué tiempo hará mañana?",
    "bonjour tout le monde",
    "ça va ?",
    "bon appétit",
    "raconte-moi une blague",
)


@dataclass(frozen=True)
class Candidate:
    skill: Skill
    score: float  # closest text: embedding cosine + LEXICAL_WEIGHT × n-gram cosine


@dataclass(frozen=True)
class Ranking:
    candidates: list[Candidate]  # best first
    background: float  # score of the closest background phrase
    # The closest skill of all, when the sender may not run it: what the message most likely asks for, which
    # no skill of theirs should stand in for (stages.py). Only its score is used; it is never a candidate.
    withheld: Candidate | None = None


class Index:
    """The catalogue's texts, embedded (through `encode_catalogue`, which may cache) and n-grammed."""

    def __init__(self, skills: Collection[Skill], encode_message: Encode, encode_catalogue: Encode):
        self.encode = encode_message
        self.skills = list(skills)
        self.position = {s.name: i for i, s in enumerate(self.skills)}
        texts: list[str] = []
        starts: list[int] = []
        for skill in self.skills:
            starts.append(len(texts))
            texts.extend(intent(t) for t in (skill.description, *skill.examples))
        negatives = [(i, intent(t)) for i, s in enumerate(self.skills) for t in s.not_examples]
        self.starts = np.array(starts, dtype=np.int64)
        self.positives = len(texts)
        self.negative_owner = np.array([i for i, _ in negatives], dtype=np.int64)
        self.negatives = len(negatives)
        every = texts + [t for _, t in negatives] + list(BACKGROUND)
        self.vectors = encode_catalogue(every)
        # Document frequency by skill: one skill's examples count once, each not_examples list and background phrase on its own.
        groups = [i for i, start in enumerate(starts) for _ in range(start, starts[i + 1] if i + 1 < len(starts) else len(texts))]
        count = len(self.skills)
        groups += [count + i for i, _ in negatives] + [2 * count + k for k in range(len(BACKGROUND))]
        self.lexical = LexicalIndex(every, groups)
        self.gap = float(np.quantile(np.array(self._calibrate()), CALIBRATION))

    def _fused(self, vector: np.ndarray, text: str) -> np.ndarray:
        return self.vectors @ vector + np.float32(LEXICAL_WEIGHT) * self.lexical.scores(text)

    def _skill_scores(self, fused: np.ndarray) -> np.ndarray:
        """Each skill's best text; -inf where the message is clearly nearer one of its not_examples."""
        if not self.skills:
            return np.zeros(0, dtype=np.float32)
        best = np.maximum.reduceat(fused[: self.positives], self.starts)
        if self.negatives:
            worst = np.full(len(self.skills), -np.inf, dtype=np.float32)
            np.maximum.at(worst, self.negative_owner, fused[self.positives : self.positives + self.negatives])
            best = np.where(worst >= best + np.float32(NOT_MARGIN), -np.inf, best)
        return best

    def _calibrate(self) -> list[float]:
        """How far each background phrase's best skill leads the other background phrases: chatter's reach into this catalogue."""
        if not self.skills:
            return [0.0]
        offset = self.positives + self.negatives
        leads = []
        for row, phrase in enumerate(BACKGROUND):
            fused = self._fused(self.vectors[offset + row], intent(phrase))
            others = np.delete(fused[offset:], row)
            leads.append(float(self._skill_scores(fused).max() - others.max()))
        return leads

    def rank(self, text: str, allowed: Collection[str], limit: int) -> Ranking:
        """The best `limit` skills among `allowed` (names), and how close the text is to background chatter."""
        said = intent(text)
        fused = self._fused(self.encode([said])[0], said)
        scores = self._skill_scores(fused)
        background = float(fused[self.positives + self.negatives :].max())
        lead = lead_in(said)
        if lead is not None:
            # The payload is the words to pass on: chatter there ("repeat after me: good morning team")
            # does not make the request chatter. The skills are still scored on the whole message.
            background = min(background, float(self._fused(self.encode([lead])[0], lead)[self.positives + self.negatives :].max()))
        mask = np.zeros(len(self.skills), dtype=bool)
        mask[[self.position[n] for n in allowed if n in self.position]] = True
        withheld = None
        if len(scores) and not mask[best := int(np.argmax(scores))] and np.isfinite(scores[best]):
            withheld = Candidate(self.skills[best], float(scores[best]))
        scores = np.where(mask, scores, -np.inf)
        order = np.argsort(-scores)[:limit]
        candidates = [Candidate(self.skills[i], float(scores[i])) for i in order if np.isfinite(scores[i])]
        return Ranking(candidates, background, withheld)
