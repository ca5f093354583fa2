"""The same session state as an HTML page, for the web site.

Every visible text node of these pages is a segment of the text observation and every
clickable is one of the text env's clickables, in the same order: WebShop's text env reading
this HTML (BeautifulSoup, `` [SEP] ``) gets exactly ``pages.observation`` (tested on random
walks). Clicks are links to ``{base}/do?action=...``, so the site plays through the engine's
own ``act``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from ipr_gym.webshop.catalog import Product
from ipr_gym.webshop.pages import tojson
from ipr_gym.webshop.state import ITEM, RESULTS, SEARCH, SUB, ShopState

MAX_QUERY = 500


@functools.lru_cache(maxsize=1)
def _templates() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("ipr_gym.webshop", "templates"),
        autoescape=True,
        keep_trailing_newline=True,
    )


def render_html(
    state: ShopState,
    instruction: str,
    products: Mapping[str, Product],
    base: str,
    show_attrs: bool = False,
) -> str:
    """The page of ``state``; ``base`` is the session's URL prefix (``/s/<id>``)."""
    context: dict[str, Any] = {"state": state, "instruction": instruction, "base": base}
    if state.page == SEARCH:
        name = "search.html"
        context["max_query"] = MAX_QUERY
    elif state.page == RESULTS:
        name = "results.html"
        context["listed"] = [products[a] for a in state.listed]
    elif state.page in (ITEM, SUB):
        assert state.asin is not None
        product = products[state.asin]
        chosen = state.option_dict
        image = next(
            (product.option_images[v] for v in chosen.values() if product.option_images.get(v)),
            product.image,
        )
        labels = ["Description", "Features", "Reviews"] + (["Attributes"] if show_attrs else [])
        context.update(product=product, chosen=chosen, image=image, sub_pages=labels)
        name = "item.html" if state.page == ITEM else "sub.html"
    else:
        name = "done.html"
        context["options_json"] = tojson(state.option_dict)
    return str(_templates().get_template(name).render(context))
