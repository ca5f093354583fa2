"""WebShop's actions on a session state, with no HTML round trip.

``search[...]`` and ``click[...]`` follow WebShop's text env and its simulated server:
the argument is lower-cased; a search works from any page (keywords are the argument split
on single spaces); a click must name a clickable of the current page ("search" itself is
not clickable); anything else changes nothing and is reported invalid. "Next >"/"< Prev"
are resolved by the page's URL as WebShop does, including its quirk that a URL holding
another page's name (say keywords containing ``item_page``) is taken for that page.

WebShop's search prefixes, as its engine reads the keywords: ``<q> words`` lists every
product whose ``query`` is the words, ``<c> word`` every product of that category (the
first word only), in catalog order and uncapped; ``<r>`` 50 random products (WebShop draws
them unseeded; here the draw is seeded by the keywords, so a snapshot replays). ``<a>``
needs an attribute index WebShop's text env never passes (it raises there), and ``<c>``
without a word raises there too: both are invalid actions here.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from ipr_gym.webshop.catalog import Product
from ipr_gym.webshop.goals import Goal
from ipr_gym.webshop.pages import BACK_TO_SEARCH, BUY_NOW, NEXT_PAGE, PREV_PAGE, clickables
from ipr_gym.webshop.reward import GoalScorer
from ipr_gym.webshop.search import Searcher
from ipr_gym.webshop.state import DONE, ITEM, RESULTS, SEARCH, SUB, SUB_PAGES, ShopState
from ipr_gym.webshop.store import CatalogStore

ACTION = re.compile(r"(.+)\[(.+)\]")
PAGE_NAMES = ("search_results", "item_page", "item_sub_page", "done")


def parse_action(action: str) -> tuple[str, str | None]:
    """WebShop's split of ``name[argument]`` (a prefix match, greedy on the name)."""
    m = ACTION.match(action)
    return (action, None) if m is None else (m.group(1), m.group(2))


@dataclass(frozen=True, slots=True)
class Outcome:
    state: ShopState
    valid: bool
    reward: float = 0.0
    done: bool = False


class Shop:
    """The engine: a catalog, its search index and the goals' prices."""

    def __init__(
        self,
        catalog: CatalogStore,
        search: Searcher,
        prices: Mapping[str, float],
        show_attrs: bool = False,
    ):
        self.catalog = catalog
        self.products = catalog.by_asin
        self.search_index = search
        self.prices = prices
        self.show_attrs = show_attrs

    def act(self, state: ShopState, action: str, scorer: GoalScorer) -> Outcome:
        name, arg = parse_action(action)
        if arg is not None:
            arg = arg.lower()
        if name == "search" and arg:
            keywords = tuple(arg.split(" "))
            if keywords[0] == "<a>" or (keywords[0] == "<c>" and len(keywords) < 2):
                return Outcome(state, False)
            return Outcome(self.results(state, keywords, 1), True)
        if name == "click" and arg is not None and arg != "search":
            target = clickables(state, self.products, self.show_attrs).get(arg)
            if target is not None:
                return self._click(state, arg, target.kind, target.group, scorer)
        return Outcome(state, False)

    def results(self, state: ShopState, keywords: tuple[str, ...], page_no: int) -> ShopState:
        found = self.found(keywords)
        return replace(
            state, page=RESULTS, keywords=keywords, results=found, page_no=page_no,
            asin=None, options=(), sub_page=None,
        )  # fmt: skip

    def found(self, keywords: tuple[str, ...]) -> tuple[str, ...]:
        """The ASINs a search lists, prefixes included (see the module docstring)."""
        head, rest = keywords[0], " ".join(keywords[1:]).strip()
        if head == "<q>":
            return self.catalog.with_query(rest)
        if head == "<c>":
            return self.catalog.in_category(keywords[1].strip())
        if head == "<r>":
            draw = random.Random(" ".join(keywords))
            n = len(self.catalog)  # the draw picks positions, as sampling the asin list does
            return tuple(self.catalog.asin(i) for i in draw.sample(range(n), k=min(50, n)))
        return tuple(self.search_index.search(" ".join(keywords)))

    def _click(
        self, state: ShopState, arg: str, kind: str, group: str | None, scorer: GoalScorer
    ) -> Outcome:
        here = self._page_name(state)
        if arg == BUY_NOW.lower():
            assert state.asin is not None
            product = self.products[state.asin]
            reward, info = scorer.reward(product, self.prices[state.asin], state.option_dict)
            done = replace(state, page=DONE, reward=reward, reward_info=info, sub_page=None)
            return Outcome(done, True, reward, True)
        if arg == BACK_TO_SEARCH.lower():
            return Outcome(ShopState(), True)
        if arg == NEXT_PAGE.lower() and here == "search_results":
            assert state.keywords is not None and state.page_no is not None
            return Outcome(self.results(state, state.keywords, state.page_no + 1), True)
        if arg == PREV_PAGE.lower() and here == "search_results":
            assert state.keywords is not None and state.page_no is not None
            return Outcome(self.results(state, state.keywords, state.page_no - 1), True)
        if arg == PREV_PAGE.lower() and here == "item_sub_page":
            return Outcome(replace(state, page=ITEM, sub_page=None), True)
        if arg == PREV_PAGE.lower() and here == "item_page":
            assert state.keywords is not None and state.page_no is not None
            return Outcome(self.results(state, state.keywords, state.page_no), True)
        for sub in SUB_PAGES:
            if arg == sub.lower():
                return Outcome(replace(state, page=SUB, sub_page=sub), True)
        if kind == "product":
            asin = arg.upper()
            state = replace(state, asin=asin, visited=state.visited | {asin})
        elif kind == "option":
            assert group is not None
            state = state.with_option(group.lower(), arg)
        return Outcome(replace(state, page=ITEM, sub_page=None), True)

    def _page_name(self, state: ShopState) -> str:
        """The page WebShop infers from the current URL (first page name it contains)."""
        keywords = "+".join(state.keywords or ())
        if state.page == RESULTS:
            url = f"search_results/{keywords}"
        elif state.page == ITEM:
            url = f"item_page/{state.asin}/{keywords}/{json.dumps(state.option_dict)}"
        elif state.page == SUB:
            url = f"item_sub_page/{state.asin}/{keywords}/{state.sub_page}/{state.option_dict}"
        elif state.page == DONE:
            url = f"done/{state.asin}/{state.option_dict}"
        else:
            url = ""
        return next((name for name in PAGE_NAMES if name in url), "")

    def progress(self, state: ShopState, scorer: GoalScorer) -> float:
        """IPR's page score (appendix B); a description/features/reviews page scores as
        the item page it belongs to."""
        if state.page == RESULTS:
            return scorer.results_score(self.products[a] for a in state.listed)
        if state.page in (ITEM, SUB):
            assert state.asin is not None
            return scorer.item_score(self.products[state.asin], state.option_dict)
        if state.page == DONE:
            return float(state.reward or 0.0)
        return 0.0


def valid_actions(state: ShopState, products: Mapping[str, Product], show_attrs: bool) -> list[str]:
    """The page's clickables as actions in the page's own spelling (``click[Buy Now]``,
    ``click[B0...]``). The search bar takes any text, so ``search[...]`` is not listed."""
    found = clickables(state, products, show_attrs).values()
    return [f"click[{c.label}]" for c in found if c.label != "Search"]


__all__ = ["SEARCH", "Goal", "Outcome", "Shop", "parse_action", "valid_actions"]
