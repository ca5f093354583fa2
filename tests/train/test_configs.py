"""The complete example configs in ``configs/`` (one per method, README's "Every method")
load as their method's config with nothing unknown and nothing missing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ipr_train.config import load_config
from ipr_train.methods import method_of, methods

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


def test_there_is_one_config_per_method():
    assert sorted(yaml.safe_load(p.read_text())["method"] for p in CONFIGS) == sorted(methods())


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_a_config_is_complete_and_loads(path):
    raw = yaml.safe_load(path.read_text())
    cls, _ = method_of(raw)
    cfg = load_config(path, cls)
    assert cfg.model_dump(mode="json") == raw  # every key written out, none unknown
