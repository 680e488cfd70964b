"""Shortlist: rank skills by how close a message is to their description and examples.

Every skill's texts are embedded once; a message costs one encoder pass
(a few milliseconds) and a matrix-vector product. A skill's score is its best
match among its texts: one example phrased like the message is the strongest
evidence there is. Quoted text is payload, not intent ("repeat 'the build is
green'"), so it is replaced by a neutral word on both sides before embedding.

Greetings and chatter sit close to short skill examples ("say hello"), so a few
small-talk phrases are embedded too: a message closer to one of them than to
every skill is not a request.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from bot.skill import Skill
from bot.understanding.embeddings import Encoder

# Quotes that open and close at word boundaries, so the apostrophes in "what's" and "it's" are not quotes.
_QUOTED = re.compile(r"(?<!\w)(?:'[^']+'|\"[^\"]+\"|“[^”]+”|‘[^’]+’)(?!\w)")


def intent(text: str) -> str:
    return _QUOTED.sub("something", text)


SMALL_TALK = (
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
)


@dataclass(frozen=True)
class Candidate:
    skill: Skill
    score: float  # cosine similarity of the closest text, -1..1


@dataclass(frozen=True)
class Ranking:
    candidates: list[Candidate]  # best first
    small_talk: float  # similarity of the closest small-talk phrase


class Index:
    def __init__(self, encoder: Encoder, skills: Collection[Skill]):
        self.encoder = encoder
        owners: list[Skill] = []
        texts: list[str] = []
        for skill in skills:
            for text in (skill.description, *skill.examples):
                owners.append(skill)
                texts.append(intent(text))
        self.owners = owners
        self.vectors = encoder.encode(texts + list(SMALL_TALK))

    def rank(self, text: str, allowed: Collection[str], limit: int) -> Ranking:
        """The best `limit` skills among `allowed` (names), and how close the text is to small talk."""
        scores = (self.vectors @ self.encoder.encode([intent(text)])[0]).tolist()
        best: dict[str, Candidate] = {}
        for owner, score in zip(self.owners, scores, strict=False):
            if owner.name in allowed and (owner.name not in best or score > best[owner.name].score):
                best[owner.name] = Candidate(owner, score)
        return Ranking(sorted(best.values(), key=lambda c: -c.score)[:limit], max(scores[len(self.owners) :]))
