"""IPR's contrastive pairs (§3.3): step pairs from expert prefixes, outcome pairs from whole
trajectories.

Two rules, ``release`` the default:

* ``release`` (IPR's released ``construct_preference_monte_carlo_*.py`` as its
  ``run_pipeline.sh`` calls it: ``--global_traj --local_traj --traj_threshold 0.01
  --step_threshold 0.01``): pairs in both directions. Outcome pair, from the agent's own
  whole episode (the branch from step 0): the side whose outcome is higher by more than
  ``outcome_margin`` (0.01) is chosen. Step pair at step t >= 1: the agent's side is chosen
  when its outcome beats the expert's by more than ``outcome_margin`` and its step reward
  beats the expert's by more than tau; the expert's side when the same holds the other way.
* ``paper`` (Eq. 6-7 as written): the expert's side is always chosen; an outcome pair when
  the agent's outcome is lower, a step pair when r_s(e_t) - r_s(a_t) > tau and the agent's
  outcome is lower.

A step pair's prompt is the expert prefix e_{t-1} (as turns), its sides the expert's
remaining trajectory e_{t:n} and the agent's continuation e_{t:m}, observations included
(context turns: only assistant tokens carry loss). No step pairs at t = 0 by default (the
release skips them: at t = 0 a step pair repeats the outcome pair's trajectories);
``step_pairs_at_start`` forms them. The release's ALFWorld-only rule that counts a shorter
agent continuation as a win is not implemented.

tau per env as in the paper: ALFWorld 0.5, WebShop 0.01, InterCodeSQL 0.1 (the released
scripts use 0.01 everywhere).
"""

from __future__ import annotations

from collections.abc import Sequence

from ipr_train.explore import ExpertPath
from ipr_train.records import Pair, Trajectory

PAPER_TAU = {"ipr/ALFWorld-v0": 0.5, "ipr/WebShop-v0": 0.01, "ipr/InterCodeSQL-v0": 0.1}
RELEASED_TAU = 0.01
RELEASED_OUTCOME_MARGIN = 0.01
PAIR_KINDS = ("outcome", "step")


def _winner(expert: float, agent: float, margin: float, both: bool) -> str | None:
    """Which side a comparison chooses: "expert", "agent" or None (a tie)."""
    if expert - agent > margin:
        return "expert"
    if both and agent - expert > margin:
        return "agent"
    return None


def build_pairs(
    paths: Sequence[ExpertPath],
    branches: Sequence[Trajectory],
    expert_rewards: dict[tuple[int, int], float],
    agent_rewards: dict[tuple[int, int], float],
    *,
    tau: float,
    iteration: int,
    rule: str = "release",
    outcome_margin: float = RELEASED_OUTCOME_MARGIN,
    kinds: Sequence[str] = PAIR_KINDS,
    step_pairs_at_start: bool = False,
) -> list[Pair]:
    """Pairs from the agent's ``branches`` (meta ``expert`` and ``step``) and the step rewards
    (Monte Carlo means) of the expert's and the agent's action at each (expert, step), of
    the ``kinds`` asked for (``("outcome",)``: no step rewards needed); see the module
    docstring for ``rule``. ``outcome_margin`` applies to the release rule only (the paper's
    is 0)."""
    if rule not in ("release", "paper"):
        raise ValueError(f"pair rule: 'release' or 'paper', got {rule!r}")
    both = rule == "release"
    margin = outcome_margin if both else 0.0
    pairs = []
    for branch in branches:
        index, t = branch.meta["expert"], branch.meta["step"]
        expert = paths[index].trajectory
        if not branch.steps or "error" in branch.meta:
            continue  # the agent never acted here: nothing to contrast
        prompt = expert.turns[: expert.steps[t].turn]
        if branch.turns[: len(prompt)] != prompt:
            raise ValueError(f"branch {branch.id} does not continue its expert prefix")
        sides = {"expert": expert.turns[len(prompt) :], "agent": branch.turns[len(prompt) :]}
        outcome = _winner(expert.reward, branch.reward, margin, both)
        candidates = []
        if t == 0 and "outcome" in kinds and outcome is not None:
            candidates.append(("outcome", outcome, expert.reward, branch.reward, "outcome"))
        if "step" in kinds and (t > 0 or step_pairs_at_start) and outcome is not None:
            theirs, ours = expert_rewards[(index, t)], agent_rewards[(index, t)]
            if _winner(theirs, ours, tau, both) == outcome:
                candidates.append(("step", outcome, theirs, ours, f"step{t}"))
        for kind, chosen, theirs, ours, name in candidates:
            loser = "agent" if chosen == "expert" else "expert"
            pairs.append(
                Pair(
                    prompt=prompt,
                    chosen=sides[chosen],
                    rejected=sides[loser],
                    kind=kind,  # type: ignore[arg-type]
                    step=t,
                    chosen_reward=theirs if chosen == "expert" else ours,
                    rejected_reward=ours if chosen == "expert" else theirs,
                    env_id=expert.env_id,
                    task=expert.task,
                    id=f"it{iteration}/{expert.id}/{name}",
                    meta={
                        "iteration": iteration,
                        "expert": expert.id,
                        "step": t,
                        "chosen": chosen,
                        "expert_outcome": expert.reward,
                        "agent_outcome": branch.reward,
                    },
                )
            )
    return pairs


def action_pairs(
    paths: Sequence[ExpertPath], branches: Sequence[Trajectory], *, iteration: int
) -> list[Pair]:
    """StepAgent-Implicit's pairs (its Eq. 6): at expert prefix t, the expert's reply chosen
    and the agent's own reply there (its first, from ``branches`` with meta ``expert``,
    ``step`` and ``sample``) rejected, where the agent's action differs from the expert's."""
    pairs = []
    for branch in branches:
        index, t = branch.meta["expert"], branch.meta["step"]
        expert = paths[index].trajectory
        if not branch.steps or branch.steps[0].action == expert.steps[t].action:
            continue  # no action of the agent's, or the expert's own: nothing to contrast
        turn = expert.steps[t].turn
        prompt = expert.turns[:turn]
        if branch.turns[:turn] != prompt:
            raise ValueError(f"branch {branch.id} does not continue its expert prefix")
        pairs.append(
            Pair(
                prompt=prompt,
                chosen=(expert.turns[turn],),
                rejected=(branch.turns[turn],),
                kind="step",
                step=t,
                env_id=expert.env_id,
                task=expert.task,
                id=f"it{iteration}/{expert.id}/step{t}/sample{branch.meta.get('sample', 0)}",
                meta={"iteration": iteration, "expert": expert.id, "step": t},
            )
        )
    return pairs
