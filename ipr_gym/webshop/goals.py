"""Goals (instruction, target product, attributes, options, price bound) as WebShop makes
them, but reproducible: every random draw comes from one seeded generator.

WebShop draws each product's price (uniform within a price range) and each goal's price
bound before any seeding, so its instructions change from run to run; here ``seed`` fixes
both. The goal order is WebShop's: built product by product, then shuffled with
``random.seed(233)``, whose permutation depends only on the number of goals, so human-goal
session indices (IPR's and ETO's split lists) keep their meaning.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from typing import Any

from ipr_gym.webshop.catalog import Product
from ipr_gym.webshop.store import CatalogStore, Prices

PRICE_RANGE = tuple(10.0 * i for i in range(1, 100))
NO_PRICE_BOUND = 1_000_000
SHUFFLE_SEED = 233


@dataclass(frozen=True, slots=True)
class Goal:
    asin: str
    instruction: str
    attributes: tuple[str, ...]
    options: tuple[Any, ...]
    """Goal options as WebShop's reward receives them: option values for human goals,
    ``(name, value)`` pairs for synthetic goals (the items of their option dict)."""
    price_upper: float
    query: str
    category: str
    product_category: str
    name: str
    weight: float = 1.0

    @property
    def option_values(self) -> tuple[str, ...]:
        """The option values the instruction asks for, whatever the goal's kind."""
        return tuple(o[1] if isinstance(o, tuple) else o for o in self.options)


def _price_bound(price: float, rng: random.Random) -> tuple[float, str]:
    above = [p for p in PRICE_RANGE if p > price][:4]
    if len(above) < 2:
        return NO_PRICE_BOUND, ""
    _, upper = sorted(rng.sample(above, 2))
    return upper, f", and price lower than {upper:.2f} dollars"


def _goal(product: Product, instruction: str, attrs: Any, options: Any, upper: float) -> Goal:
    return Goal(
        asin=product.asin,
        instruction=instruction,
        attributes=tuple(attrs),
        options=tuple(options),
        price_upper=upper,
        query=product.query,
        category=product.category,
        product_category=product.product_category,
        name=product.title,
    )


def human_goals(catalog: CatalogStore, prices: Prices, rng: random.Random) -> list[Goal]:
    """One goal per human instruction (``items_human_ins.json``) with attributes."""
    goals = []
    for doc in catalog.human_docs.tolist():
        product = catalog.product(doc)
        for ins in product.human_instructions:
            attrs = ins["instruction_attributes"]
            if not attrs:
                continue
            upper, price_text = _price_bound(float(prices.by_doc[doc]), rng)
            text = ins["instruction"].strip(".") + price_text
            goals.append(_goal(product, text, attrs, ins["instruction_options"], upper))
    return goals


def synthetic_goals(catalog: CatalogStore, prices: Prices, rng: random.Random) -> list[Goal]:
    """One goal per option combination of every product with a synthetic instruction,
    weighted by the rarity of its attributes as in WebShop."""
    goals = []
    for doc in catalog.instruction_docs.tolist():
        product = catalog.product(doc)
        attrs = product.instruction_attributes or ()
        if not attrs:
            raise ValueError(f"product {product.asin} has an instruction but no attributes")
        upper, price_text = _price_bound(float(prices.by_doc[doc]), rng)
        names = sorted(product.options)
        for combination in itertools.product(*(product.options[n] for n in names)):
            chosen = dict(zip(names, combination, strict=True))
            option_text = ", and ".join(f"{k}: {v}" for k, v in chosen.items())
            option_text = f" with {option_text}" if option_text else ""
            text = f"{product.instruction}{option_text}{price_text}"
            goals.append(_goal(product, text, attrs, chosen.items(), upper))
    counts: dict[str, int] = {}
    for goal in goals:
        for a in goal.attributes:
            counts[a] = counts.get(a, 0) + 1
    return [
        _with_weight(g, sum(1.0 / counts[a] for a in g.attributes) / len(g.attributes))
        for g in goals
    ]


def _with_weight(goal: Goal, weight: float) -> Goal:
    from dataclasses import replace

    return replace(goal, weight=weight)


def make_goals(catalog: CatalogStore, kind: str, seed: int) -> tuple[list[Goal], Prices]:
    """The goals of ``catalog`` in WebShop's session order, and the prices they assume
    (each product's only price, or uniform within its range)."""
    rng = random.Random(seed)
    prices = catalog.prices(rng)
    if kind == "human":
        goals = human_goals(catalog, prices, rng)
    elif kind == "synthetic":
        goals = synthetic_goals(catalog, prices, rng)
    else:
        raise ValueError(f"goals must be 'human' or 'synthetic', got {kind!r}")
    random.Random(SHUFFLE_SEED).shuffle(goals)
    return goals, prices
