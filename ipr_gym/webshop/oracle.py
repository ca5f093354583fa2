"""An oracle shopper that searches as a person would: it knows the goal's product and
options, but its search words come only from the instruction.

The query is one of WebShop's human search queries for that instruction
(``goal_query_map.json``) where one exists, otherwise the instruction's own words (its
opening phrase, option list and price clause removed). The oracle then finds the product
on the results pages (clicking ``Next >`` as often as needed), chooses for each option
group the value that best matches what the goal asks for, and buys. A goal whose product no
such query lists is out of the oracle's reach (``OracleUnreachable``): the oracle never
searches for the product's name, which an agent cannot know. ``oracle_turns`` adds a
one-line thought before each action, in the style of IPR's WebShop example, so its episodes
serve as expert trajectories.

``first_result_turns`` is a weaker shopper that knows only the instruction: the same query,
the first result, the options the instruction names, buy. Its demonstrations score less
than the oracle's but are easy to imitate (nothing in them depends on the hidden target),
which suits models too small to learn the oracle's choices.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from ipr_gym.webshop.catalog import Product
from ipr_gym.webshop.goals import Goal
from ipr_gym.webshop.reward import similar
from ipr_gym.webshop.search import Searcher
from ipr_gym.webshop.state import PRODUCT_WINDOW

_PRICE = re.compile(r",?\s*and price lower than [\d.]+ dollars\.?$")
# synthetic goals: " with color: red, and size: large" (the last "with" before the colon)
_OPTIONS = re.compile(r"\s+with (?:(?!\bwith\b)[^:,])+: .*$")
_OPENERS = re.compile(
    r"^(?:find me|i am looking for|i'm looking for|im looking for|looking for|i want to buy|"
    r"i want|i need to buy|i need|i would like to buy|i would like|i'd like|get me|buy me|"
    r"show me|search for|please find|can you find me|help me find)\s+"
    r"(?:(?:a pair of|a pack of|an?|some|the)\s+)?"
)


class OracleUnreachable(ValueError):
    """No query a person could write from the instruction lists the goal's product."""


def instruction_key(instruction: str) -> str:
    """An instruction without WebShop's price clause, lower-cased, spaces folded: how goals
    and ``goal_query_map.json`` name the same instruction."""
    return " ".join(_PRICE.sub("", instruction.strip()).strip().strip(".").split()).lower()


def instruction_query(instruction: str) -> str:
    """Search words a person would take from ``instruction``: its words, without the
    opening phrase ("i am looking for"), the option list and the price clause."""
    text = _PRICE.sub("", instruction.strip()).lower()
    text = _OPTIONS.sub("", text)
    text = _OPENERS.sub("", text)
    return " ".join(text.strip(" .").split())


def search_plan(
    goal: Goal, product: Product, search: Searcher, human_queries: Sequence[str] = ()
) -> tuple[str, int]:
    """The first human query, else the instruction's query, that lists the product, and
    the results page it shows on."""
    candidates = [*human_queries, instruction_query(goal.instruction)]
    for query in dict.fromkeys(" ".join(q.lower().split()) for q in candidates if q.strip()):
        found = search.search(query)
        if product.asin in found:
            return query, found.index(product.asin) // PRODUCT_WINDOW + 1
    raise OracleUnreachable(
        f"no query from the instruction lists product {product.asin} (tried {candidates!r})"
    )


def _choice(values: tuple[str, ...], wanted: tuple[str, ...]) -> str | None:
    for want in wanted:
        if want in values:
            return want
    for want in wanted:
        for value in values:
            if similar(value, want):
                return value
    return None


def oracle_turns(
    goal: Goal, product: Product, search: Searcher, human_queries: Sequence[str] = ()
) -> list[tuple[str, str]]:
    """(thought, action) pairs that buy ``goal``'s product with its options."""
    query, page = search_plan(goal, product, search, human_queries)
    turns = [("I think I should use the search bar to look for the product I need.",
              f"search[{query}]")]  # fmt: skip
    for _ in range(page - 1):
        turns.append(("The product I need is not on this page, so I should go to the next page.",
                      "click[Next >]"))  # fmt: skip
    turns.append((f"I think I should click on the product I need, which is {product.asin}.",
                  f"click[{product.asin}]"))  # fmt: skip
    return turns + _options_then_buy(product, goal.option_values)


def _options_then_buy(product: Product, wanted: tuple[str, ...]) -> list[tuple[str, str]]:
    """On the product's page: the value of each option group the goal asks for, then buy."""
    turns = []
    for group, values in product.options.items():
        value = _choice(values, wanted)
        if value is not None:
            turns.append((f"I think I should click on the '{value}' option to select the "
                          f"{group} I need.", f"click[{value}]"))  # fmt: skip
    turns.append(("I think I should click on the 'Buy Now' button to purchase the product.",
                  "click[Buy Now]"))  # fmt: skip
    return turns


def first_result_turns(
    goal: Goal, products: Mapping[str, Product], search: Searcher, human_queries: Sequence[str] = ()
) -> list[tuple[str, str]]:
    """(thought, action) pairs that buy the first result of the instruction's query with
    the options the instruction names; raises ``OracleUnreachable`` when nothing is found."""
    queries = [*human_queries, instruction_query(goal.instruction)]
    query = next((" ".join(q.lower().split()) for q in queries if q.strip()), "")
    found = search.search(query) if query else []
    if not found:
        raise OracleUnreachable(f"the instruction's query {query!r} finds nothing")
    product = products[found[0]]
    turns = [("I think I should use the search bar to look for the product I need.",
              f"search[{query}]"),
             (f"I think I should click on the first product, {product.asin}.",
              f"click[{product.asin}]")]  # fmt: skip
    return turns + _options_then_buy(product, goal.option_values)
