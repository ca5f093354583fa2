"""examples/trl_grpo_webshop.py: TRL's GRPOTrainer trains the tiny offline model against
``ipr-gym serve ipr/WebShop-v0`` through OpenEnv's client, end to end, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "trl_grpo_webshop.py"


def test_the_trl_grpo_example_trains_against_a_served_webshop(installed_data, tmp_path):
    env = dict(os.environ, IPR_GYM_DATA=str(installed_data), TRL_EXPERIMENTAL_SILENCE="1")
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--steps", "3", "--output", str(tmp_path)],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["optimizer_steps"] == 3
    # 4 completions a step (one batch of 4), each one episode on the server
    assert summary["episodes"] == 12 and len(summary["episode_rewards"]) == 12
    assert all(0.0 <= r <= 1.0 for r in summary["episode_rewards"])
    # the trainer's mean reward per step is the mean of that step's episodes
    for step, mean in enumerate(summary["mean_reward_per_step"]):
        episodes = summary["episode_rewards"][4 * step : 4 * step + 4]
        assert abs(mean - sum(episodes) / 4) < 1e-6
    assert any(g > 0 for g in summary["grad_norm_per_step"])  # the model was updated
    assert (tmp_path / "tiny" / "config.json").is_file()
