"""Catalogs of any size in WebShop's original file layout, generated from a seed.

WebShop's full catalog (1,181,436 products, 5.2 GB) cannot be downloaded here, but what
its size costs can be measured on a catalog shaped like it: ``write_catalog`` writes
``items_shuffle.json``, ``items_ins_v2.json`` and ``items_human_ins.json`` for ``n``
products of the embedded catalog's kinds (``synthetic.TYPES``). Titles run 10-25 words,
descriptions 40-160, three to six bullet points of 8-24 words, as on WebShop's pages.
Their filler words follow a power law, so the words in use grow with the text as in real
corpora (Heaps' law: about 150,000 distinct words at 20,000 products, growing as the 0.67th
power) and the search index grows as it would. Human instructions are made for as many
products as WebShop's 12,087 human goals are of its catalog (pro rata), so IPR's and ETO's
split indices map to tasks. Everything is synthetic and documented as such.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ipr_gym.data.datasets import WEBSHOP_CATALOGS
from ipr_gym.webshop.synthetic import ADJECTIVES, OPTION_VALUES, TYPES, price_text

FULL_PRODUCTS = 1_181_436
FULL_HUMAN_GOALS = 12_087
SYLLABLES = [c + v for c in "bdfghjklmnprstvz" for v in "aeiou"]  # 80: a unique spelling
SPECS = [(category, spec) for category, specs in TYPES.items() for spec in specs]
CATALOG_FILES = tuple(f for f in WEBSHOP_CATALOGS["full"] if f)  # WebShop's names
ASIN_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _base_words() -> list[str]:
    words: dict[str, None] = {}
    for _, (query, path, nouns, attributes, _) in SPECS:
        for text in (query, path, *nouns, *attributes):
            for w in text.lower().replace("›", " ").replace(",", " ").split():
                words.setdefault(w, None)
    for values in OPTION_VALUES.values():
        for v in values:
            for w in v.split():
                words.setdefault(w, None)
    return list(words)


def spell(j: int) -> str:
    """A made-up word for ``j >= 80``: its base-80 digits as syllables (a unique spelling)."""
    spelled = []
    while j:
        j, d = divmod(j, 80)
        spelled.append(SYLLABLES[d])
    return "".join(spelled)


class Vocabulary:
    """Word ``i``: the embedded catalog's own words first, then made-up words."""

    def __init__(self, cached: int = 1 << 18) -> None:
        base = _base_words()
        self.offset = 80 - len(base)  # word i >= len(base) is spell(i + offset)
        self.words = base + [spell(i + self.offset) for i in range(len(base), cached)]

    def __getitem__(self, i: int) -> str:
        return self.words[i] if i < len(self.words) else spell(i + self.offset)


class _Filler:
    """Filler text: word ranks from a power law (Pareto, a = 0.5, scale 40: Zipf's law with
    exponent 1.5), so the words in use grow with the text as about ``tokens ** 0.67``."""

    def __init__(self, rng: np.random.Generator):
        self.rng, self.vocab = rng, Vocabulary()

    def words(self, n: int) -> str:
        ranks = (self.rng.pareto(0.5, n) * 40).astype(np.int64).tolist()
        return " ".join(self.vocab[r] for r in ranks)


def _asin(i: int, n: int) -> str:
    """A distinct 10-character asin for product ``i`` (an affine scramble of ``i``)."""
    code = (i * 2_654_435_761 + 97) % 36**8 if n < 36**8 else i
    digits = []
    for _ in range(8):
        code, d = divmod(code, 36)
        digits.append(ASIN_DIGITS[d])
    return "B0" + "".join(digits)


def _products(n: int, seed: int, human_every: int) -> Iterator[tuple[dict, dict, dict | None]]:
    rng = random.Random(seed)
    filler = _Filler(np.random.default_rng(seed))
    for i in range(n):
        category, (query, path, nouns, attributes, groups) = SPECS[rng.randrange(len(SPECS))]
        asin = _asin(i, n)
        noun = rng.choice(nouns)
        attrs = rng.sample(attributes, k=min(len(attributes), rng.randint(2, 4)))
        brand = spell(10**9 + rng.randrange(1 + i // 8)).title()  # more brands as it grows
        title = (f"{brand} {rng.choice(ADJECTIVES)} {noun} {filler.words(rng.randint(5, 18))}"
                 f", {attrs[0].title()}")  # fmt: skip
        options: dict[str, list[dict[str, Any]]] = {}
        for group in groups[: rng.randint(0, len(groups))]:
            values = rng.sample(
                OPTION_VALUES[group], k=rng.randint(2, min(8, len(OPTION_VALUES[group])))
            )
            options[group.title()] = [
                {"value": v, "image": f"https://example.invalid/{asin}/{j}.jpg"}
                for j, v in enumerate(values)
            ]
        pricing = price_text(rng)
        bullets = [f"{a.upper()}: {filler.words(rng.randint(8, 24))}" for a in attrs]
        bullets += [filler.words(rng.randint(8, 24)) for _ in range(rng.randint(1, 2))]
        raw = {
            "asin": asin,
            "name": title,
            "full_description": f"{noun} {filler.words(rng.randint(40, 160))}. "
            f"Synthetic product generated by ipr; not a real item.",
            "small_description": bullets,
            "pricing": pricing,
            "customization_options": options,
            "images": [f"https://example.invalid/{asin}/main.jpg"],
            "category": category,
            "query": query,
            "product_category": path,
        }
        wanted = attrs[: rng.randint(1, min(3, len(attrs)))]
        attr_record: dict[str, Any] = {"attributes": attrs}
        if rng.random() < 0.4:
            attr_record["instruction"] = f"Find me {', '.join(wanted)} {query}"
            attr_record["instruction_attributes"] = wanted
        human = None
        if i % human_every == human_every // 2:
            chosen = [v["value"] for v in (rng.choice(vs) for vs in options.values())]
            option_text = f" in {' and '.join(chosen)}" if chosen else ""
            human = {
                "instruction": f"i want {' and '.join(wanted)} {noun.lower()}{option_text}",
                "instruction_attributes": wanted,
                "instruction_options": chosen,
            }
        yield raw, attr_record, human


def write_catalog(
    folder: str | Path, n: int, seed: int = 0, human_goals: int | None = None
) -> dict[str, Any]:
    """Write the three files of an ``n``-product catalog into ``folder``; returns what was
    written (products, human goals, bytes, seconds). ``human_goals`` defaults to
    WebShop's share (12,087 of 1,181,436)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    goals = (
        human_goals if human_goals is not None else max(1, n * FULL_HUMAN_GOALS // FULL_PRODUCTS)
    )
    every = max(1, n // max(goals, 1))
    began = time.perf_counter()
    human: dict[str, list[dict[str, Any]]] = {}
    paths = [
        folder / f for f in ("items_shuffle.json", "items_ins_v2.json", "items_human_ins.json")
    ]
    with (
        open(paths[0], "w", encoding="utf-8") as items,
        open(paths[1], "w", encoding="utf-8") as ins,
    ):
        items.write("[")
        ins.write("{")
        for i, (raw, attrs, ask) in enumerate(_products(n, seed, every)):
            _item(items, i, json.dumps(raw))
            _item(ins, i, f"{json.dumps(raw['asin'])}: {json.dumps(attrs)}")
            if ask is not None and len(human) < goals:
                human[raw["asin"]] = [ask]
        items.write("]")
        ins.write("}")
    paths[2].write_text(json.dumps(human), encoding="utf-8")
    return {
        "products": n,
        "human_goals": len(human),
        "bytes": sum(p.stat().st_size for p in paths),
        "seconds": time.perf_counter() - began,
    }


def _item(f: TextIO, i: int, text: str) -> None:
    f.write(text if i == 0 else ", " + text)
