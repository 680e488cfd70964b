"""Benchmark: understanding plain requests, stage by stage, with the bundled models.

Prints load times and RSS with the models loaded, the embedding encoder's
per-message latency, the argument stage with its prompt prefix cached and not,
and the routing eval set (tests/routing_eval.yaml by default) run with the
model stage off and on: accuracy and per-stage latency p50/p95.

    .venv/bin/python bench/bench_router.py
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

from bot import config
from bot.chat import evaluation as evaluate
from bot.skill import load_all
from bot.understanding import arguments, embeddings, llm

REPO = Path(__file__).resolve().parent.parent


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def p50_p95(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0] * 1000:.0f} / {values[0] * 1000:.0f}" if values else "-"
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return f"{cuts[49] * 1000:.0f} / {cuts[94] * 1000:.0f}"


def timed(step) -> tuple[float, object]:
    started = time.perf_counter()
    result = step()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=Path, default=REPO / "tests" / "routing_eval.yaml", help="eval set (default the shipped one)")
    parser.add_argument("--repeat", type=int, default=5, help="timed encoder passes over the eval texts (default 5)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="podbot-bench-") as tmp:
        base = config.load()
        cfg = config.load(environ={"PODBOT_DATA_DIR": tmp, "PODBOT_MODEL__DIR": str(base.model.dir)})
        skills, _ = load_all([REPO / "manifests"])
        cases, roles = evaluate.load_cases(args.cases)
        texts = [c.text for c in cases if c.text.strip()]

        start_rss = rss_mb()
        took, encoder = timed(lambda: embeddings.load(cfg.model.dir / cfg.model.embeddings))
        enc_rss = rss_mb()
        print(f"models in {cfg.model.dir}; {cfg.model.threads} threads, context {cfg.model.context}")
        print(f"embeddings load {took:.2f} s, RSS {start_rss:.0f} -> {enc_rss:.0f} MB")
        took, model = timed(lambda: llm.load(cfg.model.path, cfg.model.threads, cfg.model.context))
        print(f"model      load {took:.2f} s, RSS {enc_rss:.0f} -> {rss_mb():.0f} MB ({cfg.model.file})")

        lat = []
        for _ in range(args.repeat):
            for text in texts:
                lat.append(timed(lambda text=text: encoder.encode([text]))[0])
        print(f"encoder, one message: p50 / p95 {p50_p95(lat)} ms over {len(lat)} encodings")

        skill = skills["http_check"]
        message = "can you see if https://example.org/status responds"
        model._prefix = None
        cold, filled = timed(lambda: arguments.fill(model, skill, message, cfg.model.max_tokens))
        warm = [timed(lambda: arguments.fill(model, skill, message, cfg.model.max_tokens))[0] for _ in range(5)]
        print(f"arguments, {skill.name}: prefix decoded {cold * 1000:.0f} ms; prefix cached p50 / p95 {p50_p95(warm)} ms -> {filled.args}")
        print(f"RSS with both models loaded and used: {rss_mb():.0f} MB")

        print(f"\neval {args.cases.name}: {len(cases)} messages")
        header = f"{'model stage':<12} {'skill':>7} {'args':>7} {'none':>7} {'unauth':>6}  p50 / p95 ms: routing  shortlist  arguments"
        print(header)
        for enabled in (False, True):
            run_cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, enabled=enabled))
            report = evaluate.run(run_cfg, skills, cases, roles)

            def share(pair: tuple[int, int]) -> str:
                return f"{100 * pair[0] / max(pair[1], 1):.1f}%"

            stages = []
            for stage in (None, "shortlist", "arguments"):
                values = [o.seconds if stage is None else o.timings[stage] for o in report.outcomes if stage is None or stage in o.timings]
                stages.append(p50_p95(values))
            print(
                f"{'on' if enabled else 'off':<12} {share(report.skill):>7} {share(report.arguments):>7} {share(report.none):>7} "
                f"{report.unauthorized:>6}  {stages[0]:>13}  {stages[1]:>9}  {stages[2]:>9}"
            )
        print(f"RSS at the end: {rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
