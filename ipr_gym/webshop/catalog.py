"""Products in WebShop's original record format, normalised as WebShop's loader does.

``items_shuffle*.json`` records become ``Product``s exactly as WebShop's ``load_products``
shapes them (title from ``name``, bullet points from ``small_description``, prices parsed
from ``pricing``, option values lower-cased with ``/`` shown as `` | ``, attributes from
``items_ins_v2*.json``, ``DUMMY_ATTR`` where a product has none). Records with a missing or
over-long asin and repeated asins are skipped, as there.

Files load by streaming when ``ijson`` is installed, so the 1.18M-product file never sits in
memory as raw JSON next to the products built from it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

DUMMY_ATTR = "DUMMY_ATTR"


@dataclass(frozen=True, slots=True)
class Review:
    title: str
    score: Any
    body: str


@dataclass(slots=True)
class Product:
    """One product as the engine, the reward and the pages see it."""

    asin: str
    title: str
    description: str
    bullets: tuple[str, ...]
    pricing: tuple[float, ...]
    price_tag: str
    options: dict[str, tuple[str, ...]]
    option_images: dict[str, str | None]
    attributes: tuple[str, ...]
    category: str
    query: str
    product_category: str
    image: str
    rating: Any = "N.A."
    reviews: tuple[Review, ...] = ()
    instruction: str | None = None
    instruction_attributes: tuple[str, ...] | None = None
    human_instructions: tuple[dict[str, Any], ...] = field(default=())

    @property
    def name(self) -> str:
        """WebShop keeps ``name`` and ``Title`` as the same string."""
        return self.title

    def search_document(self) -> str:
        """The text WebShop's index holds for this product (title, description, first
        bullet point, option names and values), lower-cased."""
        option_text = ", and ".join(
            f"{name}: {', '.join(values)}" for name, values in self.options.items()
        )
        first_bullet = self.bullets[0] if self.bullets else ""
        return " ".join([self.title, self.description, first_bullet, option_text]).lower()


class CatalogError(ValueError):
    """A product file that is not in WebShop's format."""


def parse_pricing(pricing: Any) -> tuple[tuple[float, ...], str]:
    """WebShop's price parsing: ``"$12.99"`` -> one price, ``"$5 - $9"`` -> a range."""
    if not pricing:
        return (100.0,), "$100.0"
    if not isinstance(pricing, str):
        raise CatalogError(f"pricing must be a string like '$12.99', got {pricing!r}")
    values = []
    for part in pricing.split("$")[1:]:
        digits = re.sub(r"[^\d.]", "", part)
        try:
            values.append(float(Decimal(digits)))
        except ArithmeticError as exc:
            raise CatalogError(f"unparseable pricing {pricing!r}") from exc
    if not values:
        raise CatalogError(f"unparseable pricing {pricing!r}")
    if len(values) == 1:
        return (values[0],), f"${values[0]}"
    return (values[0], values[1]), f"${values[0]} to ${values[1]}"


def _option_value(raw: str) -> str:
    return raw.strip().replace("/", " | ").lower()


def build_product(
    raw: dict[str, Any],
    attributes: dict[str, Any] | None = None,
    human: dict[str, list[dict[str, Any]]] | None = None,
    reviews: dict[str, tuple[list[dict[str, Any]], Any]] | None = None,
) -> Product:
    """One record of ``items_shuffle*.json`` as WebShop's loader normalises it."""
    try:
        asin = raw["asin"]
        options: dict[str, tuple[str, ...]] = {}
        images: dict[str, str | None] = {}
        for name, contents in (raw.get("customization_options") or {}).items():
            if contents is None:
                continue
            values = []
            for content in contents:
                value = _option_value(content["value"])
                values.append(value)
                images[value] = content.get("image")
            options[name.lower()] = tuple(values)
        small = raw["small_description"]
        bullets = tuple(small) if isinstance(small, list) else (small,)
        pricing, price_tag = parse_pricing(raw.get("pricing"))
        attrs = (attributes or {}).get(asin, {})
        product_reviews, rating = (reviews or {}).get(asin, ([], "N.A."))
        return Product(
            asin=asin,
            title=raw["name"],
            description=raw["full_description"],
            bullets=bullets,
            pricing=pricing,
            price_tag=price_tag,
            options=options,
            option_images=images,
            attributes=tuple(attrs["attributes"]) if "attributes" in attrs else (DUMMY_ATTR,),
            category=raw["category"],
            query=raw["query"].lower().strip(),
            product_category=raw["product_category"],
            image=raw["images"][0],
            rating=rating,
            reviews=tuple(_review(r) for r in product_reviews),
            instruction=attrs.get("instruction"),
            instruction_attributes=tuple(attrs["instruction_attributes"])
            if attrs.get("instruction_attributes") is not None
            else None,
            human_instructions=tuple((human or {}).get(asin, ())),
        )
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise CatalogError(
            f"product {raw.get('asin', '?') if isinstance(raw, dict) else raw!r} is not in "
            f"WebShop's format ({type(exc).__name__}: {exc})"
        ) from exc


def _review(raw: dict[str, Any]) -> Review:
    score = raw.get("score", raw.get("stars"))
    return Review(
        title=raw.get("title", ""), score=score, body=raw.get("review", raw.get("body", ""))
    )


def iter_records(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a JSON list, streamed with ``ijson`` when it is installed."""
    try:
        import ijson  # type: ignore[import-not-found]
    except ImportError:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if not isinstance(data, list):
            raise CatalogError(f"{path} must hold a JSON list of products") from None
        yield from data
        return
    with open(path, "rb") as f:
        yield from ijson.items(f, "item", use_float=True)


def skipped(asin: str, seen: Container[str] = ()) -> bool:
    """WebShop's loader drops a record whose asin is "nan" or over 10 characters, and a
    repeated one."""
    return asin == "nan" or len(asin) > 10 or asin in seen


class Catalog:
    """The products of one catalog, in file order, with WebShop's skipping rules."""

    def __init__(self, products: Iterable[Product], name: str = "catalog"):
        self.name = name
        self.products: list[Product] = []
        self.by_asin: dict[str, Product] = {}
        for product in products:
            if skipped(product.asin, self.by_asin):
                continue
            self.products.append(product)
            self.by_asin[product.asin] = product
        if not self.products:
            raise CatalogError(f"catalog {name!r} has no products")

    def __len__(self) -> int:
        return len(self.products)

    def __getitem__(self, asin: str) -> Product:
        return self.by_asin[asin]

    @classmethod
    def from_files(
        cls,
        products: str | Path,
        attributes: str | Path | None = None,
        human_instructions: str | Path | None = None,
        reviews: str | Path | None = None,
        limit: int | None = None,
    ) -> Catalog:
        """Load an original catalog: ``items_shuffle*.json`` plus its companions."""
        found = iter_products(products, attributes, human_instructions, reviews, limit)
        return cls(found, name=Path(products).name)


def iter_products(
    products: str | Path,
    attributes: str | Path | None = None,
    human_instructions: str | Path | None = None,
    reviews: str | Path | None = None,
    limit: int | None = None,
) -> Iterator[Product]:
    """The products of an original catalog file one at a time (streamed), without the
    records WebShop skips for their asin; repeated asins are left to the consumer."""
    products = Path(products)
    attrs = _load_json(attributes) if attributes else {}
    human = _load_json(human_instructions) if human_instructions else {}
    review_map: dict[str, tuple[list[dict[str, Any]], Any]] = {}
    if reviews:
        for r in _load_json(reviews):
            review_map[r["asin"]] = (r["reviews"], r["average_rating"])
    for i, raw in enumerate(iter_records(products)):
        if limit is not None and i >= limit:
            return
        if not isinstance(raw, dict) or "asin" not in raw:
            raise CatalogError(f"record {i} of {products} has no asin")
        if skipped(str(raw["asin"])):
            continue
        yield build_product(raw, attrs, human, review_map)


def _load_json(path: str | Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)
