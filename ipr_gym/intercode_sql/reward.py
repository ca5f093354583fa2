"""InterCode-SQL's reward, exactly as InterCode computes it.

Rows are compared as strings (``str`` of each row tuple). The reward is the intersection
over union of the two multisets of rows; when they share rows it is scaled by Kendall's
tau-b between the shared rows in the agent's order and in the gold order, then rounded to
2 decimals (only then) the way numpy rounds: InterCode rounds scipy's numpy float, so
0.075 gives 0.08 there where Python's ``round`` gives 0.07. Both empty: 1. An agent
answer that is not a result set (an error, a statement without rows): 0. A gold query
that fails counts as an empty result. Tau can be negative, so rewards in [-1, 0) happen
(a correct answer in reverse order); they are kept, as in InterCode.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence


def kendall_tau_b(x: Sequence[str], y: Sequence[str]) -> float:
    """Kendall's tau-b of two equally long sequences, with scipy's arithmetic and NaNs.

    Values are ranked by their sort order; NaN when either side is all ties (or shorter
    than 2). Computed as scipy.stats.kendalltau does, so the float is the same bit for bit.
    """
    n = len(x)
    if n != len(y):
        raise ValueError(f"sequences differ in length: {n} vs {len(y)}")
    total = n * (n - 1) // 2
    x_ties = sum(c * (c - 1) // 2 for c in Counter(x).values())
    y_ties = sum(c * (c - 1) // 2 for c in Counter(y).values())
    if n < 2 or x_ties == total or y_ties == total:
        return math.nan
    both_ties = sum(c * (c - 1) // 2 for c in Counter(zip(x, y, strict=True)).values())
    discordant = 0
    for i in range(n):
        for j in range(i + 1, n):
            if (x[i] < x[j] and y[i] > y[j]) or (x[i] > x[j] and y[i] < y[j]):
                discordant += 1
    concordant_minus_discordant = total - x_ties - y_ties + both_ties - 2 * discordant
    tau = concordant_minus_discordant / math.sqrt(total - x_ties) / math.sqrt(total - y_ties)
    return min(1.0, max(-1.0, tau))


def _shared_in_order(rows: Sequence[str], shared: Counter[str]) -> list[str]:
    """The rows of ``rows`` that are in the intersection, each taken as often as shared."""
    left = Counter(shared)
    out = []
    for row in rows:
        if left[row] > 0:
            left[row] -= 1
            out.append(row)
    return out


def intercode_reward(agent: Sequence[tuple] | None, gold: Sequence[tuple] | None) -> float:
    """The reward of an agent's last result against the gold result.

    ``agent`` is None when the agent's last action produced no result set: an error, or a
    statement without one (``USE``, a comment), whose observation is ``None``;
    ``gold`` is None when the gold query failed, which counts as an empty result.
    """
    if agent is None:
        return 0.0
    agent_rows = [str(row) for row in agent]
    gold_rows = [str(row) for row in gold or ()]
    agent_counts, gold_counts = Counter(agent_rows), Counter(gold_rows)
    shared = agent_counts & gold_counts
    union = agent_counts | gold_counts
    if not union:
        return 1.0
    reward = sum(shared.values()) / sum(union.values())
    if shared:
        tau = kendall_tau_b(
            _shared_in_order(agent_rows, shared), _shared_in_order(gold_rows, shared)
        )
        if not math.isnan(tau):
            reward = numpy_round(tau * reward, 2)
    return reward


def numpy_round(x: float, decimals: int) -> float:
    """``round`` of a numpy float: scale, round half to even, scale back (numpy's
    arithmetic, so the float is the same bit for bit)."""
    scale = 10.0**decimals
    return round(x * scale) / scale
