"""The reward is InterCode's: IoU of stringified row multisets scaled by Kendall tau-b."""

import math
import random
from collections import Counter
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import kendalltau

from ipr_gym.intercode_sql.reward import intercode_reward, kendall_tau_b


def reference_reward(agent, gold):
    """InterCode's definition, written from its description, with scipy's kendalltau."""
    if agent is None:
        return 0.0
    a, g = [str(r) for r in agent], [str(r) for r in gold or []]
    shared, union = Counter(a) & Counter(g), Counter(a) | Counter(g)
    if not union:
        return 1
    reward = sum(shared.values()) / sum(union.values())
    if shared:

        def keep(rows):
            left, out = Counter(shared), []
            for r in rows:
                if left[r]:
                    left[r] -= 1
                    out.append(r)
            return out

        tau = kendalltau(keep(a), keep(g), nan_policy="omit").statistic
        if not math.isnan(tau):  # InterCode rounds the numpy float scipy gives
            reward = float(np.round(np.float64(tau) * reward, 2))
    return reward


@pytest.mark.parametrize(
    ("agent", "gold", "expected"),
    [
        ([(1,), (2,)], [(1,), (2,)], 1.0),  # same rows, same order
        ([(2,), (1,)], [(1,), (2,)], -1.0),  # order reversed: tau -1, kept negative
        ([(1,), (2,), (3,)], [(1,), (3,), (2,)], 0.33),  # one swap: tau 1/3
        ([(1,), (1,), (2,)], [(1,), (2,)], 0.67),  # duplicate: IoU 2/3, tau 1
        ([(None,)], [(None,)], 1.0),  # NULL compares as the string "(None,)"
        ([(Decimal("1.5"),)], [(1.5,)], 0.0),  # Decimal('1.5') is not 1.5 as text
        ([], [], 1.0),  # both empty
        ([], [(1,)], 0.0),
        ([(1,)], [], 0.0),
        (None, [(1,)], 0.0),  # the agent's last statement failed
        ([], None, 1.0),  # a failing gold is an empty result
        ([(1,)], None, 0.0),
        ([(1,), (9,)], [(1,)], 0.5),  # one shared row: tau is NaN, IoU 1/2 unscaled
        # the first 3 of 40 gold rows in order: IoU 0.075, rounded as numpy rounds
        ([(i,) for i in range(3)], [(i,) for i in range(40)], 0.08),
        ([(i,) for i in range(5)], [(i,) for i in range(8)], 0.62),  # 0.625: half to even
    ],
)
def test_reward_edge_cases(agent, gold, expected):
    assert intercode_reward(agent, gold) == expected


def test_reward_matches_the_scipy_reference_on_random_results():
    rng = random.Random(0)
    for _ in range(2000):
        values = list(range(rng.randint(1, 6)))
        agent = [(rng.choice(values),) for _ in range(rng.randint(0, 8))]
        gold = [(rng.choice(values),) for _ in range(rng.randint(0, 8))]
        assert intercode_reward(agent, gold) == reference_reward(agent, gold), (agent, gold)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.integers(0, 30), max_size=60),
    st.lists(st.integers(0, 30), max_size=60),
)
def test_reward_matches_intercode_on_generated_row_sets(agent, gold):
    """Large row sets reach the rounding ties (x.xx5) that small ones never do."""
    agent_rows, gold_rows = [(v,) for v in agent], [(v,) for v in gold]
    expected = reference_reward(agent_rows, gold_rows)
    assert intercode_reward(agent_rows, gold_rows) == expected


def test_tau_b_is_bit_identical_to_scipy():
    rng = random.Random(1)
    for _ in range(2000):
        n = rng.randint(2, 9)
        x = [str(rng.randint(0, 4)) for _ in range(n)]
        y = [str(rng.randint(0, 4)) for _ in range(n)]
        ours, theirs = kendall_tau_b(x, y), kendalltau(x, y).statistic
        assert (math.isnan(ours) and math.isnan(theirs)) or ours == theirs
