"""GRPO (Shao et al. 2024, DeepSeekMath §4.1) and GiGPO (Feng et al. 2025, "Group-in-Group
Policy Optimization for LLM Agent Training"), online and critic-free: each iteration the
agent plays ``group_size`` episodes of every task from the task's one start snapshot.

* GRPO: an episode's advantage is its outcome normalised within its task's group (mean,
  unbiased std + 1e-6), given to every step of it.
* GiGPO: GRPO's episode advantage plus ``step_weight`` times a step advantage: the steps of
  one task's group that act in the same anchor state form a step group, and each step's
  discounted return (``gamma``) is normalised within it (Eq. 5-8). The anchor state is the
  observation the step answered (verl-agent's choice; ``anchor: state`` groups by the env
  actions that led there instead, an exact state identity the snapshots make available).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ipr_train.advantages import gigpo_advantages, grpo_advantages
from ipr_train.methods.online import OnlineConfig, OnlineRun
from ipr_train.records import Trajectory


class GRPOConfig(OnlineConfig):
    method: Literal["grpo"] = "grpo"  # type: ignore[assignment]
    group_size: int = Field(8, ge=2, description="episodes per task (verl-agent: 8)")
    std_normalise: bool = Field(True, description="divide by the group's std (mean_std_norm)")


class GiGPOConfig(GRPOConfig):
    method: Literal["gigpo"] = "gigpo"  # type: ignore[assignment]
    gamma: float = Field(0.95, ge=0, le=1, description="the step returns' discount")
    step_weight: float = Field(1.0, ge=0, description="the step advantage's weight (omega)")
    anchor: Literal["observation", "state"] = "observation"


class GRPORun(OnlineRun):
    NAME = "GRPO"
    cfg: GRPOConfig

    def advantages(self, k: int, episodes: list[Trajectory]) -> list[list[float]]:
        values = grpo_advantages([e.reward for e in episodes],
                                 [e.meta["expert"] for e in episodes],
                                 std=self.cfg.std_normalise)  # fmt: skip
        return [[v] * len(e.steps) for v, e in zip(values, episodes, strict=True)]


class GiGPORun(GRPORun):
    NAME = "GiGPO"
    cfg: GiGPOConfig

    def advantages(self, k: int, episodes: list[Trajectory]) -> list[list[float]]:
        cfg = self.cfg
        return gigpo_advantages(
            [(e.meta["expert"], [s.reward for s in e.steps], anchors(e, cfg.anchor))
             for e in episodes],
            gamma=cfg.gamma, step_weight=cfg.step_weight, std=cfg.std_normalise,
        )  # fmt: skip


def anchors(episode: Trajectory, kind: str) -> list[object]:
    """The state each step of ``episode`` acted in: the observation it answered (the start
    state's for the first step; every episode of a group starts in the same one) or the env
    actions taken before it."""
    if kind == "state":
        return [tuple(s.action for s in episode.steps[:t]) for t in range(len(episode.steps))]
    return ["<start>", *(s.observation for s in episode.steps[:-1])]
