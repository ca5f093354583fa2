"""The comparison's statistics against independent computations: scipy's permutation test
(its exact sign-flip enumeration for paired samples) and a bootstrap written out here with
Python's own random module."""

from __future__ import annotations

import random
import statistics

import numpy as np
import pytest
from scipy import stats

from ipr_train.significance import bootstrap_interval, paired_test


def _scipy_paired(a, b, n_resamples=100000):
    result = stats.permutation_test(
        (a, b), lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis),
        permutation_type="samples", alternative="two-sided", n_resamples=n_resamples,
        vectorized=True,
    )  # fmt: skip
    return result.pvalue


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_exact_paired_test_equals_scipys(seed):
    rng = random.Random(seed)
    a = [rng.choice([0.0, 0.25, 0.5, 1.0]) for _ in range(12)]
    b = [x + rng.choice([-0.25, 0.0, 0.1, 0.3]) for x in a]
    nonzero = sum(abs(x - y) > 1e-12 for x, y in zip(a, b, strict=True))
    assert nonzero <= 12  # exact enumeration on both sides
    assert paired_test(a, b) == pytest.approx(_scipy_paired(a, b), abs=1e-9)


def test_the_monte_carlo_paired_test_is_close_to_scipys_exact_answer():
    rng = random.Random(7)
    a = [rng.random() for _ in range(18)]
    b = [x - 0.15 + rng.gauss(0, 0.3) for x in a]
    exact = _scipy_paired(a, b, n_resamples=2**18)  # 2^18 sign assignments: scipy's exact
    assert paired_test(a, b, resamples=50000) == pytest.approx(exact, abs=0.01)
    assert paired_test(a, b) == paired_test(a, b)  # seeded


def test_identical_methods_and_a_clear_gap():
    same = [0.1, 0.5, 0.7]
    assert paired_test(same, same) == 1.0
    better = [x + 0.5 for x in [0.0] * 10]
    assert paired_test(better, [0.0] * 10) == pytest.approx(2 / 2**10)
    with pytest.raises(ValueError, match="same non-empty list"):
        paired_test([1.0], [1.0, 2.0])


def test_bootstrap_interval_equals_a_written_out_resampling():
    rng = random.Random(3)
    matrix = [[rng.random() for _ in range(3)] for _ in range(40)]
    mean, low, high = bootstrap_interval(matrix, resamples=4000, seed=5)
    assert mean == pytest.approx(statistics.mean(x for row in matrix for x in row))
    draws = random.Random(11)
    means = []
    for _ in range(4000):  # tasks drawn with replacement, and the seeds, independently
        rows = [draws.randrange(40) for _ in range(40)]
        cols = [draws.randrange(3) for _ in range(3)]
        means.append(statistics.mean(matrix[r][c] for r in rows for c in cols))
    means.sort()
    # an independent resampling (another generator): the same interval up to Monte Carlo noise
    assert low == pytest.approx(means[int(0.025 * 4000)], abs=0.02)
    assert high == pytest.approx(means[int(0.975 * 4000)], abs=0.02)
    assert low < mean < high
    assert bootstrap_interval(matrix, seed=5) == bootstrap_interval(matrix, seed=5)
    with pytest.raises(ValueError, match="tasks x seeds"):
        bootstrap_interval([])
