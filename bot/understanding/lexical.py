"""Lexical similarity over character n-grams (TF-IDF), in any language.

The sentence encoder is an English model; a manifest example in German or
Chinese means little to it. Character n-grams need no language model: a
message phrased like an example shares many of its n-grams whatever the script
("Speicherplatz" with "Speicher", "磁盘空间" with "磁盘"). Words of alphabetic
scripts give their 3- to 5-character pieces (with the word's edges, so "df"
still counts); scripts written without spaces (Chinese, Japanese) give single
characters and pairs.

Vectors are TF-IDF (sublinear counts, smoothed IDF over the indexed texts,
or over groups of them: a word every example of one skill has is still that
skill's, while a word several skills' examples share, such as Spanish
"¿cuánto" or "servidor", tells them apart no better than "the" does),
L2-normalized, so a score is a cosine in 0..1. Scoring walks an inverted index:
the cost is the postings of the message's n-grams, not the number of texts.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Han, kana and hangul: scripts whose words are not separated by spaces (or are single syllables).
_DENSE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+")
_WORD = re.compile(r"\w+")


def features(text: str) -> Counter[str]:
    """The n-grams of `text`, counted."""
    text = unicodedata.normalize("NFKC", text).casefold()
    grams: Counter[str] = Counter()
    for run in _DENSE.findall(text):
        grams.update(run)
        grams.update(run[i : i + 2] for i in range(len(run) - 1))
    for word in _WORD.findall(_DENSE.sub(" ", text)):
        padded = f" {word} "
        for n in (3, 4, 5):
            grams.update(padded[i : i + n] for i in range(max(1, len(padded) - n + 1)))
    return grams


@dataclass(frozen=True)
class _Postings:
    rows: np.ndarray  # the texts holding the n-gram
    weights: np.ndarray  # its normalized TF-IDF weight in each


class LexicalIndex:
    """TF-IDF cosine of a message against every indexed text."""

    def __init__(self, texts: Sequence[str], groups: Sequence[int] | None = None):
        """`groups`: who each text belongs to (a skill's examples share one); document frequency counts groups."""
        counted = [features(t) for t in texts]
        owners = list(range(len(texts))) if groups is None else list(groups)
        seen: dict[str, set[int]] = {}
        for owner, grams in zip(owners, counted, strict=True):
            for gram in grams:
                seen.setdefault(gram, set()).add(owner)
        self.size = len(texts)
        documents = len(set(owners))
        self.idf = {g: math.log((1 + documents) / (1 + len(o))) + 1 for g, o in seen.items()}
        # An n-gram no indexed text has weighs as the rarest there is: it counts against the match.
        self.unseen = math.log(1 + documents) + 1
        rows: dict[str, list[int]] = {}
        weights: dict[str, list[float]] = {}
        for row, grams in enumerate(counted):
            vector = self._weigh(grams)
            for gram, weight in vector.items():
                rows.setdefault(gram, []).append(row)
                weights.setdefault(gram, []).append(weight)
        self.postings = {g: _Postings(np.array(rows[g], dtype=np.int32), np.array(weights[g], dtype=np.float32)) for g in rows}

    def _weigh(self, grams: Counter[str]) -> dict[str, float]:
        raw = {g: (1 + math.log(n)) * self.idf.get(g, self.unseen) for g, n in grams.items()}
        norm = math.sqrt(sum(w * w for w in raw.values())) or 1.0
        return {g: w / norm for g, w in raw.items()}

    def scores(self, text: str) -> np.ndarray:
        """Cosine similarity of `text` with each indexed text, in index order."""
        out = np.zeros(self.size, dtype=np.float32)
        for gram, weight in self._weigh(features(text)).items():
            found = self.postings.get(gram)
            if found is not None:
                out[found.rows] += weight * found.weights
        return out
