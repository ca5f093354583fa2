"""A catalog as flat arrays that every process can memory-map instead of holding objects.

WebShop's full catalog (1.18M products) as Python objects takes gigabytes per process and
every env-pool worker would build its own copy. Here a catalog is a few numpy arrays and
one file of JSON records, decoded one product at a time when a page, a reward or a goal
needs it (an LRU keeps the recent ones):

- ``records`` / ``record_offsets``: each product's normalised record (``Product``);
- ``asins`` (catalog order), ``asin_order`` (their sort, to find an asin) and ``id_rank``
  (Anserini's tie order);
- ``query_ids`` / ``category_ids`` (names in ``meta``): the ``<q>`` and ``<c>`` searches;
- ``price_low`` / ``price_high`` (NaN for one price): prices drawn per seed without
  decoding a record;
- ``human_docs`` / ``instruction_docs``: the products goals are made from;
- the search index (``search.Postings``).

``build`` makes them in memory from any stream of products (the embedded and fixture
catalogs stay in memory); ``store_files`` writes them once per catalog file and opens
them memory-mapped.
"""

from __future__ import annotations

import json
import random
import threading
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, BinaryIO

import numpy as np

from ipr_gym.webshop.catalog import CatalogError, Product, Review, skipped
from ipr_gym.webshop.search import POSTINGS_ARRAYS, Postings, PostingsBuilder, tie_ranks

STORE_ARRAYS = (
    "records", "record_offsets", "asins", "asin_order", "id_rank", "query_ids",
    "category_ids", "price_low", "price_high", "human_docs", "instruction_docs",
    *POSTINGS_ARRAYS,
)  # fmt: skip
DECODED_CACHE = 4096


def encode(product: Product) -> bytes:
    """One product as the JSON record the store keeps (fields in ``Product``'s order)."""
    p = product
    fields = [
        p.asin, p.title, p.description, p.bullets, p.pricing, p.price_tag, p.options,
        p.option_images, p.attributes, p.category, p.query, p.product_category, p.image,
        p.rating, [[r.title, r.score, r.body] for r in p.reviews], p.instruction,
        p.instruction_attributes, p.human_instructions,
    ]  # fmt: skip
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def decode(record: bytes) -> Product:
    (asin, title, description, bullets, pricing, price_tag, options, images, attributes,
     category, query, product_category, image, rating, reviews, instruction,
     instruction_attributes, human) = json.loads(record)  # fmt: skip
    return Product(
        asin=asin, title=title, description=description, bullets=tuple(bullets),
        pricing=tuple(pricing), price_tag=price_tag,
        options={name: tuple(values) for name, values in options.items()},
        option_images=images, attributes=tuple(attributes), category=category, query=query,
        product_category=product_category, image=image, rating=rating,
        reviews=tuple(Review(*r) for r in reviews), instruction=instruction,
        instruction_attributes=None if instruction_attributes is None
        else tuple(instruction_attributes),
        human_instructions=tuple(human),
    )  # fmt: skip


class CatalogStore:
    """The products of one catalog, in file order, read from arrays (in memory or mapped).

    ``products`` (a sequence) and ``by_asin`` (a mapping) decode on access, so code that
    reads a few products per step never loads the catalog."""

    def __init__(self, arrays: Mapping[str, np.ndarray], meta: dict[str, Any], name: str):
        self.arrays = dict(arrays)
        self.meta = meta
        self.name = name
        a = self.arrays
        self.asins: np.ndarray = a["asins"]
        self.postings = Postings(
            **{k: a[k] for k in POSTINGS_ARRAYS},
            doc_count=int(meta["doc_count"]),
            avgdl=float(meta["avgdl"]),
        )
        self._query_ids = {q: i for i, q in enumerate(meta["queries"])}
        self._category_ids = {c: i for i, c in enumerate(meta["categories"])}
        self._decoded: OrderedDict[int, Product] = OrderedDict()
        self._lock = threading.Lock()
        self.products: Sequence[Product] = _Products(self)
        self.by_asin: Mapping[str, Product] = _ByAsin(self)

    def __len__(self) -> int:
        return len(self.asins)

    def __getitem__(self, asin: str) -> Product:
        return self.by_asin[asin]

    def asin(self, doc: int) -> str:
        return str(self.asins[doc])

    def doc(self, asin: str) -> int | None:
        """The catalog position of ``asin``, or None."""
        if not isinstance(asin, str) or len(asin) > self.asins.dtype.itemsize // 4:
            return None
        order = self.arrays["asin_order"]
        i = int(np.searchsorted(self.asins, asin, sorter=order))
        if i < len(order) and self.asins[order[i]] == asin:
            return int(order[i])
        return None

    def product(self, doc: int) -> Product:
        """Product ``doc``, decoded once while it stays among the recent ones (threads of
        one process, the web site's say, share the cache under a lock)."""
        with self._lock:
            hit = self._decoded.get(doc)
            if hit is not None:
                self._decoded.move_to_end(doc)
                return hit
        offsets = self.arrays["record_offsets"]
        product = decode(self.arrays["records"][offsets[doc] : offsets[doc + 1]].tobytes())
        with self._lock:
            self._decoded[doc] = product
            if len(self._decoded) > DECODED_CACHE:
                self._decoded.popitem(last=False)
        return product

    def with_query(self, query: str) -> tuple[str, ...]:
        """The asins whose search query is ``query`` (WebShop's ``<q>``), catalog order."""
        return self._where("query_ids", self._query_ids.get(query))

    def in_category(self, category: str) -> tuple[str, ...]:
        """The asins of one category (WebShop's ``<c>``), catalog order."""
        return self._where("category_ids", self._category_ids.get(category))

    def _where(self, column: str, value: int | None) -> tuple[str, ...]:
        if value is None:
            return ()
        return tuple(self.asin(i) for i in np.flatnonzero(self.arrays[column] == value).tolist())

    def prices(self, rng: random.Random) -> Prices:
        """The price each product sells at: its only price, or drawn uniformly within its
        range by ``rng``, product by product in catalog order (as WebShop draws them)."""
        low, high = self.arrays["price_low"], self.arrays["price_high"]
        values = np.array(low, dtype=np.float64)
        for i in np.flatnonzero(~np.isnan(high)).tolist():
            values[i] = rng.uniform(float(low[i]), float(high[i]))
        return Prices(self, values)

    @property
    def human_docs(self) -> np.ndarray:
        return self.arrays["human_docs"]

    @property
    def instruction_docs(self) -> np.ndarray:
        return self.arrays["instruction_docs"]

    @property
    def id_rank(self) -> np.ndarray:
        return self.arrays["id_rank"]


class Prices(Mapping[str, float]):
    """Prices by asin (``prices[asin]``) over an array in catalog order (``.by_doc``)."""

    def __init__(self, store: CatalogStore, by_doc: np.ndarray):
        self.store = store
        self.by_doc = by_doc

    def __getitem__(self, asin: str) -> float:
        doc = self.store.doc(asin)
        if doc is None:
            raise KeyError(asin)
        return float(self.by_doc[doc])

    def __iter__(self) -> Iterator[str]:
        return (self.store.asin(i) for i in range(len(self.store)))

    def __len__(self) -> int:
        return len(self.store)


class _Products(Sequence[Product]):
    def __init__(self, store: CatalogStore):
        self.store = store

    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self.store.product(j) for j in range(len(self.store))[i]]
        return self.store.product(range(len(self.store))[i])

    def __iter__(self) -> Iterator[Product]:
        return (self.store.product(i) for i in range(len(self.store)))


class _ByAsin(Mapping[str, Product]):
    def __init__(self, store: CatalogStore):
        self.store = store

    def __getitem__(self, asin: str) -> Product:
        doc = self.store.doc(asin)
        if doc is None:
            raise KeyError(asin)
        return self.store.product(doc)

    def __contains__(self, asin: object) -> bool:
        return isinstance(asin, str) and self.store.doc(asin) is not None

    def __iter__(self) -> Iterator[str]:
        return (self.store.asin(i) for i in range(len(self.store)))

    def __len__(self) -> int:
        return len(self.store)


def build(
    products: Iterable[Product],
    records: BinaryIO,
    on_product: Callable[[int], None] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays (all but ``records``, which go to ``records`` as they come) and the meta
    of a catalog, with WebShop's skipping rules (``catalog.skipped``); ``on_product(count)``
    is called after each kept product."""
    asins: list[str] = []
    seen: set[str] = set()
    offsets = array("q", [0])
    queries: dict[str, int] = {}
    categories: dict[str, int] = {}
    query_ids, category_ids = array("i"), array("i")
    low, high = array("d"), array("d")
    human, instructed = array("i"), array("i")
    postings = PostingsBuilder()
    for product in products:
        if skipped(product.asin, seen):
            continue
        doc = len(asins)
        seen.add(product.asin)
        asins.append(product.asin)
        record = encode(product)
        records.write(record)
        offsets.append(offsets[-1] + len(record))
        query_ids.append(queries.setdefault(product.query, len(queries)))
        category_ids.append(categories.setdefault(product.category, len(categories)))
        low.append(product.pricing[0])
        high.append(product.pricing[1] if len(product.pricing) > 1 else float("nan"))
        if product.human_instructions:
            human.append(doc)
        if product.instruction is not None:
            instructed.append(doc)
        postings.add(product.search_document())
        if on_product is not None:
            on_product(doc + 1)
    if not asins:
        raise CatalogError("the catalog has no products")
    index = postings.finish()
    asin_array = np.array(asins, dtype=f"U{max(len(a) for a in asins)}")
    arrays = {
        "record_offsets": np.frombuffer(offsets, dtype=np.int64),
        "asins": asin_array,
        # intp: searchsorted converts a sorter of any other type, a copy of the whole
        # array on every lookup
        "asin_order": np.argsort(asin_array, kind="stable").astype(np.intp),
        "id_rank": tie_ranks(asin_array),
        "query_ids": np.frombuffer(query_ids, dtype=np.int32),
        "category_ids": np.frombuffer(category_ids, dtype=np.int32),
        "price_low": np.frombuffer(low, dtype=np.float64),
        "price_high": np.frombuffer(high, dtype=np.float64),
        "human_docs": np.frombuffer(human, dtype=np.int32),
        "instruction_docs": np.frombuffer(instructed, dtype=np.int32),
        **index.arrays(),
    }
    meta = {
        "count": len(asins),
        "doc_count": index.doc_count,
        "avgdl": index.avgdl,
        "queries": list(queries),
        "categories": list(categories),
    }
    return arrays, meta


def in_memory(products: Iterable[Product], name: str = "catalog") -> CatalogStore:
    """A store held in memory (small catalogs: the embedded one, fixtures, tests)."""
    import io

    buffer = io.BytesIO()
    arrays, meta = build(products, buffer)
    arrays["records"] = np.frombuffer(buffer.getvalue(), dtype=np.uint8)
    return CatalogStore(arrays, meta, name)
