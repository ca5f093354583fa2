"""WebShop's colour normalisation, applied to both sides before option matching.

A value is replaced by the first colour word of WebShop's list that occurs in it as a
substring ("dark navy blue" -> "blue", since "blue" comes first in the list); a value
with no colour word is left alone. The list and its order decide the result, so both are
WebShop's.
"""

from __future__ import annotations

from typing import Any

COLOR_SET: tuple[str, ...] = (
    "alabaster", "apricot", "aqua", "ash", "asphalt", "azure", "banana", "beige", "black",
    "blue", "blush", "bordeaux", "bronze", "brown", "burgundy", "camel", "camo", "caramel",
    "champagne", "charcoal", "cheetah", "chestnut", "chocolate", "christmas", "coffee",
    "cognac", "copper", "coral", "cranberry", "cream", "crystal", "dark", "denim", "eggplant",
    "elephant", "espresso", "fuchsia", "gold", "granite", "grape", "graphite", "grass", "gray",
    "green", "grey", "heather", "indigo", "ivory", "ivy", "khaki", "lavender", "lemon",
    "leopard", "light", "lilac", "lime", "magenta", "maroon", "mauve", "merlot", "midnight",
    "mint", "mocha", "multicolor", "mushroom", "mustard", "natural", "navy", "nude", "olive",
    "orange", "peach", "pewter", "pink", "plum", "purple", "rainbow", "red", "rose", "royal",
    "rust", "sand", "sapphire", "seashell", "silver", "skull", "slate", "steel", "stone",
    "stonewash", "sunflower", "tan", "taupe", "teal", "tiger", "turquoise", "violet", "walnut",
    "wheat", "white", "wine", "yellow",
)  # fmt: skip


def normalize_color(value: Any) -> Any:
    """The first listed colour contained in ``value``, else ``value`` unchanged.

    ``value`` may be a ``(name, value)`` pair: WebShop passes the items of a synthetic
    goal's option dict here, where ``in`` tests membership, so only a pair member that *is*
    a colour word matches.
    """
    for color in COLOR_SET:
        if color in value:
            return color
    return value
