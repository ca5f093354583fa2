"""``ipr-train``: the training pipeline's command line.

``ipr-train quickstart`` is the main job on embedded defaults. Until the trainer lands it
plays every environment that is available with its expert and prints a results table; it
grows into SFT + IPR on the embedded WebShop catalog. ``ipr-train sft CONFIG`` fine-tunes
on trajectories (assistant tokens only); ``ipr-train eval CONFIG`` plays splits with a
policy and prints the papers' table (see ``ipr_train.config`` for the keys).
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Sequence
from pathlib import Path

import gymnasium as gym

import ipr_gym  # noqa: F401 - registers the ipr/ ids
from ipr_gym.data import DatasetMissingError
from ipr_gym.testing.toy import ToyEnv
from ipr_train.expert_play import ExpertResult, format_table, play_experts


def quickstart(episodes: int) -> list[ExpertResult]:
    results = [play_experts("toy (conformance kit)", ToyEnv, episodes)]
    for env_id in sorted(k for k in gym.registry if k.startswith("ipr/")):
        try:
            results.append(play_experts(env_id, functools.partial(gym.make, env_id), episodes))
        except (NotImplementedError, DatasetMissingError, ImportError) as reason:
            results.append(ExpertResult(env_id, "-", 0, 0.0, 0.0, 0.0, 0.0, str(reason)))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ipr-train", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    quick = commands.add_parser("quickstart", help="the main job on embedded defaults")
    quick.add_argument("--episodes", type=int, default=20, help="tasks per environment")
    sft = commands.add_parser("sft", help="supervised fine-tuning from a YAML config")
    sft.add_argument("config")
    evaluation = commands.add_parser("eval", help="evaluate a policy from a YAML config")
    evaluation.add_argument("config")
    args = parser.parse_args(argv)
    if args.command == "quickstart":
        print(format_table(quickstart(args.episodes)))
    elif args.command == "sft":
        from ipr_train.config import SFTConfig, load_config
        from ipr_train.sft import run_sft

        summary = run_sft(load_config(args.config, SFTConfig))
        losses = summary["loss_history"]
        print(f"{summary['steps']} steps, loss {losses[0]:.4f} -> {losses[-1]:.4f}; "
              f"model in {summary['final']}")  # fmt: skip
    elif args.command == "eval":
        from ipr_train.config import EvalConfig, load_config
        from ipr_train.evaluate import evaluate, results_table
        from ipr_train.policies import GenerationParams, make_policy

        cfg = load_config(args.config, EvalConfig)
        params = GenerationParams(
            temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens,
            seed=cfg.seed,
        )  # fmt: skip
        results = evaluate(
            make_policy(cfg.policy), cfg.envs, params, cfg.output_dir,
            workers=cfg.workers, slots=cfg.slots, data_dir=cfg.data_dir,
        )  # fmt: skip
        table = results_table(results)
        Path(cfg.output_dir, "results.md").write_text(table + "\n")
        print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
