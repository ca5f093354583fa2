"""The default search against WebShop's own: Anserini's analyzer and Lucene's ranking, run
in Anserini's Java child process (Anserini 0.14's jar and a JDK; the test command installs
them). No JVM runs inside the test worker."""

from __future__ import annotations

import json
import os
import re
import signal

import gymnasium as gym
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ipr_gym  # noqa: F401 - registers the ids
from ipr_gym.webshop.analyzer import analyze, standard_tokens
from ipr_gym.webshop.lucene import (
    LuceneSearch,
    LuceneUnavailable,
    anserini_terms,
    lucene_byte4_to_int,
    lucene_int_to_byte4,
)
from ipr_gym.webshop.search import BM25Search, byte4_to_int, int_to_byte4

EDGE_CASES = [
    "Women's running shoes, price lower than 50.00 dollars",
    "3.5oz 1,000 3,000.50 $19.99/oz 10x12 v2.0 50% #1 w/ co-op AT&T C++",
    "u.s.a. e.g., a.b.c a..b a:b:c don't O'Neil's it\u2019s JAMES\u2019S",
    "_a b_ __ a__b q_1 1_000",
    "x\u00b2 2\u00b2 \u00bdcup 1\u00bd \u2460",
    "Brand\u2122 \u00a92020 \u00ae \u2605\u2605\u2605\u2606 a\u2605b",
    "\u2764\ufe0f \U0001f44d\U0001f3fd ok",
    "x\U0001f468\u200d\U0001f469\u200d\U0001f467y \u24b6bc",
    "\u0130stanbul na\u00efve caf\u00e9 \u00e7a va STRASSE stra\u00dfe",
    "\u65e5\u672c\u8a9e\u30c6\u30ad\u30b9\u30c8 \u3072\u3089\u304c\u306a",
    "assembly technology incredibly trekking generalizations oscillators ms is a",
    "x" * 600,
]


@pytest.fixture(scope="module")
def embedded():
    env = gym.make("ipr/WebShop-v0", split="all")
    products = env.unwrapped.world.catalog.products
    return [p.asin for p in products], [p.search_document() for p in products]


@pytest.fixture(scope="module")
def human_queries(shared_data):
    mapping = json.loads((shared_data / "webshop" / "goal_query_map.json").read_text())
    return sorted({q.lower() for qs in mapping.values() for q in qs})


def test_terms_equal_anserinis_analyzer(embedded, human_queries, shared_data, installed_data):
    fixture = gym.make(
        "ipr/WebShop-v0", catalog="fixture", split="all", data_dir=str(installed_data)
    )
    real = [p.search_document() for p in fixture.unwrapped.world.catalog.products]
    goals = (shared_data / "webshop" / "human_goals.json").read_text()
    texts = EDGE_CASES + real + embedded[1] + human_queries
    mismatched = [t[:80] for t in texts if analyze(t) != anserini_terms(t)]
    assert not mismatched
    # and every word of WebShop's real product and goal files, stemmed alone
    words = sorted(set(re.findall(r"[A-Za-z][A-Za-z'-]*", goals + "\n".join(real))))
    assert len(words) > 3000
    chunks = [" ".join(words[i : i + 400]) for i in range(0, len(words), 400)]
    assert [analyze(c) for c in chunks] == [anserini_terms(c) for c in chunks]


def test_length_norms_equal_lucenes_smallfloat():
    lengths = [*range(300), 1000, 4095, 65537, 10**6, 2**31 - 1]
    assert [int_to_byte4(n) for n in lengths] == lucene_int_to_byte4(lengths)
    assert [byte4_to_int(b) for b in range(256)] == lucene_byte4_to_int(range(256))


def test_ranking_equals_lucenes_top_50_on_every_human_query(embedded, human_queries):
    asins, documents = embedded
    ours, lucene = BM25Search.from_documents(asins, documents), LuceneSearch(asins, documents)
    assert len(human_queries) > 2000
    differing = [q for q in human_queries if ours.search(q) != lucene.search(q)]
    assert not differing
    assert sum(len(lucene.search(q)) == 50 for q in human_queries) > 1000  # full pages


def test_ties_go_to_the_smaller_product_id():
    asins = ["B09", "B03", "B07", "B01"]
    documents = ["red shoe", "red shoe", "blue shoe", "red shoe"]
    ours, lucene = BM25Search.from_documents(asins, documents), LuceneSearch(asins, documents)
    red = ("B01", "B03", "B09", "B07")  # "blue shoe" matches "shoes" alone
    assert ours.search("red shoes") == lucene.search("red shoes") == red
    assert ours.search("shoe") == lucene.search("shoe") == ("B01", "B03", "B07", "B09")


def test_the_jvm_runs_in_a_child_process_and_its_crash_is_an_error_not_a_crash():
    asins, documents = ["B01", "B02"], ["red shoe", "blue hat"]
    search = LuceneSearch(asins, documents)
    assert search.search("red shoes") == ("B01",)
    maps = open("/proc/self/maps").read()
    assert "libjvm" not in maps and "libjli" not in maps  # no JVM in this process
    child = search._process._proc
    assert child is not None and child.poll() is None
    os.kill(child.pid, signal.SIGKILL)  # what a JVM crash does to the child
    with pytest.raises(LuceneUnavailable, match=r"Java process ended .*next search starts"):
        search.search("blue hats")
    assert search.search("blue hats") == ("B02",)  # a new child serves the next search
    assert search._process._proc is not child


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="aZy09_.,;:'-s \n\t!$%&()*+/<=>?@[]^`{|}~\"#\\", max_size=40))
def test_the_ascii_fast_path_tokenizes_as_the_unicode_rules(text):
    """ASCII text takes a simpler pattern; it must split exactly as the full UAX #29 one."""
    from ipr_gym.webshop.analyzer import _word_pattern

    assert standard_tokens(text) == [w for w in _word_pattern().findall(text) if w.strip("_")]
