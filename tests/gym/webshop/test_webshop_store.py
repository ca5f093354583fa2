"""The catalog store: records decode to the products they came from, a catalog file's store
is built once and mapped by other processes, and a changed or damaged store is rebuilt."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

from ipr_gym.webshop.catalog import Catalog, build_product, iter_products
from ipr_gym.webshop.search import BM25Search
from ipr_gym.webshop.store import decode, encode, in_memory
from ipr_gym.webshop.store_files import open_store, store_dir
from ipr_gym.webshop.synthetic import embedded_records

QUERIES = ["shampoo", "wireless headphones bluetooth", "coffee dark roast", "<q> coffee",
           "<c> beauty", "<r>"]  # fmt: skip
OPEN_IN_CHILD = """
import json, sys
import gymnasium as gym
import ipr_gym
env = gym.make("ipr/WebShop-v0", catalog=sys.argv[1], attributes=sys.argv[2], split="all",
               data_dir=sys.argv[3])
store = env.unwrapped.world.catalog
env.reset(options={"task": 0})
obs, *_ = env.step("search[" + sys.argv[4] + "]")
maps = open("/proc/self/maps").read()
mapped = all(f"{sys.argv[5]}/{name}" in maps for name in ("docs.npy", "records.bin"))
print(json.dumps({"mapped": mapped, "observation": obs}))
"""


@pytest.fixture
def catalog_files(tmp_path):
    """The embedded products written as WebShop's files (``items_shuffle``/``items_ins``)."""
    products, attributes = embedded_records()
    paths = tmp_path / "items_shuffle.json", tmp_path / "items_ins_v2.json"
    paths[0].write_text(json.dumps(products))
    paths[1].write_text(json.dumps(attributes))
    return paths


def build_id(folder):
    return json.loads((folder / "meta.json").read_text())["build"]


def results(env, queries=QUERIES):
    shop = env.unwrapped.world.shop
    return [shop.found(tuple(q.split(" "))) for q in queries]


def test_records_decode_to_equal_products(installed_data):
    fixture = Catalog.from_files(installed_data / "webshop" / "items_shuffle_1000.first7.json")
    products, attributes = embedded_records()
    for product in [*fixture.products, *(build_product(r, attributes) for r in products)]:
        assert decode(encode(product)) == product


def test_store_keeps_webshops_skipping_rules_and_order(installed_data):
    products, attributes = embedded_records()
    built = [build_product(r, attributes) for r in products]
    store = in_memory([built[0], built[1], built[0], built[2]])  # a repeated asin
    assert [p.asin for p in store.products] == [p.asin for p in built[:3]]
    assert store.doc(built[2].asin) == 2 and store.doc("B000000000") is None
    assert store.by_asin[built[1].asin] == built[1] and built[0].asin in store.by_asin


def test_a_catalog_file_is_built_once_and_mapped_by_another_process(catalog_files, tmp_path):
    data = tmp_path / "data"
    make = {"catalog": str(catalog_files[0]), "attributes": str(catalog_files[1]),
            "split": "all", "data_dir": str(data)}  # fmt: skip
    env = gym.make("ipr/WebShop-v0", **make)
    embedded = gym.make("ipr/WebShop-v0", split="all")
    # the same products, search results and goals as the in-memory embedded catalog
    assert results(env) == results(embedded)
    assert list(env.unwrapped.world.catalog.products) == list(
        embedded.unwrapped.world.catalog.products
    )
    assert [g.instruction for g in env.unwrapped.world.goals] == [
        g.instruction for g in embedded.unwrapped.world.goals
    ]
    folder = store_dir(catalog_files, data)
    built = build_id(folder)
    child = subprocess.run(
        [sys.executable, "-c", OPEN_IN_CHILD, *map(str, catalog_files), str(data), "shampoo",
         str(folder)],
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    seen = json.loads(child.stdout.strip().splitlines()[-1])
    assert seen["mapped"]
    assert build_id(folder) == built  # not rebuilt
    env.reset(options={"task": 0})
    obs, *_ = env.step("search[shampoo]")
    assert seen["observation"] == obs


def opened(files, data):
    """The store of ``files`` as the env opens it (this process's world cache bypassed)."""
    return open_store(list(files), lambda: iter_products(*files), data)


def ranked(store, queries=("shampoo", "wireless headphones bluetooth", "zebra")):
    search = BM25Search(store.asins, store.postings, store.id_rank)
    return [search.search(q) for q in queries] + [store.with_query("coffee")]


def test_a_truncated_or_stale_store_is_rebuilt_not_read(catalog_files, tmp_path):
    data = tmp_path / "data"
    expected = ranked(opened(catalog_files, data))
    folder = store_dir(catalog_files, data)
    built = build_id(folder)

    docs = folder / "docs.npy"
    with open(docs, "r+b") as f:
        f.truncate(docs.stat().st_size // 2)
    assert ranked(opened(catalog_files, data)) == expected
    rebuilt = build_id(folder)
    assert rebuilt != built and np.load(folder / "docs.npy").size > 0

    # touched, same content: reused; changed: rebuilt with the new products
    os.utime(catalog_files[0], ns=(1, 1))
    opened(catalog_files, data)
    assert build_id(folder) == rebuilt
    products = json.loads(catalog_files[0].read_text())
    products[0]["name"] = "Zebra Striped Shampoo"
    catalog_files[0].write_text(json.dumps(products))
    store = opened(catalog_files, data)
    assert build_id(folder) != rebuilt
    assert store.by_asin[products[0]["asin"]].title == "Zebra Striped Shampoo"
    assert ranked(store)[2] == (products[0]["asin"],)


def test_a_store_without_its_meta_is_never_read(catalog_files, tmp_path):
    data = tmp_path / "data"
    expected = ranked(opened(catalog_files, data))
    folder = store_dir(catalog_files, data)
    (folder / "meta.json").unlink()  # as a build killed before its last write leaves it
    (folder / "records.bin").write_bytes(b"")
    assert ranked(opened(catalog_files, data)) == expected
    assert not [p for p in folder.parent.iterdir() if ".building-" in p.name]


def lucene_bm25_top(documents, asins, query, k=50):
    """Lucene 8's BM25 written out document by document: float32 idf, norms and clause
    scores, a double sum, ties by ascending id; only documents sharing a term."""
    from collections import Counter

    from ipr_gym.webshop.analyzer import analyze
    from ipr_gym.webshop.search import byte4_to_int, int_to_byte4

    f32 = np.float32
    bags = [Counter(analyze(d)) for d in documents]
    n = sum(1 for b in bags if b)
    avgdl = f32(sum(sum(b.values()) for b in bags) / n)
    ranked = []
    for bag, asin in zip(bags, asins, strict=True):
        total, hit = 0.0, False
        for term, count in Counter(analyze(query)).items():
            if term not in bag:
                continue
            df = sum(1 for b in bags if term in b)
            idf = f32(np.log(1 + (n - df + 0.5) / (df + 0.5)))
            length = f32(byte4_to_int(int_to_byte4(sum(bag.values()))))
            norm_inverse = f32(1) / (f32(0.9) * ((f32(1) - f32(0.4)) + f32(0.4) * length / avgdl))
            weight = f32(count) * idf
            total += float(weight - weight / (f32(1) + f32(bag[term]) * norm_inverse))
            hit = True
        if hit:
            ranked.append((-f32(total), asin))
    return tuple(asin for _, asin in sorted(ranked)[:k])


def test_search_from_a_store_ranks_as_lucenes_bm25():
    products, attributes = embedded_records()
    built = [build_product(r, attributes) for r in products]
    store = in_memory(built)
    search = BM25Search(store.asins, store.postings, store.id_rank)
    documents, asins = [p.search_document() for p in built], [p.asin for p in built]
    words = sorted({w for p in built[:30] for w in p.title.lower().split()})
    queries = [" ".join(words[i : i + 3]) for i in range(0, len(words), 3)]
    queries += ["shampoo shampoo conditioner", "zzz", ""]
    for query in queries:
        assert search.search(query) == lucene_bm25_top(documents, asins, query), query


def test_top_k_by_impact_equals_scoring_every_posting(tmp_path, monkeypatch):
    """Queries of common terms take the top-k path; it must return what scoring every
    posting returns (and, for a sample, what Lucene's BM25 written out returns)."""
    from ipr_gym.webshop import search as search_module
    from ipr_gym.webshop.generate import write_catalog

    write_catalog(tmp_path, 3000, seed=1, human_goals=10)
    files = [tmp_path / f for f in ("items_shuffle.json", "items_ins_v2.json")]
    products = list(iter_products(*files))
    store = in_memory(products)
    rng = np.random.default_rng(0)
    queries = []
    for i in rng.integers(0, len(products), 120):
        words = products[i].title.lower().replace(",", " ").split()
        queries.append(" ".join(rng.choice(words, size=min(3, len(words)), replace=False)))
    queries += ["shampoo", "shampoo shampoo conditioner", "black large", "gluten free bars"]

    def ranked_with(threshold, cap=search_module.MAXSCORE_CANDIDATES):
        monkeypatch.setattr(search_module, "EXHAUSTIVE_UP_TO", threshold)
        monkeypatch.setattr(search_module, "MAXSCORE_CANDIDATES", cap)
        search = BM25Search(store.asins, store.postings, store.id_rank)
        return [search.search(q) for q in queries]

    calls = {"union": 0, "all": 0}

    def counted(name, method):
        def wrapper(self, *args, **kwargs):
            calls[name] += 1
            return method(self, *args, **kwargs)

        return wrapper

    monkeypatch.setattr(BM25Search, "_score_union", counted("union", BM25Search._score_union))
    monkeypatch.setattr(BM25Search, "_score_all", counted("all", BM25Search._score_all))
    pruned = ranked_with(0)
    used = dict(calls)
    full = ranked_with(10**12)
    assert pruned == full
    # with no MaxScore union allowed, every query the bound leaves open scores every
    # posting, keeping only the documents at or above the bound's k-th score
    assert ranked_with(0, cap=0) == full
    # the bound alone ends some queries, MaxScore's union of postings others
    assert 0 < used["union"] and used["union"] + used["all"] < len(queries), used
    assert sum(len(r) == 50 for r in full) > 100  # most fill the page: the bound is tested
    documents, asins = [p.search_document() for p in products], [p.asin for p in products]
    for query, got in list(zip(queries, pruned, strict=True))[-4:]:
        assert got == lucene_bm25_top(documents, asins, query)


def test_finding_an_asin_copies_nothing_the_size_of_the_catalog(tmp_path):
    """Every step looks products up by asin; a lookup that copied a catalog-sized array
    (numpy converts a sorter of the wrong integer type whole) makes each step grow with
    the catalog."""
    import tracemalloc

    from ipr_gym.webshop.generate import write_catalog

    write_catalog(tmp_path, 3000, seed=1, human_goals=10)
    files = [tmp_path / f for f in ("items_shuffle.json", "items_ins_v2.json")]
    products = list(iter_products(*files))
    store = in_memory(products)
    sample = range(0, len(products), 37)
    tracemalloc.start()
    try:
        found = [store.doc(products[i].asin) for i in sample]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert found == list(sample)
    assert store.doc("B0NOTTHERE") is None
    assert peak < 4 * len(products), peak  # a copy of the sort order takes 8 bytes each


def test_a_changed_analyzer_rebuilds_the_store(catalog_files, tmp_path, monkeypatch):
    from ipr_gym.webshop import store_files

    data = tmp_path / "data"
    opened(catalog_files, data)
    folder = store_dir(catalog_files, data)
    built = build_id(folder)
    opened(catalog_files, data)
    assert build_id(folder) == built
    monkeypatch.setattr(store_files, "ANALYZER_DIGEST", "a-changed-tokenizer")
    opened(catalog_files, data)
    assert build_id(folder) != built


def test_the_store_of_a_deleted_catalog_is_removed_at_the_next_build(catalog_files, tmp_path):
    data = tmp_path / "data"
    opened(catalog_files, data)
    first = store_dir(catalog_files, data)
    other = tmp_path / "other"
    other.mkdir()
    moved = [other / f.name for f in catalog_files]
    for f, to in zip(catalog_files, moved, strict=True):
        to.write_bytes(f.read_bytes())
        f.unlink()
    opened(moved, data)
    assert store_dir(moved, data).is_dir() and not first.exists()
