"""Shortlist: rank skills by how close a message is to their description and examples.

Every skill's texts are embedded once; a message costs one encoder pass
(a few milliseconds) and a matrix-vector product. A skill's score is its best
match among its texts: one example phrased like the message is the strongest
evidence there is. Quoted text is payload, not intent ("repeat 'the build is
green'"), so it is replaced by a neutral word on both sides before embedding.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from bot.embed import Encoder
from bot.manifest import Manifest


# Quotes that open and close at word boundaries, so the apostrophes in "what's" and "it's" are not quotes.
_QUOTED = re.compile(r"(?<!\w)(?:'[^']+'|\"[^\"]+\"|“[^”]+”|‘[^’]+’)(?!\w)")


def intent(text: str) -> str:
    return _QUOTED.sub("something", text)


@dataclass(frozen=True)
class Candidate:
    skill: Manifest
    score: float  # cosine similarity of the closest text, -1..1


class Index:
    def __init__(self, encoder: Encoder, skills: Collection[Manifest]):
        self.encoder = encoder
        owners: list[Manifest] = []
        texts: list[str] = []
        for skill in skills:
            for text in (skill.description, *skill.examples):
                owners.append(skill)
                texts.append(intent(text))
        self.owners = owners
        self.vectors = encoder.encode(texts)

    def rank(self, text: str, allowed: Collection[str], limit: int) -> list[Candidate]:
        """The best `limit` skills among `allowed` (names), best first."""
        scores = self.vectors @ self.encoder.encode([intent(text)])[0] if self.owners else np.zeros(0)
        best: dict[str, Candidate] = {}
        for owner, score in zip(self.owners, scores.tolist(), strict=True):
            if owner.name in allowed and (owner.name not in best or score > best[owner.name].score):
                best[owner.name] = Candidate(owner, score)
        return sorted(best.values(), key=lambda c: -c.score)[:limit]
