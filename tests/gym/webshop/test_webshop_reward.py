"""WebShop's reward on hand-worked cases: WebShop's own test cases (tests/web-agent-site/
engine/test_goal.py) and sums worked out here by hand from the reward's definition."""

from __future__ import annotations

import math

import pytest

from ipr_gym.webshop.catalog import Product
from ipr_gym.webshop.goals import Goal
from ipr_gym.webshop.reward import (
    GoalScorer,
    attribute_matches,
    option_matches,
    purchase_reward,
    type_match,
)


def product(**kw) -> Product:
    base = dict(
        asin="B000000001", title="Name 1", description="", bullets=(), pricing=(10.0,),
        price_tag="$10.0", options={}, option_images={}, attributes=(), category="c",
        query="Query 1", product_category="a › b › c", image="",
    )  # fmt: skip
    base.update(kw)
    return Product(**base)


def goal(**kw) -> Goal:
    base = dict(
        asin="B000000001", instruction="", attributes=("x",), options=(), price_upper=40.0,
        query="Query 1", category="c", product_category="a › b › c", name="Name 1",
    )  # fmt: skip
    base.update(kw)
    return Goal(**base)


def test_type_reward_query_category_and_title():
    exact = type_match(product(), goal())
    assert (exact.r_type, exact.query_match, exact.category_match, exact.title_score) == (
        1.0, True, True, 1.0,
    )  # fmt: skip
    assert not type_match(product(query="Query 2"), goal()).query_match
    for path, shared in [("b › c › a", True), ("d › e › f", False), ("a › d › b", True),
                         ("a › a › b", True), ("a › a › d", False)]:  # fmt: skip
        assert type_match(product(product_category=path), goal()).category_match is shared, path


@pytest.mark.parametrize(
    ("wanted", "bought", "score"),
    [
        # 5 of the wanted title's 16 nouns (power, cord, home, theater, system)
        ("Saireed UL Listed 2 Prong Power Cord for JBL Bar 3.1 Bar 2.1 Channel 4K Ultra HD "
         "Soundbar Home Theater System Subwoofer",
         "BRST AC Power Cord Outlet Socket Cable Plug Lead for Panasonic SC-HT830V DVD/VCR "
         "Combo Home Theater System", 5 / 16),
        # 2 of 12 (power, cord)
        ("Saireed UL Listed 2 Prong Power Cord for JBL Bar 3.1 Bar 2.1 Channel 4K Ultra HD "
         "Soundbar",
         "BRST AC Power Cord Outlet Socket Cable Plug Lead for Panasonic SC-HT830V DVD/VCR "
         "Combo Home Theater System", 2 / 12),
        ("Rusticware 921ORB Kitchen and Bath Cabinet Knob",
         "Minkissy 2pcs Stainless Steel Eyebrow Tweezers Blackhead Acne Remover Portable "
         "Makeup Tweezers (Silver)", 0.0),
    ],
)  # fmt: skip
def test_title_score_counts_shared_nouns(wanted, bought, score):
    assert math.isclose(type_match(product(title=bought), goal(name=wanted)).title_score, score)


def test_title_score_thresholds_set_r_type():
    unrelated = type_match(
        product(title="Rusticware Kitchen Cabinet Knob", query="q2", product_category="x › y"),
        goal(name="Minkissy Eyebrow Tweezers"),
    )
    assert unrelated.r_type == 0.0


def test_attribute_reward_cases_from_webshop():
    p = product(attributes=("tea tree", "essential oil", "natural ingredients"))
    assert attribute_matches(p, ["tea tree", "essential oils", "natural ingredients"]) == 3
    p = product(attributes=("essential oil", "natural ingredients"))
    assert attribute_matches(p, ["tea tree", "essential oils", "natural ingredients"]) == 2
    p = product(
        bullets=("This shampoo has essential oils and smells like lemons",),
        description="Best shampoo on the market, made with natural ingredients",
    )
    assert attribute_matches(p, ["tea tree", "essential oils", "natural ingredients"]) == 2
    p = product(
        attributes=("tea bag", "earl gray", "lipton"), title="English tea for breakfast",
        bullets=("Soothing aroma", "Calming, great feeling"),
        description="Best tea made by Lipton, great to pair with breakfast",
    )  # fmt: skip
    assert attribute_matches(p, ["tea tree", "essential oils", "natural ingredients"]) == 0


def test_option_reward_cases_from_webshop():
    assert option_matches(["pack of 12", "grey", "XL"], ["grey", "XL", "pack of 12"]) == 3
    assert option_matches(["pack of 12", "blue", "XL"], ["grey", "XL", "pack of 12"]) == 2
    assert (
        option_matches(
            ["pack of 12", "powder snow", "XL"], ["cool powder snow", "XL", "pack of 12"]
        )
        == 3
    )
    assert option_matches(["goal 1", "goal 2"], []) == 0
    assert option_matches([], ["goal 1", "goal 2"]) == 0
    # colours normalise first: "dark navy blue" and "blue" are both "blue"
    assert option_matches(["dark navy blue"], ["blue"]) == 1


def test_total_reward_sums_match_webshop():
    wanted = goal(
        name="Mens D.O.N. Issue 2 Gca Basketball Sneakers Shoes Casual - Off White",
        attributes=("tea tree", "essential oils", "natural ingredients"),
        options=(("color", "grey"), ("size", "XL")),
    )
    bought = product(
        title="Mens D.O.N. Issue 2 Gca Basketball Sneakers Shoes Casual - Off White",
        attributes=("tea tree", "essential oil", "natural ingredients"),
    )
    chosen = {"color": "grey", "size": "XL"}
    assert purchase_reward(bought, wanted, 35, chosen)[0] == 1.0
    # attributes 1 of 3 (only the description names one), options 2, price 1: 4 / 6
    bought = product(title=bought.title, description="made with natural ingredients")
    assert math.isclose(purchase_reward(bought, wanted, 35, chosen)[0], 4 / 6)
    # a third goal option nobody bought: 4 / 7
    wanted3 = goal(name=wanted.name, attributes=wanted.attributes,
                   options=(*wanted.options, ("amount", "pack of 12")))  # fmt: skip
    assert math.isclose(purchase_reward(bought, wanted3, 35, chosen)[0], 4 / 7)
    # over the price bound: the price point is lost
    assert math.isclose(purchase_reward(bought, wanted3, 45, chosen)[0], 3 / 7)


def test_page_scores_follow_ipr():
    wanted = goal(attributes=("x",), options=("red", "large"), price_upper=40.0)
    shirt = product(
        attributes=("x",), options={"color": ("red", "blue"), "size": ("large", "small")}
    )
    scorer = GoalScorer(wanted)
    # four combinations score (1+2+1)/4, (1+1+1)/4, (1+1+1)/4, (1+0+1)/4: mean 0.75
    assert math.isclose(scorer.results_score([shirt]), 0.75)
    assert scorer.item_score(shirt, {}) == 1.0
    assert math.isclose(scorer.item_score(shirt, {"color": "blue"}), 0.75)


def test_warm_up_loads_the_model_before_any_purchase():
    import subprocess
    import sys

    code = (
        "import sys; from ipr_gym.webshop import reward; "
        "before = 'spacy' in sys.modules; reward.warm_up(); "
        "print(before, reward._nlp.cache_info().currsize, reward.title_nouns('a red shirt'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "1", "('shirt',)"]
