"""What each page shows, rendered straight from the state: the text observation and the
clickable elements, as WebShop's text env derives them from the page's HTML.

WebShop's text observation is every visible text node of the page's HTML, stripped and
joined with `` [SEP] ``; its clickables are the ``btn`` buttons and product links (by
lower-cased text) and the option radio buttons (by value). The layout is that of the pages
IPR and ETO were run on (the instruction above a "Back to Search" button, ``Page N (Total
results: M)``, ``< Prev`` on item pages). ``segment`` reproduces BeautifulSoup's handling of
whitespace-only text, so empty fields show exactly as they do there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from ipr_gym.webshop.catalog import Product
from ipr_gym.webshop.state import DONE, ITEM, RESULTS, SEARCH, SUB, ShopState

SEP = " [SEP] "
ASCII_SPACES = frozenset("\x20\x0a\x09\x0c\x0d")
BACK_TO_SEARCH, PREV_PAGE, NEXT_PAGE, BUY_NOW = "Back to Search", "< Prev", "Next >", "Buy Now"


@dataclass(frozen=True, slots=True)
class Clickable:
    kind: str  # "button" | "product" | "option"
    label: str  # the text on the page (a button's text, an asin, an option value)
    group: str | None = None  # an option's group name


def segment(text: str) -> Iterator[str]:
    """The observation segment of one HTML text node holding ``text`` (none or one)."""
    if not text:
        return
    if all(c in ASCII_SPACES for c in text):
        if "\n" not in text:
            yield ""  # BeautifulSoup keeps it as " ", which strips to ""
        return
    yield text.strip()


def clickables(
    state: ShopState, products: Mapping[str, Product], show_attrs: bool = False
) -> dict[str, Clickable]:
    """The page's clickables keyed as WebShop's text env keys them, in its order."""
    found: dict[str, Clickable] = {}

    def button(label: str) -> None:
        found[label.lower()] = Clickable("button", label)

    if state.page == SEARCH:
        button("Search")
    elif state.page == RESULTS:
        button(BACK_TO_SEARCH)
        assert state.page_no is not None
        if state.page_no > 1:
            button(PREV_PAGE)
        button(NEXT_PAGE)
        for asin in state.listed:
            found[asin.lower()] = Clickable("product", asin)
    elif state.page == ITEM:
        button(BACK_TO_SEARCH)
        button(PREV_PAGE)
        for label in ("Description", "Features", "Reviews"):
            button(label)
        if show_attrs:
            button("Attributes")
        button(BUY_NOW)
        assert state.asin is not None
        for group, values in products[state.asin].options.items():
            for value in values:
                found[value] = Clickable("option", value, group)
    elif state.page == SUB:
        button(BACK_TO_SEARCH)
        button(PREV_PAGE)
    return found


def observation(
    state: ShopState, instruction: str, products: Mapping[str, Product], show_attrs: bool = False
) -> str:
    return SEP.join(_segments(state, instruction, products, show_attrs))


def _segments(
    state: ShopState, instruction: str, products: Mapping[str, Product], show_attrs: bool
) -> Iterator[str]:
    if state.page == SEARCH:
        yield "WebShop"
        yield "Instruction:"
        yield from segment(instruction)
        yield "Search"
        return
    if state.page == DONE:
        yield from _done_segments(state)
        return
    yield "Instruction:"
    yield from segment(instruction)
    yield BACK_TO_SEARCH
    if state.page == RESULTS:
        assert state.page_no is not None
        yield f"Page {state.page_no} (Total results: {len(state.results)})"
        if state.page_no > 1:
            yield PREV_PAGE
        yield NEXT_PAGE  # on every results page, the last one too, as in WebShop
        for asin in state.listed:
            product = products[asin]
            yield from segment(asin)
            yield from segment(product.title)
            yield from segment(product.price_tag)
        return
    yield PREV_PAGE
    assert state.asin is not None
    product = products[state.asin]
    if state.page == ITEM:
        for group, values in product.options.items():
            yield from segment(group)
            for value in values:
                yield from segment(value)
        yield from segment(product.title)
        yield f"Price: {product.price_tag}"
        yield f"Rating: {product.rating}"
        yield "Description"
        yield "Features"
        yield "Reviews"
        if show_attrs:
            yield "Attributes"
        yield BUY_NOW
    elif state.sub_page == "Description":
        yield from segment(product.description + "\n")
    elif state.sub_page == "Features":
        for bullet in product.bullets:
            yield from segment(bullet)
    elif state.sub_page == "Reviews":  # no reviews: nothing at all, as in WebShop
        for review in product.reviews:
            yield from segment(f'"{review.title}"')
            yield from segment(str(review.score))
            yield from segment(review.body)
    elif state.sub_page == "Attributes":
        for attribute in product.attributes:
            yield from segment(attribute)


def _done_segments(state: ShopState) -> Iterator[str]:
    """The confirmation page as WebShop's text env sees it (its hidden debugging block is
    hidden only to a browser; the text env passes no goal, code or attributes, so those
    show as ``None`` or nothing)."""
    yield "Thank you for shopping with us!"
    yield "Your code:"
    yield "None"
    yield "(Paste it in your MTurk interface.)"
    yield "Purchased"
    yield "asin"
    yield from segment(state.asin or "")
    yield "options"
    yield tojson(state.option_dict)
    for label in ("attrs", "category", "query", "product category"):
        yield label
        yield "None"
    yield "Target"
    for label in ("asin", "options", "attrs", "price upper", "instuction text", "category",
                  "product category", "query", "Goal"):  # fmt: skip
        yield label
    yield "None"
    yield "Reward"
    yield "Your score (min 0.0, max 1.0)"
    yield str(state.reward)
    yield "Reward Details"
    yield "None"


def tojson(value: object) -> str:
    """Flask's ``tojson`` filter: sorted keys, ASCII, HTML-sensitive characters escaped."""
    text = json.dumps(value, sort_keys=True)
    for char, code in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("'", "\\u0027")):
        text = text.replace(char, code)
    return text
