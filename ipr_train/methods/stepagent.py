"""StepAgent (Deng et al. 2024, "From Novice to Expert: LLM Agent Policy Optimization via
Step-wise Reinforcement Learning"): at every expert prefix s_i the agent samples its own
next action ``practice`` times (the paper's practice number; its best 3), and the expert's
action there teaches it, step by step.

* Implicit (Eq. 6): DPO between the expert's reply (chosen) and the agent's (rejected) at
  the prefix, where their actions differ; the reference is the agent that began the
  iteration; no SFT term.
* Inverse (Eq. 10-11, Algorithm 1): a discriminator D(s, a) in (0, 1), a scorer model
  (``ipr_train.scorer_model``) whose backbone starts from the SFT model and which keeps
  training across iterations, learns to tell expert state-action pairs (1) from the agent's
  (0) by binary cross-entropy; the agent's actions are rewarded log D(s, a), whitened over
  the iteration's actions, and one clipped policy update (PPO, no critic) trains the agent.

The agent plays one step from each prefix (the rollout engine's per-start ``limit``);
``monte_carlo`` and ``tau`` are not used.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from ipr_train.advantages import whitened
from ipr_train.methods.base import MethodConfig, MethodRun
from ipr_train.methods.eto import ETODPOSettings
from ipr_train.methods.online import OnlineConfig, OnlineRun
from ipr_train.methods.settings import Generation, TrainSettings
from ipr_train.pairs import action_pairs
from ipr_train.records import Trajectory, read_trajectories


class StepAgentImplicitConfig(MethodConfig):
    method: Literal["stepagent_implicit"] = "stepagent_implicit"
    practice: int = Field(1, ge=1, description="the agent's actions per expert prefix")
    explore: Generation = Field(default_factory=lambda: Generation(temperature=1.0))
    dpo: ETODPOSettings = Field(default_factory=lambda: ETODPOSettings())


class StepAgentImplicitRun(MethodRun):
    NAME = "StepAgent-Implicit"
    cfg: StepAgentImplicitConfig

    def iteration(self, k: int, agent: str) -> str:
        run, it = self.run_dir, f"iter_{k}"
        paths = self.explore_from(k, agent, start_only=False, n=self.cfg.practice, limit=1)
        branches = read_trajectories(run.path(f"{it}/explore") / "branches.jsonl")
        run.stage(f"{it}/pairs", lambda f: self.action_pairs_stage(f, paths, branches, k))
        return self.optimise_and_evaluate(k, agent, reference=agent, dpo=self.cfg.dpo)

    def action_pairs_stage(
        self, folder: Path, paths: list[Any], branches: list[Trajectory], k: int
    ) -> dict[str, Any]:
        from ipr_train.records import write_jsonl

        pairs = action_pairs(paths, branches, iteration=k)
        write_jsonl(folder / "pairs.jsonl", pairs)
        return {"step_pairs": len(pairs), "outcome_pairs": 0, "actions": len(branches),
                "signal": len(pairs), "signal_unit": "pairs"}  # fmt: skip


class DiscriminatorSettings(TrainSettings):
    epochs: float = Field(1.0, gt=0)
    learning_rate: float = Field(1e-5, gt=0)


class StepAgentInverseConfig(OnlineConfig):
    method: Literal["stepagent_inverse"] = "stepagent_inverse"
    practice: int = Field(1, ge=1, description="the agent's actions per expert prefix")
    discriminator: DiscriminatorSettings = Field(default_factory=lambda: DiscriminatorSettings())


class StepAgentInverseRun(OnlineRun):
    NAME = "StepAgent-Inverse"
    cfg: StepAgentInverseConfig

    def explore_episodes(self, k: int, agent: str) -> None:
        self.paths = self.explore_from(k, agent, start_only=False, n=self.cfg.practice, limit=1)

    def before_advantages(self, k: int, episodes: list[Trajectory]) -> None:
        it = f"iter_{k}"
        self.run_dir.stage(f"{it}/discriminator",
                           lambda f: self.discriminator_stage(f, k, episodes))  # fmt: skip

    def discriminator_stage(
        self, folder: Path, k: int, actions: list[Trajectory]
    ) -> dict[str, Any]:
        """D trained on the expert's (1) and the agent's (0) action at every prefix the agent
        acted at, from the last iteration's D (the SFT model's backbone in the first)."""
        from ipr_train.scorer_model import train_scorer

        cfg = self.cfg.discriminator
        init = self.sft_model if k == 1 else str(self.discriminator(k - 1))
        conversations, targets = [], []
        for branch in actions:
            if not branch.steps:
                continue
            expert = self.paths[branch.meta["expert"]].trajectory
            turn = expert.steps[branch.meta["step"]].turn
            conversations += [_messages(expert.turns[: turn + 1]),
                              _messages(branch.turns[: turn + 1])]  # fmt: skip
            targets += [1.0, 0.0]
        result = train_scorer(init, conversations, targets, "bce", cfg.schedule(), folder,
                              max_length=cfg.max_length,
                              identity={"model": init, "iteration": k, "loss": "bce"})  # fmt: skip
        history = result.loss_history
        from ipr_train.scorer_model import score

        logits = score(folder / "final", conversations, max_length=cfg.max_length)
        right = sum((x > 0) == (y == 1.0) for x, y in zip(logits, targets, strict=True))
        return {"steps": result.steps, "examples": len(targets), "loss_first": history[0],
                "loss_last": history[-1],
                "discriminator_accuracy": round(right / max(len(targets), 1), 4)}  # fmt: skip

    def discriminator(self, k: int) -> Path:
        return self.run_dir.path(f"iter_{k}/discriminator") / "final"

    def advantages(self, k: int, episodes: list[Trajectory]) -> list[list[float]]:
        """log D(s, a) of each agent action, whitened over the iteration's actions."""
        from ipr_train.scorer_model import score

        turns = [_messages(e.turns[: e.steps[0].turn + 1]) for e in episodes]
        logits = score(self.discriminator(k), turns, max_length=self.cfg.discriminator.max_length)
        rewards = [-math.log1p(math.exp(-x)) if x > -30 else x for x in logits]  # log sigmoid
        return [[v] for v in whitened(rewards)]


def _messages(turns: Any) -> list[dict[str, str]]:
    return [{"role": t.role, "content": t.content} for t in turns]
