"""A WebShop session's state: which page is shown and what the session remembers.

Immutable, so a snapshot is the state object itself and branching rollouts share it.
Fields follow WebShop's session: the search keywords and results page, the product being
viewed, the options chosen on it (in the order they were chosen), the products visited
since the last "Back to Search", and on the confirmation page the reward.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

SEARCH, RESULTS, ITEM, SUB, DONE = "search", "results", "item", "sub", "done"
SUB_PAGES = ("Description", "Features", "Reviews", "Attributes")
PRODUCT_WINDOW = 10


@dataclass(frozen=True, slots=True)
class ShopState:
    page: str = SEARCH
    keywords: tuple[str, ...] | None = None
    results: tuple[str, ...] = ()
    page_no: int | None = None
    asin: str | None = None
    options: tuple[tuple[str, str], ...] = ()
    visited: frozenset[str] = frozenset()
    sub_page: str | None = None
    reward: float | None = None
    reward_info: Any = None

    @property
    def option_dict(self) -> dict[str, str]:
        return dict(self.options)

    @property
    def listed(self) -> tuple[str, ...]:
        """The asins shown on the current results page."""
        if self.page_no is None:
            return ()
        start = (self.page_no - 1) * PRODUCT_WINDOW
        return self.results[start : start + PRODUCT_WINDOW]

    def with_option(self, name: str, value: str) -> ShopState:
        chosen = dict(self.options)
        chosen[name] = value
        return replace(self, options=tuple(chosen.items()))
