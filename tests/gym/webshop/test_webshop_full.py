"""``catalog="full"``: WebShop's file layout, human goals in session order and IPR's split
indices, on a catalog generated in WebShop's format (the real one is not on this machine)."""

from __future__ import annotations

import json
import random

import gymnasium as gym
import pytest

import ipr_gym  # noqa: F401 - registers the ids
from ipr_gym.data import install_from
from ipr_gym.webshop.generate import write_catalog
from ipr_gym.webshop.goals import SHUFFLE_SEED

PRODUCTS, HUMAN = 3000, 600


@pytest.fixture(scope="module")
def full_data(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("full-data")
    install_from("webshop", shared_data, root)
    written = write_catalog(root / "webshop", PRODUCTS, seed=3, human_goals=HUMAN)
    return root, written


def test_the_generated_catalog_is_in_webshops_format(full_data):
    root, written = full_data
    items = json.loads((root / "webshop" / "items_shuffle.json").read_text())
    human = json.loads((root / "webshop" / "items_human_ins.json").read_text())
    assert written["products"] == len(items) == PRODUCTS
    assert len({p["asin"] for p in items}) == PRODUCTS
    assert all(len(p["asin"]) == 10 for p in items)
    assert written["human_goals"] == len(human) == HUMAN
    assert set(items[0]) >= {"asin", "name", "full_description", "small_description",
                             "pricing", "customization_options", "images", "category",
                             "query", "product_category"}  # fmt: skip
    # same seed, same bytes
    again = write_catalog(root / "again", 200, seed=3, human_goals=40)
    first = write_catalog(root / "first", 200, seed=3, human_goals=40)
    assert again["bytes"] == first["bytes"]
    assert (root / "again" / "items_shuffle.json").read_bytes() == (
        root / "first" / "items_shuffle.json"
    ).read_bytes()


def test_full_catalog_plays_human_goals_on_ipr_splits(full_data, shared_data):
    root, _ = full_data
    env = gym.make("ipr/WebShop-v0", catalog="full", split="test", data_dir=str(root))
    shop = env.unwrapped
    assert shop.goal_kind == "human" and len(shop.world.goals) == HUMAN
    # tasks are IPR's test indices that exist among this catalog's human goals
    ipr_test = json.loads((shared_data / "webshop" / "ipr" / "test_indices.json").read_text())
    assert list(shop.tasks) == [i for i in ipr_test if i < HUMAN] and len(shop.tasks) > 0
    # session order: built product by product, then WebShop's shuffle with seed 233
    human = json.loads((root / "webshop" / "items_human_ins.json").read_text())
    items = json.loads((root / "webshop" / "items_shuffle.json").read_text())
    in_file_order = [ins["instruction"] for p in items for ins in human.get(p["asin"], ())]
    random.Random(SHUFFLE_SEED).shuffle(in_file_order)
    goals = [g.instruction for g in shop.world.goals]
    assert [g.split(", and price lower than")[0] for g in goals] == in_file_order

    wins = 0
    for task in shop.tasks[:5]:
        env.reset(options={"task": task})
        for action in shop.expert_actions(task):
            _, reward, done, _, _ = env.step(action)
        assert done
        wins += reward == 1.0
    assert wins == min(5, len(shop.tasks))
