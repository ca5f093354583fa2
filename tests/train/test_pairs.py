"""IPR's pair rules on hand-made trajectories: which branches pair, in which direction, and
with which turns, written out case by case from the release's
``construct_preference_monte_carlo_webshop.py`` (``--traj_threshold 0.01 --step_threshold
0.01``, both directions, no local pairs at step 0) and the paper's Eq. 6-7."""

from __future__ import annotations

import pytest

from ipr_train.explore import ExpertPath
from ipr_train.pairs import build_pairs
from ipr_train.records import EnvStep, Trajectory, Turn

U, A = "user", "assistant"


def _expert(index: int, reward: float) -> ExpertPath:
    turns = (Turn("system", "shop"), Turn(U, "obs0"), Turn(A, f"e{index}a0"), Turn(U, "obs1"),
             Turn(A, f"e{index}a1"), Turn(U, "obs2"), Turn(A, f"e{index}a2"))  # fmt: skip
    steps = tuple(EnvStep(f"e{index}a{t}", f"obs{t + 1}", turn=2 + 2 * t) for t in range(3))
    trajectory = Trajectory("ipr/WebShop-v0", index, turns, steps, reward, id=f"x{index}")
    return ExpertPath(trajectory, snapshots=(None,) * 4)  # type: ignore[arg-type]


def _branch(path: ExpertPath, t: int, reward: float) -> Trajectory:
    expert = path.trajectory
    prefix = expert.turns[: expert.steps[t].turn]
    mine = (Turn(A, f"agent{t}"), Turn(U, "agent-obs"), Turn(A, "agent-next"))
    steps = (EnvStep(f"agent{t}", "agent-obs", turn=len(prefix)),
             EnvStep("agent-next", "end", turn=len(prefix) + 2))  # fmt: skip
    meta = {"expert": expert.task, "step": t}
    return Trajectory(expert.env_id, expert.task, prefix + mine, steps, reward,
                      id=f"b{expert.task}.{t}", meta=meta)  # fmt: skip


# expert outcome, step t, agent outcome, expert step reward, agent step reward,
# then the pairs each rule forms: (kind, chosen side) lists
CASES = [
    (0.5, 0, 0.2, 0.6, 0.1, [("outcome", "expert")], [("outcome", "expert")]),
    (0.5, 0, 0.9, 0.2, 0.8, [("outcome", "agent")], []),
    (0.5, 0, 0.495, 0.5, 0.5, [], [("outcome", "expert")]),  # inside the release's margin
    (0.5, 0, 0.505, 0.5, 0.5, [], []),  # better inside the margin: the paper never pairs
    (0.5, 0, 0.5, 0.9, 0.1, [], []),  # a tie
    (0.5, 1, 0.2, 0.6, 0.3, [("step", "expert")], [("step", "expert")]),
    (0.5, 1, 0.9, 0.3, 0.8, [("step", "agent")], []),
    (0.5, 2, 0.2, 0.3, 0.7, [], []),  # outcome and step reward disagree
    (0.5, 2, 0.2, 0.35, 0.3, [], []),  # the step gap is under tau
    (0.5, 2, 0.495, 0.9, 0.1, [], [("step", "expert")]),  # outcome inside the margin
]


@pytest.mark.parametrize("rule", ["release", "paper"])
def test_pairs_follow_the_rule_case_by_case(rule):
    paths = [_expert(i, c[0]) for i, c in enumerate(CASES)]
    branches = [_branch(paths[i], c[1], c[2]) for i, c in enumerate(CASES)]
    expert_rewards = {(i, c[1]): c[3] for i, c in enumerate(CASES)}
    agent_rewards = {(i, c[1]): c[4] for i, c in enumerate(CASES)}
    pairs = build_pairs(paths, branches, expert_rewards, agent_rewards, tau=0.1,
                        iteration=1, rule=rule)  # fmt: skip
    expected = [(i, kind, side) for i, c in enumerate(CASES)
                for kind, side in (c[5] if rule == "release" else c[6])]  # fmt: skip
    assert [(p.task, p.kind, p.meta["chosen"]) for p in pairs] == expected
    for pair in pairs:
        i, t = pair.task, pair.step
        expert, agent = paths[i].trajectory.turns[2 + 2 * t :], branches[i].turns[2 + 2 * t :]
        assert pair.prompt == paths[i].trajectory.turns[: 2 + 2 * t]
        chosen, rejected = (expert, agent) if pair.meta["chosen"] == "expert" else (agent, expert)
        assert (pair.chosen, pair.rejected) == (chosen, rejected)
        scores = (CASES[i][0], CASES[i][2]) if pair.kind == "outcome" else CASES[i][3:5]
        scores = scores if pair.meta["chosen"] == "expert" else scores[::-1]
        assert (pair.chosen_reward, pair.rejected_reward) == scores


def test_step_pairs_at_the_start_only_when_asked_and_kinds_are_dropped():
    path = _expert(0, 0.5)
    branch = _branch(path, 0, 0.2)
    rewards = ({(0, 0): 0.6}, {(0, 0): 0.1})
    default = build_pairs([path], [branch], *rewards, tau=0.1, iteration=1)
    assert [p.kind for p in default] == ["outcome"]
    both = build_pairs([path], [branch], *rewards, tau=0.1, iteration=1,
                       step_pairs_at_start=True)  # fmt: skip
    assert [p.kind for p in both] == ["outcome", "step"]
    assert both[0].chosen == both[1].chosen  # at t = 0 the two kinds hold the same turns
    only_step = build_pairs([path], [branch], *rewards, tau=0.1, iteration=1,
                            kinds=("step",), step_pairs_at_start=True)  # fmt: skip
    assert [p.kind for p in only_step] == ["step"]
    outcome_only = build_pairs([path], [branch], {}, {}, tau=0.1, iteration=1,
                               kinds=("outcome",))  # no step rewards needed  # fmt: skip
    assert [p.kind for p in outcome_only] == ["outcome"]
    with pytest.raises(ValueError, match="pair rule"):
        build_pairs([path], [branch], *rewards, tau=0.1, iteration=1, rule="mine")
