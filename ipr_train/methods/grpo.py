"""GRPO (Shao et al. 2024, DeepSeekMath §4.1) and GiGPO (Feng et al. 2025, "Group-in-Group
Policy Optimization for LLM Agent Training"), online and critic-free: each iteration the
agent plays ``group_size`` episodes of every task from the task's one start snapshot.

* GRPO: an episode's advantage is its outcome normalised within its task's group (mean,
  unbiased std + 1e-6), given to every step of it.
* GiGPO: GRPO's episode advantage plus ``step_weight`` times a step advantage: the steps of
  one task's group that act in the same anchor state form a step group, and each step's
  discounted return (``gamma``) is normalised within it (Eq. 5-8). The anchor state is the
  env's own observation of the state the step acted in (verl-agent's choice): a reply with
  no readable action never reaches the env, so the step after it acts in the unchanged
  state and shares its anchor, not the protocol's format-error text. ``anchor: state``
  groups by the env actions that led there instead, an exact state identity the snapshots
  make available. The episode advantage is normalised over the group's steps
  (``episode_norm: steps``, verl-agent's default ``compute_mean_std_cross_steps``) or over
  its episodes (``episodes``, the paper's Eq. 3).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ipr_train.advantages import gigpo_advantages, grpo_advantages
from ipr_train.methods.online import OnlineConfig, OnlineRun
from ipr_train.records import Trajectory


class GRPOConfig(OnlineConfig):
    method: Literal["grpo"] = "grpo"
    group_size: int = Field(8, ge=2, description="episodes per task (verl-agent: 8)")
    std_normalise: bool = Field(True, description="divide by the group's std (mean_std_norm)")


class GiGPOConfig(GRPOConfig):
    method: Literal["gigpo"] = "gigpo"  # type: ignore[assignment]
    gamma: float = Field(0.95, ge=0, le=1, description="the step returns' discount")
    step_weight: float = Field(1.0, ge=0, description="the step advantage's weight (omega)")
    anchor: Literal["observation", "state"] = "observation"
    episode_norm: Literal["steps", "episodes"] = Field(
        "steps", description="the episode advantage's group statistics: over steps "
        "(verl-agent) or episodes (the paper's Eq. 3)"
    )  # fmt: skip


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
            across_steps=cfg.episode_norm == "steps",
        )  # fmt: skip


def anchors(episode: Trajectory, kind: str) -> list[object]:
    """The state each step of ``episode`` acted in: the env's last observation before it
    (the start state's for the first step; every episode of a group starts in the same
    one) or the env actions taken before it; a step without a readable action (``action``
    None: the env never saw it) leaves the state, and so the anchor, unchanged."""
    out: list[object] = []
    observation: str = "<start>"
    actions: tuple[str, ...] = ()
    for step in episode.steps:
        out.append(actions if kind == "state" else observation)
        if step.action is not None:
            observation, actions = step.observation, (*actions, step.action)
    return out
