"""The kit passes a correct env and catches each deliberately broken one."""

import pytest
import toy_variants

from ipr_gym.testing.conformance import (
    ConformanceError,
    Walk,
    check_conformance,
    check_determinism,
    check_malformed_actions,
    check_snapshot_restore,
    random_walks,
)
from ipr_gym.testing.toy import ToyEnv


def test_correct_toy_env_passes():
    check_conformance(ToyEnv)


def test_correct_toy_env_passes_by_replay_when_it_has_no_fast_snapshot():
    check_conformance(toy_variants.ReplayOnlyToy)


@pytest.mark.parametrize(
    ("variant", "complaint"),
    [
        (toy_variants.ForgetfulSnapshotToy, "restore at step"),
        (toy_variants.RaisingToy, "raised ValueError"),
        (toy_variants.LeakyInvalidToy, "continuing after malformed actions"),
        (toy_variants.ProcessBoundToy, "fresh process"),
    ],
)
def test_broken_variant_fails(variant, complaint):
    with pytest.raises(ConformanceError, match=complaint):
        check_conformance(variant)


def test_determinism_check_alone_catches_process_bound_text():
    walks = random_walks(toy_variants.ProcessBoundToy, n_walks=2, max_length=3, seed=1)
    check_determinism(toy_variants.ProcessBoundToy, walks, fresh_process=False)
    with pytest.raises(ConformanceError, match="fresh process"):
        check_determinism(toy_variants.ProcessBoundToy, walks)


def test_malformed_check_alone_catches_an_env_that_raises():
    walks = random_walks(ToyEnv, n_walks=3, max_length=5, seed=2, malformed=())
    check_malformed_actions(ToyEnv, walks)
    with pytest.raises(ConformanceError, match="raised ValueError"):
        check_malformed_actions(toy_variants.RaisingToy, walks)


def test_snapshot_check_alone_catches_a_forgetful_snapshot():
    walks = [Walk("garden", ("take key", "go to garden", "go to shed", "look"))]
    check_snapshot_restore(ToyEnv, walks, fresh_process=False)
    with pytest.raises(ConformanceError, match="restore at step"):
        check_snapshot_restore(
            toy_variants.ForgetfulSnapshotToy, walks, cuts_per_walk=8, fresh_process=False
        )
