"""An oracle shopper: knows the goal's product and options and plays WebShop to buy them.

It searches for the product's title, pages forward to it, chooses for each option group the
value that best matches what the goal asks for, and buys. On the embedded catalog this
scores 1.0 on every goal (tested); on real human goals it is as good as the goal's option
wording allows. ``oracle_turns`` adds a one-line thought before each action, in the style
of IPR's WebShop example, so its episodes can serve as expert trajectories.
"""

from __future__ import annotations

from ipr_gym.webshop.catalog import Product
from ipr_gym.webshop.goals import Goal
from ipr_gym.webshop.reward import similar
from ipr_gym.webshop.search import Searcher
from ipr_gym.webshop.state import PRODUCT_WINDOW


def _query(product: Product, search: Searcher) -> tuple[str, int] | None:
    """A query that lists the product, and the results page it shows on."""
    for query in (product.title.lower(), f"{product.title} {product.query}".lower()):
        query = " ".join(query.split())
        found = search.search(query)
        if product.asin in found:
            return query, found.index(product.asin) // PRODUCT_WINDOW + 1
    return None


def _choice(values: tuple[str, ...], wanted: tuple[str, ...]) -> str | None:
    for want in wanted:
        if want in values:
            return want
    for want in wanted:
        for value in values:
            if similar(value, want):
                return value
    return None


def oracle_turns(goal: Goal, product: Product, search: Searcher) -> list[tuple[str, str]]:
    """(thought, action) pairs that buy ``goal``'s product with its options."""
    found = _query(product, search)
    if found is None:
        raise ValueError(f"no search lists product {product.asin}; the oracle cannot reach it")
    query, page = found
    turns = [("I think I should use the search bar to look for the product I need.",
              f"search[{query}]")]  # fmt: skip
    for _ in range(page - 1):
        turns.append(("The product I need is not on this page, so I should go to the next page.",
                      "click[Next >]"))  # fmt: skip
    turns.append((f"I think I should click on the product I need, which is {product.asin}.",
                  f"click[{product.asin}]"))  # fmt: skip
    wanted = goal.option_values
    for group, values in product.options.items():
        value = _choice(values, wanted)
        if value is not None:
            turns.append((f"I think I should click on the '{value}' option to select the "
                          f"{group} I need.", f"click[{value}]"))  # fmt: skip
    turns.append(("I think I should click on the 'Buy Now' button to purchase the product.",
                  "click[Buy Now]"))  # fmt: skip
    return turns
