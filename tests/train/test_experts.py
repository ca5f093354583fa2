"""``ipr-train experts``: verified expert sets for the three envs, in the protocol's layout,
with counts of what was kept and dropped written beside the file."""

from __future__ import annotations

import json

import gymnasium as gym
import pytest

from ipr_gym.react import get_protocol
from ipr_gym.webshop.oracle import instruction_key, instruction_query
from ipr_train.cli import main
from ipr_train.experts import alfworld_thought, build_experts
from ipr_train.records import read_trajectories


def test_webshop_oracle_searches_only_with_words_of_the_instruction():
    kept, report = build_experts("ipr/WebShop-v0", "train")
    assert report.kept == report.candidates == 1053 and not report.dropped
    shop = gym.make("ipr/WebShop-v0", split="train").unwrapped
    protocol = get_protocol("ipr/WebShop-v0")
    for t in kept:
        goal = shop.goal(t.task)
        query = t.steps[0].action.removeprefix("search[").removesuffix("]")
        words = set(goal.instruction.lower().replace(",", " ").split())
        assert set(query.replace(",", " ").split()) <= words, (query, goal.instruction)
        assert goal.name.lower() not in query
        assert t.reward == 1.0 and t.steps[-1].action == "click[Buy Now]"
        assert protocol.parse_action(t.turns[t.steps[0].turn].content) == t.steps[0].action
    # some products are found only on a later results page
    assert any(s.action == "click[Next >]" for t in kept for s in t.steps)


def test_the_first_result_shopper_buys_the_first_listed_product():
    kept, report = build_experts(
        "ipr/WebShop-v0", "train", limit=40, min_reward=0.0, source="first_result"
    )
    assert report.kept == report.candidates == 40 and report.sources == {"first_result": 40}
    oracle, _ = build_experts("ipr/WebShop-v0", "train", limit=40)
    for t, best in zip(kept, oracle, strict=True):
        assert t.steps[0].action == best.steps[0].action  # the same query as the oracle
        listed = t.steps[0].observation.split(" [SEP] Next > [SEP] ")[1].split(" [SEP] ")
        assert t.steps[1].action == f"click[{listed[0]}]"  # read off the results page
        assert t.steps[-1].action == "click[Buy Now]" and 0.0 <= t.reward <= 1.0
    assert sum(t.reward for t in kept) < sum(t.reward for t in oracle) == 40
    with pytest.raises(ValueError, match="no expert source 'nearest'; known:"):
        build_experts("ipr/WebShop-v0", "train", source="nearest")


def test_instruction_queries_drop_opening_options_and_price():
    assert (
        instruction_query(
            "Find me usda organic coffee with kosher certified with flavor name: vanilla, and "
            "size: pack of 2, and price lower than 150.00 dollars"
        )
        == "usda organic coffee with kosher certified"
    )
    assert (
        instruction_query(
            "i am looking for high knee womens flat sandals of size 8, and price lower than 40.00 "
            "dollars"
        )
        == "high knee womens flat sandals of size 8"
    )


def test_human_goals_find_their_human_queries(installed_data):
    raw = json.loads((installed_data / "webshop" / "goal_query_map.json").read_text())
    instruction, queries = next(iter(raw.items()))
    # a goal states the instruction without its final period and with WebShop's price clause
    as_goal = instruction.strip(".") + ", and price lower than 30.00 dollars"
    from ipr_gym.webshop.env import human_queries

    assert human_queries(str(installed_data))[instruction_key(as_goal)] == tuple(queries)


def test_intercode_experts_are_gpt_episodes_that_score_one(installed_data):
    kept, report = build_experts("ipr/InterCodeSQL-v0", "train", data_dir=str(installed_data),
                                 limit=60)  # fmt: skip
    assert report.candidates == 60 and report.kept + sum(report.dropped.values()) == 60
    assert report.kept >= 35 and report.sources["GPT-4"] >= 30, report.summary()
    protocol = get_protocol("ipr/InterCodeSQL-v0")
    for t in kept:
        assert t.reward == 1.0 and t.steps[-1].action == "submit"
        for step in t.steps:
            reply = t.turns[step.turn].content
            assert reply.startswith("Thought: ") and protocol.parse_action(reply) == step.action


def test_alfworld_thoughts_are_templated_from_the_action():
    assert alfworld_thought("go to drawer 1") == "I should go to drawer 1 and see what is there."
    assert alfworld_thought("heat mug 1 with microwave 1") == (
        "I need to heat mug 1, so I heat it with microwave 1."
    )


def test_the_command_writes_the_set_and_its_report(tmp_path, installed_data, capsys):
    out = tmp_path / "alfworld.jsonl"
    code = main(["experts", "ipr/ALFWorld-v0", "--split", "train", "-o", str(out),
                 "--limit", "12", "--data-dir", str(installed_data)])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "12 of 12 expert trajectories kept (12 from ETO)" in printed
    saved = read_trajectories(out)
    assert len(saved) == 12 and all(t.success and t.steps for t in saved)
    report = json.loads((tmp_path / "alfworld.jsonl.report.json").read_text())
    assert report["kept"] == 12 and report["candidates"] == 12 and report["dropped"] == {}
