"""The HF backend's prefix cache (``ipr_train.policies.prefix_cache``): what it saves.

``python -m benchmarks bench-prefix_cache``: the quickstart's tiny model (d=128, 2 layers,
its word-level tokenizer), fine-tuned for ``--sft-steps`` steps on the quickstart's
demonstrations (lr 4e-3, batch 4) so that it shops like the models the comparison runs,
plays the first ``--tasks`` embedded WebShop test goals, 16 at a time, greedy and then
sampled at temperature 1 (seeded), with the cache and without it, side by side in one run.

Reported per setting: wall seconds, prompt tokens the model read (without the cache every
prompt token; with it, the tokens no earlier prompt held), the ratios, and how many of the
episodes are the same with and without the cache (the cache changes only floating-point
rounding, so they should all be).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.results_io import write_results
from ipr_train.config import EnvEval
from ipr_train.evaluate import evaluate_env
from ipr_train.policies import GenerationParams
from ipr_train.policies.hf import HFPolicy
from ipr_train.rollout import RolloutCounters


def _play(model: str, tasks: int, params: GenerationParams, cache_mb: int) -> dict:
    policy = HFPolicy(model, device="cpu", batch_size=16, prefix_cache_mb=cache_mb)
    env = EnvEval(id="ipr/WebShop-v0", split="test", limit=tasks)
    counters = RolloutCounters()
    began = time.perf_counter()
    episodes, result = evaluate_env(policy, env, params, slots=16, counters=counters)
    seconds = time.perf_counter() - began
    return {
        "seconds": seconds,
        "generation_seconds": counters.generation_seconds,
        "read_tokens": policy.cache.read_tokens if policy.cache else counters.prompt_tokens,
        "prompt_tokens": counters.prompt_tokens,
        "episodes": {str(t.task): [turn.content for turn in t.turns] for t in episodes},
        "avg_reward": result.avg_reward,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench-prefix_cache")
    parser.add_argument("--tasks", type=int, default=48)
    parser.add_argument("--sft-steps", type=int, default=150)
    args = parser.parse_args(argv)
    from ipr_train.config import SFTConfig
    from ipr_train.quickstart import prepare, quickstart_config
    from ipr_train.sft import run_sft

    metrics: dict[str, float] = {}
    ratios: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        raw = quickstart_config(Path(tmp))
        prepare(raw)
        sft = SFTConfig(model=raw["model"], data=[raw["experts"]], output_dir=f"{tmp}/sft",
                        max_steps=args.sft_steps, learning_rate=4e-3, batch_size=4)  # fmt: skip
        run_sft(sft)
        model = f"{tmp}/sft/final"
        for name, params in {
            "greedy": GenerationParams(max_new_tokens=40, seed=0),
            "sampled": GenerationParams(temperature=1.0, max_new_tokens=40, seed=0),
        }.items():
            off = _play(model, args.tasks, params, 0)
            on = _play(model, args.tasks, params, 1024)
            same = sum(on["episodes"][k] == v for k, v in off["episodes"].items())
            metrics |= {
                f"{name}.episodes": len(off["episodes"]),
                f"{name}.same_episodes": same,
                f"{name}.prompt_tokens": off["prompt_tokens"],
                f"{name}.cached.read_tokens": on["read_tokens"],
                f"{name}.uncached.seconds": round(off["seconds"], 2),
                f"{name}.cached.seconds": round(on["seconds"], 2),
                f"{name}.uncached.generation_seconds": round(off["generation_seconds"], 2),
                f"{name}.cached.generation_seconds": round(on["generation_seconds"], 2),
                f"{name}.uncached.avg_reward": round(off["avg_reward"], 4),
                f"{name}.cached.avg_reward": round(on["avg_reward"], 4),
            }
            ratios |= {
                f"{name}.read_tokens_cached/prompt_tokens": round(
                    on["read_tokens"] / max(off["prompt_tokens"], 1), 4
                ),
                f"{name}.seconds_uncached/cached": round(off["seconds"] / on["seconds"], 2),
                f"{name}.generation_seconds_uncached/cached": round(
                    off["generation_seconds"] / on["generation_seconds"], 2
                ),
            }
    write_results("prefix_cache", metrics, ratios, notes=__doc__ or "")
    for key, value in ratios.items():
        print(f"{key}: {value}")
    return 0
