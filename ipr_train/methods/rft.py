"""RFT, rejection-sampling fine-tuning (Yuan et al. 2023; a baseline of the IPR paper): per
iteration the agent plays each expert's task from the start, its episodes that reach
``success_reward`` join the expert set (an episode already there, same task and actions,
is not added twice), and the base model is fine-tuned again on the grown set; the new
model plays the next iteration.

The stages are IPR's (``ipr_train.methods.ipr``): exploration from the empty prefix, SFT,
evaluation; ``monte_carlo``, ``tau`` and ``dpo`` are not used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from ipr_train.methods.ipr import IPRConfig, IPRRun, _iteration_cost
from ipr_train.records import read_trajectories, write_jsonl


class RFTConfig(IPRConfig):
    """IPR's config read as RFT's, with the success threshold; ``sft`` is required (every
    iteration retrains the base ``model`` with it)."""

    method: Literal["rft"] = "rft"  # type: ignore[assignment]
    success_reward: float = Field(1.0, description="an agent episode joins the SFT set at this")

    @model_validator(mode="after")
    def _retrains(self) -> RFTConfig:
        if self.sft is None:
            raise ValueError("sft: RFT retrains the base model every iteration; set sft")
        return self


class RFTRun(IPRRun):
    NAME = "RFT"
    cfg: RFTConfig

    def iteration(self, k: int, agent: str) -> str:
        run, it = self.run_dir, f"iter_{k}"
        self.explore_from_start(k, agent)
        run.stage(f"{it}/augment", lambda f: self.augment_stage(f, k))
        data = str(run.path(f"{it}/augment") / "data.jsonl")
        run.stage(f"{it}/train", lambda f: self.sft_stage(f, data))
        agent = str(run.path(f"{it}/train") / "final")
        run.stage(f"{it}/eval", lambda f: self.eval_stage(f, agent))
        seconds = {
            s: run.stats(f"{it}/{s}")["seconds"] for s in ("explore", "augment", "train", "eval")
        }
        self.record(k, f"RFT iteration {k}", _iteration_cost(run, it), seconds)
        return agent

    def augment_stage(self, folder: Path, k: int) -> dict[str, Any]:
        """The expert set and every successful, new agent episode of iterations 1..k."""
        threshold = self.cfg.success_reward
        seen = {(e.task, tuple(s.action for s in e.steps)) for e in self.experts}
        added = []
        for j in range(1, k + 1):
            explored = self.run_dir.path(f"iter_{j}/explore") / "branches.jsonl"
            for episode in read_trajectories(explored):
                key = (episode.task, tuple(s.action for s in episode.steps))
                if episode.reward >= threshold and episode.steps and key not in seen:
                    seen.add(key)
                    added.append(episode)
        write_jsonl(folder / "data.jsonl", [*self.experts, *added])
        return {"experts": len(self.experts), "added": len(added)}


def run_rft(cfg: RFTConfig) -> list[dict[str, Any]]:
    """Run (or resume) RFT; the report rows, one per evaluated model."""
    return RFTRun(cfg).run()
