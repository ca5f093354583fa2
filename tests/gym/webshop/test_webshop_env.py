"""ipr/WebShop-v0: the contract, WebShop's behaviour on the 7 real products, the oracle."""

from __future__ import annotations

import functools
import math

import gymnasium as gym
import pytest

import ipr_gym
from ipr_gym.testing.conformance import MALFORMED_ACTIONS, check_conformance

WORDS = ["shampoo", "console table", "dress", "eye cream", "razor", "jeans", "coffee"]


def sampler(info, rng):
    """A clickable, or a search when the page has none (the search page)."""
    valid = info.get("valid_actions") or []
    if not valid or rng.random() < 0.15:
        return f"search[{rng.choice(WORDS)}]"
    return rng.choice(valid)


# WebShop parses "search[]]" as a search for "]" (a real action), so it is not malformed here
NOT_MALFORMED_HERE = [a for a in MALFORMED_ACTIONS if a != "search[]]"]


@pytest.mark.parametrize("catalog", ["embedded", "fixture"])
def test_conformance(catalog, installed_data):
    make = functools.partial(
        gym.make, "ipr/WebShop-v0", catalog=catalog, split="all", data_dir=str(installed_data)
    )
    check_conformance(make, action_sampler=sampler, malformed=NOT_MALFORMED_HERE, n_walks=8)


@pytest.fixture(scope="module")
def fixture_env(installed_data):
    return gym.make("ipr/WebShop-v0", catalog="fixture", split="all", data_dir=str(installed_data))


def dress_goal(env, color: str, size: str) -> int:
    env = env.unwrapped
    for task in env.tasks:
        g = env.goal(task)
        if g.asin == "B08ZRR3DZT" and dict(g.options) == {"color": color, "size": size}:
            return task
    raise AssertionError("no such goal")


def test_fixture_goals_are_webshops_synthetic_goals(fixture_env):
    env = fixture_env.unwrapped
    # 3 of the 7 products have an instruction; the dress has 5 sizes x 8 colours
    assert len(env.tasks) == 1 + 1 + 40
    g = env.goal(dress_goal(env, "black", "large"))
    prefix = (
        "Find me women's dresses with polyester spandex for daily wear "
        "with color: black, and size: large"
    )
    assert g.instruction.startswith(prefix + ", and price lower than ")
    # price bounds are two of the four multiples of 10 above the price ($19.99-$27.99)
    assert g.price_upper in (40.0, 50.0, 60.0)
    assert g.instruction.endswith(f"{g.price_upper:.2f} dollars")


def test_fixture_search_item_and_purchase(fixture_env):
    env = fixture_env
    task = dress_goal(env, "black", "large")
    obs, info = env.reset(options={"task": task})
    instruction = env.unwrapped.goal(task).instruction
    assert obs == f"WebShop [SEP] Instruction: [SEP] {instruction} [SEP] Search"
    assert info["valid_actions"] == []
    obs, reward, done, _, info = env.step("search[Shampoo]")
    assert obs.startswith(
        f"Instruction: [SEP] {instruction} [SEP] Back to Search [SEP] Page 1 (Total results: "
    )
    assert "[SEP] B07B6DVG41 [SEP] 100% PURE Glossy Locks: Repair Shampoo (13.5 Fl Oz)" in obs
    assert "(Total results: 1) [SEP] Next > [SEP] B07B6DVG41" in obs  # on every page, as in WebShop
    assert "click[B07B6DVG41]" in info["valid_actions"] and reward == 0 and not done
    obs, *_, info = env.step("search[sheIn women's mini club dress]")
    assert "click[B08ZRR3DZT]" in info["valid_actions"]
    obs, reward, done, _, info = env.step("click[b08zrr3dzt]")  # clicks are case-insensitive
    assert obs.split(" [SEP] ")[2:5] == ["Back to Search", "< Prev", "size"]
    assert (
        " [SEP] size [SEP] x-small [SEP] small [SEP] medium [SEP] large [SEP] x-large "
        "[SEP] color [SEP] black [SEP] light blue" in obs
    )
    assert obs.endswith(
        "[SEP] Price: $19.99 to $27.99 [SEP] Rating: N.A. [SEP] Description [SEP] Features "
        "[SEP] Reviews [SEP] Buy Now"
    )
    env.step("click[large]")
    env.step("click[pink]")  # the wrong colour: attributes 2/2, options 1/2, price 1 -> 4/5
    obs, reward, done, _, info = env.step("click[Buy Now]")
    assert done and math.isclose(reward, 4 / 5) and not info["won"]
    assert env.unwrapped.page_score() == reward


def test_invalid_clicks_change_nothing(fixture_env):
    env = fixture_env
    obs, _ = env.reset(options={"task": env.unwrapped.tasks[0]})
    for action in ["click[Buy Now]", "click[search]", "click[B07B6DVG41]", "search[]", "search"]:
        again, reward, done, _, info = env.step(action)
        assert again == obs and info["invalid"] and reward == 0 and not done


def test_search_works_from_any_page_and_prev_goes_back(fixture_env):
    env = fixture_env
    env.reset(options={"task": env.unwrapped.tasks[0]})
    results, *_ = env.step("search[table]")
    env.step("click[B06Y3VLDFB]")
    description, *_ = env.step("click[Description]")
    assert description.split(" [SEP] ")[3] == "< Prev"
    item, *_ = env.step("click[< Prev]")
    assert item.endswith("Buy Now")
    back, *_ = env.step("click[< Prev]")
    assert back == results
    again, *_ = env.step("search[table]")  # from a results page, as from any page
    assert again == results


def test_paging_on_the_embedded_catalog():
    env = ipr_gym.make("ipr/WebShop-v0", split="all", max_episode_steps=None)
    env.reset(options={"task": 0})
    first, *_, info = env.step("search[model]")  # in every title
    assert "Page 1 (Total results: 50)" in first and "click[Next >]" in info["valid_actions"]
    second, *_, info = env.step("click[Next >]")
    assert "Page 2 (Total results: 50) [SEP] < Prev [SEP] Next >" in second
    assert set(info["valid_actions"]).isdisjoint(env.unwrapped.state.results[:10])
    back, *_ = env.step("click[< Prev]")
    assert back == first
    for _ in range(4):
        last, *_ = env.step("click[Next >]")
    assert "Page 5 (Total results: 50) [SEP] < Prev [SEP] Next > [SEP] " in last
    empty, *_, info = env.step("click[Next >]")  # past the last page: an empty page 6
    assert empty.endswith(
        "[SEP] Back to Search [SEP] Page 6 (Total results: 50) [SEP] < Prev [SEP] Next >"
    )
    assert info["valid_actions"] == ["click[Back to Search]", "click[< Prev]", "click[Next >]"]


def test_oracle_scores_one_on_every_embedded_goal():
    env = gym.make("ipr/WebShop-v0", split="all")
    webshop = env.unwrapped
    assert len(webshop.tasks) > 1000
    for task in webshop.tasks:
        env.reset(options={"task": task})
        for action in webshop.expert_actions(task):
            _, reward, done, _, info = env.step(action)
        assert done and reward == 1.0 and info["won"], (task, webshop.expert_actions(task))


def test_progress_is_ipr_page_score(installed_data):
    env = gym.make("ipr/WebShop-v0", catalog="fixture", split="all",
                   data_dir=str(installed_data), progress=True)  # fmt: skip
    task = dress_goal(env, "black", "large")
    env.reset(options={"task": task})
    *_, info = env.step("search[sheIn women's mini club dress]")
    assert 0 < info["progress"] < 1  # the dress's 40 combinations average below 1
    *_, info = env.step("click[B08ZRR3DZT]")
    assert info["progress"] == 1.0  # some combination is the goal's
    *_, info = env.step("click[pink]")
    assert math.isclose(info["progress"], 4 / 5)  # with pink fixed, one option is lost


def test_unknown_catalog_and_split_fail_clearly(installed_data):
    with pytest.raises(FileNotFoundError, match="unknown WebShop catalog"):
        gym.make("ipr/WebShop-v0", catalog="/no/such/file.json")
    with pytest.raises(FileNotFoundError, match="small"):
        gym.make("ipr/WebShop-v0", catalog="small", data_dir=str(installed_data))
    with pytest.raises(ValueError, match="unknown split"):
        gym.make("ipr/WebShop-v0", split="dev")


def test_lucene_backend_plays_and_ranks_like_anserini(installed_data):
    """WebShop's own search (Anserini's Lucene in its Java child; the test command installs it)."""
    make = functools.partial(gym.make, "ipr/WebShop-v0", split="all", search="lucene")
    env = make()
    shop = env.unwrapped
    for task in shop.tasks[:40]:
        env.reset(options={"task": task})
        for action in shop.expert_actions(task):
            _, reward, done, _, _ = env.step(action)
        assert done and reward == 1.0
    # the default search shows the same page (tests/gym/webshop/test_search_lucene.py)
    default = gym.make("ipr/WebShop-v0", split="all")
    for e in (env, default):
        e.reset(options={"task": 0})
    pages = [e.step("search[machine wash jeans]") for e in (env, default)]
    assert pages[0][0] == pages[1][0] and pages[0][4] == pages[1][4]
    info = pages[0][4]
    assert any("Jeans" in shop.world.catalog[a[6:-1]].title for a in info["valid_actions"][2:5])
    check_conformance(make, action_sampler=sampler, malformed=NOT_MALFORMED_HERE, n_walks=3)


def test_expert_messages_follow_ipr_example_layout(shared_data):
    import json

    from ipr_gym.react.parsing import parse_react

    example = json.loads((shared_data / "webshop" / "ipr" / "webshop_icl.json").read_text())[0]
    env = gym.make("ipr/WebShop-v0", split="all")
    shop = env.unwrapped
    task = shop.tasks[7]
    messages = shop.expert_messages(task)
    # IPR's example alternates observation and answer, from the search page to "Buy Now"
    assert [m["role"] for m in example] == ["user", "assistant"] * (len(example) // 2)
    assert [m["role"] for m in messages] == ["user", "assistant"] * (len(messages) // 2)
    assert messages[0]["content"].startswith("Observation:\nWebShop [SEP] Instruction: [SEP] ")
    assert example[0]["content"].startswith("Observation:\nWebShop [SEP] Instruction: [SEP] ")
    assistant = [m["content"] for m in messages if m["role"] == "assistant"]
    assert [parse_react(a).action for a in assistant] == shop.expert_actions(task)
    assert messages[-1]["role"] == "assistant" and messages[-1]["content"].endswith(
        "click[Buy Now]"
    )
    # the observations are the env's own
    obs, _ = env.reset(options={"task": task})
    users = [m["content"] for m in messages if m["role"] == "user"]
    assert users[0] == f"Observation:\n{obs}"
    for action, expected in zip(shop.expert_actions(task), users[1:], strict=False):
        assert f"Observation:\n{env.step(action)[0]}" == expected


def test_search_prefixes_as_webshops_engine_reads_them():
    env = ipr_gym.make("ipr/WebShop-v0", split="all", max_episode_steps=None)
    shop = env.unwrapped
    catalog = shop.world.catalog.by_asin
    env.reset(options={"task": 0})
    some = next(iter(catalog.values()))
    # <q>: every product whose query is the words, in catalog order, uncapped
    wanted = [a for a, p in catalog.items() if p.query == some.query]
    obs, *_, info = env.step(f"search[<q> {some.query}]")
    assert f"Page 1 (Total results: {len(wanted)})" in obs and shop.state.results == tuple(wanted)
    # <c>: the first word after the prefix is the category
    in_category = [a for a, p in catalog.items() if p.category == some.category]
    env.step(f"search[<c> {some.category} ignored words]")
    assert shop.state.results == tuple(in_category) and len(in_category) > 50
    # <r>: 50 distinct products, the same draw for the same keywords
    env.step("search[<r>]")
    first = shop.state.results
    assert len(set(first)) == 50 and set(first) <= set(catalog)
    env.step("search[<r>]")
    assert shop.state.results == first
    # <a> (no attribute index in WebShop's text env) and a bare <c> raise in WebShop
    for action in ("search[<a> machine wash]", "search[<c>]"):
        before = shop.state
        _, reward, terminated, _, info = env.step(action)
        assert info["invalid"] and shop.state == before and (reward, terminated) == (0.0, False)


def test_without_progress_a_step_runs_spacy_only_for_the_purchase(installed_data, monkeypatch):
    """Page scores tag listed titles with spaCy; unasked, no step before "Buy Now" calls it
    (a new title costs 10-15 ms), the info has no ``progress``, WebShop's reward does, and
    ``page_score()`` gives the score on demand."""
    from ipr_gym.webshop import reward

    calls = []
    nlp = reward._nlp()
    monkeypatch.setattr(reward, "_nlp", lambda: calls.append(1) or nlp)
    for then in ("buy", "score"):
        reward.title_nouns.cache_clear()
        env = gym.make(
            "ipr/WebShop-v0", catalog="fixture", split="all", data_dir=str(installed_data)
        )  # fmt: skip (a fresh env: no cached scores)
        env.reset(options={"task": dress_goal(env, "black", "large")})
        for action in ("search[sheIn women's mini club dress]", "click[B08ZRR3DZT]",
                       "click[black]", "click[large]"):  # fmt: skip
            *_, info = env.step(action)
            assert "progress" not in info
        assert calls == []
        if then == "buy":
            *_, r, done, _, info = env.step("click[Buy Now]")
            assert done and r == 1.0 and calls  # WebShop's reward tags the purchased title
        else:
            assert env.unwrapped.page_score() == 1.0 and calls
        calls.clear()
