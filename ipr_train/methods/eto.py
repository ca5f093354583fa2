"""ETO (Song et al., ACL 2024, "Trial and Error: Exploration-Based Trajectory Optimization
for LLM Agents"): SFT on expert trajectories (behavioural cloning), then per iteration the
agent plays each expert's task from the start (greedy, as its release explores), every
episode that scores below the expert's gives a failure-success pair of whole trajectories
(the expert's side chosen: ``pair_rule: paper``, no margin; ``release`` pairs both ways
with ``outcome_margin``), and DPO on those pairs (its Eq. 4) trains the agent against the
agent itself as reference (the model that began the iteration); 3 iterations by default.

The stages are the shared ones (``ipr_train.methods.base``): exploration from the empty
prefix only, outcome pairs only, no Monte Carlo, the reference, DPO and evaluation stages.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ipr_train.methods.base import MethodConfig, MethodRun
from ipr_train.methods.settings import DPOSettings
from ipr_train.records import read_trajectories


class ETODPOSettings(DPOSettings):
    """ETO's loss is DPO alone (its Eq. 4): no SFT term unless asked for."""

    sft_weight: float = Field(0.0, ge=0, description="SFT on chosen; ETO: 0")


class ETOConfig(MethodConfig):
    method: Literal["eto"] = "eto"
    iterations: int = Field(3, ge=0)
    pair_rule: Literal["release", "paper"] = Field(
        "paper", description="ETO pairs a failure with the expert's success: expert chosen"
    )  # fmt: skip
    outcome_margin: float = Field(0.01, ge=0, description="release rule: outcome gap to pair")
    dpo: ETODPOSettings = Field(default_factory=lambda: ETODPOSettings())


class ETORun(MethodRun):
    NAME = "ETO"
    cfg: ETOConfig

    def iteration(self, k: int, agent: str) -> str:
        run, it = self.run_dir, f"iter_{k}"
        paths = self.explore_from(k, agent)
        branches = read_trajectories(run.path(f"{it}/explore") / "branches.jsonl")
        run.stage(
            f"{it}/pairs",
            lambda f: self.pairs_stage(f, paths, branches, it, k, kinds=("outcome",),
                                       rule=self.cfg.pair_rule,
                                       margin=self.cfg.outcome_margin),
        )  # fmt: skip
        return self.optimise_and_evaluate(k, agent, reference=agent, dpo=self.cfg.dpo)
