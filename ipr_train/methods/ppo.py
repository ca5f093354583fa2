"""PPO on the outcome reward and Step-PPO on Monte Carlo step rewards, the IPR paper's RL
baselines (§4.1), as run here: multi-turn, PPO's clipped token-level objective (Schulman et
al. 2017, Eq. 7) over the agent's reply tokens at the sampling temperature, a KL term to the
SFT model, and no value head: the baseline a critic would learn is estimated from samples
instead, per state, and the advantages are then whitened over the iteration's batch (PPO's
advantage normalisation).

* PPO: every step of an episode gets the episode's outcome minus the mean outcome of its
  task's group (the ``group_size`` episodes played from the same start: an estimate of the
  start state's value; a group of one gets 0). ``group_size`` >= 2.
* Step-PPO: step t gets Q(s_t, a_t) - V(s_t). Q is IPR's Monte Carlo step reward (Eq. 3-5:
  the mean outcome of ``monte_carlo.n`` scorer continuations from the state after the step,
  the SFT model the scorer, estimates cached); V(s_t) is the same estimate for the state
  the step acted in, which is the previous step's Q (the continuations from the state after
  step t-1 start in s_t); at t = 0, every episode of the task's group starts in s_0, and
  V(s_0) is the mean of their first steps' Q. So a good state does not give every action
  in it a positive advantage: an action gains only by what it adds to its state's value.
"""

from __future__ import annotations

import json
import pickle
from typing import Literal

from pydantic import Field

from ipr_gym.core import Snapshot
from ipr_train.advantages import group_normalised, whitened
from ipr_train.methods.online import OnlineConfig, OnlineRun
from ipr_train.methods.settings import MonteCarlo
from ipr_train.records import Trajectory
from ipr_train.step_rewards import Branch


class PPOConfig(OnlineConfig):
    method: Literal["ppo"] = "ppo"
    group_size: int = Field(4, ge=2, description="episodes per task: the baseline's sample")


class StepPPOConfig(OnlineConfig):
    method: Literal["step_ppo"] = "step_ppo"
    monte_carlo: MonteCarlo = Field(default_factory=lambda: MonteCarlo())
    group_size: int = Field(4, ge=2, description="episodes per task: V(s_0)'s sample")


class PPORun(OnlineRun):
    NAME = "PPO"

    def advantages(self, k: int, episodes: list[Trajectory]) -> list[list[float]]:
        groups = [e.meta["expert"] for e in episodes]
        centred = group_normalised([e.reward for e in episodes], groups, std=False,
                                   single="zero")  # fmt: skip
        values = whitened(centred)
        return [[v] * len(e.steps) for v, e in zip(values, episodes, strict=True)]


class StepPPORun(OnlineRun):
    NAME = "Step-PPO"
    cfg: StepPPOConfig
    ALL_STATES = True

    def before_advantages(self, k: int, episodes: list[Trajectory]) -> None:
        from ipr_gym.pool import EnvPool

        cfg, run, it = self.cfg, self.run_dir, f"iter_{k}"
        if run.done(f"{it}/step_rewards"):
            return
        states = pickle.loads((run.path(f"{it}/explore") / "states.pkl").read_bytes())
        todo = _step_branches(episodes, states)
        with EnvPool(
            cfg.env.id, cfg.slots, workers=cfg.workers, env_kwargs=self.env_kwargs
        ) as pool:
            run.stage(f"{it}/step_rewards",
                      lambda f: self.rewards_stage(f, pool, todo, it, cfg.monte_carlo))  # fmt: skip

    def advantages(self, k: int, episodes: list[Trajectory]) -> list[list[float]]:
        saved = self.run_dir.path(f"iter_{k}/step_rewards") / "step_rewards.json"
        means = {(m["expert"], m["step"]): m["mean"] for m in json.loads(saved.read_text())}
        q = [[means[(e.meta["index"], t)] for t in range(len(e.steps))] for e in episodes]
        firsts: dict[object, list[float]] = {}
        for e, values in zip(episodes, q, strict=True):
            firsts.setdefault(e.meta["expert"], []).append(values[0])
        relative = []
        for e, values in zip(episodes, q, strict=True):
            group = firsts[e.meta["expert"]]
            state = [sum(group) / len(group), *values[:-1]]  # V(s_t)
            relative.append([a - v for a, v in zip(values, state, strict=True)])
        flat = iter(whitened([a for steps in relative for a in steps]))
        return [[next(flat) for _ in steps] for steps in relative]


def _step_branches(
    episodes: list[Trajectory], states: list[list[Snapshot]]
) -> dict[tuple[int, int, str], Branch]:
    """The state after every step of every usable episode, to score (keyed by the episode's
    index among the iteration's episodes)."""
    todo: dict[tuple[int, int, str], Branch] = {}
    for index, (episode, snaps) in enumerate(zip(episodes, states, strict=True)):
        if not episode.steps or "error" in episode.meta:
            continue
        for t in range(len(episode.steps)):
            todo[(index, t, "agent")] = Branch.after_step(episode, t, snaps[t + 1], t + 1)
    return todo
