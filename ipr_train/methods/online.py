"""What the policy-gradient methods share (PPO, Step-PPO, GRPO, GiGPO): per iteration the
agent plays ``group_size`` episodes of each expert's task from the task's one start
snapshot (the rollout engine fans it out, sampling at ``explore.temperature``), every
step gets an advantage (the method's ``advantages``), one clipped policy update trains the
agent on them (``ipr_train.policy_gradient``) with a KL term to the SFT model, and the new
agent is evaluated and plays the next iteration.

The expert set chooses the tasks (``explore_limit`` of them) and gives the SFT model;
expert actions take no part in the update. Step-PPO adds ``monte_carlo``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from ipr_train.methods.base import MethodConfig, MethodRun
from ipr_train.methods.settings import Generation, TrainSettings
from ipr_train.records import Trajectory, read_trajectories


class PolicyUpdate(TrainSettings):
    """The policy update: verl's defaults (clip 0.2, one pass, KL to the reference with the
    k3 estimator at 0.01, lr 1e-6 constant)."""

    epochs: float = Field(1.0, gt=0)
    learning_rate: float = Field(1e-6, gt=0)
    lr_scheduler: Literal["cosine", "linear", "constant_with_warmup", "constant"] = "constant"
    warmup_ratio: float = Field(0.0, ge=0, le=1)
    clip: float = Field(0.2, gt=0, description="the ratio's clip range epsilon")
    kl_coef: float = Field(0.01, ge=0, description="KL to the SFT model; 0: none")
    max_prompt_tokens: int = Field(2048, ge=1, description="prompt cut from the left")


class OnlineConfig(MethodConfig):
    group_size: int = Field(1, ge=1, description="episodes per task per iteration")
    explore: Generation = Field(default_factory=lambda: Generation(temperature=1.0))
    update: PolicyUpdate = Field(default_factory=lambda: PolicyUpdate())

    @model_validator(mode="after")
    def _samples(self) -> OnlineConfig:
        if self.group_size > 1 and self.explore.temperature == 0:
            raise ValueError("explore.temperature: a group of greedy episodes is one episode "
                             "repeated; sample (temperature > 0) or set group_size 1")  # fmt: skip
        return self


class OnlineRun(MethodRun):
    cfg: OnlineConfig
    ALL_STATES = False  # whether the advantages need the state after every step

    def iteration(self, k: int, agent: str) -> str:
        run, it = self.run_dir, f"iter_{k}"
        self.explore_episodes(k, agent)
        episodes = read_trajectories(run.path(f"{it}/explore") / "branches.jsonl")
        for index, episode in enumerate(episodes):
            episode.meta["index"] = index  # its place in the iteration's episodes
        self.before_advantages(k, episodes)
        run.stage(f"{it}/advantages", lambda f: self.advantages_stage(f, k, episodes))
        saved = json.loads((run.path(f"{it}/advantages") / "advantages.json").read_text())
        samples = [(episodes[s["episode"]], s["advantages"]) for s in saved]
        run.stage(f"{it}/train", lambda f: self.policy_stage(f, samples, agent, k))
        return self.evaluate_iteration(k, str(run.path(f"{it}/train") / "final"))

    def explore_episodes(self, k: int, agent: str) -> None:
        """Stage ``iter_k/explore``: the episodes to learn from."""
        self.explore_from(k, agent, n=self.cfg.group_size, all_states=self.ALL_STATES)

    def before_advantages(self, k: int, episodes: list[Trajectory]) -> None:
        """Stages the advantages need (Step-PPO: Monte Carlo step rewards)."""

    def advantages(self, k: int, episodes: list[Trajectory]) -> list[list[float]]:
        raise NotImplementedError

    def advantages_stage(self, folder: Path, k: int, episodes: list[Trajectory]) -> dict[str, Any]:
        """Per usable episode (one the agent acted in, no generation failure) the advantage
        of each of its steps."""
        usable = [i for i, e in enumerate(episodes) if e.steps and "error" not in e.meta]
        values = self.advantages(k, [episodes[i] for i in usable])
        saved = [{"episode": i, "advantages": a} for i, a in zip(usable, values, strict=True)]
        (folder / "advantages.json").write_text(json.dumps(saved))
        flat = [x for a in values for x in a]
        return {
            "episodes": len(usable),
            "mean_reward": sum(episodes[i].reward for i in usable) / max(len(usable), 1),
            "advantage_steps": len(flat),
            "nonzero_steps": sum(abs(x) > 1e-9 for x in flat),
            "signal": sum(abs(x) > 1e-9 for x in flat),
            "signal_unit": "advantages",
        }

    def policy_stage(
        self, folder: Path, samples: list[tuple[Trajectory, list[float]]], agent: str, k: int
    ) -> dict[str, Any]:
        from ipr_train.policy_gradient import train_policy

        update = self.cfg.update
        result = train_policy(
            agent,
            self.sft_model,
            samples,
            update.schedule(),
            folder,
            max_length=update.max_length,
            max_prompt_tokens=update.max_prompt_tokens,
            clip=update.clip,
            kl_coef=update.kl_coef,
            identity={"model": agent, "iteration": k, "loss": self.cfg.method},
            temperature=self.cfg.explore.temperature,
        )
        return {"steps": result.steps, "optimizer_steps": result.steps,
                "trained_tokens": result.trained_tokens, "samples": len(samples),
                "trained_samples": result.examples,
                "loss_history": result.loss_history}  # fmt: skip
