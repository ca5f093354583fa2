"""IPR (Xiong et al., EMNLP 2024, "Watch Every Step!"): SFT on expert trajectories, then
per iteration explore from every expert prefix (§3.2, greedily as its release does), estimate
step rewards by Monte Carlo with the SFT model as scorer (Eq. 3-5), build step and outcome
pairs (§3.3, ``ipr_train.pairs``: its release's rule by default) and optimise o-DPO + s-DPO
+ SFT (Eq. 7-10) against the SFT model as reference; the updated agent starts the next
iteration. The stages are the shared ones (``ipr_train.methods.base``).
"""

from __future__ import annotations

import pickle
from typing import Any, Literal, get_args

from pydantic import Field

from ipr_train.explore import ExpertPath, replay_experts
from ipr_train.methods.base import MethodConfig, MethodRun
from ipr_train.methods.settings import DPOSettings, MonteCarlo
from ipr_train.pairs import PAPER_TAU
from ipr_train.records import read_trajectories
from ipr_train.step_rewards import Branch, read_estimates

PairKind = Literal["outcome", "step"]


class IPRConfig(MethodConfig):
    method: Literal["ipr"] = "ipr"
    monte_carlo: MonteCarlo = Field(default_factory=lambda: MonteCarlo())
    tau: float | None = Field(None, ge=0, description="null: the paper's value for the env")
    pair_rule: Literal["release", "paper"] = Field(
        "release", description="release: pairs in both directions with outcome_margin; "
        "paper: the expert's side always chosen (ipr_train.pairs)"
    )  # fmt: skip
    outcome_margin: float = Field(0.01, ge=0, description="release rule: outcome gap to pair")
    pair_kinds: list[PairKind] = Field(
        default_factory=lambda: list(get_args(PairKind)),
        description="the pair kinds trained on; an ablation drops one (IPR's --global_traj / "
        "--local_traj)",
    )  # fmt: skip
    step_pairs_at_start: bool = Field(False, description="step pairs at t = 0 (release: no)")
    step_reward_model: str | None = Field(
        None, description="a step reward model's folder (`ipr-train reward-model`) in place "
        "of Monte Carlo; null: Monte Carlo"
    )  # fmt: skip
    dpo: DPOSettings = Field(default_factory=lambda: DPOSettings())


def run_ipr(cfg: IPRConfig) -> list[dict[str, Any]]:
    """Run (or resume) IPR; the report rows, one per evaluated model."""
    return IPRRun(cfg).run()


class IPRRun(MethodRun):
    NAME = "IPR"
    cfg: IPRConfig

    def __init__(self, cfg: IPRConfig):
        super().__init__(cfg)
        self.tau = cfg.tau if cfg.tau is not None else PAPER_TAU.get(cfg.env.id, 0.01)

    def iteration(self, k: int, agent: str) -> str:
        """Explore, estimate, pair, train, evaluate; the next iteration's agent."""
        from ipr_gym.pool import EnvPool

        cfg, run, it = self.cfg, self.run_dir, f"iter_{k}"
        for j in range(1, k):  # the estimates of earlier iterations
            self.cache.add(read_estimates(run.path(f"iter_{j}/step_rewards") / "estimates.jsonl"))
        with EnvPool(
            cfg.env.id, cfg.slots, workers=cfg.workers, env_kwargs=self.env_kwargs
        ) as pool:
            paths, _ = replay_experts(
                pool, self.protocol, self.experts[: cfg.explore_limit], data_dir=self.data_dir
            )
            run.stage(f"{it}/explore", lambda f: self.explore_stage(f, pool, paths, agent, it))
            branches = read_trajectories(run.path(f"{it}/explore") / "branches.jsonl")
            firsts = pickle.loads((run.path(f"{it}/explore") / "first_states.pkl").read_bytes())
            todo = _branches(paths, branches, firsts)
            run.stage(f"{it}/step_rewards",
                      lambda f: self.rewards_stage(f, pool, todo, it, cfg.monte_carlo,
                                                   cfg.step_reward_model))  # fmt: skip
        pairing: dict[str, Any] = {"kinds": cfg.pair_kinds, "rule": cfg.pair_rule, "tau": self.tau,
                   "margin": cfg.outcome_margin, "at_start": cfg.step_pairs_at_start}  # fmt: skip
        run.stage(f"{it}/pairs", lambda f: self.pairs_stage(f, paths, branches, it, k, **pairing))
        return self.optimise_and_evaluate(k, agent, reference=self.sft_model, dpo=cfg.dpo)


def _branches(
    paths: list[ExpertPath], branches: list[Any], firsts: list[Any]
) -> dict[tuple[int, int, str], Branch]:
    """The states to score: after the expert's action and after the agent's, per step."""
    todo: dict[tuple[int, int, str], Branch] = {}
    for branch, first in zip(branches, firsts, strict=True):
        index, t = branch.meta["expert"], branch.meta["step"]
        expert = paths[index].trajectory
        last = len(expert.steps) - 1
        todo[(index, t, "expert")] = Branch(
            snapshot=paths[index].snapshots[t + 1],
            messages=expert.turns[: expert.steps[t].turn + 2],
            steps_taken=t + 1,
            step=t,
            action=expert.steps[t].action,
            ended=t == last,
            reward=expert.reward,
        )
        if not branch.steps or first is None:
            continue  # the agent never acted (a generation failure): no estimate, no pair
        todo[(index, t, "agent")] = Branch.after_step(branch, 0, first, t + 1)
    return todo
