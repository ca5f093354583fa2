"""Advantages for the policy-gradient methods, one scalar per agent step (every token of
the step's reply carries it).

* ``whitened``: PPO without a critic (the IPR paper's PPO and Step-PPO baselines as run
  here): the step's return minus the batch mean, over the batch's standard deviation.
* ``group_normalised``: GRPO (Shao et al. 2024): a reward minus the mean of its group (the
  G rollouts of one task), over the group's standard deviation (``std=True``); verl's
  conventions: unbiased std, epsilon 1e-6 added to it, and where the group holds one member
  ``single`` decides: ``"keep"`` (mean 0, std 1: the reward itself, verl's episode groups)
  or ``"zero"`` (its own mean: 0, verl-agent's step groups).
* ``discounted_returns`` and ``anchor_groups``: GiGPO (Feng et al. 2025, Eq. 5-8): the
  steps of one task's rollouts grouped by their anchor state (identical observations), each
  step's discounted return normalised within its group, added to the episode advantage
  with weight ``step_weight``.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence


def _moments(values: Sequence[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 1.0
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(var)


def whitened(values: Sequence[float], eps: float = 1e-6) -> list[float]:
    """(v - mean) / (std + eps) over all ``values`` (unbiased std; one value: 0)."""
    if not values:
        return []
    mean, std = _moments(values)
    return [0.0 if len(values) == 1 else (v - mean) / (std + eps) for v in values]


def group_normalised(
    values: Sequence[float], groups: Sequence[Hashable], *, std: bool = True,
    eps: float = 1e-6, single: str = "keep",
) -> list[float]:  # fmt: skip
    """Each value normalised within its group (see the module docstring)."""
    members: dict[Hashable, list[float]] = {}
    for v, g in zip(values, groups, strict=True):
        members.setdefault(g, []).append(v)
    out = []
    for v, g in zip(values, groups, strict=True):
        group = members[g]
        if len(group) == 1:
            mean, spread = (0.0 if single == "keep" else v), 1.0
        else:
            mean, spread = _moments(group)
        out.append((v - mean) / (spread + eps) if std else v - mean)
    return out


def discounted_returns(rewards: Sequence[float], gamma: float) -> list[float]:
    """G_t = r_t + gamma G_{t+1}, from the last step back."""
    out, running = [0.0] * len(rewards), 0.0
    for t in range(len(rewards) - 1, -1, -1):
        running = rewards[t] + gamma * running
        out[t] = running
    return out


def grpo_advantages(
    outcomes: Sequence[float], groups: Sequence[Hashable], *, std: bool = True,
    eps: float = 1e-6, weights: Sequence[int] | None = None,
) -> list[float]:  # fmt: skip
    """GRPO's outcome advantage of each episode, normalised in its task's group; with
    ``weights`` (each episode's step count) the group's mean and std are taken over steps,
    each episode's outcome counted once per step (verl-agent's GiGPO default,
    ``compute_mean_std_cross_steps``)."""
    if weights is None:
        return group_normalised(outcomes, groups, std=std, eps=eps, single="keep")
    rows = [(o, g) for o, g, w in zip(outcomes, groups, weights, strict=True) for _ in range(w)]
    per_row = iter(group_normalised([o for o, _ in rows], [g for _, g in rows], std=std,
                                    eps=eps, single="keep"))  # fmt: skip
    out = []
    for w in weights:
        values = [next(per_row) for _ in range(w)]
        out.append(values[0] if values else 0.0)
    return out


def gigpo_advantages(
    episodes: Sequence[tuple[Hashable, Sequence[float], Sequence[Hashable]]], *,
    gamma: float = 0.95, step_weight: float = 1.0, std: bool = True, eps: float = 1e-6,
    across_steps: bool = True,
) -> list[list[float]]:  # fmt: skip
    """GiGPO's advantage of every step: ``episodes`` are (task group, the env's reward at
    each step, the anchor state each step acted in). The episode advantage is GRPO's on the
    outcome (the rewards' sum), normalised over the group's steps (``across_steps``,
    verl-agent's default: an episode weighs by its length) or over its episodes (the
    paper's Eq. 3, one value per episode); the step advantage each step's discounted return
    normalised within the steps that share its group and anchor state (Eq. 7; a state no
    other step shares: 0), joined as Eq. 8; verl-agent's ALFWorld settings by default
    (gamma 0.95, weight 1, ``mean_std_norm``; ``std=False`` is its ``mean_norm``)."""
    groups = [g for g, _, _ in episodes]
    lengths = [len(r) for _, r, _ in episodes] if across_steps else None
    episode = grpo_advantages([sum(r) for _, r, _ in episodes], groups, std=std, eps=eps,
                              weights=lengths)  # fmt: skip
    rows = [(e, t) for e, (_, rewards, _) in enumerate(episodes) for t in range(len(rewards))]
    returns = [discounted_returns(rewards, gamma) for _, rewards, _ in episodes]
    step = group_normalised([returns[e][t] for e, t in rows],
                            [(episodes[e][0], episodes[e][2][t]) for e, t in rows],
                            std=std, eps=eps, single="zero")  # fmt: skip
    out: list[list[float]] = [[] for _ in episodes]
    for (e, _), s in zip(rows, step, strict=True):
        out[e].append(episode[e] + step_weight * s)
    return out
