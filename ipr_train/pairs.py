"""IPR's contrastive pairs (§3.3): step pairs from expert prefixes, outcome pairs from whole
trajectories.

Step pair at step t: the agent's step reward is lower than the expert's by more than tau
(r_s(e_t) - r_s(a_t) > tau) and the agent's outcome is lower than the expert's; then the
prompt is the expert prefix e_{t-1} (as turns), chosen the expert's remaining trajectory
e_{t:n}, rejected the agent's continuation e_{t:m}, observations included (they are context
turns: only assistant tokens carry loss). Outcome pair: the agent's own whole episode (the
branch from step 0) scored lower than the expert's; the prompt is the opening turns.

tau per env as in the paper: ALFWorld 0.5, WebShop 0.01, InterCodeSQL 0.1 (the released
scripts use 0.01 everywhere).
"""

from __future__ import annotations

from collections.abc import Sequence

from ipr_train.explore import ExpertPath
from ipr_train.records import Pair, Trajectory

PAPER_TAU = {"ipr/ALFWorld-v0": 0.5, "ipr/WebShop-v0": 0.01, "ipr/InterCodeSQL-v0": 0.1}
RELEASED_TAU = 0.01


def build_pairs(
    paths: Sequence[ExpertPath],
    branches: Sequence[Trajectory],
    expert_rewards: dict[tuple[int, int], float],
    agent_rewards: dict[tuple[int, int], float],
    *,
    tau: float,
    iteration: int,
    step_pairs: bool = True,
) -> list[Pair]:
    """Pairs from the agent's ``branches`` (meta ``expert`` and ``step``) and the step rewards
    (Monte Carlo means) of the expert's and the agent's action at each (expert, step);
    ``step_pairs=False``: outcome pairs only (no step rewards needed)."""
    pairs = []
    for branch in branches:
        index, t = branch.meta["expert"], branch.meta["step"]
        expert = paths[index].trajectory
        if not branch.steps or "error" in branch.meta:
            continue  # the agent never acted here: nothing to contrast
        prompt = expert.turns[: expert.steps[t].turn]
        if branch.turns[: len(prompt)] != prompt:
            raise ValueError(f"branch {branch.id} does not continue its expert prefix")
        chosen, rejected = expert.turns[len(prompt) :], branch.turns[len(prompt) :]
        provenance = {
            "iteration": iteration,
            "expert": expert.id,
            "step": t,
            "chosen_outcome": expert.reward,
            "rejected_outcome": branch.reward,
        }
        worse_outcome = branch.reward < expert.reward
        if t == 0 and worse_outcome:
            pairs.append(
                Pair(
                    prompt=prompt,
                    chosen=chosen,
                    rejected=rejected,
                    kind="outcome",
                    step=0,
                    chosen_reward=expert.reward,
                    rejected_reward=branch.reward,
                    env_id=expert.env_id,
                    task=expert.task,
                    id=f"it{iteration}/{expert.id}/outcome",
                    meta=provenance,
                )
            )
        if not step_pairs:
            continue
        ours, theirs = agent_rewards[(index, t)], expert_rewards[(index, t)]
        if theirs - ours > tau and worse_outcome:
            pairs.append(
                Pair(
                    prompt=prompt,
                    chosen=chosen,
                    rejected=rejected,
                    kind="step",
                    step=t,
                    chosen_reward=theirs,
                    rejected_reward=ours,
                    env_id=expert.env_id,
                    task=expert.task,
                    id=f"it{iteration}/{expert.id}/step{t}",
                    meta=provenance,
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
