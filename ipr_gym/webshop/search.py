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

A query's cost follows its postings, not the catalog: a query whose terms have few
postings scores them all; one of common terms (on a 1.18M-product catalog a word can have
hundreds of thousands) scores only the best postings of each term by impact and stops
when no unread posting can reach the top 50, as Lucene's own top-k search (block-max
WAND) does. Both give the same list, order and ties included (tested).
"""

from __future__ import annotations

import math
import threading
from array import array
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
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
EXHAUSTIVE_UP_TO = 8192  # postings a query scores in full before it takes the top-k path
MAXSCORE_CANDIDATES = 40_000  # beyond this many candidate postings, score every posting


def norm_inverses(avgdl: float) -> np.ndarray:
    """``1 / (k1 * (1 - b + b * length / avgdl))`` per norm byte, in single precision."""
    k1, b, one = np.float32(K1), np.float32(B), np.float32(1)
    return one / (k1 * ((one - b) + b * LENGTH_TABLE / np.float32(avgdl)))


@dataclass(frozen=True)
class Postings:
    """An inverted index as flat arrays (what a built catalog memory-maps): the vocabulary
    sorted and UTF-8 encoded end to end (``terms`` cut at ``term_offsets``), each term's
    documents and frequencies at ``docs[starts[t]:starts[t + 1]]``, one norm byte per
    document, and the two collection statistics BM25 needs."""

    terms: np.ndarray  # uint8
    term_offsets: np.ndarray  # int64, vocabulary size + 1
    starts: np.ndarray  # int64, vocabulary size + 1
    docs: np.ndarray  # int32
    doc_impacts: np.ndarray  # float32, aligned with docs: frequency x norm inverse
    norms: np.ndarray  # uint8, one per document
    impact_docs: np.ndarray  # int32, by term, then decreasing impact
    impacts: np.ndarray  # float32, aligned with impact_docs
    doc_count: int  # documents with at least one term
    avgdl: float

    def term_id(self, term: str) -> int | None:
        """The term's row, by binary search over the sorted vocabulary (UTF-8 byte order
        is code point order), or None."""
        key = term.encode("utf-8")
        offsets, blob = self.term_offsets, self.terms
        lo, hi = 0, len(offsets) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if blob[offsets[mid] : offsets[mid + 1]].tobytes() < key:
                lo = mid + 1
            else:
                hi = mid
        if lo < len(offsets) - 1 and blob[offsets[lo] : offsets[lo + 1]].tobytes() == key:
            return lo
        return None

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in POSTINGS_ARRAYS}


POSTINGS_ARRAYS = ("terms", "term_offsets", "starts", "docs", "doc_impacts", "norms", "impact_docs",
                   "impacts")  # fmt: skip


class PostingsBuilder:
    """Adds documents one at a time (a 1.18M-product catalog streams through it), then sorts
    the vocabulary and the postings into a ``Postings``."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}
        self._terms, self._docs, self._freqs = array("i"), array("i"), array("i")
        self._norms = bytearray()
        self._total = self._with_terms = 0

    def add(self, document: str) -> None:
        counts = Counter(analyze(document))
        length = sum(counts.values())
        self._total += length
        self._with_terms += length > 0
        doc = len(self._norms)
        self._norms.append(int_to_byte4(length))
        for term, freq in counts.items():
            self._terms.append(self.vocab.setdefault(term, len(self.vocab)))
            self._docs.append(doc)
            self._freqs.append(freq)

    def finish(self) -> Postings:
        words = sorted(self.vocab)
        encoded = [w.encode("utf-8") for w in words]
        offsets = np.zeros(len(words) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        rank = np.empty(len(words), dtype=np.int32)  # first-seen id -> sorted id
        rank[[self.vocab[w] for w in words]] = np.arange(len(words), dtype=np.int32)
        terms = rank[np.frombuffer(self._terms, dtype=np.int32)]
        order = np.argsort(terms, kind="stable")  # documents stay ascending within a term
        with_terms = self._with_terms
        avgdl = self._total / with_terms if with_terms else 1.0
        terms = terms[order]
        docs = np.frombuffer(self._docs, dtype=np.int32)[order]
        freqs = np.frombuffer(self._freqs, dtype=np.int32)[order]
        del order
        norms = np.frombuffer(bytes(self._norms), dtype=np.uint8)
        impacts = freqs.astype(np.float32) * norm_inverses(avgdl)[norms[docs]]
        by_impact = np.lexsort((-impacts, terms))
        return Postings(
            terms=np.frombuffer(b"".join(encoded), dtype=np.uint8),
            term_offsets=offsets,
            starts=np.searchsorted(terms, np.arange(len(words) + 1)).astype(np.int64),
            docs=docs,
            doc_impacts=impacts,
            norms=norms,
            impact_docs=docs[by_impact],
            impacts=impacts[by_impact],
            doc_count=with_terms,
            avgdl=avgdl,
        )


def tie_ranks(asins: Sequence[str] | np.ndarray) -> np.ndarray:
    """Each document's rank by product id: Anserini breaks score ties by ascending id."""
    order = np.argsort(np.asarray(asins, dtype=str), kind="stable")
    ranks = np.empty(len(order), dtype=np.int32)
    ranks[order] = np.arange(len(order), dtype=np.int32)
    return ranks


class BM25Search:
    """``search(query) -> [asin, ...]`` over postings whose document ``i`` is ``asins[i]``
    (``from_documents`` indexes a list of (asin, document) pairs in memory)."""

    def __init__(
        self,
        asins: Sequence[str] | np.ndarray,
        postings: Postings,
        id_rank: np.ndarray | None = None,
        k: int = SEARCH_RETURN_N,
    ):
        self.asins = asins if isinstance(asins, np.ndarray) else np.asarray(asins, dtype=str)
        self.postings = postings
        self.k = k
        self._id_rank = tie_ranks(asins) if id_rank is None else id_rank
        self._cache: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        self._buffers = threading.local()  # score accumulators, one pair per thread

    @classmethod
    def from_documents(
        cls, asins: Sequence[str], documents: Sequence[str], k: int = SEARCH_RETURN_N
    ) -> BM25Search:
        builder = PostingsBuilder()
        for text in documents:
            builder.add(text)
        return cls(asins, builder.finish(), k=k)

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
        n = self.postings.doc_count
        return np.float32(math.log(1 + (n - doc_freq + 0.5) / (doc_freq + 0.5)))

    def _clauses(self, query: str) -> list[tuple[np.float32, int, int]]:
        """(weight, start, end) of each query term in the index, in query order: Anserini's
        bag of words, each distinct term boosted by its count."""
        p = self.postings
        clauses = []
        for term, count in Counter(analyze(query)).items():
            t = p.term_id(term)
            if t is not None:
                lo, hi = int(p.starts[t]), int(p.starts[t + 1])
                clauses.append((np.float32(count) * self._idf(hi - lo), lo, hi))
        return clauses

    def _rank(self, query: str) -> tuple[str, ...]:
        clauses = self._clauses(query)
        if not clauses:
            return ()
        if sum(hi - lo for _, lo, hi in clauses) <= EXHAUSTIVE_UP_TO:
            hits, scores = self._score_all(clauses)
        else:
            hits, scores = self._top(clauses)
        if len(hits) > self.k:  # only scores reaching the k-th best can place (ties kept)
            kth = np.partition(scores, len(scores) - self.k)[len(scores) - self.k]
            keep = scores >= kth
            hits, scores = hits[keep], scores[keep]
        order = hits[np.lexsort((self._id_rank[hits], -scores))][: self.k]
        return tuple(str(a) for a in self.asins[order].tolist())

    def _score_all(
        self, clauses: list[tuple[np.float32, int, int]], floor: np.float32 | None = None
    ) -> tuple[np.ndarray, ...]:
        """Every document sharing a term, scored clause by clause in a per-thread buffer
        the size of the catalog that only the postings touch (and are cleared after).
        ``floor``, a score the k-th best is known to reach, lets a scan of the buffer keep
        only the documents that can place instead of every matched one."""
        p = self.postings
        total, seen = self._buffer("total", np.float64), self._buffer("seen", bool)
        dense = sum(hi - lo for _, lo, hi in clauses) * 8 > len(total)
        found = []
        for weight, lo, hi in clauses:
            docs = p.docs[lo:hi]
            total[docs] += weight - weight / (np.float32(1) + p.doc_impacts[lo:hi])
            if not dense:
                found.append(docs[~seen[docs]])
                seen[docs] = True
        if not dense:
            hits = np.concatenate(found)
            scores = total[hits].astype(np.float32)
            total[hits], seen[hits] = 0.0, False
            return hits, scores
        # dense: a scan finds the matched documents faster than marking them; every clause
        # score is positive (it is 0 only for a document some 10^7 times the mean length).
        # A sum whose float32 reaches the floor is at least the float32 just below it.
        if floor is None:
            hits = np.flatnonzero(total)
        else:
            hits = np.flatnonzero(total >= float(np.nextafter(floor, np.float32(0))))
        scores = total[hits].astype(np.float32)
        total.fill(0.0)
        return hits, scores

    def _buffer(self, name: str, dtype: type) -> np.ndarray:
        """A zeroed array the size of the catalog, this thread's own; users leave it zeroed."""
        buffers = self._buffers.__dict__
        if name not in buffers:
            buffers[name] = np.zeros(len(self.postings.norms), dtype=dtype)
        return buffers[name]

    def _top(self, clauses: list[tuple[np.float32, int, int]]) -> tuple[np.ndarray, ...]:
        """The top k exactly, reading as few postings of common terms as it can.

        First the best ``2k`` postings of each term by impact are scored in full (their
        other terms' frequencies looked up in the document-ordered postings); the k-th of
        those scores, ``theta``, is a score the answer reaches. Any document outside them
        scores at most the sum over terms of the clause score at that depth: if ``theta``
        beats that strictly, the answer is among them. Otherwise (MaxScore) the terms whose
        best clause scores sum below ``theta`` cannot place a document alone, so only the
        postings of the other terms are candidates; when those are too many, every posting
        is scored. Bounds are summed in the order scores are, so rounding cannot break them.
        """
        p = self.postings
        one = np.float32(1)
        depth = 2 * self.k
        seen = self._buffer("seen", bool)
        firsts = []
        for _, lo, hi in clauses:
            docs = p.impact_docs[lo : min(lo + depth, hi)]
            firsts.append(docs[~seen[docs]])
            seen[docs] = True
        candidates = np.sort(np.concatenate(firsts))  # sorted keys search faster
        seen[candidates] = False
        scores = self._score_candidates(clauses, candidates)
        if len(scores) < self.k:
            return self._score_all(clauses)
        theta = -np.partition(-scores, self.k - 1)[self.k - 1]

        def bound(at: list[int | None]) -> np.float32:
            total = 0.0
            for (weight, _, _), i in zip(clauses, at, strict=True):
                if i is not None:
                    total += float(weight - weight / (one + p.impacts[i]))
            return np.float32(total)

        beyond = [lo + depth if lo + depth < hi else None for _, lo, hi in clauses]
        if theta > bound(beyond):
            return candidates, scores
        best = [lo for _, lo, _ in clauses]  # each term's highest impact
        lone = [float(weight - weight / (one + p.impacts[lo])) for weight, lo, _ in clauses]
        unable: list[int | None] = [None] * len(clauses)
        for i in sorted(range(len(clauses)), key=lone.__getitem__):
            trial = list(unable)
            trial[i] = best[i]
            if not theta > bound(trial):
                break
            unable = trial
        able = [u is None for u in unable]
        reach = sum(hi - lo for (_, lo, hi), a in zip(clauses, able, strict=True) if a)
        if not reach or reach > MAXSCORE_CANDIDATES:
            return self._score_all(clauses, floor=theta)
        return self._score_union(clauses, able)

    def _score_union(
        self, clauses: list[tuple[np.float32, int, int]], able: list[bool]
    ) -> tuple[np.ndarray, ...]:
        """The documents of the ``able`` terms, scored clause by clause in query order: an
        able term's postings are added whole, the others' looked up for those documents
        only (the same sums as scoring every posting)."""
        p = self.postings
        one = np.float32(1)
        total, seen = self._buffer("total", np.float64), self._buffer("seen", bool)
        found = []
        for (_, lo, hi), a in zip(clauses, able, strict=True):
            if a:
                docs = p.docs[lo:hi]
                found.append(docs[~seen[docs]])
                seen[docs] = True
        hits = np.sort(np.concatenate(found))  # sorted keys search faster
        seen[hits] = False
        for (weight, lo, hi), a in zip(clauses, able, strict=True):
            docs = p.docs[lo:hi]
            if a:
                total[docs] += weight - weight / (one + p.doc_impacts[lo:hi])
                continue
            present, at = _lookup(docs, hits)
            total[hits[present]] += weight - weight / (one + p.doc_impacts[lo:hi][at])
        scores = total[hits].astype(np.float32)
        total[hits] = 0.0
        return hits, scores

    def _score_candidates(
        self, clauses: list[tuple[np.float32, int, int]], candidates: np.ndarray
    ) -> np.ndarray:
        """The scores of ``candidates`` (sorted), summed clause by clause in query order
        with 0.0 where a term is absent: the same sums as scoring every posting."""
        p = self.postings
        one = np.float32(1)
        total = np.zeros(len(candidates), dtype=np.float64)
        for weight, lo, hi in clauses:
            docs = p.docs[lo:hi]
            present, at = _lookup(docs, candidates)
            impacts = p.doc_impacts[lo:hi][at]
            scores = np.zeros(len(candidates), dtype=np.float32)
            scores[present] = weight - weight / (one + impacts)
            total += scores
        return total.astype(np.float32)


def _lookup(docs: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which of the sorted ``keys`` a term's (sorted) ``docs`` hold, and at which positions."""
    at = np.minimum(np.searchsorted(docs, keys), len(docs) - 1)
    present = docs[at] == keys
    return present, at[present]
