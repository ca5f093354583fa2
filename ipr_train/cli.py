"""``ipr-train``: the training pipeline's command line.

``ipr-train quickstart`` is the main job on embedded defaults. Until the trainer lands it
plays every environment that is available with its expert and prints a results table; it
grows into SFT + IPR on the embedded WebShop catalog.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Sequence

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
    args = parser.parse_args(argv)
    if args.command == "quickstart":
        print(format_table(quickstart(args.episodes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
