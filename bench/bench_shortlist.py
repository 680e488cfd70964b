"""Benchmark: the shortlist's cost as the catalogue grows (shipped skills + N generated ones).

For each N: the catalogue index built from the on-disk vector cache (as a
restart does; the first run for an N encodes and caches), the calibrated gap,
and one message's ranking, p50 / p95 over the eval texts, as wall time and as
this process's CPU time (which a busy machine disturbs less).

    .venv/bin/python bench/bench_shortlist.py --extra 0 300 1000
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from bot import config
from bot.catalog import Catalog
from bot.chat import evaluation, synthetic_skills
from bot.skill import load_all
from bot.understanding.stages import Understanding

REPO = Path(__file__).resolve().parent.parent


def p50_p95(values: list[float]) -> str:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return f"{cuts[49] * 1000:.1f} / {cuts[94] * 1000:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--extra", type=int, nargs="+", default=[0, 300, 1000], help="generated skills beside the shipped ones")
    parser.add_argument(
        "--cases", type=Path, nargs="+", default=[REPO / "tests" / "routing_eval.yaml", REPO / "tests" / "routing_eval_languages.yaml"]
    )
    args = parser.parse_args()
    cfg = config.load()
    shipped, _ = load_all([REPO / "manifests"])
    texts = [c.text for path in args.cases for c in evaluation.load_cases(path)[0] if c.text.strip()]
    print(f"{'skills':>6} {'index s':>8} {'gap':>5}  rank p50 / p95 ms: {'wall':>13} {'cpu':>13}")
    for extra in args.extra:
        skills = {**shipped, **{s.name: s for s in synthetic_skills.generate(extra)}}
        understanding = Understanding(cfg.model, Catalog(cfg, skills))
        encoder = understanding.encoder()
        if encoder is None:
            raise SystemExit("no embedding model: podbot models install")
        started = time.perf_counter()
        index = understanding.index(encoder)
        built = time.perf_counter() - started
        wall, cpu = [], []
        for text in texts:
            w, c = time.perf_counter(), time.process_time()
            index.rank(text, skills.keys(), cfg.model.shortlist)
            wall.append(time.perf_counter() - w)
            cpu.append(time.process_time() - c)
        print(f"{len(skills):>6} {built:>8.2f} {index.gap:>5.2f}  {'':>18} {p50_p95(wall):>13} {p50_p95(cpu):>13}")


if __name__ == "__main__":
    main()
