"""Catalog loading in WebShop's format and goals from human instructions."""

from __future__ import annotations

import json
import math

import gymnasium as gym
import pytest

from ipr_gym.webshop.catalog import DUMMY_ATTR, Catalog, CatalogError, parse_pricing
from ipr_gym.webshop.goals import make_goals
from ipr_gym.webshop.store import in_memory


@pytest.fixture(scope="module")
def webshop_files(installed_data):
    folder = installed_data / "webshop"
    return folder / "items_shuffle_1000.first7.json", folder / "items_ins_v2_1000.json"


def test_products_are_normalised_as_webshop_loads_them(webshop_files):
    catalog = Catalog.from_files(*webshop_files)
    assert len(catalog) == 7
    dress = catalog["B08ZRR3DZT"]
    assert dress.pricing == (19.99, 27.99) and dress.price_tag == "$19.99 to $27.99"
    assert list(dress.options) == ["size", "color"]  # lower-cased names, file order
    assert dress.options["color"][:2] == ("black", "light blue")
    assert dress.attributes == ("polyester spandex", "daily wear")
    assert dress.rating == "N.A." and dress.reviews == ()
    # an attribute record with an empty list keeps it empty; none at all gives DUMMY_ATTR
    assert catalog["B08R3XSC65"].attributes == ()
    alone = Catalog.from_files(webshop_files[0])
    assert alone["B08ZRR3DZT"].attributes == (DUMMY_ATTR,)


@pytest.mark.parametrize(
    ("text", "prices", "tag"),
    [("$12.99", (12.99,), "$12.99"), ("$59.99 - $69.99", (59.99, 69.99), "$59.99 to $69.99"),
     ("$1,299.00", (1299.0,), "$1299.0"), ("", (100.0,), "$100.0"), (None, (100.0,), "$100.0")],
)  # fmt: skip
def test_pricing(text, prices, tag):
    assert parse_pricing(text) == (prices, tag)


def test_bad_records_fail_with_the_product_named(tmp_path, webshop_files):
    raw = json.loads(webshop_files[0].read_text())
    del raw[2]["small_description"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(raw))
    with pytest.raises(CatalogError, match="B09DG92LJL"):
        Catalog.from_files(bad)


def test_streamed_and_limited_loading(tmp_path, webshop_files):
    raw = json.loads(webshop_files[0].read_text())
    many = []
    for i in range(300):  # 2,100 records, asins made unique, 7 duplicates and 1 invalid
        for record in raw:
            many.append(dict(record, asin=f"X{i:03d}{record['asin'][4:]}"))
    many += [*raw, dict(raw[0], asin="nan"), *raw]
    big = tmp_path / "items.json"
    big.write_text(json.dumps(many))
    catalog = Catalog.from_files(big, webshop_files[1])
    assert len(catalog) == 2100 + 7  # repeated asins and "nan" skipped
    assert catalog.products[7].title == raw[0]["name"]
    assert len(Catalog.from_files(big, limit=50)) == 50


def test_human_goals(tmp_path, webshop_files):
    human = {
        "B08ZRR3DZT": [
            {"instruction": "i want a black mini club dress in size large.",
             "instruction_attributes": ["daily wear"], "instruction_options": ["black", "large"]},
            {"instruction": "no attributes here", "instruction_attributes": [],
             "instruction_options": []},
        ],
        "B07B6DVG41": [
            {"instruction": "sulfate free shampoo", "instruction_attributes": ["sulfate free"],
             "instruction_options": []},
        ],
    }  # fmt: skip
    path = tmp_path / "items_human_ins.json"
    path.write_text(json.dumps(human))
    catalog = Catalog.from_files(*webshop_files, human_instructions=path)
    goals, prices = make_goals(in_memory(catalog.products), "human", seed=0)
    assert len(goals) == 2  # the one without attributes is skipped
    dress = next(g for g in goals if g.asin == "B08ZRR3DZT")
    assert dress.instruction.startswith("i want a black mini club dress in size large, and price")
    assert dress.options == ("black", "large")
    assert 19.99 <= prices["B08ZRR3DZT"] <= 27.99

    env = gym.make("ipr/WebShop-v0", catalog=str(webshop_files[0]), split="all",
                   attributes=str(webshop_files[1]), human_instructions=str(path))  # fmt: skip
    shop = env.unwrapped
    assert shop.goal_kind == "human"
    task = next(t for t in shop.tasks if shop.goal(t).asin == "B08ZRR3DZT")
    env.reset(options={"task": task})
    for action in ["search[sheIn mini club dress]", "click[B08ZRR3DZT]", "click[large]",
                   "click[white]", "click[Buy Now]"]:  # fmt: skip
        _, reward, done, _, _ = env.step(action)
    # attribute 1/1, options: "large" yes, "black" no (white bought), price 1 -> 3/4
    assert done and math.isclose(reward, 3 / 4)
