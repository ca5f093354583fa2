"""PPO on the outcome reward and Step-PPO on Monte Carlo step rewards, the IPR paper's RL
baselines (§4.1), as run here: multi-turn, PPO's clipped token-level objective (Schulman et
al. 2017, Eq. 7) over the agent's reply tokens, a KL term to the SFT model, and no value
head: the advantage is a return whitened over the iteration's batch (the batch mean is the
baseline a critic would learn; GAE with lambda = gamma = 1 and V = 0 gives the return).

* PPO: every step of an episode gets the episode's outcome reward, whitened over the
  iteration's episodes.
* Step-PPO: every step gets its step reward, IPR's Monte Carlo estimate (Eq. 3-5: the mean
  outcome of ``monte_carlo.n`` scorer continuations from the state after the step, the SFT
  model the scorer, estimates cached), whitened over the iteration's steps.
"""

from __future__ import annotations

import json
import pickle
from typing import Literal

from ipr_gym.core import Snapshot
from ipr_train.advantages import whitened
from ipr_train.methods.online import OnlineConfig, OnlineRun
from ipr_train.records import Trajectory
from ipr_train.step_rewards import Branch


class PPOConfig(OnlineConfig):
    method: Literal["ppo"] = "ppo"  # type: ignore[assignment]


class StepPPOConfig(OnlineConfig):
    method: Literal["step_ppo"] = "step_ppo"  # type: ignore[assignment]


class PPORun(OnlineRun):
    NAME = "PPO"

    def advantages(self, k: int, episodes: list[Trajectory]) -> list[list[float]]:
        values = whitened([e.reward for e in episodes])
        return [[v] * len(e.steps) for v, e in zip(values, episodes, strict=True)]


class StepPPORun(OnlineRun):
    NAME = "Step-PPO"
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
            run.stage(f"{it}/step_rewards", lambda f: self.rewards_stage(f, pool, todo, it))

    def advantages(self, k: int, episodes: list[Trajectory]) -> list[list[float]]:
        saved = self.run_dir.path(f"iter_{k}/step_rewards") / "step_rewards.json"
        means = {(m["expert"], m["step"]): m["mean"] for m in json.loads(saved.read_text())}
        rewards = [[means[(e.meta["index"], t)] for t in range(len(e.steps))] for e in episodes]
        values = iter(whitened([r for steps in rewards for r in steps]))
        return [[next(values) for _ in steps] for steps in rewards]


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
