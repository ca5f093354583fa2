"""WebShop's search ranking, computed the way Lucene computes it.

WebShop searches a Lucene index (pyserini: Anserini's ``SimpleSearcher``) of each
product's ``search_document`` and shows the top 50. This module reproduces that ranking
without Java: the terms of Anserini's default English analyzer (``analyzer``), a query of
the distinct terms each boosted by its count (Anserini's ``BagOfWordsQueryGenerator``),
Lucene 8's BM25 (k1=0.9, b=0.4) in single precision with its one-byte document-length
norms (``SmallFloat.intToByte4``), clause scores summed in double precision, and ties
broken by ascending product id (Anserini sorts by score, then by the ``id`` field). Only
products sharing a term with the query are returned. ``search="lucene"`` runs Anserini
itself; ``bench-webshop`` compares the two. Results are cached per query: Monte Carlo
rollouts repeat the same searches.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter, OrderedDict
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from ipr_gym.webshop.analyzer import analyze

SEARCH_RETURN_N = 50
CACHE_SIZE = 4096
K1, B = 0.9, 0.4  # Anserini's BM25 defaults, which WebShop keeps


class Searcher(Protocol):
    """What the engine needs of a search backend: the top asins for a query."""

    def search(self, query: str) -> tuple[str, ...]: ...


def int_to_byte4(n: int) -> int:
    """Lucene's ``SmallFloat.intToByte4``: a length in one byte, exact below 24."""
    if n < 24:
        return n
    i = n - 24
    bits = i.bit_length()
    if bits < 4:
        return 24 + i
    shift = bits - 4
    return 24 + (((i >> shift) & 0x07) | ((shift + 1) << 3))


def byte4_to_int(b: int) -> int:
    """Lucene's ``SmallFloat.byte4ToInt``: the length a norm byte stands for."""
    if b < 24:
        return b
    i = b - 24
    bits, shift = i & 0x07, (i >> 3) - 1
    return 24 + (bits if shift == -1 else (bits | 0x08) << shift)


LENGTH_TABLE = np.array([byte4_to_int(b) for b in range(256)], dtype=np.float32)


class BM25Search:
    """``search(query) -> [asin, ...]`` over a fixed list of (asin, document) pairs."""

    def __init__(self, asins: Sequence[str], documents: Sequence[str], k: int = SEARCH_RETURN_N):
        self.asins = list(asins)
        self.k = k
        self.vocab: dict[str, int] = {}
        terms, docs, freqs = array("i"), array("i"), array("i")
        norms = np.zeros(len(self.asins), dtype=np.uint8)
        total, with_terms = 0, 0
        for d, text in enumerate(documents):
            counts = Counter(analyze(text))
            length = sum(counts.values())
            total += length
            with_terms += length > 0
            norms[d] = int_to_byte4(length)
            for term, freq in counts.items():
                terms.append(self.vocab.setdefault(term, len(self.vocab)))
                docs.append(d)
                freqs.append(freq)
        order = np.argsort(np.frombuffer(terms, dtype=np.int32), kind="stable")
        self._docs = np.frombuffer(docs, dtype=np.int32)[order]
        self._freqs = np.frombuffer(freqs, dtype=np.int32)[order].astype(np.float32)
        self._starts = np.searchsorted(
            np.frombuffer(terms, dtype=np.int32)[order], np.arange(len(self.vocab) + 1)
        )
        self._norms = norms
        self._doc_count = with_terms
        avgdl = np.float32(total / with_terms) if with_terms else np.float32(1)
        k1, b = np.float32(K1), np.float32(B)
        one = np.float32(1)
        self._norm_inverse = one / (k1 * ((one - b) + b * LENGTH_TABLE / avgdl))
        # ties go to the smaller product id
        self._id_rank = np.argsort(np.argsort(np.array(self.asins, dtype=object), kind="stable"))
        self._cache: OrderedDict[str, tuple[str, ...]] = OrderedDict()

    def search(self, query: str) -> tuple[str, ...]:
        hit = self._cache.get(query)
        if hit is not None:
            self._cache.move_to_end(query)
            return hit
        result = self._rank(query)
        self._cache[query] = result
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return result

    def _idf(self, doc_freq: int) -> np.float32:
        n = self._doc_count
        return np.float32(math.log(1 + (n - doc_freq + 0.5) / (doc_freq + 0.5)))

    def _rank(self, query: str) -> tuple[str, ...]:
        total = np.zeros(len(self.asins), dtype=np.float64)
        matched = np.zeros(len(self.asins), dtype=bool)
        for term, count in Counter(analyze(query)).items():
            t = self.vocab.get(term)
            if t is None:
                continue
            lo, hi = self._starts[t], self._starts[t + 1]
            docs, freqs = self._docs[lo:hi], self._freqs[lo:hi]
            weight = np.float32(count) * self._idf(hi - lo)
            norm_inverse = self._norm_inverse[self._norms[docs]]
            score = weight - weight / (np.float32(1) + freqs * norm_inverse)
            total[docs] += score
            matched[docs] = True
        found = np.flatnonzero(matched)
        if not len(found):
            return ()
        scores = total[found].astype(np.float32)
        order = found[np.lexsort((self._id_rank[found], -scores))][: self.k]
        return tuple(self.asins[i] for i in order)
