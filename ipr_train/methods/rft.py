"""RFT, rejection-sampling fine-tuning (Yuan et al. 2023; a baseline of the IPR paper): per
iteration the agent plays each expert's task ``samples`` times from the start (4 by
default, sampled at ``explore.temperature`` 1 with the run's seed: RFT's k distinct
reasoning paths), its episodes that reach ``success_reward`` join the expert set (an
episode already there, same task and actions, is not added twice), and the base model
is fine-tuned again on the grown set (``retrain: agent`` continues from the agent
instead, a cheaper variant); the new model plays the next iteration. ``success_reward``
is 1.0 by default (a full success); the augment stage reports it with the episodes it
accepted.

The stages are the shared ones (``ipr_train.methods.base``): exploration from the empty
prefix, SFT, evaluation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from ipr_train.methods.base import MethodConfig, MethodRun
from ipr_train.methods.settings import Generation
from ipr_train.records import read_trajectories, write_jsonl


class RFTConfig(MethodConfig):
    """``sft`` is required (every iteration fine-tunes with it)."""

    method: Literal["rft"] = "rft"
    success_reward: float = Field(1.0, description="an agent episode joins the SFT set at this")
    samples: int = Field(4, ge=1, description="episodes per task per iteration (RFT's k)")
    explore: Generation = Field(default_factory=lambda: Generation(temperature=1.0))
    retrain: Literal["base", "agent"] = Field(
        "base", description="fine-tune the base model again (RFT) or continue from the agent"
    )
    sft_model: str | None = Field(
        None, description="the first agent, already fine-tuned on the experts; null: SFT here"
    )

    @model_validator(mode="after")
    def _retrains(self) -> RFTConfig:
        if self.sft is None:
            raise ValueError("sft: RFT retrains the base model every iteration; set sft")
        if self.samples > 1 and self.explore.temperature == 0:
            raise ValueError("explore.temperature: greedy samples of one task are one episode "
                             "repeated; sample (temperature > 0) or set samples 1")  # fmt: skip
        return self


class RFTRun(MethodRun):
    NAME = "RFT"
    cfg: RFTConfig

    def initial_model(self) -> str:
        return self.cfg.sft_model or super().initial_model()

    def iteration(self, k: int, agent: str) -> str:
        run, it = self.run_dir, f"iter_{k}"
        self.explore_from(k, agent, n=self.cfg.samples)
        run.stage(f"{it}/augment", lambda f: self.augment_stage(f, k))
        data = str(run.path(f"{it}/augment") / "data.jsonl")
        start = self.cfg.model if self.cfg.retrain == "base" else agent
        run.stage(f"{it}/train", lambda f: self.sft_stage(f, data, start))
        return self.evaluate_iteration(k, str(run.path(f"{it}/train") / "final"))

    def augment_stage(self, folder: Path, k: int) -> dict[str, Any]:
        """The expert set and every successful, new agent episode of iterations 1..k."""
        threshold = self.cfg.success_reward
        seen = {(e.task, tuple(s.action for s in e.steps)) for e in self.experts}
        added, accepted = [], 0
        for j in range(1, k + 1):
            explored = self.run_dir.path(f"iter_{j}/explore") / "branches.jsonl"
            for episode in read_trajectories(explored):
                key = (episode.task, tuple(s.action for s in episode.steps))
                if episode.reward >= threshold and episode.steps and key not in seen:
                    seen.add(key)
                    added.append(episode)
                    accepted += j == k
        write_jsonl(folder / "data.jsonl", [*self.experts, *added])
        # accepted: this iteration's new episodes (the row's signal); added: all iterations'
        return {"experts": len(self.experts), "added": len(added), "accepted": accepted,
                "signal": accepted, "signal_unit": "episodes", "threshold": threshold}  # fmt: skip
