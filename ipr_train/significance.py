"""Which differences between methods are real: a bootstrap confidence interval of a mean
reward over tasks and seeds, and a paired sign-flip (permutation) test between two methods
on the same tasks.

Both are seeded, so the same numbers give the same interval and p-value on every machine.

* ``bootstrap_interval``: rewards as a tasks x seeds matrix; each resample draws tasks with
  replacement and, independently, seeds with replacement, and takes the mean of the drawn
  cells; the interval is the percentile interval of those means. Tasks and seeds are both
  sources of noise: a method evaluated on other goals, or trained with another seed, would
  score differently.
* ``paired_test``: per task, the difference of the two methods' rewards (each averaged over
  its seeds first: seeds pooled); under the null hypothesis every difference is as likely
  positive as negative, so the p-value is the share of sign assignments whose mean
  difference is at least as far from 0 as the observed one (two-sided). Exact for up to 16
  tasks with a non-zero difference, a seeded Monte Carlo of ``resamples`` assignments beyond.
"""

from __future__ import annotations

from collections.abc import Sequence

EXACT_UP_TO = 16


def bootstrap_interval(
    rewards: Sequence[Sequence[float]], *, level: float = 0.95, resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:  # fmt: skip
    """(mean, low, high) of the mean over a tasks x seeds matrix of rewards."""
    import numpy as np

    matrix = np.asarray(rewards, dtype=np.float64)
    if matrix.ndim != 2 or matrix.size == 0:
        raise ValueError("rewards: a non-empty tasks x seeds matrix")
    tasks, seeds = matrix.shape
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for k in range(resamples):
        rows = rng.integers(0, tasks, tasks)
        cols = rng.integers(0, seeds, seeds)
        means[k] = matrix[np.ix_(rows, cols)].mean()
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(matrix.mean()), float(low), float(high)


def paired_test(
    a: Sequence[float], b: Sequence[float], *, resamples: int = 20000, seed: int = 0
) -> float:
    """Two-sided p-value that the per-task rewards ``a`` and ``b`` (same tasks, same order)
    have the same mean."""
    import itertools

    import numpy as np

    if len(a) != len(b) or not a:
        raise ValueError("paired_test: the same non-empty list of tasks on both sides")
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    diff = diff[np.abs(diff) > 1e-12]  # a zero difference is the same under every sign
    if diff.size == 0:
        return 1.0
    observed = abs(diff.sum()) - 1e-12
    if diff.size <= EXACT_UP_TO:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=diff.size)))
    else:
        rng = np.random.default_rng(seed)
        signs = rng.choice((1.0, -1.0), size=(resamples, diff.size))
    sums = np.abs(signs @ diff)
    return float((sums >= observed).mean())
